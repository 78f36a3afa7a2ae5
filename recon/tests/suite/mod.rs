//! Test modules and the analytic objects they share (no simulator: every projection is computed here).

mod adjoint;
mod dbt;
mod errors;
mod fdk;
mod fuzz_nrrd;
mod outputs;
mod pipeline;
mod reconstruct;

use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion, Vec3, ViewPose};
use tomolab_recon::Projections;

/// A small detector.
pub fn detector(cols: usize, rows: usize, pitch_mm: f64) -> DetectorGeometry {
    DetectorGeometry {
        cols,
        rows,
        pitch_u_mm: pitch_mm,
        pitch_v_mm: pitch_mm,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    }
}

/// Poses of `views` views evenly spread over `start..=end` degrees.
pub fn arc_poses(
    sid_mm: f64,
    axis_mm: f64,
    det: DetectorGeometry,
    motion: DetectorMotion,
    start: f64,
    end: f64,
    views: usize,
) -> Vec<ViewPose> {
    let arc = ArcGeometry {
        source_to_detector_mm: sid_mm,
        rotation_axis_height_mm: axis_mm,
        detector: det,
        detector_motion: motion,
    };
    (0..views)
        .map(|k| {
            let a = if views == 1 { start } else { start + (end - start) * k as f64 / (views as f64 - 1.0) };
            arc.pose_at(a)
        })
        .collect()
}

/// Line integrals of an analytic object: `chord(source, unit direction)` per ray, `sub` x `sub` rays per pixel.
pub fn project_analytic(
    det: DetectorGeometry,
    poses: &[ViewPose],
    sub: usize,
    chord: impl Fn(&Vec3, &Vec3) -> f64,
) -> Projections {
    let mut data = Vec::with_capacity(poses.len() * det.pixel_count());
    for pose in poses {
        for r in 0..det.rows {
            for c in 0..det.cols {
                let mut s = 0.0;
                for i in 0..sub {
                    for j in 0..sub {
                        let dc = (i as f64 + 0.5) / sub as f64 - 0.5;
                        let dr = (j as f64 + 0.5) / sub as f64 - 0.5;
                        let p = pose.pixel_position(&det, c as f64 + dc, r as f64 + dr);
                        let dir = (p - pose.source_mm).normalize();
                        s += chord(&pose.source_mm, &dir);
                    }
                }
                data.push((s / (sub * sub) as f64) as f32);
            }
        }
    }
    Projections { detector: det, poses: poses.to_vec(), data }
}

/// mu x chord length of a sphere.
pub fn sphere(centre: Vec3, radius: f64, mu: f64) -> impl Fn(&Vec3, &Vec3) -> f64 {
    move |s, d| {
        let oc = centre - s;
        let t = oc.dot(d);
        let dist2 = oc.norm_squared() - t * t;
        if dist2 < radius * radius { mu * 2.0 * (radius * radius - dist2).sqrt() } else { 0.0 }
    }
}

/// mu x chord length of an axis-aligned box.
pub fn cuboid(lo: Vec3, hi: Vec3, mu: f64) -> impl Fn(&Vec3, &Vec3) -> f64 {
    move |s, d| {
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
        if t1 > t0 { mu * (t1 - t0) } else { 0.0 }
    }
}
