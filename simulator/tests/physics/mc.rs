//! Monte Carlo transport against independent oracles: Beer-Lambert for unscattered photons, the AAPM TG-195
//! Case 3 reference codes, and determinism across thread counts.

use tomolab_simulator::mc::{self, Aabb, FieldRect, McConfig, McMaterial, McScene, McSource, ScoringPlane, tg195};

/// A slab of `material` (top face at 60 mm) in air over a detector plane; a 20 x 20 mm field of `kev` photons
/// from 600 mm.
fn slab_scene(material: &str, thickness_mm: f64, kev: f64) -> (McScene<'static>, McSource) {
    let world = Aabb::new([-300.0, -300.0, 0.0], [300.0, 300.0, 700.0]).unwrap();
    let slab = Aabb::new([-150.0, -150.0, 60.0 - thickness_mm], [150.0, 150.0, 60.0]).unwrap();
    let scene = McScene::new(world, McMaterial::named("air").unwrap())
        .with_box(slab, McMaterial::named(material).unwrap())
        .unwrap()
        .with_detector(ScoringPlane { z_mm: 0.0, min_xy_mm: [-10.0, -10.0], pixels: [1, 1], pixel_mm: 20.0 })
        .unwrap();
    let field = FieldRect { z_mm: 0.0, min_xy_mm: [-10.0, -10.0], max_xy_mm: [10.0, 10.0] };
    (scene, McSource::new([0.0, 0.0, 600.0], field, &[(kev, 1.0)]).unwrap())
}

/// Runs the slab and checks the unscattered fraction against exp(-mu L) from the attenuation tables (NIST-grade),
/// averaged over the narrow field: paths through the slab L / cos(theta), theta <= 1.4 deg, and the air column
/// (about 1e-3 relative, inside the tolerance). Returns the SPR behind the slab.
fn check_beer_lambert(material: &str, thickness_mm: f64, kev: f64) -> f64 {
    let (scene, source) = slab_scene(material, thickness_mm, kev);
    let n = 400_000;
    let r = mc::run(&scene, &source, &McConfig { histories: n, batches: 20, seed: 3, stream_offset: 0 }).unwrap();
    let d = r.detector.unwrap();
    let primary_fraction = d.primary[0] / kev; // keV per history / keV per photon
    let slab = tomolab_simulator::material(material).unwrap();
    let air = tomolab_simulator::material("air").unwrap();
    let expected = (-slab.mu_per_mm(kev) * thickness_mm - air.mu_per_mm(kev) * (600.0 - thickness_mm)).exp();
    let sigma = (expected * (1.0 - expected) / n as f64).sqrt();
    assert!(
        (primary_fraction - expected).abs() < 4.0 * sigma + 0.002 * expected,
        "{material}: primary transmission {primary_fraction:.5} vs Beer-Lambert {expected:.5} (sigma {sigma:.5})"
    );
    d.scatter[0] / d.primary[0]
}

#[test]
fn unscattered_photons_follow_beer_lambert() {
    // Scatter reaches the detector too, and only from the slab: a positive SPR of order 0.1-1 for 40 mm water.
    let spr = check_beer_lambert("water", 40.0, 20.0);
    assert!(spr > 0.05 && spr < 1.0, "SPR {spr}");
}

#[test]
fn aluminium_inserts_are_transported() {
    // QA phantoms carry Al beads and step wedges: 0.5 mm Al at 25 keV transmits about 60 %. Photoelectric
    // absorption dominates in Al, so its scatter behind a thin sheet is small.
    let spr = check_beer_lambert("aluminium", 0.5, 25.0);
    assert!(spr > 0.0 && spr < 0.05, "SPR {spr}");
}

#[test]
fn same_seed_same_result_on_any_thread_count() {
    let phantom = tg195::Phantom::new(1.0).unwrap();
    let scene = tg195::scene(&phantom).unwrap();
    let source = tg195::source(tg195::Mode::Tomosynthesis, tg195::Beam::MoMo30).unwrap();
    let config = McConfig { histories: 40_000, batches: 8, seed: 5, stream_offset: 2 };
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| mc::run(&scene, &source, &config).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two);
    // A different stream block gives different numbers (the streams are really independent).
    let other = mc::run(&scene, &source, &McConfig { stream_offset: 3, ..config }).unwrap();
    assert_ne!(one.label(tg195::TISSUE), other.label(tg195::TISSUE));
}

/// AAPM TG-195 Case 3 (Sechopoulos et al., Med Phys 42:5679, 2015; data/reference/tg195/): energy imparted per
/// incident photon. 1.2e7 photons per case on a 0.5 mm voxelisation (tissue volume within 0.004 % of the
/// analytic half cylinder). Statistical uncertainty at that count (one sigma, measured): whole breast about
/// 0.05 %, VOI 3 and 7 about 0.5-0.7 %, VOI 6 about 1.5-1.8 %; asserted below. Tolerances are the issue's: 2 %
/// on the whole breast, 5 % on the central VOIs 3, 6 and 7, against the mean of the four codes; at 16.8 keV the
/// VOIs are compared with EGSnrc, Geant4 and MCNP only, because PENELOPE's small-volume values there scatter
/// by up to 11 % (reference README).
fn case3(mode: tg195::Mode, beam: tg195::Beam) {
    let phantom = tg195::Phantom::new(0.5).unwrap();
    let config = McConfig { histories: 12_000_000, batches: 32, seed: 1, stream_offset: 0 };
    let rows = tg195::compare(&phantom, mode, beam, &config).unwrap();
    for r in &rows {
        let reference = if beam == tg195::Beam::Mono16_8 && r.volume != "Total body" {
            r.reference.codes_ev[..3].iter().sum::<f64>() / 3.0
        } else {
            r.reference.mean_ev
        };
        let diff = r.ours_ev.mean / reference - 1.0;
        let rel = r.ours_ev.relative_error();
        match r.volume.as_str() {
            "Total body" => {
                assert!(rel < 0.002, "{mode:?} {beam:?} total: sigma {rel}");
                assert!(diff.abs() < 0.02, "{mode:?} {beam:?} total: {:.2} % off", 100.0 * diff);
            }
            "VOI 3" | "VOI 6" | "VOI 7" => {
                assert!(rel < 0.02, "{mode:?} {beam:?} {}: sigma {rel}", r.volume);
                assert!(diff.abs() < 0.05, "{mode:?} {beam:?} {}: {:.2} % off", r.volume, 100.0 * diff);
            }
            _ => {}
        }
    }
}

#[test]
fn tg195_case3_radiography_16_8_kev() {
    case3(tg195::Mode::Radiography, tg195::Beam::Mono16_8);
}

#[test]
fn tg195_case3_tomosynthesis_16_8_kev() {
    case3(tg195::Mode::Tomosynthesis, tg195::Beam::Mono16_8);
}

#[test]
fn tg195_case3_radiography_30_kvp_momo() {
    case3(tg195::Mode::Radiography, tg195::Beam::MoMo30);
}

#[test]
fn tg195_case3_tomosynthesis_30_kvp_momo() {
    case3(tg195::Mode::Tomosynthesis, tg195::Beam::MoMo30);
}

#[test]
fn bad_scenes_and_configs_are_refused_with_a_reason() {
    let world = Aabb::new([-10.0, -10.0, 0.0], [10.0, 10.0, 10.0]).unwrap();
    let water = McMaterial::named("water").unwrap();
    let scene = McScene::new(world, McMaterial::named("air").unwrap());
    let e = scene.clone().with_box(Aabb::new([-20.0, -1.0, 1.0], [1.0, 1.0, 2.0]).unwrap(), water.clone()).unwrap_err();
    assert!(e.to_string().contains("not inside the world"), "{e}");
    let s = scene.with_box(Aabb::new([-1.0, -1.0, 1.0], [1.0, 1.0, 2.0]).unwrap(), water.clone()).unwrap();
    let e = s.with_box(Aabb::new([0.0, 0.0, 1.5], [1.0, 1.0, 3.0]).unwrap(), water).unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    assert!(McMaterial::named("tungsten").unwrap_err().to_string().contains("no scattering table"));
    assert!(McMaterial::mixture("m", &[("glandular", 0.5), ("adipose", 0.4)], 1.0).is_err());
    assert!(McConfig { histories: 10, batches: 1, seed: 0, stream_offset: 0 }.validate().is_err());
    let field = FieldRect { z_mm: 0.0, min_xy_mm: [1.0, 0.0], max_xy_mm: [0.0, 1.0] };
    assert!(McSource::new([0.0, 0.0, 5.0], field, &[(20.0, 1.0)]).is_err());
}
