//! # tomolab-firmware-bridge
//!
//! The HAL over real links, and a virtual device that speaks them.
//!
//! A tomosynthesis unit in a hardware-in-the-loop rig is three controllers: the generator/detector/interlock
//! firmware on a serial line, a gantry and paddle motion controller on Modbus, and a detector that pushes frames
//! over TCP because a serial line cannot carry them. This crate implements every HAL trait over those links
//! ([`host::backend`]), so the same [`Sequencer`](tomolab_hal::sequencer::Sequencer) that drives the mock or the
//! simulator drives hardware, and nothing checks "if simulated".
//!
//! The crate is arranged by side:
//!
//! - [`protocol`]: what goes on the wires, for both sides. The serial control protocol ([`protocol::wire`],
//!   [`protocol::message`]): COBS framing with a zero delimiter, a header (version, type, sequence number, ack)
//!   and a CRC-32; typed requests with little-endian payloads; a HELLO handshake exchanges versions,
//!   capabilities and the firmware version, and a major mismatch is refused. The detector frame stream
//!   ([`protocol::frames`]), length-prefixed with a CRC on the prefix and on the body; a frame is delivered
//!   only when both CRCs match, and the decoder resynchronises on the next magic after garbage. The Modbus
//!   register map ([`protocol::regs`], `docs/modbus.md`) and ADU codec ([`protocol::modbus`]).
//! - [`host`]: the host ends and the HAL backends over them ([`host::backend`]). Every request has a deadline
//!   and bounded retries with the same sequence number (the device answers a repeat from its cache and never
//!   executes twice); an exposure is never re-sent blindly: the client asks the device what became of the
//!   exposure id first. An exposure is named by (session, id): the session id is drawn fresh by the device on
//!   every HELLO, so nothing of an earlier host process, a closed session or a replayed packet ever fires
//!   (protocol 2). Every Modbus call runs under a timeout; after a timeout or link error the context is
//!   dropped and reopened.
//! - [`device`]: the virtual device over any `U: Unit`, in two halves: a sans-I/O protocol half (sessions,
//!   caches, exposure ids, watchdog, heartbeats, frame history, the Modbus register image) that is told the
//!   time, and a backend half that alone calls the unit. It defends itself (generator limits, no beam outside
//!   the compression window) and goes safe when the host's heartbeat stops. [`device::server`] serves it over
//!   a serial port or pseudo-terminal, Modbus TCP and a TCP frame port, with the backend on its own worker
//!   thread, so a slow frame never stalls the link.
//! - `testing` (feature `testing`): host and device on virtual time in one thread, and a seeded fault
//!   injector that wraps any byte stream.
//!
//! Errors: one [`BridgeError`] carrying the HAL's [`ErrorKind`](tomolab_hal::ErrorKind): a device refusal keeps
//! its kind (OutOfRange, NotReady, ...), a broken wire is `Link`, a missed deadline `Timeout`.

#![deny(missing_docs)]

pub mod device;
pub mod error;
pub mod host;
pub mod protocol;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::BridgeError;
