//! FDK of a full-circle scan of a sphere recovers its radius within one voxel.

use tomolab_hal::{DetectorMotion, Vec3};
use tomolab_recon::fdk::{FdkOptions, default_ct_volume, fdk};

use super::{arc_poses, detector, project_analytic, sphere};

#[test]
fn fdk_sphere_radius_within_one_voxel() {
    let det = detector(128, 96, 0.8);
    let views = 180;
    let poses = arc_poses(
        600.0,
        300.0,
        det,
        DetectorMotion::RotatesWithTube,
        0.0,
        360.0 * (views as f64 - 1.0) / views as f64,
        views,
    );
    // The central rays meet on the rotation axis; put the sphere there.
    let empty = project_analytic(det, &poses[..8], 1, |_, _| 0.0);
    let iso = tomolab_recon::fdk::isocentre(&empty).unwrap();
    assert!(iso.x.abs() < 1e-6 && (iso.z - 300.0).abs() < 1e-6, "{iso:?}");
    let centre = Vec3::new(0.0, iso.y, 300.0);
    let (radius, mu) = (10.0, 0.02);
    let projections = project_analytic(det, &poses, 1, sphere(centre, radius, mu));
    let vol = default_ct_volume(&projections, Some(0.8)).unwrap();
    let recon = fdk(&projections, &vol, &FdkOptions::default()).unwrap();
    let g = &recon.geometry;
    // Profile along x through the voxel nearest the centre.
    let idx = |v: f64, o: f64, d: f64| ((v - o) / d).round() as usize;
    let (iy, iz) =
        (idx(centre.y, g.first_centre_mm()[1], g.voxel_mm[1]), idx(centre.z, g.first_centre_mm()[2], g.voxel_mm[2]));
    let profile: Vec<f64> = (0..g.nx).map(|ix| f64::from(recon.at(ix, iy, iz))).collect();
    let ic = idx(centre.x, g.first_centre_mm()[0], g.voxel_mm[0]);
    let inside = profile[ic.saturating_sub(5)..=ic + 5].iter().sum::<f64>() / 11.0;
    let half = inside / 2.0;
    let cross = |range: Vec<usize>| -> f64 {
        for w in range.windows(2) {
            let (a, b) = (w[0], w[1]);
            if profile[b] < half {
                let t = (profile[a] - half) / (profile[a] - profile[b]);
                return g.first_centre_mm()[0] + (a as f64 + t * (b as f64 - a as f64)) * g.voxel_mm[0];
            }
        }
        f64::NAN
    };
    let right = cross((ic..g.nx).collect());
    let left = cross((0..=ic).rev().collect());
    let measured = (right - left) / 2.0;
    eprintln!(
        "FDK sphere: interior mu {inside:.4} (true {mu}), radius {measured:.3} mm (true {radius}), voxel {} mm",
        g.voxel_mm[0]
    );
    assert!((measured - radius).abs() <= g.voxel_mm[0], "radius {measured}");
    assert!((inside - mu).abs() < 0.1 * mu, "interior {inside}");
}
