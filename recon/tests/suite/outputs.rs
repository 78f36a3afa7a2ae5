//! Metrics against analytic images, output files that read back with the right grid, MLEM and synthetic 2D.

use tomolab_hal::{DetectorMotion, Vec3};
use tomolab_recon::io::{read_nrrd, write_nrrd, write_preview_png, write_tiff_stack};
use tomolab_recon::metrics::{disc_values, edge_mtf, rmse, sdnr, ssim};
use tomolab_recon::{MlemOptions, Volume, VolumeOptions, VoxelGrid, mlem, synthetic_2d};

use super::{arc_poses, cuboid, detector, project_analytic};

fn small_volume() -> Volume {
    let geometry = VoxelGrid::from_first_centre([24, 20, 6], [0.5, 0.25, 1.0], [-6.0, 1.0, 0.5]);
    let data = (0..geometry.len()).map(|i| (i % 97) as f32 * 0.001).collect();
    Volume { geometry, data }
}

#[test]
fn nrrd_round_trip_keeps_grid_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let v = small_volume();
    let path = dir.path().join("v.nrrd");
    write_nrrd(&path, &v).unwrap();
    let back = read_nrrd(&path).unwrap();
    assert_eq!(back, v);
    let scaling = write_tiff_stack(&dir.path().join("s.tif"), &v).unwrap();
    assert!(scaling.scale > 0.0);
    write_preview_png(&dir.path().join("p.png"), v.slice(0), 24, 20).unwrap();
    assert!(write_preview_png(&dir.path().join("bad.png"), v.slice(0), 25, 20).is_err());
    std::fs::write(dir.path().join("bad.nrrd"), b"NRRD0004\ntype: short\n\n").unwrap();
    assert!(read_nrrd(&dir.path().join("bad.nrrd")).is_err());
}

#[test]
fn edge_mtf_of_a_blurred_edge_matches_its_gaussian() {
    // A slanted edge blurred by a Gaussian of sigma 1 pixel: MTF(f) = exp(-2 pi^2 sigma^2 f^2), MTF50 at
    // f = sqrt(ln 2 / (2 pi^2)) / sigma = 0.187 cycles/pixel.
    let (cols, rows, pixel) = (64, 64, 0.1);
    let sigma = 1.0f64;
    let erf = |x: f64| {
        // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
        let t = 1.0 / (1.0 + 0.3275911 * x.abs());
        let y = 1.0
            - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592)
                * t
                * (-x * x).exp();
        if x >= 0.0 { y } else { -y }
    };
    let slope = 0.08f64;
    let image: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let (r, c) = ((i / cols) as f64, (i % cols) as f64);
            let d = (c - 32.0 - slope * (r - 32.0)) / (1.0 + slope * slope).sqrt();
            (0.5 * (1.0 + erf(d / (sigma * 2f64.sqrt())))) as f32
        })
        .collect();
    let mtf = edge_mtf(&image, cols, rows, pixel).unwrap();
    let expected = (2f64.ln() / (2.0 * std::f64::consts::PI.powi(2))).sqrt() / sigma / pixel;
    let got = mtf.mtf50.unwrap();
    assert!((got - expected).abs() < 0.05 * expected, "MTF50 {got} vs {expected} cycles/mm");
}

#[test]
fn edge_mtf_refuses_regions_without_an_edge_and_accepts_a_noisy_one() {
    use rand::{Rng, SeedableRng};
    let (cols, rows, pixel) = (64, 64, 0.1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let noise = |rng: &mut rand_chacha::ChaCha8Rng, sd: f64| -> f32 {
        (sd * (rng.random::<f64>() + rng.random::<f64>() + rng.random::<f64>() - 1.5) * 2.0) as f32
    };
    // Pure noise.
    let flat: Vec<f32> = (0..rows * cols).map(|_| 1.0 + noise(&mut rng, 0.05)).collect();
    let err = edge_mtf(&flat, cols, rows, pixel).unwrap_err().to_string();
    assert!(err.contains("edge"), "{err}");
    // Smooth texture: a sum of a few random sinusoids, no step.
    let waves: Vec<(f64, f64, f64)> =
        (0..6).map(|_| (rng.random::<f64>() * 0.3, rng.random::<f64>() * 0.3, rng.random::<f64>() * 6.0)).collect();
    let texture: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let (r, c) = ((i / cols) as f64, (i % cols) as f64);
            waves.iter().map(|(a, b, p)| (a * c + b * r + p).sin()).sum::<f64>() as f32
        })
        .collect();
    assert!(edge_mtf(&texture, cols, rows, pixel).is_err());
    // A sharp slanted edge of step 1 under noise of 0.05 (SDNR 20): measured, its MTF from 1 at zero frequency.
    let edge: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let (r, c) = ((i / cols) as f64, (i % cols) as f64);
            let step = if c - 32.0 - 0.08 * (r - 32.0) > 0.0 { 1.0 } else { 0.0 };
            step + noise(&mut rng, 0.05)
        })
        .collect();
    let mtf = edge_mtf(&edge, cols, rows, pixel).unwrap();
    assert!((mtf.mtf[0] - 1.0).abs() < 1e-9 && mtf.mtf.iter().all(|&m| m <= 1.2), "{:?}", mtf.mtf);
    assert!(mtf.mtf50.is_some());
}

#[test]
fn sdnr_rmse_and_ssim_behave() {
    let v = small_volume();
    assert!(rmse(&v, &v).unwrap() == 0.0);
    assert!((ssim(&v, &v).unwrap() - 1.0).abs() < 1e-9);
    let mut noisy = v.clone();
    noisy.data.iter_mut().enumerate().for_each(|(i, x)| *x += if i % 2 == 0 { 0.01 } else { -0.01 });
    assert!((rmse(&noisy, &v).unwrap() - 0.01).abs() < 1e-6);
    assert!(ssim(&noisy, &v).unwrap() < 1.0);
    let background: Vec<f32> = (0..100).map(|i| if i % 2 == 0 { 1.0 } else { 3.0 }).collect();
    let value = sdnr(&[4.0, 4.0], &background).unwrap();
    assert!((value - 2.0 / (100.0f64 / 99.0).sqrt()).abs() < 1e-9, "{value}");
    assert!(disc_values(&v, 0, 0.0, 3.5, 0.0, 1.0).len() > 4);
    let other = Volume::zeros(VoxelGrid { nx: 3, ..v.geometry });
    assert!(rmse(&v, &other).is_err());
}

#[test]
fn mlem_recovers_a_slab_and_synthetic_2d_mixes_max_and_mean() {
    let det = detector(60, 40, 1.0);
    let poses = arc_poses(650.0, 50.0, det, DetectorMotion::Stationary, -25.0, 25.0, 11);
    let mu = 0.04;
    let p = project_analytic(det, &poses, 1, cuboid(Vec3::new(-15.0, 0.0, 0.0), Vec3::new(15.0, 30.0, 20.0), mu));
    let vol = tomolab_recon::tomosynthesis_grid(&det, &poses, Some(20.0), &VolumeOptions::default()).unwrap();
    let (recon, report) = mlem(&p, &vol, &MlemOptions { iterations: 30, ..MlemOptions::default() }, None).unwrap();
    assert!(report.relative_residual < 0.05, "{report:?}");
    let g = &recon.geometry;
    let (ix, iy) = (
        ((0.0 - g.first_centre_mm()[0]) / g.voxel_mm[0]) as usize,
        ((15.0 - g.first_centre_mm()[1]) / g.voxel_mm[1]) as usize,
    );
    let centre = f64::from(recon.at(ix, iy, g.nz / 2));
    assert!((centre - mu).abs() < 0.1 * mu, "MLEM centre {centre} vs {mu}");
    assert!(recon.data.iter().all(|&x| x >= 0.0));
    let s = synthetic_2d(&recon, 0.5).unwrap();
    let column: Vec<f32> = (0..g.nz).map(|iz| recon.at(ix, iy, iz)).collect();
    let (max, mean) = (column.iter().cloned().fold(f32::MIN, f32::max), column.iter().sum::<f32>() / g.nz as f32);
    assert!((s[iy * g.nx + ix] - 0.5 * (max + mean)).abs() < 1e-6);
    assert!(synthetic_2d(&recon, 1.5).is_err());
}
