//! # tomolab-firmware-bridge
//!
//! The HAL over real links, and a virtual device that speaks them.
//!
//! A tomosynthesis unit in a hardware-in-the-loop rig is three controllers: the generator/detector/interlock
//! firmware on a serial line, a gantry and paddle motion controller on Modbus, and a detector that pushes frames
//! over TCP because a serial line cannot carry them. This crate implements every HAL trait over those links
//! ([`bridge`]), so the same [`Sequencer`](tomolab_hal::sequencer::Sequencer) that drives the mock or the
//! simulator drives hardware, and nothing checks "if simulated".
//!
//! Layers, bottom up:
//!
//! - [`wire`], [`message`]: the serial control protocol. COBS framing with a zero delimiter, a header (version,
//!   type, sequence number, ack) and a CRC-32; typed requests with little-endian payloads. A HELLO handshake
//!   exchanges versions, capabilities and the firmware version; a major mismatch is refused.
//! - [`frames`]: the detector frame stream, length-prefixed with a CRC on the prefix and on the body, and
//!   metadata (sequence, view, kind, timestamp). A frame is delivered only when both CRCs match; the decoder
//!   resynchronises on the next magic after garbage.
//! - [`regs`]: the Modbus register map of gantry and paddle (documented in `docs/modbus.md`).
//! - [`client`], [`framesource`], [`modbus`]: the host ends. Every request has a deadline and bounded retries
//!   with the same sequence number (the device answers a repeat from its cache and never executes twice); an
//!   exposure is never re-sent blindly: the client asks the device what became of the exposure id first. An
//!   exposure is named by (session, id): the session id is drawn fresh by the device on every HELLO, so nothing
//!   of an earlier host process, a closed session or a replayed packet ever fires (protocol 2). Every
//!   Modbus call runs under a timeout; after a timeout or link error the context is dropped and reopened.
//! - [`device`]: the virtual device, generic over any backend (`T: XrayTube, G: Gantry, ...`): the device side
//!   of all three protocols as a sans-I/O state machine that is told the time. It defends itself: generator
//!   limits on every technique and exposure, and no beam outside the compression window. It goes safe (tube disabled,
//!   motion stopped, detector disarmed, paddle released) when the host's heartbeat stops.
//! - [`server`]: the virtual device served over a serial port or a pseudo-terminal, Modbus TCP and a TCP frame
//!   port (served only to the reader presenting its control session's frame token), with the backend built
//!   inside its own thread from a `Send` factory (so `!Send` backends such as the
//!   mock work). The physics simulator plugs in the same way: a factory returning its devices.
//! - [`sim`] and [`fault`]: host and device on virtual time in one thread, and a seeded fault injector that wraps
//!   any byte stream. The fault suite runs thousands of exams through them in seconds.
//!
//! Errors: one [`BridgeError`] carrying the HAL's [`ErrorKind`](tomolab_hal::ErrorKind): a device refusal keeps
//! its kind (OutOfRange, NotReady, ...), a broken wire is `Link`, a missed deadline `Timeout`.

#![deny(missing_docs)]

pub mod bridge;
pub mod client;
pub mod device;
pub mod error;
pub mod fault;
pub mod frames;
pub mod framesource;
pub mod message;
pub mod modbus;
pub mod regs;
pub mod server;
pub mod sim;
pub mod wire;

pub use error::BridgeError;
