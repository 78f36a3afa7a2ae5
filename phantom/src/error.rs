//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, generating or writing a phantom.
///
/// Parameter errors name the offending field (as it is spelled in the parameter structs and in the
/// JSON they serialize to), so a CLI can print them as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhantomError {
    /// A parameter is out of its valid range or not finite.
    #[error("invalid parameter `{field}` = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name, e.g. `thickness_mm` or `lesions[2].diameter_mm`.
        field: String,
        /// The value as given.
        value: String,
        /// What the valid range is.
        reason: String,
    },
    /// A lesion placed at a given position does not fit inside the breast (inside the skin).
    #[error("lesion {index} ({kind}) centred at {centre_mm:?} mm is outside the breast: {reason}")]
    LesionOutsideBreast {
        /// Index of the lesion in the parameter list.
        index: usize,
        /// The lesion kind, as in the ground truth.
        kind: &'static str,
        /// Requested centre, design coordinates in mm.
        centre_mm: [f64; 3],
        /// Which part is outside.
        reason: String,
    },
    /// A lesion asked to be placed at random in glandular (or fat) tissue found no room.
    #[error(
        "lesion {index} ({kind}): no position in {tissue} tissue with room for it after {attempts} attempts \
         (lesions[{index}].placement = \"{tissue}\"); change the glandular fraction, the placement or the lesion size"
    )]
    PlacementFailed {
        /// Index of the lesion in the parameter list.
        index: usize,
        /// The lesion kind.
        kind: &'static str,
        /// The tissue asked for (`glandular` or `fat`).
        tissue: &'static str,
        /// How many random positions were tried.
        attempts: usize,
    },
    /// More labelled objects than the u8 label space leaves room for.
    #[error("{count} labelled objects requested, at most {max} fit in the u8 label space")]
    TooManyObjects {
        /// Objects requested.
        count: usize,
        /// Labels available for objects.
        max: usize,
    },
    /// The volume would not fit in memory or in the index type.
    #[error("volume of {nx} x {ny} x {nz} voxels is too large: {reason}")]
    VolumeTooLarge {
        /// Voxels along x.
        nx: usize,
        /// Voxels along y.
        ny: usize,
        /// Voxels along z.
        nz: usize,
        /// Why it was refused.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// JSON (de)serialization failed.
    #[error("{path}: JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A PNG preview could not be encoded.
    #[error("{path}: PNG: {source}")]
    Png {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A MetaImage header could not be understood.
    #[error("{path}: MetaImage header: {reason}")]
    MetaImage {
        /// The header file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The sink given to a streaming generator failed.
    #[error("slab sink failed at slice {slice}: {source}")]
    Sink {
        /// First z slice of the slab that failed.
        slice: usize,
        /// The sink's error.
        source: std::io::Error,
    },
}

impl PhantomError {
    pub(crate) fn invalid(field: impl Into<String>, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Self::InvalidParameter { field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}

/// Checks that `value` is finite and within `[lo, hi]`, naming `field` otherwise.
pub(crate) fn check_range(field: &str, value: f64, lo: f64, hi: f64, unit: &str) -> Result<(), PhantomError> {
    if !value.is_finite() || value < lo || value > hi {
        let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
        return Err(PhantomError::invalid(field, value, format!("must be within {lo}..={hi}{unit}")));
    }
    Ok(())
}

/// Result alias of this crate.
pub type Result<T, E = PhantomError> = std::result::Result<T, E>;
