//! One module per subcommand: argument struct plus `run`.

pub mod aec_table;
pub mod attenuation;
pub mod device;
pub mod dicom;
pub mod dose;
pub mod exam;
pub mod mass_sdnr;
pub mod metrics;
pub mod phantom;
pub mod plan;
pub mod presets;
pub mod recon;
pub mod spectrum;

/// Exit codes of `tomolab` (documented in the README): batch runners tell the outcomes apart by them.
pub mod exit {
    /// Failed: an I/O or internal error (also any error not listed below).
    pub const FAILED: u8 = 1;
    /// Usage or configuration error: bad arguments (clap), an invalid exam.toml, an unusable --out.
    pub const USAGE: u8 = 2;
    /// Refused before any exposure: the sequencer refused the plan (dose budget, interlock, ...), or the
    /// estimated memory or run time exceeds the limits without --force.
    pub const REFUSED: u8 = 3;
    /// Aborted: the exam started and stopped part-way (fault, interlock, switch released, interrupted); the
    /// partial acquisition is saved, marked incomplete.
    pub const ABORTED: u8 = 4;
}

/// An error that is the user's to fix (exit [`exit::USAGE`]).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A refusal before any exposure (exit [`exit::REFUSED`]).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused before any exposure: {}", self.0)
    }
}

impl std::error::Error for Refused {}
