//! The one error-kind vocabulary every backend maps its own errors onto.

/// What went wrong, in terms generic code (the sequencer) can act on.
///
/// Each backend keeps its own rich error type and reports one of these through [`Error::kind`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The device did not answer within its deadline.
    Timeout,
    /// The link to the device broke (serial line, TCP, heartbeat lost).
    Link,
    /// An interlock is open (door, emergency stop, exposure switch, detector not ready).
    Interlock,
    /// A requested value is outside what the device accepts.
    OutOfRange,
    /// The device is not in a state that allows the call (not prepared, not armed, latched).
    NotReady,
    /// The device reported an internal fault (tube arc, motor stall, sensor failure).
    DeviceFault,
    /// The device refused the command for a reason of its own.
    Refused,
    /// Anything else.
    Other,
}

impl core::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            Self::Timeout => "timeout",
            Self::Link => "link failure",
            Self::Interlock => "interlock open",
            Self::OutOfRange => "value out of range",
            Self::NotReady => "device not ready",
            Self::DeviceFault => "device fault",
            Self::Refused => "refused by device",
            Self::Other => "other error",
        };
        f.write_str(text)
    }
}

/// A device error that generic code can classify.
pub trait Error: core::fmt::Debug + core::fmt::Display {
    /// The generic kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl Error for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}
