//! The virtual device: any HAL backend served over the bridge's protocols, as sans-I/O state machines.
//!
//! [`VirtualDevice`] owns one unit's devices (the mock today, the simulator tomorrow, any `T: XrayTube, G:
//! Gantry, ...`) and speaks the device side of every link: it takes serial bytes and returns the bytes to send,
//! answers Modbus register reads and writes, and queues detector frames for the frame stream. It never touches
//! a socket or a clock itself: the caller passes the time. The threaded server ([`crate::server`]) and the
//! single-threaded test harness ([`crate::sim`]) drive the same code.

use std::collections::VecDeque;
use std::time::Duration;

use tokio_modbus::ExceptionCode;
use tomolab_hal::sequencer::Devices;
use tomolab_hal::{
    CompressionPaddle, Degrees, Detector, Error, ErrorKind, Frame, Gantry, Interlocks, Newtons, XrayTube,
};

use crate::error::kind_code;
use crate::frames::{FrameKind, FrameMessage, data_crc};
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
    /// Seed of session ids (so a restarted device announces a new one).
    pub boot_nonce: u32,
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
    sessions_opened: u32,
    cache: Option<(u16, Vec<u8>)>,
    tx_seq: u16,
    last_rx: Duration,
    last_hb: Option<Duration>,
    last_exposure: Option<(u32, ExposureOutcome)>,
    fired_ids: Vec<u32>,
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
            sessions_opened: 0,
            cache: None,
            tx_seq: 0,
            last_rx: Duration::ZERO,
            last_hb: None,
            last_exposure: None,
            fired_ids: Vec::new(),
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

    /// Exposure ids fired, in order (each at most once).
    pub fn fired_ids(&self) -> &[u32] {
        &self.fired_ids
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
        self.session = None;
        self.cache = None;
        self.last_exposure = None;
        self.recent.clear();
        self.outbox.clear();
        self.last_hb = None;
        self.sessions_opened = self.sessions_opened.wrapping_add(1000);
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
            self.session = None;
            self.cache = None;
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
        if let Some((seq, bytes)) = &self.cache
            && *seq == p.seq
        {
            // A retry of the request just answered: resend the answer, never execute twice.
            self.stats.duplicates += 1;
            return bytes.clone();
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
                    self.sessions_opened = self.sessions_opened.wrapping_add(1);
                    let session = self.config.boot_nonce.wrapping_add(self.sessions_opened);
                    self.session = Some(session);
                    self.stats.sessions += 1;
                    let ack = HelloAck {
                        major: self.config.protocol_major,
                        minor: PROTOCOL_MINOR,
                        caps: caps::ALL,
                        firmware: self.config.firmware,
                        session,
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
        self.cache = Some((p.seq, bytes.clone()));
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
        let d = &mut self.devices;
        let err = |e: &dyn ErrorLike| encode_error(e.code(), &e.text());
        match request {
            Request::Hello { .. } => Ok(Vec::new()),
            Request::SetTechnique(t) => d.tube.set_technique(&t).map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::Prepare => d.tube.prepare().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::Expose { id, request } => {
                if let Some((last, outcome)) = &self.last_exposure
                    && *last == id
                {
                    // Already executed: report, never fire again.
                    return match outcome {
                        ExposureOutcome::Done(r) => Ok(encode_record(r)),
                        ExposureOutcome::Failed(c, m) => Err(encode_error(*c, m)),
                        ExposureOutcome::Unknown => Err(encode_error(kind_code(ErrorKind::Other), "unknown")),
                    };
                }
                self.stats.exposures_fired += 1;
                self.fired_ids.push(id);
                let result = d.tube.expose(&request);
                let (outcome, reply) = match result {
                    Ok(r) => (ExposureOutcome::Done(r), Ok(encode_record(&r))),
                    Err(e) => {
                        let c = kind_code(e.kind());
                        (ExposureOutcome::Failed(c, e.to_string()), Err(error_packet_payload(&e)))
                    }
                };
                self.last_exposure = Some((id, outcome));
                reply
            }
            Request::QueryExposure { id } => Ok(match &self.last_exposure {
                Some((last, outcome)) if *last == id => outcome.encode(),
                _ => ExposureOutcome::Unknown.encode(),
            }),
            Request::Disable => d.tube.disable().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::Interlocks => {
                let open = self.session.is_some();
                d.interlocks
                    .status()
                    .map(|mut s| {
                        s.link_alive &= open;
                        encode_interlocks(&s)
                    })
                    .map_err(|e| err(&e))
            }
            Request::DetectorGeometry => Ok(encode_geometry(&d.detector.geometry())),
            Request::Arm => d.detector.arm().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::Disarm => d.detector.disarm().map(|()| Vec::new()).map_err(|e| err(&e)),
            Request::ReadFrame => match d.detector.read_frame() {
                Ok(f) => Ok(self.push_frame(f, FrameKind::Readout, now)),
                Err(e) => Err(err(&e)),
            },
            Request::FloodFrame => match d.detector.flood_frame() {
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
        let end = addr + count;
        let overlaps = |lo: u16, hi: u16| addr < hi && end > lo;
        let mut image = vec![0u16; usize::from(PADDLE_END)];
        if overlaps(GANTRY_ANGLE_MDEG, GANTRY_STATUS) {
            let angle = self.devices.gantry.position().map_err(|_| ExceptionCode::ServerDeviceFailure)?.get();
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
        let end = addr + count;
        let gantry = addr >= GANTRY_TARGET_DEG && end <= GANTRY_END;
        let paddle = addr >= PADDLE_TARGET_N && end <= PADDLE_COMMAND + 1;
        if !(gantry || paddle) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let mut command = None;
        for (i, &v) in values.iter().enumerate() {
            let a = addr + i as u16;
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
                if !speed.is_finite() {
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
