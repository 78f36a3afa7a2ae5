//! Exposure technique and the record of what an exposure actually delivered.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{Kilovolts, MilliampereSeconds, Milliamperes, UnitError};

/// Anode material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Tungsten.
    W,
    /// Molybdenum.
    Mo,
    /// Rhodium.
    Rh,
}

/// Material of the added beam filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FilterMaterial {
    /// Rhodium.
    Rh,
    /// Molybdenum.
    Mo,
    /// Aluminium.
    Al,
    /// Silver.
    Ag,
}

/// The added filter: material and thickness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Filter material.
    pub material: FilterMaterial,
    /// Filter thickness, mm.
    pub thickness_mm: f64,
}

/// Focal spot size selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocalSpot {
    /// Large focal spot (nominal 0.3 mm), for contact and DBT imaging.
    Large,
    /// Small focal spot (nominal 0.1 mm), for magnification views.
    Small,
}

impl FocalSpot {
    /// Nominal size, mm.
    pub fn nominal_size_mm(self) -> f64 {
        match self {
            Self::Large => 0.3,
            Self::Small => 0.1,
        }
    }
}

/// What the generator is asked to deliver for each view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Technique {
    /// Tube voltage.
    pub kvp: Kilovolts,
    /// Tube current during the exposure.
    pub tube_current: Milliamperes,
    /// Current-time product per view.
    pub mas_per_view: MilliampereSeconds,
    /// Anode material.
    pub target: Target,
    /// Added filter.
    pub filter: Filter,
    /// Focal spot.
    pub focal_spot: FocalSpot,
}

impl Technique {
    /// Planned exposure time per view: mAs / mA.
    ///
    /// Never panics: a time that is not representable (only possible for values built without the checked
    /// constructors) saturates to `Duration::MAX`, and a NaN ratio gives zero.
    pub fn exposure_time(&self) -> Duration {
        let seconds = self.mas_per_view.get() / self.tube_current.get();
        if seconds.is_nan() {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
    }

    /// Checks the fields the unit newtypes do not: the filter thickness must be finite and within 0..=10 mm.
    pub fn validate(&self) -> Result<(), UnitError> {
        let t = self.filter.thickness_mm;
        if !(t.is_finite() && (0.0..=10.0).contains(&t)) {
            return Err(UnitError {
                quantity: "filter thickness",
                requirement: "finite and within 0..=10 mm",
                value: t,
            });
        }
        Ok(())
    }

    /// The same technique with another mAs per view.
    pub fn with_mas_per_view(self, mas: f64) -> Result<Self, UnitError> {
        Ok(Self { mas_per_view: MilliampereSeconds::new(mas)?, ..self })
    }
}

/// One exposure command.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExposureRequest {
    /// Current-time product to deliver.
    pub mas: MilliampereSeconds,
    /// The backup timer: the exposure must end by this time whatever happens.
    #[serde(with = "crate::serde_duration")]
    pub backup_time: Duration,
}

/// How an exposure ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureEnd {
    /// It delivered the requested mAs.
    Planned,
    /// The automatic exposure control terminated it.
    Aec,
    /// The backup timer terminated it (a fault: the timer latches).
    BackupTimer,
    /// The operator released the hold-to-run exposure switch.
    OperatorRelease,
    /// An interlock opened.
    Interlock,
    /// The generator faulted (arc, kV drop).
    Fault,
}

impl ExposureEnd {
    /// Whether the exposure ended as intended.
    pub fn is_normal(self) -> bool {
        matches!(self, Self::Planned | Self::Aec)
    }
}

/// What an exposure actually delivered, as measured by the generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExposureRecord {
    /// Measured mean tube voltage.
    pub kvp: Kilovolts,
    /// Delivered current-time product.
    pub mas: MilliampereSeconds,
    /// Beam-on time.
    #[serde(with = "crate::serde_duration")]
    pub duration: Duration,
    /// How it ended.
    pub end: ExposureEnd,
}
