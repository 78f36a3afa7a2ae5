//! Lesion kinds and placement: carcinoma masses of 5-20 mm, BI-RADS grouped calcifications, glandular or fat
//! placement judged from the generated voxels.

use tomolab_phantom::material::{ADIPOSE, GLANDULAR};
use tomolab_phantom::{BreastParams, LesionSpec, Material, ObjectKind, Phantom, Placement, TruthObject};

fn breast(lesions: Vec<LesionSpec>) -> BreastParams {
    BreastParams {
        thickness_mm: 40.0,
        chest_wall_width_mm: 120.0,
        nipple_distance_mm: 80.0,
        voxel_mm: 0.25,
        seed: 11,
        glandular_fraction: 0.3,
        ligaments: false,
        lesions,
        ..BreastParams::default()
    }
}

/// Glandular share of the tissue (adipose + glandular voxels) in the shell between `r0` and `r1` mm around
/// the object's centre.
fn shell_glandular_share(g: &tomolab_phantom::Generated, o: &TruthObject, r0: f64, r1: f64) -> f64 {
    let v = &g.volume;
    let (mut gl, mut all) = (0u64, 0u64);
    let range = |a: usize, n: usize| {
        let lo = v.grid.world_to_voxel(std::array::from_fn(|b| o.centre_mm[b] - if a == b { r1 } else { 0.0 }));
        let hi = v.grid.world_to_voxel(std::array::from_fn(|b| o.centre_mm[b] + if a == b { r1 } else { 0.0 }));
        lo.map_or(0, |l| l[a])..=hi.map_or(n - 1, |h| h[a])
    };
    for k in range(2, v.grid.nz) {
        for j in range(1, v.grid.ny) {
            for i in range(0, v.grid.nx) {
                let p = v.voxel_centre(i, j, k);
                let d = (0..3).map(|a| (p[a] - o.centre_mm[a]).powi(2)).sum::<f64>().sqrt();
                if d < r0 || d > r1 {
                    continue;
                }
                let l = v.get(i, j, k);
                gl += u64::from(l == GLANDULAR);
                all += u64::from(l == GLANDULAR || l == ADIPOSE);
            }
        }
    }
    gl as f64 / all.max(1) as f64
}

#[test]
fn placement_puts_masses_in_glandular_tissue_or_in_fat() {
    // Four small masses in glandular tissue and four in fat. The voxels just around each (the shell 1.75-2.5 mm
    // from the centre of a 1.5 mm sphere) must be mostly glandular for the first and mostly fat for the
    // second; the breast as a whole is 30 % glandular.
    let mut lesions = Vec::new();
    for _ in 0..4 {
        lesions.push(LesionSpec::mass([1.5; 3]).in_tissue(Placement::Glandular));
    }
    for _ in 0..4 {
        lesions.push(LesionSpec::mass([1.5; 3]).in_tissue(Placement::Fat));
    }
    let g = Phantom::breast(&breast(lesions)).unwrap().generate().unwrap();
    let share: Vec<f64> = g.truth.objects.iter().map(|o| shell_glandular_share(&g, o, 1.75, 2.5)).collect();
    println!("glandular share around each mass: {share:.2?}");
    let fraction = g.truth.breast.as_ref().unwrap().glandular_fraction_measured.unwrap();
    // Each on its side of the breast's own fraction, and the groups far apart.
    for (id, s) in share.iter().enumerate() {
        let glandular = id < 4;
        assert!(
            if glandular { *s > fraction } else { *s < fraction },
            "object {id}: share {s:.2}, breast {fraction:.2}"
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&share[..4]) > 0.6 && mean(&share[4..]) < 0.15, "{share:?}");
}

#[test]
fn masses_of_5_to_20_mm_are_carcinoma_with_their_size_in_truth() {
    let lesions = vec![
        LesionSpec::spiculated(5.0, 8, 3.0).at([-25.0, 25.0, 40.0]),
        LesionSpec::spiculated(20.0, 16, 8.0).at([15.0, 35.0, 40.0]),
    ];
    let ph = Phantom::breast(&breast(lesions)).unwrap();
    let g = ph.generate().unwrap();
    let voxel_mm3 = g.truth.grid.cubic_voxel_mm().powi(3);
    let mut volumes = Vec::new();
    for (o, d) in g.truth.objects.iter().zip([5.0f64, 20.0]) {
        assert_eq!(o.kind, ObjectKind::SpiculatedMass);
        assert_eq!(o.material, Material::Carcinoma);
        assert_eq!(ph.materials().material(o.label), Some(Material::Carcinoma));
        // The core alone is a sphere of the nominal diameter (lobulation -12..+20 %): its voxel volume lies
        // between the sphere of 0.8 d and that of 1.6 d (spicules add a little).
        let vol = o.voxel_count.unwrap() as f64 * voxel_mm3;
        let sphere = |d: f64| std::f64::consts::PI / 6.0 * d.powi(3);
        assert!(vol > sphere(0.8 * d) && vol < sphere(1.6 * d), "{d} mm mass: {vol:.1} mm3");
        volumes.push(vol);
    }
    assert!(volumes[1] > 30.0 * volumes[0], "a 20 mm mass is (20/5)^3 = 64 x a 5 mm one: {volumes:?}");
}

#[test]
fn too_large_a_mass_is_refused_by_name() {
    let err = Phantom::breast(&breast(vec![LesionSpec::spiculated(25.0, 8, 3.0)])).unwrap_err().to_string();
    assert!(err.contains("lesions[0].diameter_mm"), "{err}");
}

#[test]
fn grouped_calcifications_follow_the_bi_rads_definition() {
    let g = Phantom::breast(&breast(vec![LesionSpec::grouped_calcifications(8, 10.0)])).unwrap().generate().unwrap();
    let o = &g.truth.objects[0];
    assert_eq!(o.material, Material::Hydroxyapatite);
    let tomolab_phantom::truth::ObjectSize::Cluster { calcifications, .. } = &o.size else { panic!("{o:?}") };
    assert!(calcifications.len() >= 5);
    for c in calcifications {
        assert!((0.1..=0.5).contains(&c.diameter_mm), "{}", c.diameter_mm);
        let d = (0..3).map(|a| (c.centre_mm[a] - o.centre_mm[a]).powi(2)).sum::<f64>().sqrt();
        assert!(d <= 5.0 + 1e-9, "speck {d:.2} mm from the centre of a 10 mm group");
    }
}
