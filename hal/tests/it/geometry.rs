//! Pose geometry against analytic expectations.

use proptest::prelude::*;
use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion, PresetName, ScanPreset, Vec3};

/// Distance from a point to the rotation axis (the line x = 0, z = h, parallel to y).
fn distance_to_axis(p: &Vec3, h: f64) -> f64 {
    (p.x * p.x + (p.z - h) * (p.z - h)).sqrt()
}

#[test]
fn every_focal_spot_is_at_the_source_to_axis_distance() {
    for preset in ScanPreset::all() {
        let g = &preset.geometry;
        let r = g.source_to_detector_mm - g.rotation_axis_height_mm;
        for angle in preset.sampling.angles_deg() {
            let pose = g.pose_at(angle);
            let d = distance_to_axis(&pose.source_mm, g.rotation_axis_height_mm);
            assert!((d - r).abs() < 1e-9, "{}: angle {angle}: distance {d} vs R {r}", preset.name);
        }
    }
}

#[test]
fn central_ray_at_zero_hits_the_axis_foot() {
    for preset in ScanPreset::all() {
        let g = &preset.geometry;
        let pose = g.pose_at(0.0);
        // The ray from the focal spot through the rotation axis (0, 0, h) meets the detector plane z = 0 ...
        let axis_point = Vec3::new(0.0, 0.0, g.rotation_axis_height_mm);
        let (col, row) = pose.project(&g.detector, &axis_point).expect("projects");
        let hit = pose.pixel_position(&g.detector, col, row);
        // ... at the foot of the axis, and it is perpendicular to the detector.
        assert!(hit.norm() < 1e-9, "{}: hit {hit:?}", preset.name);
        let dir = (axis_point - pose.source_mm).normalize();
        assert!((dir.dot(&pose.detector_normal()).abs() - 1.0).abs() < 1e-12, "{}", preset.name);
        assert!((pose.source_mm.z - g.source_to_detector_mm).abs() < 1e-9, "{}: SID at 0 deg", preset.name);
    }
}

#[test]
fn wide_angle_plan_matches_the_reference_system() {
    let p = ScanPreset::builtin(PresetName::WideAngle);
    let angles = p.sampling.angles_deg();
    assert_eq!(angles.len(), 25);
    assert!((angles[0] + 25.0).abs() < 1e-12 && (angles[24] - 25.0).abs() < 1e-12);
    assert!((angles[1] - angles[0] - 50.0 / 24.0).abs() < 1e-12);
    assert_eq!(p.geometry.source_to_detector_mm, 650.0);
    assert_eq!(p.geometry.rotation_axis_height_mm, 50.0);
}

fn arb_geometry() -> impl Strategy<Value = ArcGeometry> {
    (300.0..1000.0f64, 0.0..0.5f64, 4usize..64, 4usize..64, 0.05..1.0f64, any::<bool>()).prop_map(
        |(sid, h_frac, cols, rows, pitch, rotating)| ArcGeometry {
            source_to_detector_mm: sid,
            rotation_axis_height_mm: sid * h_frac,
            detector: DetectorGeometry {
                cols,
                rows,
                pitch_u_mm: pitch,
                pitch_v_mm: pitch,
                material: DetectorMaterial::ASe,
                layer_thickness_mm: 0.2,
            },
            detector_motion: if rotating { DetectorMotion::RotatesWithTube } else { DetectorMotion::Stationary },
        },
    )
}

proptest! {
    /// Poses keep the source on its circle, the pixel grid rigid, and project() inverts pixel_position().
    #[test]
    fn poses_are_rigid_and_invertible(g in arb_geometry(), angle in -180.0..180.0f64, c in 0.0..1.0f64, r in 0.0..1.0f64) {
        let pose = g.pose_at(angle);
        let radius = distance_to_axis(&pose.source_mm, g.rotation_axis_height_mm);
        prop_assert!((radius - g.source_to_axis_mm()).abs() < 1e-9);
        prop_assert!((pose.u_step_mm.norm() - g.detector.pitch_u_mm).abs() < 1e-12);
        prop_assert!(pose.u_step_mm.dot(&pose.v_step_mm).abs() < 1e-12);
        let col = c * (g.detector.cols - 1) as f64;
        let row = r * (g.detector.rows - 1) as f64;
        let p = pose.pixel_position(&g.detector, col, row);
        let (pc, pr) = pose.project(&g.detector, &p).expect("pixel projects onto itself");
        prop_assert!((pc - col).abs() < 1e-7 && (pr - row).abs() < 1e-7);
        if g.detector_motion == DetectorMotion::RotatesWithTube {
            // The detector stays opposite the source: its centre is at distance h from the axis.
            let d = distance_to_axis(&pose.detector_centre_mm, g.rotation_axis_height_mm);
            prop_assert!((d - g.rotation_axis_height_mm).abs() < 1e-9);
        }
    }
}
