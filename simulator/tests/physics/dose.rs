//! Mean glandular dose: the Monte Carlo against the published Dance g and s factors, and the published trends
//! with glandularity and projection angle; the scatter model against the Monte Carlo's scatter.

use tomolab_hal::Target;
use tomolab_simulator::dose::standard::reference_arc;
use tomolab_simulator::dose::{
    ConversionTables, PhantomDose, StandardBreast, StandardViewDose, ViewBeam, standard_view_dose,
};
use tomolab_simulator::mc::McConfig;
use tomolab_simulator::{FilterLayer, ScatterModel};

fn w_rh_28(breast: &StandardBreast, angle: f64, histories: u64) -> StandardViewDose {
    let layers = [
        FilterLayer::named("Be", 1.0).unwrap(),
        FilterLayer::named("Rh", 0.05).unwrap(),
        FilterLayer::named("pmma", 2.5).unwrap(),
    ];
    let beam = ViewBeam::new(&reference_arc(), angle, Target::W, 28.0, &layers, breast.top_mm()).unwrap();
    standard_view_dose(breast, &beam, &McConfig { histories, batches: 16, seed: 21, stream_offset: 0 }).unwrap()
}

/// MC against the formalism for the standard breast (50 mm, 50 % glandular, W/Rh 28 kV, 0 deg): the published
/// Dance 2000 g factor (data/dose/dance_g_factors.csv) times the published W/Rh s factor 1.042; c = t = 1 by
/// definition here. The issue asks for agreement within 5 %; the measured difference is about +3 %.
#[test]
fn monte_carlo_matches_the_published_g_and_s_factors() {
    let d = w_rh_28(&StandardBreast::new(50.0, 0.5), 0.0, 1_000_000);
    let tables = ConversionTables::embedded().unwrap();
    let formalism = tables.g(50.0, d.hvl_mm_al).unwrap()
        * tables.s(Target::W, tomolab_hal::technique::FilterMaterial::Rh, 50.0).unwrap();
    let ratio = d.mgd_per_kerma.mean / formalism;
    assert!(d.mgd_per_kerma.relative_error() < 0.005, "{:?}", d.mgd_per_kerma);
    assert!(
        (ratio - 1.0).abs() < 0.05,
        "MC {:.4} vs g s {formalism:.4} (HVL {:.3})",
        d.mgd_per_kerma.mean,
        d.hvl_mm_al
    );
}

/// At fixed incident air kerma the MGD falls as the glandular fraction rises, by the published c factors
/// (Dance et al. 2000, data/dose/dance_c_factors.csv): the Monte Carlo's MGD/K at G relative to G = 0.5 on the
/// same model breast and beam matches c within 2 % (measured: within 0.8 % over the whole table at 25-100 %).
#[test]
fn dose_per_kerma_against_glandularity_follows_the_published_c_factors() {
    let tables = ConversionTables::embedded().unwrap();
    for thickness in [30.0, 70.0] {
        let per_k = |g: f64| w_rh_28(&StandardBreast::new(thickness, g), 0.0, 300_000);
        let reference = per_k(0.5);
        let mut previous = f64::INFINITY;
        for g in [0.001, 0.25, 0.75, 1.0] {
            let d = per_k(g);
            let c_mc = d.mgd_per_kerma.mean / reference.mgd_per_kerma.mean;
            let c_published = tables.c(thickness, g, d.hvl_mm_al).unwrap();
            assert!(
                (c_mc / c_published - 1.0).abs() < 0.02,
                "{thickness} mm, G {g}: MC c {c_mc:.4} vs published {c_published:.4} (HVL {:.3})",
                d.hvl_mm_al
            );
            assert!(c_mc < previous, "c must fall as G rises: {c_mc} after {previous}");
            previous = c_mc;
        }
    }
}

/// Per-view dose against projection angle for the same tube output (Sechopoulos et al., Med Phys 34:221,
/// 2007): the relative glandular dose RGD(theta) = D(theta) / D(0) departs from 1 and falls as |theta| grows,
/// and depends only weakly on the glandular fraction.
#[test]
fn relative_glandular_dose_falls_with_angle_as_published() {
    let rgd = |g: f64| -> Vec<f64> {
        let b = StandardBreast::new(50.0, g);
        let at = |a: f64| w_rh_28(&b, a, 1_000_000).mgd_per_mas.mean;
        let zero = at(0.0);
        [10.0, 20.0, 25.0, -25.0].iter().map(|&a| at(a) / zero).collect()
    };
    let (half, dense) = (rgd(0.5), rgd(0.75));
    assert!(half[0] < 1.0 && half[1] < half[0] && half[2] < half[1], "{half:?}");
    assert!(half[2] > 0.8 && half[2] < 0.97, "RGD(25) = {}", half[2]);
    assert!((half[2] - half[3]).abs() < 0.015, "symmetric within statistics: {half:?}");
    assert!((half[2] - dense[2]).abs() < 0.02, "weak glandular dependence: {half:?} vs {dense:?}");
}

/// The scatter model of the physics issue against the Monte Carlo's scatter image: SPR behind the middle of a
/// 50 mm, 50 % glandular breast (20-60 mm from the chest wall, +-20 mm laterally), within 10 %.
#[test]
fn scatter_model_agrees_with_the_monte_carlo_spr() {
    let d = w_rh_28(&StandardBreast::new(50.0, 0.5), 0.0, 1_000_000);
    let img = d.mc.detector.as_ref().unwrap();
    let nx = img.plane.pixels[0];
    let mc = img.spr(nx / 2 - 10..nx / 2 + 10, 10..30);
    let model = ScatterModel::default();
    let spr = model.spr_per_cm * 5.0 * (1.0 + model.glandular_slope * (0.5 - 0.5));
    println!("SPR 50 mm, 50 %: model {spr:.3}, Monte Carlo {mc:.3} ({:+.1} %)", 100.0 * (spr / mc - 1.0));
    assert!((spr / mc - 1.0).abs() < 0.10, "model SPR {spr:.3} vs Monte Carlo {mc:.3}");
}

#[test]
fn the_formalism_declines_outside_its_tables() {
    let t = ConversionTables::embedded().unwrap();
    assert!(t.g(50.0, 1.5).unwrap_err().to_string().contains("outside the g table"));
    assert!(t.g(150.0, 0.5).is_err());
    assert!(t.t(50.0, 60.0).is_err());
    // Published values are reproduced at grid points (Dance 2000 g, 50 mm, HVL 0.50: 0.258).
    assert!((t.g(50.0, 0.5).unwrap() - 0.258).abs() < 1e-12);
}

/// The phantom's glandularity is the glandular weight fraction of its adipose and glandular tissue: a
/// checkerboard of equal voxel counts gives 1.04 / (1.04 + 0.93) by the Hammerstein densities; skin and
/// lesions do not count, and a phantom without breast tissue is refused.
#[test]
fn phantom_glandularity_is_the_glandular_weight_fraction_of_its_tissue() {
    use tomolab_hal::VoxelGrid;
    use tomolab_phantom::{LabelVolume, Material, MaterialTable};
    let grid = VoxelGrid::cubic([8, 8, 4], 1.0, [0.0, 0.0, 20.0]);
    let mut labels: Vec<u8> = (0..grid.len()).map(|i| if (i + i / 8 + i / 64) % 2 == 0 { 1 } else { 2 }).collect();
    labels[0] = 3; // skin
    labels[1] = 16; // a lesion
    let mut materials = MaterialTable::breast();
    materials.set(16, Material::Lesion, "object 0 (mass)");
    let volume = LabelVolume::new(grid, labels.clone()).unwrap();
    let fixed = [FilterLayer::named("Be", 1.0).unwrap()];
    let arc = reference_arc();
    let dose = PhantomDose { volume: &volume, materials: &materials, arc: &arc, fixed_layers: &fixed };
    let (adipose, glandular) = (
        labels.iter().filter(|&&l| l == 1).count() as f64 * 0.93,
        labels.iter().filter(|&&l| l == 2).count() as f64 * 1.04,
    );
    let g = dose.glandularity().unwrap();
    assert!((g - glandular / (glandular + adipose)).abs() < 1e-12, "{g}");
    assert!((g - 1.04 / 1.97).abs() < 0.01, "{g}");
    let pmma = LabelVolume::new(grid, vec![6; grid.len()]).unwrap();
    let mut table = MaterialTable::air_only();
    table.set(6, Material::Pmma, "slab");
    let dose = PhantomDose { volume: &pmma, materials: &table, arc: &arc, fixed_layers: &fixed };
    assert!(dose.glandularity().unwrap_err().to_string().contains("no adipose or glandular"));
}
