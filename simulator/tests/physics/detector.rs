//! The detector model: noise against the quantum + electronic model, MTF against the configured model.

use std::f64::consts::PI;

use tomolab_hal::{DetectorGeometry, DetectorMaterial, Target, Vec3, ViewPose};
use tomolab_simulator::{
    ConversionMtf, DetectorModel, FilterLayer, MaterialMap, ProjectedImage, RayTracer, RayTracerConfig, Spectrum,
    VolumeView,
};

fn detector(cols: usize, rows: usize, pitch: f64) -> DetectorGeometry {
    DetectorGeometry {
        cols,
        rows,
        pitch_u_mm: pitch,
        pitch_v_mm: pitch,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    }
}

fn pose(pitch: f64) -> ViewPose {
    ViewPose {
        source_mm: Vec3::new(0.0, 0.0, 650.0),
        detector_centre_mm: Vec3::new(0.0, 0.0, 0.0),
        u_step_mm: Vec3::new(pitch, 0.0, 0.0),
        v_step_mm: Vec3::new(0.0, pitch, 0.0),
    }
}

/// Open field of the W/Rh 28 kVp beam through the projector (an empty volume).
fn flat_field(cols: usize, rows: usize, mas: f64) -> ProjectedImage {
    let labels = [0u8];
    let vol = VolumeView { grid: tomolab_hal::VoxelGrid::cubic([1, 1, 1], 1.0, [0.0, 0.0, 100.0]), labels: &labels };
    let filters = [FilterLayer::named("Rh", 0.05).unwrap(), FilterLayer::named("Be", 1.0).unwrap()];
    let spectrum = Spectrum::new(Target::W, 28.0, &filters, 1000.0).unwrap();
    let det = detector(cols, rows, 0.085);
    let p =
        RayTracer::new(vol, MaterialMap::from_names([]).unwrap(), &spectrum, &det, RayTracerConfig::default()).unwrap();
    p.project(&[pose(0.085)], mas).unwrap()
}

#[test]
fn flat_field_variance_follows_quantum_plus_electronic_over_100x_mas() {
    let model = DetectorModel {
        conversion_mtf: ConversionMtf::Ideal,
        electronic_noise_adu: 3.0,
        gain_adu_per_kev: 0.02,
        saturation_adu: 1e9,
        ..DetectorModel::default()
    };
    let (cols, rows) = (128, 128);
    for (i, mas) in [0.02, 0.2, 2.0].into_iter().enumerate() {
        let img = flat_field(cols, rows, mas);
        let raw = model.read_out(&img, 100 + i as u64).unwrap();
        let expected = model.expected(&img).unwrap();
        let n = raw.data.len() as f64;
        let resid: Vec<f64> = raw.data.iter().zip(&expected.data).map(|(a, b)| f64::from(*a) - f64::from(*b)).collect();
        let mean_resid = resid.iter().sum::<f64>() / n;
        let var = resid.iter().map(|r| (r - mean_resid).powi(2)).sum::<f64>() / (n - 1.0);
        // Model: gain^2 * E2 (= gain^2 * Eq * E1, compound Poisson) + electronic^2, averaged over the pixels.
        let model_var = img.energy_sq_kev2.iter().map(|e2| model.gain_adu_per_kev.powi(2) * e2).sum::<f64>() / n
            + model.electronic_noise_adu.powi(2);
        let mean_signal = expected.mean() - model.offset_adu;
        let diff = var / model_var - 1.0;
        println!(
            "noise at {mas} mAs: mean signal {mean_signal:.1} ADU, variance {var:.2} vs model {model_var:.2} \
             ({:+.2} %), quantum share {:.0} %",
            100.0 * diff,
            100.0 * (1.0 - model.electronic_noise_adu.powi(2) / model_var)
        );
        assert!(diff.abs() < 0.05, "{mas} mAs: {var} vs {model_var}");
        assert!(mean_resid.abs() < 4.0 * (model_var / n).sqrt(), "noise must be unbiased: {mean_resid}");
    }
}

/// Slanted-edge presampled MTF of a frame whose edge passes through `(x0, 0)` at slope `tan_a` (columns per row).
fn edge_mtf(data: &[f64], cols: usize, rows: usize, x0: f64, tan_a: f64, pitch: f64, freqs: &[f64]) -> Vec<f64> {
    let over = 10.0; // bins per pixel
    let cos_a = 1.0 / (1.0 + tan_a * tan_a).sqrt();
    let half = 12.0; // pixels either side of the edge
    let nb = (2.0 * half * over) as usize;
    let (mut sum, mut cnt) = (vec![0.0; nb], vec![0.0; nb]);
    for r in 0..rows {
        for c in 0..cols {
            // Signed distance (pixels) from the pixel centre to the edge, perpendicular to it.
            let d = ((c as f64 + 0.5) - (x0 + tan_a * (r as f64 + 0.5))) * cos_a;
            if d.abs() >= half {
                continue;
            }
            let b = ((d + half) * over) as usize;
            sum[b] += data[r * cols + c];
            cnt[b] += 1.0;
        }
    }
    let esf: Vec<f64> = sum.iter().zip(&cnt).map(|(s, n)| s / n).collect();
    let lsf: Vec<f64> = esf.windows(2).map(|w| w[1] - w[0]).collect();
    let dx = pitch / over;
    let xs: Vec<f64> = (0..lsf.len()).map(|i| (i as f64 + 1.0 - half * over) * dx).collect();
    let dc: f64 = lsf.iter().sum();
    freqs
        .iter()
        .map(|f| {
            let (re, im) = lsf.iter().zip(&xs).fold((0.0, 0.0), |(re, im), (l, x)| {
                (re + l * (2.0 * PI * f * x).cos(), im + l * (2.0 * PI * f * x).sin())
            });
            // Undo the finite-difference derivative, sinc(f dx).
            let fd = if *f > 0.0 { (PI * f * dx).sin() / (PI * f * dx) } else { 1.0 };
            (re * re + im * im).sqrt() / dc / fd
        })
        .collect()
}

#[test]
fn edge_mtf_matches_the_configured_model() {
    let pitch = 0.085;
    let (cols, rows) = (64, 200);
    let tan_a = 0.05; // about 2.9 deg
    let x0 = 30.3;
    // Ideal pixel-integrated edge (the pixel aperture): fraction of each pixel on the bright side, by dense
    // sub-sampling.
    let sub = 64;
    let mut ideal = vec![0.0; cols * rows];
    for r in 0..rows {
        for c in 0..cols {
            let mut n = 0;
            for j in 0..sub {
                for i in 0..sub {
                    let x = c as f64 + (i as f64 + 0.5) / sub as f64;
                    let y = r as f64 + (j as f64 + 0.5) / sub as f64;
                    if x > x0 + tan_a * y {
                        n += 1;
                    }
                }
            }
            ideal[r * cols + c] = 1000.0 + 100_000.0 * n as f64 / (sub * sub) as f64;
        }
    }
    let freqs: Vec<f64> = (1..=10).map(|k| k as f64 * 0.5 / pitch / 10.0).collect();
    for mtf in [ConversionMtf::Gaussian { sigma_mm: 0.03 }, ConversionMtf::Exponential { length_mm: 0.02 }] {
        let img = ProjectedImage {
            cols,
            rows,
            pitch_u_mm: pitch,
            pitch_v_mm: pitch,
            energy_kev: ideal.clone(),
            energy_sq_kev2: ideal.iter().map(|e| e * 18.0).collect(),
            tissue_path_mm: vec![0.0; cols * rows],
            stats: Default::default(),
        };
        let model = DetectorModel {
            conversion_mtf: mtf,
            quantum_noise: false,
            electronic_noise_adu: 0.0,
            gain_adu_per_kev: 0.1,
            saturation_adu: 1e9,
            ..DetectorModel::default()
        };
        let frame = model.read_out(&img, 1).unwrap();
        let data: Vec<f64> = frame.data.iter().map(|v| f64::from(*v)).collect();
        let measured = edge_mtf(&data, cols, rows, x0, tan_a, pitch, &freqs);
        let mut worst = 0.0f64;
        for (f, m) in freqs.iter().zip(&measured) {
            let aperture = (PI * f * pitch).sin() / (PI * f * pitch);
            let configured = mtf.value(*f) * aperture;
            worst = worst.max((m / configured - 1.0).abs());
        }
        println!("edge MTF {mtf:?}: worst relative error up to Nyquist {:.2} %", 100.0 * worst);
        assert!(worst < 0.05, "{mtf:?}: {worst}");
    }
}

#[test]
fn defects_binning_and_gain_behave() {
    let img = flat_field(64, 48, 0.5);
    let model = DetectorModel {
        defective_fraction: 0.02,
        quantum_noise: false,
        electronic_noise_adu: 0.0,
        saturation_adu: 1e9,
        ..DetectorModel::default()
    };
    let frame = model.expected(&img).unwrap();
    let defects = model.defective_pixels(64, 48);
    let share = defects.len() as f64 / (64.0 * 48.0);
    assert!((0.01..0.03).contains(&share), "{share}");
    for &i in &defects {
        let v = f64::from(frame.data[i]);
        assert!(v == model.offset_adu || v == model.saturation_adu, "{v}");
    }
    // 2x2 binning halves the size and sums the charge.
    let binned = DetectorModel { binning: 2, ..model };
    let b = binned.expected(&img).unwrap();
    assert_eq!((b.cols, b.rows), (32, 24));
    let plain = DetectorModel { defective_fraction: 0.0, ..model }.expected(&img).unwrap();
    let bin_clean = DetectorModel { defective_fraction: 0.0, ..binned }.expected(&img).unwrap();
    let ratio = (bin_clean.mean() - model.offset_adu) / (plain.mean() - model.offset_adu);
    assert!((ratio - 4.0).abs() < 0.01, "{ratio}");
    assert!(DetectorModel { binning: 3, ..model }.validate().is_err());
}

#[test]
fn focal_spot_and_motion_blur_widen_a_wire_image() {
    // A 0.2 mm tungsten-like (hydroxyapatite) wire along y, 200 mm above the detector.
    let (nx, ny, nz, v) = (40, 4, 4, 0.05);
    let mut labels = vec![0u8; nx * ny * nz];
    for k in 0..nz {
        for j in 0..ny {
            for i in 18..22 {
                labels[(k * ny + j) * nx + i] = 1;
            }
        }
    }
    let vol = VolumeView { grid: tomolab_hal::VoxelGrid::cubic([nx, ny, nz], v, [-1.0, -0.1, 200.0]), labels: &labels };
    let map = MaterialMap::from_names([(1, "hydroxyapatite")]).unwrap();
    let spectrum = Spectrum::new(Target::W, 28.0, &[FilterLayer::named("Rh", 0.05).unwrap()], 1000.0).unwrap();
    let det = detector(80, 1, 0.05);
    let width = |cfg: RayTracerConfig, poses: &[ViewPose]| {
        let p = RayTracer::new(vol, map.clone(), &spectrum, &det, cfg).unwrap();
        let img = p.project(poses, 1.0).unwrap();
        let max = img.energy_kev.iter().cloned().fold(0.0, f64::max);
        // Width of the shadow: pixels darker than 99 % of the open field.
        img.energy_kev.iter().filter(|e| **e < 0.99 * max).count()
    };
    let sharp = width(RayTracerConfig::default(), &[pose(0.05)]);
    let spot = width(
        RayTracerConfig { focal_spot_mm: 0.6, focal_spot_samples: 6, ..RayTracerConfig::default() },
        &[pose(0.05)],
    );
    let moving: Vec<ViewPose> =
        (0..5).map(|i| ViewPose { source_mm: Vec3::new(-2.0 + i as f64, 0.0, 650.0), ..pose(0.05) }).collect();
    let motion = width(RayTracerConfig::default(), &moving);
    println!("wire shadow width (pixels): sharp {sharp}, 0.6 mm focal spot {spot}, 4 mm source travel {motion}");
    assert!(spot > sharp && motion > sharp, "{sharp} {spot} {motion}");
}
