//! The bridge's one error type, classified by the HAL's [`ErrorKind`].

use tomolab_hal::ErrorKind;

/// An error of the firmware bridge: a link failure, a device refusal or a decoding problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct BridgeError {
    /// Generic kind, for the sequencer.
    pub kind: ErrorKind,
    /// What happened, naming the command or field.
    pub message: String,
}

impl BridgeError {
    /// An error of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// A link failure (the wire broke, the heartbeat stopped, the device restarted).
    pub fn link(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Link, message)
    }

    /// A deadline passed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
}

impl tomolab_hal::Error for BridgeError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<tomolab_hal::UnitError> for BridgeError {
    fn from(e: tomolab_hal::UnitError) -> Self {
        Self::new(ErrorKind::OutOfRange, e.to_string())
    }
}

/// Wire code of an [`ErrorKind`] (used by the serial protocol and the Modbus error registers).
pub fn kind_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Timeout => 1,
        ErrorKind::Link => 2,
        ErrorKind::Interlock => 3,
        ErrorKind::OutOfRange => 4,
        ErrorKind::NotReady => 5,
        ErrorKind::DeviceFault => 6,
        ErrorKind::Refused => 7,
        _ => 8,
    }
}

/// The [`ErrorKind`] of a wire code (the kind codes 1..=8 and the protocol codes of
/// [`crate::protocol::message::error_code`]); unknown codes read as `Other`.
pub fn kind_from_code(code: u8) -> ErrorKind {
    use crate::protocol::message::error_code as ec;
    match code {
        ec::NO_SESSION | ec::STALE_SESSION => ErrorKind::Link,
        ec::VERSION | ec::EXPOSURE_ID_REUSED | ec::SEQ_REUSED => ErrorKind::Refused,
        ec::TECHNIQUE_LIMIT => ErrorKind::OutOfRange,
        ec::NO_COMPRESSION => ErrorKind::Interlock,
        1 => ErrorKind::Timeout,
        2 => ErrorKind::Link,
        3 => ErrorKind::Interlock,
        4 => ErrorKind::OutOfRange,
        5 => ErrorKind::NotReady,
        6 => ErrorKind::DeviceFault,
        7 => ErrorKind::Refused,
        _ => ErrorKind::Other,
    }
}
