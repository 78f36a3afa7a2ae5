//! Tomosynthesis oracles: an analytic bead is in focus at its true depth, the wide-angle ASF is narrower
//! than the narrow-angle one, and a uniform slab reconstructs to its mu (FBP and SART).

use tomolab_hal::{DetectorMotion, Vec3};
use tomolab_recon::metrics::artifact_spread;
use tomolab_recon::{FbpOptions, SartOptions, VolumeOptions, VoxelGrid, fbp, sart};

use super::{arc_poses, cuboid, detector, project_analytic, sphere};

/// Reconstructs a 1 mm bead at `depth` by FBP; returns (peak depth, ASF FWHM).
fn bead_asf(sid: f64, axis: f64, half_arc: f64, views: usize, depth: f64) -> (f64, f64) {
    let det = detector(120, 80, 0.4);
    let poses = arc_poses(sid, axis, det, DetectorMotion::Stationary, -half_arc, half_arc, views);
    let bead = Vec3::new(2.0, 15.0, depth);
    let projections = project_analytic(det, &poses, 3, sphere(bead, 0.5, 0.5));
    let options = VolumeOptions::default();
    let vol = tomolab_recon::tomosynthesis_grid(&det, &poses, Some(40.0), &options).unwrap();
    assert_eq!(vol.nz, 40);
    let recon = fbp(&projections, &vol, &FbpOptions::default()).unwrap();
    let asf = artifact_spread(&recon, bead.x, bead.y, 0.5).unwrap();
    (asf.peak_z_mm, asf.fwhm_mm.expect("ASF falls to one half inside the slab"))
}

#[test]
fn bead_in_focus_at_true_depth_and_wide_angle_asf_is_narrower() {
    let mut wide_fwhm = 0.0;
    for depth in [12.3, 27.6] {
        let (z, fwhm) = bead_asf(650.0, 50.0, 25.0, 25, depth);
        eprintln!("wide-angle bead at {depth} mm: peak {z:.2} mm (error {:+.2}), ASF FWHM {fwhm:.2} mm", z - depth);
        assert!((z - depth).abs() <= 0.5, "wide-angle bead at {depth}: peak at {z}");
        wide_fwhm = fwhm;
    }
    let depth = 20.4;
    let (z, narrow_fwhm) = bead_asf(700.0, 0.0, 7.5, 15, depth);
    eprintln!(
        "narrow-angle bead at {depth} mm: peak {z:.2} mm (error {:+.2}), ASF FWHM {narrow_fwhm:.2} mm",
        z - depth
    );
    assert!((z - depth).abs() <= 0.5, "narrow-angle bead at {depth}: peak at {z}");
    assert!(wide_fwhm < narrow_fwhm, "wide {wide_fwhm} mm should be below narrow {narrow_fwhm} mm");
}

fn slab_setup() -> (tomolab_recon::Projections, VoxelGrid, f64) {
    let det = detector(100, 60, 1.0);
    let poses = arc_poses(650.0, 50.0, det, DetectorMotion::Stationary, -25.0, 25.0, 25);
    let mu = 0.05;
    let thickness = 40.0;
    let projections =
        project_analytic(det, &poses, 1, cuboid(Vec3::new(-25.0, 0.0, 0.0), Vec3::new(25.0, 40.0, thickness), mu));
    let options = VolumeOptions::default();
    let vol = tomolab_recon::tomosynthesis_grid(&det, &poses, Some(thickness), &options).unwrap();
    (projections, vol, mu)
}

/// Mean over the central 10 x 10 mm of the slab, in every slice from 5 mm to 35 mm.
fn central_means(recon: &tomolab_recon::Volume) -> Vec<f64> {
    let g = &recon.geometry;
    (0..g.nz)
        .filter(|&iz| (5.0..=35.0).contains(&g.slice_z_mm(iz)))
        .map(|iz| {
            let (mut s, mut n) = (0.0, 0);
            for iy in 0..g.ny {
                for ix in 0..g.nx {
                    let p = g.position(ix as f64, iy as f64, iz as f64);
                    if p.x.abs() <= 5.0 && (p.y - 20.0).abs() <= 5.0 {
                        s += f64::from(recon.at(ix, iy, iz));
                        n += 1;
                    }
                }
            }
            s / n as f64
        })
        .collect()
}

#[test]
fn uniform_slab_fbp_within_five_percent() {
    let (projections, vol, mu) = slab_setup();
    let recon = fbp(&projections, &vol, &FbpOptions::default()).unwrap();
    let means = central_means(&recon);
    let worst = means.iter().map(|m| (m - mu).abs() / mu).fold(0.0, f64::max);
    eprintln!(
        "FBP slab: central means {:.4}..{:.4} (mu {mu}), worst error {:.1}%",
        means.iter().cloned().fold(f64::MAX, f64::min),
        means.iter().cloned().fold(f64::MIN, f64::max),
        100.0 * worst
    );
    assert!(worst < 0.05, "worst relative error {worst}");
}

#[test]
fn uniform_slab_sart_within_five_percent() {
    let (projections, vol, mu) = slab_setup();
    let options = SartOptions { iterations: 10, subsets: 5, ..SartOptions::default() };
    let (recon, report) = sart(&projections, &vol, &options, None).unwrap();
    let means = central_means(&recon);
    let worst = means.iter().map(|m| (m - mu).abs() / mu).fold(0.0, f64::max);
    eprintln!(
        "SART slab: worst error {:.1}%, residual {:.3}, updates {:?}",
        100.0 * worst,
        report.relative_residual,
        report.relative_updates
    );
    assert!(worst < 0.05, "worst relative error {worst}");
}
