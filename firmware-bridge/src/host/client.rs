//! The host side of the serial control link: handshake, requests with timeouts and bounded retries,
//! heartbeats, and the exposure rule (never re-sent without asking the device first).
//!
//! The client takes any `Read + Write` transport whose reads return within a bounded time: with data, or with
//! `TimedOut`/`WouldBlock` (a serial port with a timeout, a pseudo-terminal, an in-memory pipe). Deadlines are
//! measured by a [`TimeSource`], so tests can run on virtual time.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use tomolab_hal::{ErrorKind, ExposureRecord, ExposureRequest};

use crate::error::{BridgeError, kind_from_code};
use crate::protocol::frames::FrameToken;
use crate::protocol::message::{
    DeviceHeartbeat, ExposureOutcome, HelloAck, Request, caps, code, error_code, parse_error, parse_record,
};
use crate::protocol::wire::{PROTOCOL_MAJOR, PROTOCOL_MINOR, Packet, PacketDecoder, PayloadReader, encode_packet};

/// A monotonic time source for deadlines.
pub trait TimeSource {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The host's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicTime(Instant);

impl Default for MonotonicTime {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl TimeSource for MonotonicTime {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Timing and retry policy of the control link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Deadline of one request attempt (an exposure adds its backup time).
    pub command_timeout: Duration,
    /// Attempts after the first, for requests that may be repeated (all but EXPOSE).
    pub retries: u32,
    /// The host sends a heartbeat when it has sent nothing for this long.
    pub heartbeat_interval: Duration,
    /// Deadline for a frame on the frame stream (per attempt).
    pub frame_timeout: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(500),
            retries: 3,
            heartbeat_interval: Duration::from_millis(250),
            frame_timeout: Duration::from_millis(1000),
        }
    }
}

/// Counters of what the client saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Requests sent (first attempts).
    pub requests: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Packets rejected by the decoder (COBS, CRC).
    pub rejected: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Exposure outcomes recovered by QUERY_EXPOSURE.
    pub exposure_queries: u64,
}

/// The host end of the control link.
#[derive(Debug)]
pub struct ControlClient<S, C = MonotonicTime> {
    stream: S,
    clock: C,
    config: LinkConfig,
    decoder: PacketDecoder,
    inbox: std::collections::VecDeque<Packet>,
    seq: u16,
    session: Option<HelloAck>,
    last_tx: Duration,
    next_exposure_id: u32,
    frame_token: FrameToken,
    stats: LinkStats,
}

/// A fresh host nonce for HELLO: distinct per handshake within a process and (with high probability) across
/// processes, so a new host's HELLO is never taken for a retry of an old one. It selects nothing else, so
/// tests stay deterministic.
fn host_nonce() -> u32 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let h = std::collections::hash_map::RandomState::new().hash_one((std::process::id(), n));
    (h as u32) ^ (h >> 32) as u32
}

enum Attempt {
    Answer(Packet),
    NoAnswer,
}

impl<S: Read + Write, C: TimeSource> ControlClient<S, C> {
    /// A client over this transport. No I/O until the first request (which performs the handshake).
    pub fn new(stream: S, clock: C, config: LinkConfig) -> Self {
        Self {
            stream,
            clock,
            config,
            decoder: PacketDecoder::new(),
            inbox: Default::default(),
            seq: 0,
            session: None,
            last_tx: Duration::ZERO,
            next_exposure_id: 1,
            frame_token: FrameToken::default(),
            stats: LinkStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// The device's HELLO_ACK of the open session, if any.
    pub fn session(&self) -> Option<HelloAck> {
        self.session
    }

    /// The frame-stream token of the open session, shared: it follows every new handshake (0 before the
    /// first). A frame reader sends it when it connects ([`crate::host::framesource::TcpFrameSource`]).
    pub fn frame_token(&self) -> FrameToken {
        self.frame_token.clone()
    }

    /// The link policy.
    pub fn config(&self) -> LinkConfig {
        self.config
    }

    /// The time source.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), BridgeError> {
        self.stream.write_all(bytes).and_then(|()| self.stream.flush()).map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => BridgeError::timeout(format!("serial write: {e}")),
            _ => BridgeError::link(format!("serial write: {e}")),
        })?;
        self.last_tx = self.clock.now();
        Ok(())
    }

    /// Reads what the transport has; false when nothing arrived.
    fn pump(&mut self) -> Result<bool, BridgeError> {
        let mut buf = [0u8; 512];
        match self.stream.read(&mut buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                for p in self.decoder.push(&buf[..n]) {
                    match p {
                        Ok(p) => self.inbox.push_back(p),
                        Err(_) => self.stats.rejected += 1,
                    }
                }
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.decoder.reset();
                Ok(false)
            }
            Err(e) => Err(BridgeError::link(format!("serial read: {e}"))),
        }
    }

    /// Sends a host heartbeat if the link has been quiet; call it from an idle loop.
    pub fn heartbeat_if_due(&mut self) -> Result<(), BridgeError> {
        if self.clock.now().saturating_sub(self.last_tx) >= self.config.heartbeat_interval {
            // Heartbeats are unsequenced (seq 0), so they never age the device's duplicate cache.
            let bytes = encode_packet(&Packet {
                version: PROTOCOL_MAJOR,
                kind: code::HEARTBEAT,
                seq: 0,
                ack: 0,
                payload: Vec::new(),
            });
            self.send(&bytes)?;
        }
        // Drain what arrived (device heartbeats) so buffers stay small.
        while self.pump()? {}
        self.drain_heartbeats();
        Ok(())
    }

    fn drain_heartbeats(&mut self) {
        let session = self.session.map(|s| s.session);
        let mut lost = false;
        self.inbox.retain(|p| {
            if p.kind == code::HEARTBEAT {
                if let (Ok(hb), Some(s)) = (DeviceHeartbeat::parse(&p.payload), session) {
                    lost |= hb.session != s;
                }
                false
            } else {
                true
            }
        });
        if lost {
            // The device restarted or closed the session: the next request must HELLO again.
            self.session = None;
        }
    }

    /// One attempt: send, then wait for the packet answering `seq` until the deadline.
    fn attempt(&mut self, bytes: &[u8], seq: u16, timeout: Duration) -> Result<Attempt, BridgeError> {
        self.send(bytes)?;
        let mut deadline = self.clock.now() + timeout;
        loop {
            while let Some(p) = self.inbox.pop_front() {
                if p.kind == code::HEARTBEAT {
                    // A device heartbeat acking this request: still working on it (a slow frame), so the
                    // deadline moves on (issue 14 item 7; docs/protocol.md).
                    if seq != 0 && p.ack == seq {
                        deadline = self.clock.now() + timeout;
                    }
                    if let (Ok(hb), Some(s)) = (DeviceHeartbeat::parse(&p.payload), self.session)
                        && hb.session != s.session
                        && p.ack == 0
                    {
                        self.session = None;
                    }
                    continue;
                }
                if p.ack == seq && matches!(p.kind, code::OK | code::ERROR | code::HELLO_ACK) {
                    return Ok(Attempt::Answer(p));
                }
                // A stale answer to an earlier attempt or request: ignore.
            }
            let now = self.clock.now();
            if now >= deadline {
                self.stats.timeouts += 1;
                return Ok(Attempt::NoAnswer);
            }
            if now.saturating_sub(self.last_tx) >= self.config.heartbeat_interval {
                let hb = encode_packet(&Packet {
                    version: PROTOCOL_MAJOR,
                    kind: code::HEARTBEAT,
                    seq: 0,
                    ack: 0,
                    payload: Vec::new(),
                });
                self.send(&hb)?;
            }
            self.pump()?;
        }
    }

    fn encode_request(&mut self, req: &Request) -> (u16, Vec<u8>) {
        let seq = self.next_seq();
        let bytes =
            encode_packet(&Packet { version: PROTOCOL_MAJOR, kind: req.code(), seq, ack: 0, payload: req.payload() });
        (seq, bytes)
    }

    /// Sends with retries (same sequence number, so the device answers a repeat from its cache).
    fn exchange(&mut self, req: &Request, timeout: Duration, retries: u32) -> Result<Packet, BridgeError> {
        self.stats.requests += 1;
        let (seq, bytes) = self.encode_request(req);
        for _ in 0..=retries {
            if let Attempt::Answer(p) = self.attempt(&bytes, seq, timeout)? {
                return Ok(p);
            }
        }
        Err(BridgeError::timeout(format!(
            "no answer to request type {:#04x} after {} attempts",
            req.code(),
            retries + 1
        )))
    }

    /// Opens a session: HELLO, version and capability check.
    pub fn handshake(&mut self) -> Result<HelloAck, BridgeError> {
        self.session = None;
        self.decoder.reset();
        self.inbox.clear();
        let req = Request::Hello { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR, caps: caps::ALL, nonce: host_nonce() };
        let p = self.exchange(&req, self.config.command_timeout, self.config.retries)?;
        if p.kind == code::ERROR {
            let (c, m) = parse_error(&p.payload).unwrap_or((0, String::new()));
            let kind = if c == error_code::VERSION { ErrorKind::Refused } else { kind_from_code(c) };
            return Err(BridgeError::new(kind, format!("HELLO refused: {m}")));
        }
        let ack = HelloAck::parse(&p.payload).map_err(|e| BridgeError::link(format!("HELLO_ACK: {e}")))?;
        if ack.major != PROTOCOL_MAJOR || p.version != PROTOCOL_MAJOR {
            return Err(BridgeError::new(
                ErrorKind::Refused,
                format!("device speaks protocol {}.{}, host {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}", ack.major, ack.minor),
            ));
        }
        let needed = caps::TUBE | caps::DETECTOR | caps::INTERLOCKS | caps::EXPOSURE_QUERY;
        if ack.caps & needed != needed {
            return Err(BridgeError::new(
                ErrorKind::Refused,
                format!("device capabilities {:#x} lack {needed:#x}", ack.caps),
            ));
        }
        self.session = Some(ack);
        self.frame_token.set(ack.frame_token);
        self.stats.handshakes += 1;
        Ok(ack)
    }

    fn ensure_session(&mut self) -> Result<u32, BridgeError> {
        // Drop what was already received (answers to abandoned requests, heartbeats); anything still in flight
        // is ignored by its ack. No blocking read here: it would add a read timeout to every request.
        self.drain_heartbeats();
        self.inbox.clear();
        match self.session {
            Some(s) => Ok(s.session),
            None => self.handshake().map(|a| a.session),
        }
    }

    fn answer(&mut self, p: Packet, what: &str) -> Result<Vec<u8>, BridgeError> {
        match p.kind {
            code::OK => Ok(p.payload),
            code::ERROR => {
                let (c, m) = parse_error(&p.payload).map_err(|e| BridgeError::link(format!("{what}: {e}")))?;
                if c == error_code::NO_SESSION || c == error_code::STALE_SESSION {
                    self.session = None;
                    return Err(BridgeError::link(format!(
                        "{what}: device has no session or another one (restarted, link lost, another host)"
                    )));
                }
                Err(BridgeError::new(kind_from_code(c), format!("{what}: {m}")))
            }
            other => Err(BridgeError::link(format!("{what}: unexpected answer type {other:#04x}"))),
        }
    }

    /// Sends a repeatable request and returns the OK payload.
    pub fn request(&mut self, req: &Request) -> Result<Vec<u8>, BridgeError> {
        self.ensure_session()?;
        let p = self.exchange(req, self.config.command_timeout, self.config.retries)?;
        self.answer(p, &format!("request {:#04x}", req.code()))
    }

    /// Fires one exposure. Sent once; if the answer is lost the device is asked what became of it, and only
    /// an exposure the device confirms it never saw is sent again (with the same id, which the device never
    /// fires twice). A device restart in between gives a `Link` error: the outcome is unknown and the caller
    /// must treat it as a fault.
    pub fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, BridgeError> {
        let session = self.ensure_session()?;
        let id = self.next_exposure_id;
        self.next_exposure_id = self.next_exposure_id.wrapping_add(1);
        let req = Request::Expose { session, id, request: *request };
        let timeout = self.config.command_timeout + request.backup_time;
        self.stats.requests += 1;
        let (seq, bytes) = self.encode_request(&req);
        let mut attempts = 0;
        loop {
            if let Attempt::Answer(p) = self.attempt(&bytes, seq, timeout)? {
                let payload = self.answer(p, "expose")?;
                return parse_record(&mut PayloadReader::new(&payload))
                    .map_err(|e| BridgeError::link(format!("expose: {e}")));
            }
            // No answer: ask, never re-send blindly.
            attempts += 1;
            if attempts > self.config.retries {
                return Err(BridgeError::timeout(format!("exposure {id}: outcome unknown after {attempts} queries")));
            }
            self.stats.exposure_queries += 1;
            let outcome = match self.exchange(
                &Request::QueryExposure { session, id },
                self.config.command_timeout,
                self.config.retries,
            ) {
                Ok(p) => self.answer(p, "query exposure")?,
                Err(e) => {
                    return Err(BridgeError::new(e.kind, format!("exposure {id}: outcome unknown: {}", e.message)));
                }
            };
            if self.session.map(|s| s.session) != Some(session) {
                return Err(BridgeError::link(format!(
                    "exposure {id}: device restarted; outcome unknown, not re-sent"
                )));
            }
            match ExposureOutcome::parse(&outcome).map_err(|e| BridgeError::link(format!("query exposure: {e}")))? {
                ExposureOutcome::Done(r) => return Ok(r),
                ExposureOutcome::Failed(c, m) => {
                    return Err(BridgeError::new(kind_from_code(c), format!("expose: {m}")));
                }
                // The device never saw it: sending it (same id) cannot fire twice.
                ExposureOutcome::Unknown => {}
            }
        }
    }
}
