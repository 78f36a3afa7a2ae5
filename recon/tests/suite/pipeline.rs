//! From an in-memory acquisition (raw counts, dark, flood, defects) to slices, and the helpers tests share.

use std::time::Duration;

use tomolab_hal::acquisition::DoseSummary;
use tomolab_hal::{
    Acquisition, AcquisitionMeta, ArcGeometry, Compression, DetectorMotion, ExamStatus, ExposureEnd, ExposureRecord,
    Frame, Kilovolts, MilliGray, MilliampereSeconds, Millimetres, Newtons, Vec3, ViewPose, ViewRecord,
};
use tomolab_recon::{DefectRepair, PreprocessOptions, VolumeOptions, line_integrals, tomosynthesis_volume};

use super::{arc_poses, detector, project_analytic, sphere};

/// An acquisition of a bead, stored as raw counts: raw = dark + flood * mAs * exp(-p).
pub fn bead_acquisition() -> (Acquisition, Vec<f32>) {
    let det = detector(64, 48, 0.5);
    let arc = ArcGeometry {
        source_to_detector_mm: 650.0,
        rotation_axis_height_mm: 50.0,
        detector: det,
        detector_motion: DetectorMotion::Stationary,
    };
    let poses = arc_poses(650.0, 50.0, det, DetectorMotion::Stationary, -25.0, 25.0, 5);
    let truth = project_analytic(det, &poses, 2, sphere(Vec3::new(0.0, 12.0, 20.0), 3.0, 0.05));
    let mas = 1.5;
    let dark = Frame::filled(det.cols, det.rows, 100.0);
    let mut flood = Frame::filled(det.cols, det.rows, 2000.0);
    flood.data[10 * det.cols + 20] = 0.0; // dead pixel
    flood.data[30 * det.cols + 40] = 9000.0; // hot pixel
    let views = poses
        .iter()
        .enumerate()
        .map(|(k, &pose)| ViewRecord {
            nominal_angle_deg: -25.0 + 12.5 * k as f64,
            angle_start_deg: -25.0 + 12.5 * k as f64,
            angle_end_deg: -25.0 + 12.5 * k as f64,
            pose,
            exposure: ExposureRecord {
                kvp: Kilovolts::new(28.0).unwrap(),
                mas: MilliampereSeconds::new(mas).unwrap(),
                duration: Duration::from_millis(50),
                end: ExposureEnd::Planned,
            },
            time_since_start: Duration::from_millis(200 * k as u64),
            estimated_mgd: MilliGray::new(0.05).unwrap(),
        })
        .collect();
    // The flood is taken at 0 deg; a view's open field differs from it by the point source's fluence on
    // each pixel, cos(incidence) / r^2 (the detector is stationary).
    let fluence = |pose: &ViewPose, i: usize| {
        let p = pose.pixel_position(&det, (i % det.cols) as f64, (i / det.cols) as f64);
        let r = (p - pose.source_mm).norm();
        (pose.source_mm.z - p.z) / (r * r * r)
    };
    let flood_pose = arc.pose_at(0.0);
    let frames = truth
        .data
        .chunks(det.pixel_count())
        .zip(&poses)
        .map(|(p, pose)| Frame {
            cols: det.cols,
            rows: det.rows,
            data: p
                .iter()
                .zip(&flood.data)
                .enumerate()
                .map(|(i, (&l, &f))| {
                    let open = f64::from(f) * mas * fluence(pose, i) / fluence(&flood_pose, i);
                    100.0 + (open * f64::from(-l).exp()) as f32
                })
                .collect(),
        })
        .collect();
    let meta = AcquisitionMeta {
        preset: tomolab_hal::PresetName::WideAngle,
        status: ExamStatus::Complete,
        detector: det,
        geometry: arc,
        technique: None,
        compression: Some(Compression {
            force: Newtons::new(100.0).unwrap(),
            thickness: Millimetres::new(40.0).unwrap(),
        }),
        support_height_mm: None,
        started_unix_ms: 0,
        views,
        exposures: Vec::new(),
        dose: DoseSummary { budget_mgd: 3.0, delivered_mgd: 0.25 },
        safe_state_errors: Vec::new(),
    };
    (Acquisition { meta, frames, dark: Some(dark), flood: Some(flood) }, truth.data)
}

#[test]
fn preprocessing_recovers_line_integrals_and_repairs_defects() {
    let (acq, truth) = bead_acquisition();
    let p = line_integrals(&acq, &PreprocessOptions::default()).unwrap();
    let npix = acq.meta.detector.pixel_count();
    let defects = [10 * 64 + 20, 30 * 64 + 40];
    let mut worst = 0.0f32;
    let mut worst_repaired = 0.0f32;
    for (i, (a, b)) in p.data.iter().zip(&truth).enumerate() {
        if defects.contains(&(i % npix)) {
            worst_repaired = worst_repaired.max((a - b).abs());
        } else {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 1e-3, "worst line-integral error {worst}");
    assert!(worst_repaired < 0.05, "worst repaired-pixel error {worst_repaired}");
    // Without repair the dead pixel hits the transmission floor.
    let raw = line_integrals(&acq, &PreprocessOptions { defects: DefectRepair::None, ..PreprocessOptions::default() })
        .unwrap();
    assert!(raw.data.iter().any(|&v| v > 10.0));
    let vol = tomosynthesis_volume(&acq.meta, &p, &VolumeOptions::default()).unwrap();
    assert_eq!(vol.nz, 40);
    assert!((vol.slice_z_mm(0) - 0.5).abs() < 1e-9);
    // Default in-plane voxel: pitch scaled to the mid-breast plane (20 mm above the detector, 650 mm SID).
    assert!((vol.voxel_mm[0] - 0.5 * 630.0 / 650.0).abs() < 1e-9, "{:?}", vol.voxel_mm);
}

#[test]
fn auto_crop_keeps_the_object_and_moves_the_poses() {
    let (acq, _) = bead_acquisition();
    let options = PreprocessOptions {
        crop: tomolab_recon::Crop::Auto { threshold: 0.01, margin: 2 },
        ..PreprocessOptions::default()
    };
    let p = line_integrals(&acq, &options).unwrap();
    assert!(p.detector.cols < acq.meta.detector.cols && p.detector.rows < acq.meta.detector.rows);
    // The bead centre projects to the same world point through the cropped pose.
    let full = &acq.meta.views[2].pose;
    let bead = Vec3::new(0.0, 12.0, 20.0);
    let (c, r) = full.project(&acq.meta.detector, &bead).unwrap();
    let (c2, r2) = p.poses[2].project(&p.detector, &bead).unwrap();
    let world = full.pixel_position(&acq.meta.detector, c, r);
    let world2 = p.poses[2].pixel_position(&p.detector, c2, r2);
    assert!((world - world2).norm() < 1e-9);
}
