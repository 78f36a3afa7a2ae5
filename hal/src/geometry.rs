//! Scanner geometry: the detector grid, per-view poses, and the arc gantry that generates them.
//!
//! Coordinates are right-handed millimetres with the origin at the middle of the detector's chest-wall edge, on
//! the detector surface: x along the chest wall (the direction of tube travel), y from the chest wall toward the
//! nipple, z up toward the source. The tube rotates about an axis parallel to y at `rotation_axis_height_mm`;
//! angle 0 puts the focal spot straight above the axis, positive angles move it toward +x.
//!
//! A [`ViewPose`] is four vectors (source, detector centre, u step, v step), as in astra's `cone_vec`.
//! Reconstruction consumes only poses, so measured or non-circular geometries work the same way.

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

/// Three-vector of millimetres.
pub type Vec3 = Vector3<f64>;

/// Detector conversion layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorMaterial {
    /// Amorphous selenium, direct conversion.
    ASe,
    /// Caesium iodide scintillator on amorphous silicon, indirect conversion.
    CsI,
}

impl core::fmt::Display for DetectorMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ASe => "a-Se",
            Self::CsI => "CsI/a-Si",
        })
    }
}

/// The detector's pixel grid and conversion layer.
///
/// Frames are stored row-major: `rows` rows of `cols` pixels; column index runs along u (x), row index along v
/// (y, away from the chest wall).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorGeometry {
    /// Pixels along u (the tube-travel direction).
    pub cols: usize,
    /// Pixels along v (chest wall to nipple).
    pub rows: usize,
    /// Pixel pitch along u, mm.
    pub pitch_u_mm: f64,
    /// Pixel pitch along v, mm.
    pub pitch_v_mm: f64,
    /// Conversion layer material.
    pub material: DetectorMaterial,
    /// Conversion layer thickness, mm.
    pub layer_thickness_mm: f64,
}

/// A geometry value was inconsistent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid geometry: {field}: {problem}")]
pub struct GeometryError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn geometry_error(field: &'static str, problem: impl Into<String>) -> GeometryError {
    GeometryError { field, problem: problem.into() }
}

impl DetectorGeometry {
    /// Number of pixels in one frame.
    pub fn pixel_count(&self) -> usize {
        self.cols * self.rows
    }

    /// Active width along u, mm.
    pub fn width_mm(&self) -> f64 {
        self.cols as f64 * self.pitch_u_mm
    }

    /// Active height along v, mm.
    pub fn height_mm(&self) -> f64 {
        self.rows as f64 * self.pitch_v_mm
    }

    /// Checks that every field is usable.
    pub fn validate(&self) -> Result<(), GeometryError> {
        if self.cols == 0 || self.rows == 0 {
            return Err(geometry_error("detector.cols/rows", "must both be at least 1"));
        }
        for (field, value) in [
            ("detector.pitch_u_mm", self.pitch_u_mm),
            ("detector.pitch_v_mm", self.pitch_v_mm),
            ("detector.layer_thickness_mm", self.layer_thickness_mm),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(geometry_error(field, format!("must be positive and finite, got {value}")));
            }
        }
        Ok(())
    }

    /// The same detector read out with `factor` x `factor` binning (partial edge pixels are dropped).
    pub fn binned(&self, factor: usize) -> Result<Self, GeometryError> {
        if factor == 0 || factor > self.cols.min(self.rows) {
            return Err(geometry_error("binning", format!("factor {factor} does not fit the detector")));
        }
        Ok(Self {
            cols: self.cols / factor,
            rows: self.rows / factor,
            pitch_u_mm: self.pitch_u_mm * factor as f64,
            pitch_v_mm: self.pitch_v_mm * factor as f64,
            ..*self
        })
    }
}

/// Where the detector is and where the rays come from, for one view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewPose {
    /// Focal-spot position, mm.
    pub source_mm: Vec3,
    /// Centre of the detector's active area, mm.
    pub detector_centre_mm: Vec3,
    /// Vector from one pixel to the next along a row (increasing column), mm.
    pub u_step_mm: Vec3,
    /// Vector from one pixel to the next along a column (increasing row), mm.
    pub v_step_mm: Vec3,
}

impl ViewPose {
    /// Position of the centre of pixel (`col`, `row`); fractional indices interpolate.
    pub fn pixel_position(&self, detector: &DetectorGeometry, col: f64, row: f64) -> Vec3 {
        let du = col - (detector.cols as f64 - 1.0) / 2.0;
        let dv = row - (detector.rows as f64 - 1.0) / 2.0;
        self.detector_centre_mm + self.u_step_mm * du + self.v_step_mm * dv
    }

    /// Unit normal of the detector plane pointing toward the source side.
    pub fn detector_normal(&self) -> Vec3 {
        let n = self.u_step_mm.cross(&self.v_step_mm).normalize();
        if n.dot(&(self.source_mm - self.detector_centre_mm)) >= 0.0 { n } else { -n }
    }

    /// Projects a point through the focal spot onto the detector: fractional (col, row) pixel indices.
    ///
    /// Returns `None` when the ray from the source through the point never reaches the detector plane.
    pub fn project(&self, detector: &DetectorGeometry, point_mm: &Vec3) -> Option<(f64, f64)> {
        let dir = point_mm - self.source_mm;
        let n = self.u_step_mm.cross(&self.v_step_mm);
        let denom = dir.dot(&n);
        if denom.abs() < 1e-12 {
            return None;
        }
        let t = (self.detector_centre_mm - self.source_mm).dot(&n) / denom;
        if t <= 0.0 {
            return None;
        }
        let rel = self.source_mm + dir * t - self.detector_centre_mm;
        // Solve rel = a u + b v in the plane (u and v need not be orthogonal).
        let (uu, uv, vv) = (
            self.u_step_mm.dot(&self.u_step_mm),
            self.u_step_mm.dot(&self.v_step_mm),
            self.v_step_mm.dot(&self.v_step_mm),
        );
        let (ru, rv) = (rel.dot(&self.u_step_mm), rel.dot(&self.v_step_mm));
        let det = uu * vv - uv * uv;
        let a = (ru * vv - rv * uv) / det;
        let b = (rv * uu - ru * uv) / det;
        Some((a + (detector.cols as f64 - 1.0) / 2.0, b + (detector.rows as f64 - 1.0) / 2.0))
    }
}

/// How the detector moves during a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorMotion {
    /// The detector stays flat under the breast (DBT, mammography).
    Stationary,
    /// The detector rotates with the tube, opposite it about the axis (breast CT).
    RotatesWithTube,
}

/// The fixed geometry of an arc gantry: everything needed to compute a pose from an angle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArcGeometry {
    /// Focal spot to detector surface at 0 deg, mm.
    pub source_to_detector_mm: f64,
    /// Height of the rotation axis above the detector surface, mm.
    pub rotation_axis_height_mm: f64,
    /// The detector.
    pub detector: DetectorGeometry,
    /// Whether the detector moves with the tube.
    pub detector_motion: DetectorMotion,
}

impl ArcGeometry {
    /// Distance from the focal spot to the rotation axis, mm.
    pub fn source_to_axis_mm(&self) -> f64 {
        self.source_to_detector_mm - self.rotation_axis_height_mm
    }

    /// Checks that every field is usable.
    pub fn validate(&self) -> Result<(), GeometryError> {
        self.detector.validate()?;
        if !(self.source_to_detector_mm.is_finite() && self.source_to_detector_mm > 0.0) {
            return Err(geometry_error("source_to_detector_mm", "must be positive and finite"));
        }
        let h = self.rotation_axis_height_mm;
        if !(h.is_finite() && (0.0..self.source_to_detector_mm).contains(&h)) {
            return Err(geometry_error(
                "rotation_axis_height_mm",
                format!("must lie in 0..source_to_detector_mm, got {h}"),
            ));
        }
        Ok(())
    }

    /// The pose of the view taken with the tube at `angle_deg` (0 = straight above the axis).
    pub fn pose_at(&self, angle_deg: f64) -> ViewPose {
        let (s, c) = angle_deg.to_radians().sin_cos();
        let h = self.rotation_axis_height_mm;
        let r = self.source_to_axis_mm();
        let source = Vec3::new(r * s, 0.0, h + r * c);
        let det = &self.detector;
        let half_height = det.height_mm() / 2.0;
        match self.detector_motion {
            DetectorMotion::Stationary => ViewPose {
                source_mm: source,
                detector_centre_mm: Vec3::new(0.0, half_height, 0.0),
                u_step_mm: Vec3::new(det.pitch_u_mm, 0.0, 0.0),
                v_step_mm: Vec3::new(0.0, det.pitch_v_mm, 0.0),
            },
            DetectorMotion::RotatesWithTube => ViewPose {
                source_mm: source,
                detector_centre_mm: Vec3::new(-h * s, half_height, h - h * c),
                u_step_mm: Vec3::new(det.pitch_u_mm * c, 0.0, -det.pitch_u_mm * s),
                v_step_mm: Vec3::new(0.0, det.pitch_v_mm, 0.0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> DetectorGeometry {
        DetectorGeometry {
            cols: 40,
            rows: 30,
            pitch_u_mm: 0.5,
            pitch_v_mm: 0.5,
            material: DetectorMaterial::ASe,
            layer_thickness_mm: 0.2,
        }
    }

    #[test]
    fn project_inverts_pixel_position() {
        for motion in [DetectorMotion::Stationary, DetectorMotion::RotatesWithTube] {
            let arc = ArcGeometry {
                source_to_detector_mm: 650.0,
                rotation_axis_height_mm: 50.0,
                detector: detector(),
                detector_motion: motion,
            };
            let pose = arc.pose_at(17.0);
            let p = pose.pixel_position(&arc.detector, 3.25, 21.5);
            let (c, r) = pose.project(&arc.detector, &p).unwrap();
            assert!((c - 3.25).abs() < 1e-9 && (r - 21.5).abs() < 1e-9, "{c} {r}");
        }
    }

    #[test]
    fn binning_keeps_the_footprint() {
        let b = detector().binned(2).unwrap();
        assert_eq!((b.cols, b.rows), (20, 15));
        assert!((b.width_mm() - detector().width_mm()).abs() < 1e-12);
        assert!(detector().binned(0).is_err());
    }
}
