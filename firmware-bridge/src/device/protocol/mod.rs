//! The protocol half of the virtual device: everything that answers without the backend.
//!
//! [`DeviceProtocol`] holds the session, the duplicate cache, the exposure-id bookkeeping, the link watchdog,
//! the heartbeats, the frame history and the Modbus register image. A request that needs the backend becomes a
//! [`Job`] in one queue (serial and Modbus alike, in arrival order); the driver takes one job at a time with
//! [`DeviceProtocol::next_job`], runs it on the [`DeviceBackend`](super::DeviceBackend) and hands the outcome
//! back with [`DeviceProtocol::complete`]. Meanwhile the protocol keeps answering: heartbeats (acking the
//! request in flight), the watchdog, duplicates from the cache, QUERY_EXPOSURE from the held records, Modbus
//! status reads from the image.

use std::collections::VecDeque;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_modbus::ExceptionCode;
use tomolab_hal::{ErrorKind, ExposureRequest, Technique};

mod requests;

use requests::is_local;

use super::DeviceConfig;
use super::backend::{Job, Outcome};
use super::modbus::{ModbusRegs, ModbusWork};
use crate::error::kind_code;
use crate::protocol::frames::{FrameMessage, FrameToken};
use crate::protocol::message::{
    DeviceHeartbeat, ExposureOutcome, HelloAck, Request, caps, code, encode_error, error_code,
};
use crate::protocol::wire::{PROTOCOL_MINOR, Packet, PacketDecoder, encode_packet};

/// Longest time the device's heartbeats vouch for one request in flight (a slow frame); past it the host's
/// timeouts run.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(120);

/// Counters of what the device saw (for tests and the HIL report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Valid packets received.
    pub packets: u64,
    /// Packets rejected (COBS, CRC, length).
    pub rejected: u64,
    /// Requests answered from the duplicate cache (or dropped as a repeat of one in flight) instead of executed.
    pub duplicates: u64,
    /// Times the device went to its safe state (link loss, reset, backend failure).
    pub safe_events: u64,
    /// Exposures fired (backend `expose` calls).
    pub exposures_fired: u64,
    /// HELLOs accepted.
    pub sessions: u64,
}

/// What finished with a job: serial bytes to send and Modbus answers by ticket.
#[derive(Debug, Default)]
pub struct Completion {
    /// Bytes for the serial link.
    pub serial: Vec<u8>,
    /// Answers to queued Modbus requests: (ticket from [`super::ModbusStep::Queued`], registers or exception).
    pub modbus: Vec<(u64, Result<Vec<u16>, ExceptionCode>)>,
}

/// The last request answered and its answer (the duplicate cache), keyed on the whole request.
#[derive(Debug, Clone, PartialEq)]
struct Key {
    seq: u16,
    version: u8,
    kind: u8,
    payload: Vec<u8>,
}

#[derive(Debug)]
struct Cached {
    key: Key,
    answer: Vec<u8>,
}

/// Exposure bookkeeping of one session: ids strictly increase; only the last one is held (for its retry and
/// QUERY_EXPOSURE), and DISABLE drops it.
#[derive(Debug, Default)]
struct SessionExposures {
    highest: Option<u32>,
    last: Option<(u32, ExposureRequest, ExposureOutcome)>,
}

/// A serial request waiting for (or deferred behind) the backend.
#[derive(Debug)]
struct SerialWork {
    key: Key,
    session: Option<u32>,
    request: Request,
}

/// An entry of the queue.
#[derive(Debug)]
enum Work {
    /// A serial request: with its job, or `None` for one answered locally but deferred behind earlier serial
    /// work (a QUERY_EXPOSURE of the exposure in flight is answered after it).
    Serial(SerialWork, Option<Job>),
    /// A Modbus request and its ticket.
    Modbus(u64, ModbusWork, Job),
    /// The safe state (watchdog, restart).
    Safe,
}

impl Work {
    fn job(&self) -> Option<Job> {
        match self {
            Work::Serial(_, job) => job.clone(),
            Work::Modbus(_, _, job) => Some(job.clone()),
            Work::Safe => Some(Job::GoSafe),
        }
    }
}

fn same_request(a: &ExposureRequest, b: &ExposureRequest) -> bool {
    a.mas.get().to_bits() == b.mas.get().to_bits() && a.backup_time == b.backup_time
}

/// The answer to a serial request: packet type and payload.
type Answer = (u8, Vec<u8>);

fn wire_answer(r: Result<Vec<u8>, (u8, String)>) -> Answer {
    match r {
        Ok(p) => (code::OK, p),
        Err((c, m)) => (code::ERROR, encode_error(c, &m)),
    }
}

/// The device side of every link, without the backend.
#[derive(Debug)]
pub struct DeviceProtocol {
    config: DeviceConfig,
    decoder: PacketDecoder,
    session: Option<u32>,
    rng: ChaCha8Rng,
    frame_token: FrameToken,
    cache: Option<Cached>,
    tx_seq: u16,
    now: Duration,
    last_rx: Duration,
    last_hb: Option<Duration>,
    technique: Option<Technique>,
    exposures: SessionExposures,
    fired: Vec<(u32, u32)>,
    frame_seq: u64,
    recent: VecDeque<FrameMessage>,
    outbox: Vec<FrameMessage>,
    pub(super) regs: ModbusRegs,
    stats: DeviceStats,
    queue: VecDeque<Work>,
    in_flight: Option<(Work, Duration)>,
    next_ticket: u64,
    failed: Option<String>,
}

impl DeviceProtocol {
    /// A device with no session, nothing queued.
    pub fn new(config: DeviceConfig) -> Self {
        Self {
            config,
            decoder: PacketDecoder::new(),
            session: None,
            rng: ChaCha8Rng::seed_from_u64(u64::from(config.boot_nonce)),
            frame_token: FrameToken::default(),
            cache: None,
            tx_seq: 0,
            now: Duration::ZERO,
            last_rx: Duration::ZERO,
            last_hb: None,
            technique: None,
            exposures: SessionExposures::default(),
            fired: Vec::new(),
            frame_seq: 0,
            recent: VecDeque::new(),
            outbox: Vec::new(),
            regs: ModbusRegs::default(),
            stats: DeviceStats::default(),
            queue: VecDeque::new(),
            in_flight: None,
            next_ticket: 0,
            failed: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    /// The latest time the device was told.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Exposures fired as (session id, exposure id), in order; each pair at most once.
    pub fn fired(&self) -> &[(u32, u32)] {
        &self.fired
    }

    /// The open session's id.
    pub fn session_id(&self) -> Option<u32> {
        self.session
    }

    /// The frame token of the open session, shared (0 while no session is open).
    pub fn frame_token(&self) -> FrameToken {
        self.frame_token.clone()
    }

    /// Uses this shared cell for the frame token (the frame-stream server holds a clone and checks readers
    /// against it).
    pub fn share_frame_token(&mut self, token: FrameToken) {
        token.set(self.frame_token.get());
        self.frame_token = token;
    }

    /// Why the device gave up, once it has (every later request is answered with this failure).
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Counts a safe-state event done by the backend half outside a job.
    pub fn note_safe(&mut self) {
        self.stats.safe_events += 1;
    }

    /// Closes the session: its reply cache, exposure ids, frame token and queued serial work are forgotten.
    fn close_session(&mut self) {
        self.session = None;
        self.cache = None;
        // The loaded technique is the generator's state, not the session's: it stays for the exposure-time check.
        self.exposures = SessionExposures::default();
        self.frame_token.set(0);
        self.queue.retain(|w| !matches!(w, Work::Serial(..)));
    }

    fn open_session(&mut self) -> (u32, u64) {
        let previous = self.session.unwrap_or(0);
        let session = loop {
            let s = self.rng.next_u32();
            if s != 0 && s != previous {
                break s;
            }
        };
        let token = loop {
            let t = self.rng.next_u64();
            if t != 0 && t != self.frame_token.get() {
                break t;
            }
        };
        self.close_session();
        self.session = Some(session);
        self.frame_token.set(token);
        (session, token)
    }

    /// A restart of the protocol half (the backend half goes safe separately): session, caches and frames are
    /// forgotten, as firmware does on reboot; queued Modbus requests stay.
    pub fn reset(&mut self) {
        self.stats.safe_events += 1;
        self.decoder.reset();
        self.close_session();
        self.recent.clear();
        self.outbox.clear();
        self.last_hb = None;
    }

    fn packet(&mut self, kind: u8, ack: u16, payload: Vec<u8>) -> Vec<u8> {
        self.tx_seq = self.tx_seq.wrapping_add(1);
        encode_packet(&Packet { version: self.config.protocol_major, kind, seq: self.tx_seq, ack, payload })
    }

    /// Takes serial bytes received at `now`; returns the bytes to send back at once (answers of requests that
    /// need the backend come from [`Self::complete`]).
    pub fn on_serial_bytes(&mut self, bytes: &[u8], now: Duration) -> Vec<u8> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        for decoded in self.decoder.push(bytes) {
            match decoded {
                Ok(p) => {
                    self.stats.packets += 1;
                    self.last_rx = now;
                    out.extend(self.on_packet(p));
                }
                Err(_) => self.stats.rejected += 1,
            }
        }
        out
    }

    /// Time passes: the link watchdog and heartbeats. Returns bytes to send.
    pub fn poll(&mut self, now: Duration) -> Vec<u8> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        if self.session.is_some() && now.saturating_sub(self.last_rx) > self.config.link_timeout {
            // Link lost: the session closes now; the backend goes safe next (as soon as a call in flight returns).
            self.stats.safe_events += 1;
            self.close_session();
            self.queue.push_front(Work::Safe);
        }
        if let Some(session) = self.session
            && self.last_hb.is_none_or(|t| now.saturating_sub(t) >= self.config.heartbeat_interval)
        {
            self.last_hb = Some(now);
            let hb = DeviceHeartbeat { session, uptime_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX) };
            // A request of this session in flight: the heartbeat acks it, the host's "still working on it".
            let ack = match &self.in_flight {
                Some((Work::Serial(w, _), since))
                    if w.session == Some(session) && now.saturating_sub(*since) <= MAX_KEEPALIVE =>
                {
                    w.key.seq
                }
                _ => 0,
            };
            out.extend(self.packet(code::HEARTBEAT, ack, hb.encode()));
        }
        out
    }

    /// Frames to send on the frame stream (drains the queue).
    pub fn take_frames(&mut self) -> Vec<FrameMessage> {
        std::mem::take(&mut self.outbox)
    }

    /// Whether serial work is queued or in flight.
    fn serial_pending(&self) -> bool {
        let serial = |w: &Work| matches!(w, Work::Serial(..));
        self.in_flight.as_ref().is_some_and(|(w, _)| serial(w)) || self.queue.iter().any(serial)
    }

    /// The key of a serial request queued or in flight with this sequence number.
    fn pending_key(&self, seq: u16) -> Option<&Key> {
        self.in_flight.iter().map(|(w, _)| w).chain(self.queue.iter()).find_map(|w| match w {
            Work::Serial(s, _) if s.key.seq == seq => Some(&s.key),
            _ => None,
        })
    }

    fn on_packet(&mut self, p: Packet) -> Vec<u8> {
        if p.kind == code::HEARTBEAT {
            return Vec::new();
        }
        if let Some(why) = &self.failed {
            let payload = encode_error(kind_code(ErrorKind::DeviceFault), &format!("device failed: {why}"));
            return self.packet(code::ERROR, p.seq, payload);
        }
        let key = Key { seq: p.seq, version: p.version, kind: p.kind, payload: p.payload };
        let known = match (&self.cache, self.pending_key(key.seq)) {
            (_, Some(k)) => Some((k == &key, None)),
            (Some(c), None) if c.key.seq == key.seq => Some((c.key == key, Some(c.answer.clone()))),
            _ => None,
        };
        match known {
            // A retry of the request just answered: resend the answer, never execute twice. A retry of one
            // still in flight: it is answered when done.
            Some((true, answer)) => {
                self.stats.duplicates += 1;
                return answer.unwrap_or_default();
            }
            // Same number, other request: not a retry. Refused, and the cached answer is kept for the real
            // retry. (A HELLO is always served: a new host may start at the last request's number.)
            Some((false, _)) if key.kind != code::HELLO => {
                let payload = encode_error(error_code::SEQ_REUSED, "sequence number reused with a different request");
                return self.packet(code::ERROR, key.seq, payload);
            }
            _ => {}
        }
        if key.version != self.config.protocol_major {
            let payload = encode_error(error_code::VERSION, "protocol major version not supported");
            return self.packet(code::ERROR, key.seq, payload);
        }
        let request = match Request::parse(key.kind, &key.payload) {
            Ok(r) => r,
            Err(e) => {
                let payload = encode_error(error_code::BAD_REQUEST, &e.to_string());
                return self.packet(code::ERROR, key.seq, payload);
            }
        };
        let (kind, payload) = match request {
            Request::Hello { major, .. } => self.hello(major),
            _ if self.session.is_none() => {
                (code::ERROR, encode_error(error_code::NO_SESSION, "no session: send HELLO"))
            }
            other => {
                // A local answer waits behind serial work in flight (a QUERY_EXPOSURE behind its EXPOSE).
                let planned = match is_local(&other) && self.serial_pending() {
                    true => Ok(None),
                    false => self.plan(&other).map(Some),
                };
                match planned {
                    Err(answer) => answer,
                    Ok(job) => {
                        // Needs the backend (or must wait behind serial work that does): queued.
                        let work = SerialWork { key, session: self.session, request: other };
                        self.queue.push_back(Work::Serial(work, job));
                        return Vec::new();
                    }
                }
            }
        };
        self.answer(key, kind, payload)
    }

    /// Sends an answer and caches it.
    fn answer(&mut self, key: Key, kind: u8, payload: Vec<u8>) -> Vec<u8> {
        let bytes = self.packet(kind, key.seq, payload);
        self.cache = Some(Cached { key, answer: bytes.clone() });
        bytes
    }

    fn hello(&mut self, major: u8) -> Answer {
        if major != self.config.protocol_major {
            return (code::ERROR, encode_error(error_code::VERSION, "protocol major version not supported"));
        }
        // A new session: cache, exposure ids and frame token of the old one are forgotten.
        let (session, frame_token) = self.open_session();
        self.stats.sessions += 1;
        let ack = HelloAck {
            major: self.config.protocol_major,
            minor: PROTOCOL_MINOR,
            caps: caps::ALL,
            firmware: self.config.firmware,
            session,
            frame_token,
        };
        (code::HELLO_ACK, ack.encode())
    }

    /// Queues a Modbus request's job; its ticket.
    pub(super) fn enqueue_modbus(&mut self, work: ModbusWork, job: Job) -> u64 {
        self.next_ticket += 1;
        self.queue.push_back(Work::Modbus(self.next_ticket, work, job));
        self.next_ticket
    }

    /// The next backend call to make, once none is in flight (one at a time, in arrival order).
    pub fn next_job(&mut self) -> Option<Job> {
        if self.in_flight.is_some() || self.failed.is_some() {
            return None;
        }
        while let Some(work) = self.queue.pop_front() {
            if let Some(job) = work.job() {
                self.in_flight = Some((work, self.now));
                return Some(job);
            }
        }
        None
    }

    /// Whether a backend call is in flight.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The backend returned `outcome` for the job in flight at `now`: its effects are applied and its answer
    /// (with any local answers deferred behind it) returned.
    pub fn complete(&mut self, outcome: Outcome, now: Duration) -> Completion {
        self.now = self.now.max(now);
        let mut done = Completion::default();
        match self.in_flight.take() {
            Some((Work::Serial(w, _), _)) => {
                let (kind, payload) = self.apply(&w.request, outcome);
                // A session closed meanwhile (watchdog, a new HELLO): its host is gone, the answer too.
                if w.session.is_some() && w.session == self.session {
                    done.serial = self.answer(w.key, kind, payload);
                }
            }
            Some((Work::Modbus(ticket, work, _), _)) => done.modbus.push((ticket, self.apply_modbus(work, outcome))),
            Some((Work::Safe, _)) | None => {}
        }
        while let Some(Work::Serial(_, None)) = self.queue.front() {
            if let Some(Work::Serial(w, _)) = self.queue.pop_front() {
                let (kind, payload) = self.plan(&w.request).err().unwrap_or((code::OK, Vec::new()));
                done.serial.extend(self.answer(w.key, kind, payload));
            }
        }
        done
    }

    /// The backend failed (panicked) on the job in flight and went safe: the request is answered with the
    /// failure (Modbus: exception 04), and the device restarts (session closed). With `permanent`, the device
    /// gives up: it stays safe and answers every later request with this failure.
    pub fn fail(&mut self, why: &str, permanent: bool) -> Completion {
        let mut done = Completion::default();
        let message = format!("device failure: {why}; the device went safe");
        let fault = kind_code(ErrorKind::DeviceFault);
        let in_flight = self.in_flight.take().map(|(w, _)| w);
        let dropped: Vec<Work> = if permanent { self.queue.drain(..).collect() } else { Vec::new() };
        for work in in_flight.into_iter().chain(dropped) {
            match work {
                Work::Serial(w, _) if w.session.is_some() && w.session == self.session => {
                    let bytes = self.packet(code::ERROR, w.key.seq, encode_error(fault, &message));
                    done.serial.extend(bytes);
                }
                Work::Modbus(ticket, work, _) => {
                    self.regs.fail(work);
                    done.modbus.push((ticket, Err(ExceptionCode::ServerDeviceFailure)));
                }
                _ => {}
            }
        }
        self.reset();
        if permanent {
            self.failed = Some(why.to_string());
        }
        done
    }
}
