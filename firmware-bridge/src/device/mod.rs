//! The virtual device: any HAL backend served over the bridge's protocols.
//!
//! It comes in two halves. [`DeviceProtocol`] is the device side of every link as a sans-I/O state machine
//! that is told the time: sessions, the duplicate cache, exposure ids, the link watchdog, heartbeats, the
//! frame history and the Modbus register image; it never calls the backend. Every request that needs the
//! backend becomes a [`Job`] in one queue, run one at a time in arrival order by [`DeviceBackend`], which owns
//! the [`Unit`]. So the protocol stays responsive whatever a backend call costs: the threaded
//! [`server`] runs the backend on its own worker thread while the protocol thread keeps answering.
//!
//! [`VirtualDevice`] is the two halves in one value, running each job inline as soon as it is queued: the
//! deterministic single-threaded form used by the test harness (`testing::sim`, feature `testing`) and the fuzzers.
//! Both drive the same protocol code.
//!
//! The device defends itself: generator limits on every technique and exposure ([`GeneratorLimits`]), no beam
//! outside the compression window, and the safe state (tube disabled, motion stopped, detector disarmed,
//! paddle released) when the host's heartbeat stops.

mod backend;
mod config;
mod modbus;
mod protocol;
pub mod server;

use std::time::Duration;

use tokio_modbus::ExceptionCode;
use tomolab_hal::Unit;

pub use backend::{DeviceBackend, Job, Live, MotionValue, Outcome, WireError};
pub use config::{DeviceConfig, GeneratorLimits};
pub use modbus::ModbusStep;
pub use protocol::{Completion, DeviceProtocol, DeviceStats, MAX_KEEPALIVE};

use crate::protocol::frames::{FrameMessage, FrameToken};
use crate::protocol::modbus::{PduRequest, exception_pdu};

/// Protocol and backend in one value, each job run inline (the sans-I/O, single-threaded device).
#[derive(Debug)]
pub struct VirtualDevice<U> {
    protocol: DeviceProtocol,
    backend: DeviceBackend<U>,
    /// Serial bytes produced while answering Modbus (sent with the next serial output).
    pending: Vec<u8>,
}

impl<U: Unit> VirtualDevice<U> {
    /// A device serving this unit.
    pub fn new(unit: U, config: DeviceConfig) -> Self {
        Self { protocol: DeviceProtocol::new(config), backend: DeviceBackend::new(unit), pending: Vec::new() }
    }

    /// The protocol half.
    pub fn protocol(&self) -> &DeviceProtocol {
        &self.protocol
    }

    /// Counters so far.
    pub fn stats(&self) -> DeviceStats {
        self.protocol.stats()
    }

    /// Exposure ids fired (backend `expose` calls), in order, without their sessions; ids repeat across
    /// sessions (every host starts at 1), see [`Self::fired`].
    pub fn fired_ids(&self) -> Vec<u32> {
        self.protocol.fired().iter().map(|&(_, id)| id).collect()
    }

    /// Exposures fired as (session id, exposure id), in order; each pair at most once.
    pub fn fired(&self) -> &[(u32, u32)] {
        self.protocol.fired()
    }

    /// The open session's id.
    pub fn session_id(&self) -> Option<u32> {
        self.protocol.session_id()
    }

    /// Whether a host session is open.
    pub fn session_open(&self) -> bool {
        self.protocol.session_id().is_some()
    }

    /// The frame token of the open session, shared (0 while no session is open).
    pub fn frame_token(&self) -> FrameToken {
        self.protocol.frame_token()
    }

    /// Uses this shared cell for the frame token.
    pub fn share_frame_token(&mut self, token: FrameToken) {
        self.protocol.share_frame_token(token);
    }

    /// The backend unit.
    pub fn unit_mut(&mut self) -> &mut U {
        self.backend.unit_mut()
    }

    /// Tube disabled, motion stopped, detector disarmed, paddle released; every step attempted.
    pub fn go_safe(&mut self) {
        self.protocol.note_safe();
        self.backend.go_safe();
    }

    /// A restart: the device goes safe and forgets its session, caches and frames, as firmware does on reboot.
    pub fn reset(&mut self) {
        self.protocol.reset();
        self.backend.go_safe();
        self.pending.clear();
    }

    /// Runs every queued job; the Modbus answers that came out.
    fn run_jobs(&mut self, out: &mut Vec<u8>) -> Vec<(u64, Result<Vec<u16>, ExceptionCode>)> {
        let mut answers = Vec::new();
        while let Some(job) = self.protocol.next_job() {
            let outcome = self.backend.run(&job);
            let done = self.protocol.complete(outcome, self.protocol.now());
            out.extend(done.serial);
            answers.extend(done.modbus);
        }
        answers
    }

    /// Takes serial bytes received at `now`; returns the bytes to send back.
    pub fn on_serial_bytes(&mut self, bytes: &[u8], now: Duration) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(self.protocol.on_serial_bytes(bytes, now));
        self.run_jobs(&mut out);
        out
    }

    /// Time passes: heartbeats and the link watchdog. Returns bytes to send.
    pub fn poll(&mut self, now: Duration) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(self.protocol.poll(now));
        self.run_jobs(&mut out);
        out
    }

    /// Frames to send on the frame stream (drains the queue).
    pub fn take_frames(&mut self) -> Vec<FrameMessage> {
        self.protocol.take_frames()
    }

    /// Answers a decoded Modbus request: the registers read (empty for a write), or the exception.
    pub fn modbus(&mut self, req: &PduRequest) -> Result<Vec<u16>, ExceptionCode> {
        match self.protocol.on_modbus(req) {
            ModbusStep::Answer(r) => r,
            ModbusStep::Queued(ticket) => {
                let mut out = std::mem::take(&mut self.pending);
                let answers = self.run_jobs(&mut out);
                self.pending = out;
                answers
                    .into_iter()
                    .find_map(|(t, r)| (t == ticket).then_some(r))
                    .unwrap_or(Err(ExceptionCode::ServerDeviceFailure))
            }
        }
    }

    /// Answers a register read (function 03 or 04).
    pub fn modbus_read(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        self.modbus(&PduRequest::Read { addr, count, input: false })
    }

    /// Answers a register write (function 16, or 06 for one value); a write covering a command register runs
    /// the command.
    pub fn modbus_write(&mut self, addr: u16, values: &[u16]) -> Result<(), ExceptionCode> {
        self.modbus(&PduRequest::Write { addr, values: values.to_vec(), single: values.len() == 1 }).map(drop)
    }
}

/// Executes a decoded Modbus request on the device: the answer PDU (normal or exception).
pub fn execute_modbus<U: Unit>(dev: &mut VirtualDevice<U>, req: &PduRequest) -> Vec<u8> {
    answer_pdu(req, dev.modbus(req))
}

/// The answer PDU of a request: normal, or the exception.
pub fn answer_pdu(req: &PduRequest, result: Result<Vec<u16>, ExceptionCode>) -> Vec<u8> {
    match result {
        Ok(regs) => req.answer(&regs),
        Err(e) => exception_pdu(req.function(), u8::from(e)),
    }
}
