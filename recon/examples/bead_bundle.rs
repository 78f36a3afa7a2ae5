//! Writes a small acquisition bundle of analytic objects (no simulator): a 40 mm slab of mu 0.05/mm with a
//! 1 mm bead (mu 0.5/mm) at (2, 15, 20.3) mm, 25 views over 50 deg, 160 x 100 pixels at 0.4 mm, raw counts
//! with dark and flood frames. For trying `tomolab recon` and `tomolab metrics` end to end:
//!
//! ```text
//! cargo run --release -p tomolab-recon --example bead_bundle -- /tmp/bead
//! tomolab recon /tmp/bead --out /tmp/bead-recon
//! tomolab metrics /tmp/bead-recon/volume.nrrd --bead 2,15,0.5
//! ```

use std::time::Duration;

use tomolab_hal::acquisition::DoseSummary;
use tomolab_hal::{
    Acquisition, AcquisitionMeta, ArcGeometry, Compression, DetectorGeometry, DetectorMaterial, DetectorMotion,
    ExamStatus, ExposureEnd, ExposureRecord, Frame, Kilovolts, MilliGray, MilliampereSeconds, Millimetres, Newtons,
    Vec3, ViewRecord,
};

fn chord_sphere(c: Vec3, r: f64, s: &Vec3, d: &Vec3) -> f64 {
    let oc = c - s;
    let t = oc.dot(d);
    let d2 = oc.norm_squared() - t * t;
    if d2 < r * r { 2.0 * (r * r - d2).sqrt() } else { 0.0 }
}

fn chord_box(lo: Vec3, hi: Vec3, s: &Vec3, d: &Vec3) -> f64 {
    let (mut t0, mut t1) = (f64::MIN, f64::MAX);
    for a in 0..3 {
        if d[a].abs() < 1e-12 {
            if s[a] < lo[a] || s[a] > hi[a] {
                return 0.0;
            }
        } else {
            let (ta, tb) = ((lo[a] - s[a]) / d[a], (hi[a] - s[a]) / d[a]);
            t0 = t0.max(ta.min(tb));
            t1 = t1.min(ta.max(tb));
        }
    }
    (t1 - t0).max(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: bead_bundle DIR")?;
    let det = DetectorGeometry {
        cols: 160,
        rows: 100,
        pitch_u_mm: 0.4,
        pitch_v_mm: 0.4,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    };
    let arc = ArcGeometry {
        source_to_detector_mm: 650.0,
        rotation_axis_height_mm: 50.0,
        detector: det,
        detector_motion: DetectorMotion::Stationary,
    };
    let (mas, dark_level, flood_level) = (2.0, 50.0f32, 1000.0f32);
    let bead = Vec3::new(2.0, 15.0, 20.3);
    let mut views = Vec::new();
    let mut frames = Vec::new();
    for k in 0..25 {
        let angle = -25.0 + 50.0 * k as f64 / 24.0;
        let pose = arc.pose_at(angle);
        let mut data = Vec::with_capacity(det.pixel_count());
        for r in 0..det.rows {
            for c in 0..det.cols {
                let p = pose.pixel_position(&det, c as f64, r as f64);
                let d = (p - pose.source_mm).normalize();
                let line = 0.05
                    * chord_box(Vec3::new(-25.0, 0.0, 0.0), Vec3::new(25.0, 35.0, 40.0), &pose.source_mm, &d)
                    + 0.45 * chord_sphere(bead, 0.5, &pose.source_mm, &d);
                data.push(dark_level + flood_level * mas as f32 * (-line as f32).exp());
            }
        }
        frames.push(Frame { cols: det.cols, rows: det.rows, data });
        views.push(ViewRecord {
            nominal_angle_deg: angle,
            angle_start_deg: angle,
            angle_end_deg: angle,
            pose,
            exposure: ExposureRecord {
                kvp: Kilovolts::new(28.0)?,
                mas: MilliampereSeconds::new(mas)?,
                duration: Duration::from_millis(50),
                end: ExposureEnd::Planned,
            },
            time_since_start: Duration::from_millis(200 * k as u64),
            estimated_mgd: MilliGray::new(0.05)?,
        });
    }
    let meta = AcquisitionMeta {
        preset: tomolab_hal::PresetName::WideAngle,
        status: ExamStatus::Complete,
        detector: det,
        geometry: arc,
        technique: None,
        compression: Some(Compression { force: Newtons::new(100.0)?, thickness: Millimetres::new(40.0)? }),
        support_height_mm: None,
        started_unix_ms: 0,
        views,
        exposures: Vec::new(),
        dose: DoseSummary { budget_mgd: 3.0, delivered_mgd: 1.25 },
        safe_state_errors: Vec::new(),
    };
    let acq = Acquisition {
        meta,
        frames,
        dark: Some(Frame::filled(det.cols, det.rows, dark_level)),
        flood: Some(Frame::filled(det.cols, det.rows, flood_level)),
    };
    tomolab_hal::bundle::save(&acq, std::path::Path::new(&dir))?;
    println!("wrote {dir}");
    Ok(())
}
