//! The crate's error type: every variant names the field or input it rejects.

/// Everything the simulator can refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PhysicsError {
    /// A material name that has no attenuation table.
    #[error("unknown material {name:?}; known materials: {known}")]
    UnknownMaterial {
        /// The name asked for.
        name: String,
        /// Comma-separated list of the names that exist.
        known: String,
    },
    /// A tube voltage outside the tabulated spectra.
    #[error("kvp must be a tube voltage within the spectrum tables' {min}..={max} kV, got {kvp}")]
    KvpOutOfRange {
        /// The voltage asked for.
        kvp: f64,
        /// Lowest tabulated voltage.
        min: u32,
        /// Highest tabulated voltage.
        max: u32,
    },
    /// An energy outside the attenuation tables.
    #[error("energy_kev must lie within {min}..={max} keV, got {energy_kev}")]
    EnergyOutOfRange {
        /// The energy asked for.
        energy_kev: f64,
        /// Lowest tabulated energy.
        min: f64,
        /// Highest tabulated energy.
        max: f64,
    },
    /// A numeric parameter out of its valid range.
    #[error("invalid {field}: {problem}")]
    InvalidParameter {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A filter written as text (`Rh:0.05`) could not be understood.
    #[error("malformed filter {text:?}: {problem}")]
    MalformedFilter {
        /// The text given.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An embedded data table is corrupt (a build problem, not a user error).
    #[error("embedded table {table}: line {line}: {problem}")]
    Table {
        /// Which table.
        table: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

impl PhysicsError {
    /// Shorthand for [`PhysicsError::InvalidParameter`].
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::InvalidParameter { field, problem: problem.into() }
    }
}

/// Checks that `value` is finite and at least `min` (or strictly above it when `strict`).
pub(crate) fn check_at_least(field: &'static str, value: f64, min: f64, strict: bool) -> Result<f64, PhysicsError> {
    let ok = value.is_finite() && if strict { value > min } else { value >= min };
    if ok {
        Ok(value)
    } else {
        let rel = if strict { ">" } else { ">=" };
        Err(PhysicsError::invalid(field, format!("must be finite and {rel} {min}, got {value}")))
    }
}
