//! Checked newtypes for quantities that bear on dose or safety.
//!
//! Each constructor rejects non-finite and out-of-range values with a [`UnitError`] naming the quantity.
//! Serde goes through the same check, so a bad number in a file is caught where it is read.

use serde::{Deserialize, Serialize};

/// A value was rejected by a unit constructor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{quantity} must be {requirement}, got {value}")]
pub struct UnitError {
    /// Name of the quantity, e.g. "tube voltage (kV)".
    pub quantity: &'static str,
    /// What a valid value looks like.
    pub requirement: &'static str,
    /// The rejected value.
    pub value: f64,
}

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, $quantity:literal, $symbol:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(pub(crate) f64);

        impl $name {
            /// Smallest accepted value.
            pub const MIN: f64 = $min;
            /// Largest accepted value.
            pub const MAX: f64 = $max;

            /// Checked constructor: the value must be finite and within [`Self::MIN`]..=[`Self::MAX`].
            pub fn new(value: f64) -> Result<Self, UnitError> {
                if value.is_finite() && (Self::MIN..=Self::MAX).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(UnitError {
                        quantity: $quantity,
                        requirement: concat!("finite and within ", stringify!($min), "..=", stringify!($max), " ", $symbol),
                        value,
                    })
                }
            }

            /// The value in its unit.
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl TryFrom<f64> for $name {
            type Error = UnitError;
            fn try_from(value: f64) -> Result<Self, UnitError> {
                Self::new(value)
            }
        }

        impl From<$name> for f64 {
            fn from(value: $name) -> f64 {
                value.0
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match f.precision() {
                    Some(p) => write!(f, "{:.*} {}", p, self.0, $symbol),
                    None => write!(f, "{} {}", self.0, $symbol),
                }
            }
        }
    };
}

unit!(
    /// Tube voltage in kilovolts (peak).
    Kilovolts, "tube voltage", "kV", 10.0, 150.0
);
unit!(
    /// Tube current-time product in milliampere-seconds.
    MilliampereSeconds, "tube current-time product", "mAs", 0.0, 2000.0
);
unit!(
    /// Tube current in milliamperes.
    Milliamperes, "tube current", "mA", 0.001, 2000.0
);
unit!(
    /// Force in newtons (compression).
    Newtons, "force", "N", 0.0, 1000.0
);
unit!(
    /// A non-negative length or thickness in millimetres.
    Millimetres, "length", "mm", 0.0, 1.0e5
);
unit!(
    /// An angle in degrees, within one turn either way.
    Degrees, "angle", "deg", -360.0, 360.0
);
unit!(
    /// Absorbed dose in milligray.
    MilliGray, "dose", "mGy", 0.0, 1.0e6
);

impl Degrees {
    /// The angle in radians.
    pub fn radians(self) -> f64 {
        self.0.to_radians()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_reject_bad_values_with_the_quantity_named() {
        let err = Kilovolts::new(f64::NAN).unwrap_err();
        assert_eq!(err.quantity, "tube voltage");
        assert!(Kilovolts::new(5.0).is_err());
        assert!(Newtons::new(-1.0).is_err());
        assert!(Millimetres::new(f64::INFINITY).is_err());
        assert!(Degrees::new(400.0).is_err());
        assert_eq!(Kilovolts::new(28.0).map(f64::from), Ok(28.0));
    }

    #[test]
    fn display_prints_the_unit() {
        assert_eq!(Kilovolts::new(28.0).unwrap().to_string(), "28 kV");
        assert_eq!(format!("{:.1}", Newtons::new(120.0).unwrap()), "120.0 N");
        assert_eq!(Degrees::new(-25.0).unwrap().to_string(), "-25 deg");
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let ok: Kilovolts = serde_json::from_str("28.5").unwrap();
        assert_eq!(ok.get(), 28.5);
        let bad = serde_json::from_str::<Newtons>("-3").unwrap_err();
        assert!(bad.to_string().contains("force"), "{bad}");
    }
}
