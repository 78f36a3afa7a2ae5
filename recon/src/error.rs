//! The crate's error type: every variant names the field or input at fault.

use std::path::PathBuf;

/// Reconstruction failed; the message names the field or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// An input value or option is unusable.
    #[error("invalid input: {field}: {problem}")]
    Invalid {
        /// The field or option at fault (for example `views[3].pose` or `options.voxel_xy_mm`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: cannot {action}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ReconError>;

/// Builds an [`ReconError::Invalid`].
pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ReconError {
    ReconError::Invalid { field: field.into(), problem: problem.into() }
}

/// Builds an [`ReconError::Io`] from any displayable error.
pub(crate) fn io_error(path: &std::path::Path, action: &'static str, err: impl std::fmt::Display) -> ReconError {
    ReconError::Io { path: path.to_owned(), action, message: err.to_string() }
}
