//! The one fixed transform from tomolab's detector frame to DICOM patient coordinates.
//!
//! tomolab (design notes, "Coordinates and geometry"): right-handed millimetres, origin at the middle of the
//! chest-wall edge of the detector's active area on its surface; x along the chest wall (tube travel), y from
//! the chest wall toward the nipple, z up toward the source.
//!
//! DICOM patient coordinates (PS3.3 C.7.6.2.1.1) are LPS: +x toward the patient's left, +y posterior, +z
//! superior (head). tomolab simulates cranio-caudal (CC) views: the patient stands facing the unit, the breast
//! lies on the detector, the tube is above it. Then "up toward the source" is superior, "toward the nipple" is
//! anterior (-y in LPS), and right-handedness leaves "along the chest wall" pointing to the patient's right
//! (-x in LPS). So for a CC view of either breast
//!
//! ```text
//! (x, y, z)_patient = (-x, -y, z)_tomolab          (a 180 degree rotation about z; origin shared)
//! ```
//!
//! The Frame of Reference's origin is tomolab's origin; nothing else about it has a meaning to a reader
//! (PS3.3 C.7.4.1.1.1: the origin is arbitrary within a Frame of Reference). The mapping does not depend on
//! laterality for CC: the same physical layout (chest wall at the detector edge, nipple away from it) holds
//! for the left and the right breast; laterality is recorded as Image/Frame Laterality. MLO or other views
//! would rotate about y as well and are refused until tomolab models them.

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

/// Which breast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Laterality {
    /// The left breast (the default).
    #[default]
    Left,
    /// The right breast.
    Right,
}

impl Laterality {
    /// The DICOM code string: `L` or `R`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Left => "L",
            Self::Right => "R",
        }
    }
}

impl std::str::FromStr for Laterality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "L" | "LEFT" => Ok(Self::Left),
            "R" | "RIGHT" => Ok(Self::Right),
            _ => Err(format!("laterality must be L or R, got {s:?}")),
        }
    }
}

/// The transform of one exam's view (CC of `laterality`) from tomolab coordinates to patient (LPS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatientFrame {
    /// Which breast.
    pub laterality: Laterality,
    rotation: Matrix3<f64>,
}

impl PatientFrame {
    /// The cranio-caudal view of `laterality` (see the module doc).
    pub fn cranio_caudal(laterality: Laterality) -> Self {
        Self { laterality, rotation: Matrix3::from_diagonal(&Vector3::new(-1.0, -1.0, 1.0)) }
    }

    /// A point (mm) in patient coordinates.
    pub fn point(&self, tomolab_mm: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * tomolab_mm
    }

    /// A direction in patient coordinates.
    pub fn direction(&self, tomolab: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * tomolab
    }

    /// The inverse: a patient-coordinate point in tomolab coordinates.
    pub fn to_tomolab(&self, patient_mm: &Vector3<f64>) -> Vector3<f64> {
        self.rotation.transpose() * patient_mm
    }

    /// Patient Orientation (0020,0020) of an image whose rows run along tomolab's +x and columns along +y:
    /// the patient direction of increasing column index, then of increasing row index (PS3.3 C.7.6.1.1.1).
    pub fn patient_orientation(&self) -> [&'static str; 2] {
        // +x_tomolab = patient right (R); +y_tomolab = anterior (A).
        ["R", "A"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cc_frame_is_a_proper_rotation_with_the_documented_axes() {
        let f = PatientFrame::cranio_caudal(Laterality::Left);
        assert!((f.rotation.determinant() - 1.0).abs() < 1e-12, "a rotation, not a reflection");
        // Toward the source is superior, toward the nipple anterior, along the chest wall to the right.
        assert_eq!(f.direction(&Vector3::z()), Vector3::new(0.0, 0.0, 1.0));
        assert_eq!(f.direction(&Vector3::y()), Vector3::new(0.0, -1.0, 0.0));
        assert_eq!(f.direction(&Vector3::x()), Vector3::new(-1.0, 0.0, 0.0));
        let p = Vector3::new(3.0, 40.0, 20.0);
        assert_eq!(f.to_tomolab(&f.point(&p)), p);
    }
}
