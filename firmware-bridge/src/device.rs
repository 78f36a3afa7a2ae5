//! The virtual device: any HAL backend served over the bridge's protocols, as sans-I/O state machines.
//!
//! [`VirtualDevice`] owns one unit's devices (the mock today, the simulator tomorrow, any `T: XrayTube, G:
//! Gantry, ...`) and speaks the device side of every link: it takes serial bytes and returns the bytes to send,
//! answers Modbus register reads and writes, and queues detector frames for the frame stream. It never touches
//! a socket or a clock itself: the caller passes the time. The threaded server ([`crate::server`]) and the
//! single-threaded test harness ([`crate::sim`]) drive the same code.

use std::collections::VecDeque;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tokio_modbus::ExceptionCode;
use tomolab_hal::Devices;
use tomolab_hal::{
    CompressionPaddle, Degrees, Detector, Error, ErrorKind, ExposureRequest, Frame, Gantry, Interlocks, Newtons,
    Technique, XrayTube,
};

use crate::error::kind_code;
use crate::frames::{FrameKind, FrameMessage, FrameToken, data_crc};
use crate::message::{
    DeviceHeartbeat, ExposureOutcome, FrameReady, HelloAck, Request, caps, code, encode_error, encode_geometry,
    encode_interlocks, encode_record, error_code,
};
use crate::regs::*;
use crate::wire::{PROTOCOL_MAJOR, PROTOCOL_MINOR, Packet, PacketDecoder, encode_packet};

/// Fixed behaviour of the virtual device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceConfig {
    /// Without a valid packet from the host for this long, the device goes safe and closes the session.
    pub link_timeout: Duration,
    /// Interval of the device's heartbeats.
    pub heartbeat_interval: Duration,
    /// Firmware version reported in HELLO_ACK.
    pub firmware: (u16, u16, u16),
    /// Protocol major reported in HELLO_ACK (tests set another to check refusal).
    pub protocol_major: u8,
    /// Frames kept for RESEND_FRAME.
    pub frame_history: usize,
    /// Seed of the device's random draws (session ids, frame tokens). A real unit seeds it from a hardware
    /// RNG at boot; the draws continue across [`VirtualDevice::reset`], so a restarted device announces a new
    /// session id.
    pub boot_nonce: u32,
    /// The generator's own technique limits, checked on SET_TECHNIQUE and EXPOSE whatever the host checked.
    pub limits: GeneratorLimits,
    /// Compression force window (min, max) in N that the paddle must read for an EXPOSE to fire; `None` is the
    /// service mode without the compression interlock (QC on a bare detector, the HAL's tube contract suite).
    pub compression_window_n: Option<(f64, f64)>,
}

/// The virtual generator's limits (inclusive ranges), those of a typical mammography generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorLimits {
    /// Tube voltage, kV (mammography: 20-49 kV).
    pub kvp: (f64, f64),
    /// Tube current, mA.
    pub tube_current_ma: (f64, f64),
    /// Tube current-time product per exposure, mAs (technique and EXPOSE).
    pub mas: (f64, f64),
    /// Longest planned exposure (mAs / mA).
    pub max_exposure_time: Duration,
    /// Longest backup time of an EXPOSE (must also be non-zero).
    pub max_backup_time: Duration,
    /// Added filter thickness, mm.
    pub filter_thickness_mm: (f64, f64),
}

impl Default for GeneratorLimits {
    fn default() -> Self {
        Self {
            kvp: (20.0, 49.0),
            tube_current_ma: (0.5, 500.0),
            mas: (0.01, 600.0),
            max_exposure_time: Duration::from_secs(10),
            max_backup_time: Duration::from_secs(10),
            filter_thickness_mm: (0.001, 3.0),
        }
    }
}

fn within(field: &str, value: f64, (lo, hi): (f64, f64), unit: &str) -> Result<(), String> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!("{field} {value} {unit} outside the generator's limits {lo}..={hi} {unit}"))
    }
}

impl GeneratorLimits {
    /// Checks a technique; the error names the field, its value and the limit.
    pub fn check_technique(&self, t: &Technique) -> Result<(), String> {
        within("kvp", t.kvp.get(), self.kvp, "kV")?;
        within("tube_current", t.tube_current.get(), self.tube_current_ma, "mA")?;
        within("mas_per_view", t.mas_per_view.get(), self.mas, "mAs")?;
        within("filter_thickness", t.filter.thickness_mm, self.filter_thickness_mm, "mm")?;
        self.check_time(t.mas_per_view.get(), t.tube_current.get())
    }

    fn check_time(&self, mas: f64, ma: f64) -> Result<(), String> {
        let max_s = self.max_exposure_time.as_secs_f64();
        let time_s = mas / ma;
        if time_s.is_finite() && time_s <= max_s {
            Ok(())
        } else {
            Err(format!("exposure time {mas} mAs / {ma} mA = {time_s} s exceeds the generator's {max_s} s"))
        }
    }

    /// Checks an exposure request against the limits and the loaded technique (if any).
    pub fn check_request(&self, r: &ExposureRequest, technique: Option<&Technique>) -> Result<(), String> {
        within("mas", r.mas.get(), self.mas, "mAs")?;
        if r.backup_time.is_zero() || r.backup_time > self.max_backup_time {
            return Err(format!(
                "backup_time {} ns outside the generator's limits 1..={} ns",
                r.backup_time.as_nanos(),
                self.max_backup_time.as_nanos()
            ));
        }
        match technique {
            Some(t) => self.check_time(r.mas.get(), t.tube_current.get()),
            None => Ok(()),
        }
    }
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            link_timeout: Duration::from_millis(1500),
            heartbeat_interval: Duration::from_millis(250),
            firmware: (1, 0, 0),
            protocol_major: PROTOCOL_MAJOR,
            frame_history: 4,
            boot_nonce: 0x5EED_0001,
            limits: GeneratorLimits::default(),
            compression_window_n: Some((20.0, 200.0)),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct CommandBlock {
    status: u16,
    error: u16,
    count: u16,
    command: u16,
}

impl CommandBlock {
    fn finish<E: Error>(&mut self, command: u16, result: Result<(), E>) {
        self.command = command;
        self.count = self.count.wrapping_add(1);
        match result {
            Ok(()) => {
                self.status = STATUS_DONE;
                self.error = 0;
            }
            Err(e) => {
                self.status = STATUS_FAULT;
                self.error = u16::from(kind_code(e.kind()));
            }
        }
    }
}

/// Counters of what the device saw (for tests and the HIL report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Valid packets received.
    pub packets: u64,
    /// Packets rejected (COBS, CRC, length).
    pub rejected: u64,
    /// Requests answered from the duplicate cache instead of executed.
    pub duplicates: u64,
    /// Times the device went to its safe state (link loss, reset).
    pub safe_events: u64,
    /// Exposures fired (backend `expose` calls).
    pub exposures_fired: u64,
    /// HELLOs accepted.
    pub sessions: u64,
}

/// The device side of every link, over any HAL backend.
#[derive(Debug)]
pub struct VirtualDevice<T, G, D, P, I> {
    devices: Devices<T, G, D, P, I>,
    config: DeviceConfig,
    decoder: PacketDecoder,
    session: Option<u32>,
    rng: ChaCha8Rng,
    frame_token: FrameToken,
    cache: Option<Cached>,
    tx_seq: u16,
    last_rx: Duration,
    last_hb: Option<Duration>,
    technique: Option<Technique>,
    exposures: SessionExposures,
    fired: Vec<(u32, u32)>,
    frame_seq: u64,
    recent: VecDeque<FrameMessage>,
    outbox: Vec<FrameMessage>,
    gantry: CommandBlock,
    gantry_target: [u16; 4],
    gantry_speed: [u16; 4],
    gantry_result: f64,
    paddle: CommandBlock,
    paddle_target: [u16; 4],
    paddle_result: (f64, f64),
    stats: DeviceStats,
}

/// The last request answered and its answer (the duplicate cache), keyed on the whole request.
#[derive(Debug)]
struct Cached {
    seq: u16,
    version: u8,
    kind: u8,
    payload: Vec<u8>,
    answer: Vec<u8>,
}

/// Exposure bookkeeping of one session: ids strictly increase; only the last one is held (for its retry and
/// QUERY_EXPOSURE), and DISABLE drops it.
#[derive(Debug, Default)]
struct SessionExposures {
    highest: Option<u32>,
    last: Option<(u32, ExposureRequest, ExposureOutcome)>,
}

fn same_request(a: &ExposureRequest, b: &ExposureRequest) -> bool {
    a.mas.get().to_bits() == b.mas.get().to_bits() && a.backup_time == b.backup_time
}

fn error_packet_payload<E: Error>(e: &E) -> Vec<u8> {
    encode_error(kind_code(e.kind()), &e.to_string())
}

impl<T, G, D, P, I> VirtualDevice<T, G, D, P, I>
where
    T: XrayTube,
    G: Gantry,
    D: Detector,
    P: CompressionPaddle,
    I: Interlocks,
{
    /// A device serving these backend devices.
    pub fn new(devices: Devices<T, G, D, P, I>, config: DeviceConfig) -> Self {
        Self {
            devices,
            config,
            decoder: PacketDecoder::new(),
            session: None,
            rng: ChaCha8Rng::seed_from_u64(u64::from(config.boot_nonce)),
            frame_token: FrameToken::default(),
            cache: None,
            tx_seq: 0,
            last_rx: Duration::ZERO,
            last_hb: None,
            technique: None,
            exposures: SessionExposures::default(),
            fired: Vec::new(),
            frame_seq: 0,
            recent: VecDeque::new(),
            outbox: Vec::new(),
            gantry: CommandBlock::default(),
            gantry_target: [0; 4],
            gantry_speed: [0; 4],
            gantry_result: 0.0,
            paddle: CommandBlock::default(),
            paddle_target: [0; 4],
            paddle_result: (0.0, 0.0),
            stats: DeviceStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    /// Exposure ids fired (backend `expose` calls), in order, without their sessions; ids repeat across
    /// sessions (every host starts at 1), see [`Self::fired`].
    pub fn fired_ids(&self) -> Vec<u32> {
        self.fired.iter().map(|&(_, id)| id).collect()
    }

    /// Exposures fired as (session id, exposure id), in order; each pair at most once.
    pub fn fired(&self) -> &[(u32, u32)] {
        &self.fired
    }

    /// The open session's id.
    pub fn session_id(&self) -> Option<u32> {
        self.session
    }

    /// The frame token of the open session, shared: the frame-stream server checks a connecting reader's
    /// token against it (0 while no session is open).
    pub fn frame_token(&self) -> FrameToken {
        self.frame_token.clone()
    }

    /// Uses this shared cell for the frame token (the frame-stream server holds a clone and checks readers
    /// against it).
    pub fn share_frame_token(&mut self, token: FrameToken) {
        token.set(self.frame_token.get());
        self.frame_token = token;
    }

    /// Closes the session: its reply cache, exposure ids and frame token are forgotten.
    fn close_session(&mut self) {
        self.session = None;
        self.cache = None;
        // The loaded technique is the generator's state, not the session's: it stays for the exposure-time check.
        self.exposures = SessionExposures::default();
        self.frame_token.set(0);
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

    /// Whether a host session is open.
    pub fn session_open(&self) -> bool {
        self.session.is_some()
    }

    /// The backend devices.
    pub fn devices_mut(&mut self) -> &mut Devices<T, G, D, P, I> {
        &mut self.devices
    }

    /// Tube disabled, motion stopped, detector disarmed, paddle released; every step attempted.
    pub fn go_safe(&mut self) {
        self.stats.safe_events += 1;
        let _ = self.devices.tube.disable();
        let _ = self.devices.gantry.stop();
        let _ = self.devices.detector.disarm();
        let _ = self.devices.paddle.release();
    }

    /// A restart: the device goes safe and forgets its session, caches and frames, as firmware does on reboot.
    pub fn reset(&mut self) {
        self.go_safe();
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

    /// Takes serial bytes received at `now`; returns the bytes to send back.
    pub fn on_serial_bytes(&mut self, bytes: &[u8], now: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        for decoded in self.decoder.push(bytes) {
            match decoded {
                Ok(p) => {
                    self.stats.packets += 1;
                    self.last_rx = now;
                    out.extend(self.on_packet(p, now));
                }
                Err(_) => self.stats.rejected += 1,
            }
        }
        out
    }

    /// Time passes: heartbeats and the link watchdog. Returns bytes to send.
    pub fn poll(&mut self, now: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        if self.session.is_some() && now.saturating_sub(self.last_rx) > self.config.link_timeout {
            // Link lost: make safe, close the session; the host must HELLO again.
            self.go_safe();
            self.close_session();
        }
        if self.session.is_some()
            && self.last_hb.is_none_or(|t| now.saturating_sub(t) >= self.config.heartbeat_interval)
        {
            self.last_hb = Some(now);
            let hb = DeviceHeartbeat {
                session: self.session.unwrap_or(0),
                uptime_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            };
            out.extend(self.packet(code::HEARTBEAT, 0, hb.encode()));
        }
        out
    }

    /// Frames to send on the frame stream (drains the queue).
    pub fn take_frames(&mut self) -> Vec<FrameMessage> {
        std::mem::take(&mut self.outbox)
    }

    fn on_packet(&mut self, p: Packet, now: Duration) -> Vec<u8> {
        if p.kind == code::HEARTBEAT {
            return Vec::new();
        }
        if let Some(c) = &self.cache
            && c.seq == p.seq
        {
            if (c.version, c.kind, c.payload.as_slice()) == (p.version, p.kind, p.payload.as_slice()) {
                // A retry of the request just answered: resend the answer, never execute twice.
                self.stats.duplicates += 1;
                return c.answer.clone();
            }
            if p.kind != code::HELLO {
                // Same number, other request: not a retry. Refused, and the cached answer is kept for the real
                // retry. (A HELLO is always served: a new host may start at the last request's number.)
                let payload = encode_error(error_code::SEQ_REUSED, "sequence number reused with a different request");
                return self.packet(code::ERROR, p.seq, payload);
            }
        }
        if p.version != self.config.protocol_major {
            let payload = encode_error(error_code::VERSION, "protocol major version not supported");
            return self.packet(code::ERROR, p.seq, payload);
        }
        let request = match Request::parse(p.kind, &p.payload) {
            Ok(r) => r,
            Err(e) => return self.packet(code::ERROR, p.seq, encode_error(error_code::BAD_REQUEST, &e.to_string())),
        };
        let (kind, payload) = match request {
            Request::Hello { major, .. } => {
                if major != self.config.protocol_major {
                    (code::ERROR, encode_error(error_code::VERSION, "protocol major version not supported"))
                } else {
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
            }
            _ if self.session.is_none() => {
                (code::ERROR, encode_error(error_code::NO_SESSION, "no session: send HELLO"))
            }
            other => match self.execute(other, now) {
                Ok(payload) => (code::OK, payload),
                Err(payload) => (code::ERROR, payload),
            },
        };
        let bytes = self.packet(kind, p.seq, payload);
        self.cache =
            Some(Cached { seq: p.seq, version: p.version, kind: p.kind, payload: p.payload, answer: bytes.clone() });
        bytes
    }

    fn push_frame(&mut self, frame: Frame, kind: FrameKind, now: Duration) -> Vec<u8> {
        self.frame_seq += 1;
        let msg = FrameMessage {
            seq: self.frame_seq,
            view: u32::try_from(self.stats.exposures_fired).unwrap_or(u32::MAX),
            kind,
            timestamp: now,
            frame,
        };
        let ready = FrameReady {
            seq: msg.seq,
            cols: u32::try_from(msg.frame.cols).unwrap_or(u32::MAX),
            rows: u32::try_from(msg.frame.rows).unwrap_or(u32::MAX),
            data_crc: data_crc(&msg.frame),
        };
        self.recent.push_back(msg.clone());
        while self.recent.len() > self.config.frame_history {
            self.recent.pop_front();
        }
        self.outbox.push(msg);
        ready.encode()
    }

    fn execute(&mut self, request: Request, now: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let err = |e: &dyn ErrorLike| encode_error(e.code(), &e.text());
        match request {
            Request::Hello { .. } => Ok(Vec::new()),
            Request::SetTechnique(t) => {
                if let Err(m) = self.config.limits.check_technique(&t) {
                    return Err(encode_error(error_code::TECHNIQUE_LIMIT, &format!("set technique: {m}")));
                }
                self.technique = None;
                self.devices.tube.set_technique(&t).map_err(|e| err(&e))?;
                self.technique = Some(t);
                Ok(Vec::new())
            }
            Request::Prepare => self.devices.tube.prepare().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::Expose { session, id, request } => self.expose(session, id, request),
            Request::QueryExposure { session, id } => {
                if Some(session) != self.session {
                    return Err(encode_error(error_code::STALE_SESSION, "query exposure: not this session's id"));
                }
                let ex = &self.exposures;
                Ok(match &ex.last {
                    Some((last, _, outcome)) if *last == id => outcome.encode(),
                    _ if ex.highest.is_some_and(|h| id <= h) => ExposureOutcome::Failed(
                        error_code::EXPOSURE_ID_REUSED,
                        format!("exposure {id} is no longer held (superseded or disabled)"),
                    )
                    .encode(),
                    _ => ExposureOutcome::Unknown.encode(),
                })
            }
            Request::Disable => {
                // A stale exposure id never answers OK after DISABLE: the held record is dropped (the ids stay
                // used).
                self.exposures.last = None;
                self.devices.tube.disable().map(|()| Vec::new()).map_err(|e| err(&e))
            }
            Request::Interlocks => {
                let open = self.session.is_some();
                let d = &mut self.devices;
                d.interlocks
                    .status()
                    .map(|mut s| {
                        s.link_alive &= open;
                        encode_interlocks(&s)
                    })
                    .map_err(|e| err(&e))
            }
            Request::DetectorGeometry => Ok(encode_geometry(&self.devices.detector.geometry())),
            Request::Arm => self.devices.detector.arm().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::Disarm => self.devices.detector.disarm().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::ReadFrame => match self.devices.detector.read_frame() {
                Ok(f) => Ok(self.push_frame(f, FrameKind::Readout, now)),
                Err(e) => Err(err(&e)),
            },
            Request::FloodFrame => match self.devices.detector.flood_frame() {
                Ok(f) => Ok(self.push_frame(f, FrameKind::Flood, now)),
                Err(e) => Err(err(&e)),
            },
            Request::ResendFrame { seq } => match self.recent.iter().find(|m| m.seq == seq) {
                Some(m) => {
                    let m = m.clone();
                    let ready = FrameReady {
                        seq: m.seq,
                        cols: u32::try_from(m.frame.cols).unwrap_or(u32::MAX),
                        rows: u32::try_from(m.frame.rows).unwrap_or(u32::MAX),
                        data_crc: data_crc(&m.frame),
                    };
                    self.outbox.push(m);
                    Ok(ready.encode())
                }
                None => Err(encode_error(kind_code(ErrorKind::NotReady), "frame no longer held")),
            },
        }
    }

    /// EXPOSE: fires at most once per (session, id), and only within the generator's limits and the
    /// compression window.
    fn expose(&mut self, session: u32, id: u32, request: ExposureRequest) -> Result<Vec<u8>, Vec<u8>> {
        if Some(session) != self.session {
            return Err(encode_error(error_code::STALE_SESSION, "expose: not this session's id; no beam"));
        }
        if let Some((last, held, outcome)) = &self.exposures.last
            && *last == id
        {
            if !same_request(held, &request) {
                let m = format!("expose: exposure id {id} already used with another request; no beam");
                return Err(encode_error(error_code::EXPOSURE_ID_REUSED, &m));
            }
            // The retry of the last exposure: its record, never a second beam.
            return match outcome {
                ExposureOutcome::Done(r) => Ok(encode_record(r)),
                ExposureOutcome::Failed(c, m) => Err(encode_error(*c, m)),
                ExposureOutcome::Unknown => Err(encode_error(kind_code(ErrorKind::Other), "unknown")),
            };
        }
        if let Some(h) = self.exposures.highest
            && id <= h
        {
            let m = format!("expose: exposure id {id} already used in this session (last {h}); no beam");
            return Err(encode_error(error_code::EXPOSURE_ID_REUSED, &m));
        }
        self.exposures.highest = Some(id);
        let (outcome, reply) = match self.check_exposure(&request) {
            Err((c, m)) => (ExposureOutcome::Failed(c, m.clone()), Err(encode_error(c, &m))),
            Ok(()) => {
                self.stats.exposures_fired += 1;
                self.fired.push((session, id));
                match self.devices.tube.expose(&request) {
                    Ok(r) => (ExposureOutcome::Done(r), Ok(encode_record(&r))),
                    Err(e) => {
                        let c = kind_code(e.kind());
                        (ExposureOutcome::Failed(c, e.to_string()), Err(error_packet_payload(&e)))
                    }
                }
            }
        };
        self.exposures.last = Some((id, request, outcome));
        reply
    }

    /// The device's own checks before a beam: generator limits, then the compression window.
    fn check_exposure(&mut self, request: &ExposureRequest) -> Result<(), (u8, String)> {
        let limit = |m: String| (error_code::TECHNIQUE_LIMIT, format!("expose: {m}; no beam"));
        self.config.limits.check_request(request, self.technique.as_ref()).map_err(limit)?;
        if let Some((lo, hi)) = self.config.compression_window_n {
            let force = self.devices.paddle.state().map(|c| c.force.get()).map_err(|e| {
                (error_code::NO_COMPRESSION, format!("expose: compression force unreadable ({e}); no beam"))
            })?;
            if !(force.is_finite() && (lo..=hi).contains(&force)) {
                return Err((
                    error_code::NO_COMPRESSION,
                    format!("expose: compression force {force} N outside the exposure window {lo}..={hi} N; no beam"),
                ));
            }
        }
        Ok(())
    }

    // ---- Modbus ----

    fn in_map(addr: u16, count: u16) -> bool {
        let end = u32::from(addr) + u32::from(count);
        (end <= u32::from(GANTRY_END)) || (addr >= PADDLE_FORCE_DN && end <= u32::from(PADDLE_END))
    }

    /// Answers a register read (function 03 or 04).
    pub fn modbus_read(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        if count == 0 || count > MAX_READ {
            return Err(ExceptionCode::IllegalDataValue);
        }
        if !Self::in_map(addr, count) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        // in_map guarantees addr + count <= PADDLE_END, so this cannot wrap.
        let end = addr.saturating_add(count);
        let overlaps = |lo: u16, hi: u16| addr < hi && end > lo;
        let mut image = vec![0u16; usize::from(PADDLE_END)];
        if overlaps(GANTRY_ANGLE_MDEG, GANTRY_STATUS) {
            let angle = self.devices.gantry.position().map_err(|_| ExceptionCode::ServerDeviceFailure)?.get();
            // Saturating (`as` on a float): a backend reporting a non-finite angle cannot panic the device.
            let mdeg = (angle * 1000.0).round() as i32;
            image[0..2].copy_from_slice(&i32_to_regs(mdeg));
            image[2..6].copy_from_slice(&f64_to_regs(angle));
        }
        if overlaps(PADDLE_FORCE_DN, PADDLE_STATUS) {
            let c = self.devices.paddle.state().map_err(|_| ExceptionCode::ServerDeviceFailure)?;
            let (f, t) = (c.force.get(), c.thickness.get());
            image[100] = (f * 10.0).round().clamp(0.0, 65535.0) as u16;
            image[101] = (t * 100.0).round().clamp(0.0, 65535.0) as u16;
            image[102..106].copy_from_slice(&f64_to_regs(f));
            image[106..110].copy_from_slice(&f64_to_regs(t));
        }
        image[6] = self.gantry.status;
        image[7] = self.gantry.error;
        image[8] = self.gantry.count;
        image[10..14].copy_from_slice(&f64_to_regs(self.gantry_result));
        image[16..20].copy_from_slice(&self.gantry_target);
        image[20..24].copy_from_slice(&self.gantry_speed);
        image[24] = self.gantry.command;
        image[110] = self.paddle.status;
        image[111] = self.paddle.error;
        image[112] = self.paddle.count;
        image[116..120].copy_from_slice(&self.paddle_target);
        image[120] = self.paddle.command;
        image[124..128].copy_from_slice(&f64_to_regs(self.paddle_result.0));
        image[128..132].copy_from_slice(&f64_to_regs(self.paddle_result.1));
        Ok(image[usize::from(addr)..usize::from(end)].to_vec())
    }

    /// Answers a register write (function 06 or 16); a write covering a command register runs the command.
    pub fn modbus_write(&mut self, addr: u16, values: &[u16]) -> Result<(), ExceptionCode> {
        let count = u16::try_from(values.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
        if count == 0 || count > 123 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        // In u32: a range wrapping past 65535 (FC06 at 65535, FC16 at 65520 with 41 registers) must not fold
        // back onto the command registers (issue 14 item 4).
        let (start, end) = (u32::from(addr), u32::from(addr) + u32::from(count));
        let gantry = start >= u32::from(GANTRY_TARGET_DEG) && end <= u32::from(GANTRY_END);
        let paddle = start >= u32::from(PADDLE_TARGET_N) && end <= u32::from(PADDLE_COMMAND) + 1;
        if !(gantry || paddle) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let mut command = None;
        for (a, &v) in (addr..).zip(values) {
            match a {
                16..=19 => self.gantry_target[usize::from(a - 16)] = v,
                20..=23 => self.gantry_speed[usize::from(a - 20)] = v,
                GANTRY_COMMAND => command = Some((true, v)),
                116..=119 => self.paddle_target[usize::from(a - 116)] = v,
                PADDLE_COMMAND => command = Some((false, v)),
                _ => {}
            }
        }
        match command {
            Some((true, c)) => self.gantry_command(c),
            Some((false, c)) => self.paddle_command(c),
            None => Ok(()),
        }
    }

    fn gantry_command(&mut self, c: u16) -> Result<(), ExceptionCode> {
        let target = regs_to_f64(&self.gantry_target);
        let speed = regs_to_f64(&self.gantry_speed);
        let angle = || Degrees::new(target).map_err(|_| ExceptionCode::IllegalDataValue);
        let g = &mut self.devices.gantry;
        let result = match c {
            GANTRY_CMD_MOVE => g.move_to(angle()?),
            GANTRY_CMD_SWEEP => {
                // The controller's own speed range: 1e-300 deg/s would make an AWAIT last 1e300 s (issue 14
                // item 5); whatever the backend does with it, such a value never leaves the wire decoder.
                if !(speed.is_finite() && (MIN_SWEEP_SPEED..=MAX_SWEEP_SPEED).contains(&speed)) {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                g.start_sweep(angle()?, speed)
            }
            GANTRY_CMD_AWAIT => g.await_angle(angle()?).map(|a| self.gantry_result = a.get()),
            GANTRY_CMD_STOP => g.stop(),
            _ => return Err(ExceptionCode::IllegalDataValue),
        };
        self.gantry.finish(c, result);
        Ok(())
    }

    fn paddle_command(&mut self, c: u16) -> Result<(), ExceptionCode> {
        let target = regs_to_f64(&self.paddle_target);
        let p = &mut self.devices.paddle;
        let result = match c {
            PADDLE_CMD_COMPRESS => {
                let force = Newtons::new(target).map_err(|_| ExceptionCode::IllegalDataValue)?;
                p.compress(force).map(|comp| self.paddle_result = (comp.force.get(), comp.thickness.get()))
            }
            PADDLE_CMD_RELEASE => p.release(),
            _ => return Err(ExceptionCode::IllegalDataValue),
        };
        self.paddle.finish(c, result);
        Ok(())
    }
}

/// A backend error as wire code and text (object-safe view of any `hal::Error`).
trait ErrorLike {
    fn code(&self) -> u8;
    fn text(&self) -> String;
}

impl<E: Error> ErrorLike for E {
    fn code(&self) -> u8 {
        kind_code(self.kind())
    }
    fn text(&self) -> String {
        self.to_string()
    }
}
