//! The one error type of the crate: every variant names the file, attribute or peer it is about.

use std::path::PathBuf;

/// What went wrong, naming the file, attribute or peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DicomError {
    /// A file or directory could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("read", "write", "rename", ...).
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// An input of the exam directory is missing or unusable.
    #[error("{}: {problem}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The output directory is unusable.
    #[error("output {}: {problem}", path.display())]
    Output {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// dicom-rs refused to build or encode an object.
    #[error("encoding {what}: {message}")]
    Encode {
        /// Which object or attribute.
        what: String,
        /// dicom-rs's message.
        message: String,
    },
    /// A DICOM file could not be read or lacks an attribute.
    #[error("{}: {problem}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the attribute).
        problem: String,
    },
    /// A network peer or address is unusable.
    #[error("{peer}: {problem}")]
    Network {
        /// `AET@HOST:PORT` of the peer.
        peer: String,
        /// What happened.
        problem: String,
    },
}

impl DicomError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), action, source }
    }

    pub(crate) fn input(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Input { path: path.into(), problem: problem.into() }
    }

    pub(crate) fn encode(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Encode { what: what.into(), message: message.to_string() }
    }
}

/// The crate's result type.
pub type Result<T, E = DicomError> = std::result::Result<T, E>;
