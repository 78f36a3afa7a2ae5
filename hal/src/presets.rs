//! The reference scanner presets: geometry, view angles, motion and default beam.
//!
//! Figures are public. Sources are cited beside each preset; where a vendor figure is not public the value is a
//! documented default and says so.

use serde::{Deserialize, Serialize};

use crate::geometry::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion};
use crate::technique::{Filter, FilterMaterial, Target};

/// How the tube moves between and during exposures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Motion {
    /// The tube moves continuously and fires while moving, sweeping `exposure_arc_deg` during each exposure.
    Continuous {
        /// Angle travelled during one exposure, degrees (source of motion blur).
        exposure_arc_deg: f64,
        /// Extra travel before the first and after the last exposure, degrees, so every view is taken at
        /// cruising speed.
        run_up_deg: f64,
    },
    /// The tube stops at each angle and fires while still.
    StepAndShoot,
    /// A single view; the tube does not move.
    Static,
}

/// The names of the built-in presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresetName {
    /// Wide-angle DBT, 50 deg, 25 views (the reference system).
    WideAngle,
    /// Narrow-angle DBT, 15 deg, 15 views.
    NarrowAngle,
    /// Step-and-shoot DBT, 25 deg, 9 views.
    StepAndShoot,
    /// 2D full-field digital mammography, one 0 deg view.
    Mammography,
    /// Dedicated breast CT, full circle.
    BreastCt,
}

impl PresetName {
    /// Every preset, in display order.
    pub const ALL: [PresetName; 5] =
        [Self::WideAngle, Self::NarrowAngle, Self::StepAndShoot, Self::Mammography, Self::BreastCt];

    /// The name as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WideAngle => "wide-angle",
            Self::NarrowAngle => "narrow-angle",
            Self::StepAndShoot => "step-and-shoot",
            Self::Mammography => "mammography",
            Self::BreastCt => "breast-ct",
        }
    }
}

impl core::fmt::Display for PresetName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown preset name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown preset `{0}`; known presets: wide-angle, narrow-angle, step-and-shoot, mammography, breast-ct")]
pub struct UnknownPreset(pub String);

impl core::str::FromStr for PresetName {
    type Err = UnknownPreset;
    /// Case-insensitive: `Wide-Angle` is `wide-angle`.
    fn from_str(s: &str) -> Result<Self, UnknownPreset> {
        Self::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownPreset(s.to_owned()))
    }
}

/// The angular sampling of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArcSampling {
    /// First view angle, degrees.
    pub start_deg: f64,
    /// Last view angle, degrees (for a full circle: start + 360, not sampled twice).
    pub end_deg: f64,
    /// Number of views.
    pub views: usize,
}

impl ArcSampling {
    /// Whether the arc is a full turn (the end angle coincides with the start).
    pub fn is_full_circle(&self) -> bool {
        ((self.end_deg - self.start_deg).abs() - 360.0).abs() < 1e-9
    }

    /// The view angles in acquisition order, degrees.
    pub fn angles_deg(&self) -> Vec<f64> {
        let n = self.views;
        let span = self.end_deg - self.start_deg;
        let step = match n {
            0 | 1 => 0.0,
            _ if self.is_full_circle() => span / n as f64,
            _ => span / (n - 1) as f64,
        };
        (0..n).map(|i| self.start_deg + step * i as f64).collect()
    }
}

/// The default beam of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BeamDefaults {
    /// Anode material.
    pub target: Target,
    /// Added filter.
    pub filter: Filter,
    /// Tube voltage, kV.
    pub kvp: f64,
}

/// Mechanical travel of the tube arm of the projection presets (DBT and 2D), either side of 0 deg. A design
/// figure, not a vendor's: wide enough for a custom 60 deg arc with its run-up, as the widest published DBT
/// arcs (50 deg) and the wide-angle research systems need.
pub const PROJECTION_GANTRY_LIMIT_DEG: f64 = 60.0;

/// A complete scanner preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPreset {
    /// Preset name.
    pub name: PresetName,
    /// One-line description.
    pub description: String,
    /// Gantry and detector geometry.
    pub geometry: ArcGeometry,
    /// View angles.
    pub sampling: ArcSampling,
    /// Tube motion.
    pub motion: Motion,
    /// Default beam quality.
    pub beam: BeamDefaults,
    /// Whether an anti-scatter grid is in the beam.
    pub anti_scatter_grid: bool,
    /// The gantry's mechanical travel either side of 0 deg, degrees: every view angle plus the exposure arc
    /// and run-up of a continuous sweep must stay within it (checked when an exam is planned).
    pub gantry_limit_deg: f64,
    /// Where the figures come from.
    pub source: String,
}

fn detector(cols: usize, rows: usize, pitch_mm: f64, material: DetectorMaterial, layer_mm: f64) -> DetectorGeometry {
    DetectorGeometry { cols, rows, pitch_u_mm: pitch_mm, pitch_v_mm: pitch_mm, material, layer_thickness_mm: layer_mm }
}

fn filter(material: FilterMaterial, thickness_mm: f64) -> Filter {
    Filter { material, thickness_mm }
}

/// Wide-angle reference geometry (a-Se 85 um, 2816 x 3584 pixels = 23.9 x 30.5 cm).
fn wide_angle_geometry() -> ArcGeometry {
    ArcGeometry {
        source_to_detector_mm: 650.0,
        rotation_axis_height_mm: 50.0,
        detector: detector(2816, 3584, 0.085, DetectorMaterial::ASe, 0.2),
        detector_motion: DetectorMotion::Stationary,
    }
}

impl ScanPreset {
    /// The built-in preset of that name.
    pub fn builtin(name: PresetName) -> Self {
        match name {
            // Siemens Mammomat Inspiration class: 50 deg, 25 views, continuous motion, W/Rh 50 um, a-Se 85 um.
            // Sources: Sechopoulos I., "A review of breast tomosynthesis. Part I", Med Phys 40:014301 (2013),
            // Table I; FDA VICTRE MC-GPU DBT input (Badano et al., JAMA Netw Open 1:e185474, 2018):
            // source-to-detector 65 cm, source-to-rotation-axis 60 cm (axis 50 mm above the detector),
            // 25 projections over -25..+25 deg. Motion blur of about 0.18 deg per view is the design figure.
            PresetName::WideAngle => Self {
                name,
                description: "wide-angle DBT: 50 deg arc, 25 views, continuous motion".into(),
                geometry: wide_angle_geometry(),
                sampling: ArcSampling { start_deg: -25.0, end_deg: 25.0, views: 25 },
                motion: Motion::Continuous { exposure_arc_deg: 0.18, run_up_deg: 1.0 },
                beam: BeamDefaults { target: Target::W, filter: filter(FilterMaterial::Rh, 0.050), kvp: 28.0 },
                anti_scatter_grid: false,
                gantry_limit_deg: PROJECTION_GANTRY_LIMIT_DEG,
                source: "Sechopoulos, Med Phys 40:014301 (2013) Table I; VICTRE MC-GPU (Badano et al. 2018)".into(),
            },
            // Hologic Selenia Dimensions class: 15 deg, 15 views, continuous, W/Al 0.7 mm, a-Se 70 um binned
            // 2x2 to 140 um in DBT, source-to-detector 70 cm, rotation axis at the detector surface.
            // Source: Sechopoulos, Med Phys 40:014301 (2013) Table I.
            PresetName::NarrowAngle => Self {
                name,
                description: "narrow-angle DBT: 15 deg arc, 15 views, continuous motion".into(),
                geometry: ArcGeometry {
                    source_to_detector_mm: 700.0,
                    rotation_axis_height_mm: 0.0,
                    detector: detector(1664, 2048, 0.140, DetectorMaterial::ASe, 0.25),
                    detector_motion: DetectorMotion::Stationary,
                },
                sampling: ArcSampling { start_deg: -7.5, end_deg: 7.5, views: 15 },
                motion: Motion::Continuous { exposure_arc_deg: 0.15, run_up_deg: 1.0 },
                beam: BeamDefaults { target: Target::W, filter: filter(FilterMaterial::Al, 0.7), kvp: 30.0 },
                anti_scatter_grid: false,
                gantry_limit_deg: PROJECTION_GANTRY_LIMIT_DEG,
                source: "Sechopoulos, Med Phys 40:014301 (2013) Table I".into(),
            },
            // GE SenoClaire class: 25 deg, 9 views, step-and-shoot, CsI/a-Si 100 um, Mo/Mo or Rh/Rh,
            // source-to-detector 66 cm, rotation axis 40 mm above the detector.
            // Source: Sechopoulos, Med Phys 40:014301 (2013) Table I.
            PresetName::StepAndShoot => Self {
                name,
                description: "step-and-shoot DBT: 25 deg arc, 9 views".into(),
                geometry: ArcGeometry {
                    source_to_detector_mm: 660.0,
                    rotation_axis_height_mm: 40.0,
                    detector: detector(2400, 3000, 0.100, DetectorMaterial::CsI, 0.5),
                    detector_motion: DetectorMotion::Stationary,
                },
                sampling: ArcSampling { start_deg: -12.5, end_deg: 12.5, views: 9 },
                motion: Motion::StepAndShoot,
                beam: BeamDefaults { target: Target::Rh, filter: filter(FilterMaterial::Rh, 0.025), kvp: 29.0 },
                anti_scatter_grid: false,
                gantry_limit_deg: PROJECTION_GANTRY_LIMIT_DEG,
                source: "Sechopoulos, Med Phys 40:014301 (2013) Table I".into(),
            },
            // 2D mammography on the reference unit: one 0 deg view with an anti-scatter grid.
            PresetName::Mammography => Self {
                name,
                description: "2D mammography: one 0 deg view with anti-scatter grid".into(),
                geometry: wide_angle_geometry(),
                sampling: ArcSampling { start_deg: 0.0, end_deg: 0.0, views: 1 },
                motion: Motion::Static,
                beam: BeamDefaults { target: Target::W, filter: filter(FilterMaterial::Rh, 0.050), kvp: 28.0 },
                anti_scatter_grid: true,
                gantry_limit_deg: PROJECTION_GANTRY_LIMIT_DEG,
                source: "as wide-angle (same unit in 2D mode)".into(),
            },
            // Dedicated cone-beam breast CT, breast pendant through the table, tube and detector rotating
            // together. Defaults follow the UC Davis prototype class (Boone et al., Radiology 221:657, 2001):
            // source-to-axis 650 mm, source-to-detector 923 mm, CsI/a-Si flat panel at 388 um (2x2 binned),
            // 80 kV. Views are configurable; 300 is the default here.
            PresetName::BreastCt => Self {
                name,
                description: "breast CT: full 360 deg circle, detector rotates with the tube".into(),
                geometry: ArcGeometry {
                    source_to_detector_mm: 923.0,
                    rotation_axis_height_mm: 273.0,
                    detector: detector(1024, 768, 0.388, DetectorMaterial::CsI, 0.6),
                    detector_motion: DetectorMotion::RotatesWithTube,
                },
                sampling: ArcSampling { start_deg: -180.0, end_deg: 180.0, views: 300 },
                motion: Motion::Continuous { exposure_arc_deg: 0.6, run_up_deg: 2.0 },
                beam: BeamDefaults { target: Target::W, filter: filter(FilterMaterial::Al, 1.5), kvp: 49.0 },
                anti_scatter_grid: false,
                gantry_limit_deg: 360.0,
                source: "Boone et al., Radiology 221:657 (2001); views configurable".into(),
            },
        }
    }

    /// Every built-in preset.
    pub fn all() -> Vec<Self> {
        PresetName::ALL.into_iter().map(Self::builtin).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in PresetName::ALL {
            assert_eq!(name.as_str().parse::<PresetName>(), Ok(name));
        }
        assert!("wide".parse::<PresetName>().is_err());
    }

    #[test]
    fn presets_are_valid_and_angles_are_as_published() {
        for preset in ScanPreset::all() {
            preset.geometry.validate().unwrap();
            assert_eq!(preset.sampling.angles_deg().len(), preset.sampling.views);
            let beyond = match preset.motion {
                Motion::Continuous { exposure_arc_deg, run_up_deg } => exposure_arc_deg / 2.0 + run_up_deg,
                _ => 0.0,
            };
            let reach = preset.sampling.start_deg.abs().max(preset.sampling.end_deg.abs()) + beyond;
            assert!(reach <= preset.gantry_limit_deg, "{}: its own arc needs {reach} deg", preset.name);
        }
        let wide = ScanPreset::builtin(PresetName::WideAngle).sampling.angles_deg();
        assert_eq!((wide[0], wide[24]), (-25.0, 25.0));
        let ct = ScanPreset::builtin(PresetName::BreastCt).sampling.angles_deg();
        assert!((ct[1] - ct[0] - 1.2).abs() < 1e-12 && *ct.last().unwrap() < 180.0);
    }
}
