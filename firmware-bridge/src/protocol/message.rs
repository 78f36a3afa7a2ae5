//! Messages of the serial control link and their payload layouts (all little-endian; see `docs/protocol.md`).

use std::time::Duration;

use tomolab_hal::{
    DetectorGeometry, DetectorMaterial, ExposureEnd, ExposureRecord, ExposureRequest, Filter, FilterMaterial,
    FocalSpot, InterlockStatus, Kilovolts, MilliampereSeconds, Milliamperes, Target, Technique,
};

use crate::protocol::wire::{FieldError, PayloadReader, PayloadWriter};

/// Message type codes. Requests are host to device; `0x80` and above are device to host.
pub mod code {
    /// Host: open a session.
    pub const HELLO: u8 = 0x01;
    /// Either side: I am alive (never answered).
    pub const HEARTBEAT: u8 = 0x02;
    /// Host: load a technique.
    pub const SET_TECHNIQUE: u8 = 0x10;
    /// Host: prepare the tube.
    pub const PREPARE: u8 = 0x11;
    /// Host: fire one exposure.
    pub const EXPOSE: u8 = 0x12;
    /// Host: what became of exposure `id`?
    pub const QUERY_EXPOSURE: u8 = 0x13;
    /// Host: make the tube safe.
    pub const DISABLE: u8 = 0x14;
    /// Host: read the interlock chain.
    pub const INTERLOCKS: u8 = 0x20;
    /// Host: read the detector geometry.
    pub const DETECTOR_GEOMETRY: u8 = 0x30;
    /// Host: arm the detector.
    pub const ARM: u8 = 0x31;
    /// Host: read out the armed frame (sent on the frame stream).
    pub const READ_FRAME: u8 = 0x32;
    /// Host: acquire the flood frame (sent on the frame stream).
    pub const FLOOD_FRAME: u8 = 0x33;
    /// Host: disarm the detector.
    pub const DISARM: u8 = 0x34;
    /// Host: send frame `seq` again on the frame stream.
    pub const RESEND_FRAME: u8 = 0x35;
    /// Device: session opened.
    pub const HELLO_ACK: u8 = 0x81;
    /// Device: request done, payload specific to the request.
    pub const OK: u8 = 0x90;
    /// Device: request failed.
    pub const ERROR: u8 = 0x91;
}

/// Error codes of an `ERROR` response beyond the [`ErrorKind`](tomolab_hal::ErrorKind) codes 1..=8.
pub mod error_code {
    /// No session: send HELLO first (the device restarted or lost the link).
    pub const NO_SESSION: u8 = 0x40;
    /// The request was malformed or unknown.
    pub const BAD_REQUEST: u8 = 0x41;
    /// The protocol major version is not supported.
    pub const VERSION: u8 = 0x42;
    /// EXPOSE or QUERY_EXPOSURE carried a session id other than the open session's (a request of an earlier
    /// host process, a replayed packet): never executed.
    pub const STALE_SESSION: u8 = 0x43;
    /// EXPOSE with an exposure id already used in this session (with another request, or not the last one,
    /// or before a DISABLE): refused, no beam.
    pub const EXPOSURE_ID_REUSED: u8 = 0x44;
    /// A request reused the sequence number of the last request with different contents: refused, not
    /// executed and not answered from the cache.
    pub const SEQ_REUSED: u8 = 0x45;
    /// A technique or exposure outside the generator's limits (kV, mA, mAs, exposure time, backup time,
    /// filter thickness): refused, no beam.
    pub const TECHNIQUE_LIMIT: u8 = 0x46;
    /// EXPOSE with the compression force outside the device's exposure window: refused, no beam.
    pub const NO_COMPRESSION: u8 = 0x47;
}

/// Capability bits announced in HELLO / HELLO_ACK.
pub mod caps {
    /// X-ray tube and generator over this link.
    pub const TUBE: u32 = 1 << 0;
    /// Detector control over this link, frames on the TCP frame stream.
    pub const DETECTOR: u32 = 1 << 1;
    /// Interlock chain over this link.
    pub const INTERLOCKS: u32 = 1 << 2;
    /// Exposure records can be queried by id (required for safe exposure retry).
    pub const EXPOSURE_QUERY: u32 = 1 << 3;
    /// Frames can be re-sent by sequence number.
    pub const FRAME_RESEND: u32 = 1 << 4;
    /// Everything this implementation offers.
    pub const ALL: u32 = TUBE | DETECTOR | INTERLOCKS | EXPOSURE_QUERY | FRAME_RESEND;
}

/// A host-to-device request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Open a session.
    Hello {
        /// Host's protocol major.
        major: u8,
        /// Host's protocol minor.
        minor: u8,
        /// Capabilities the host wants.
        caps: u32,
        /// Host nonce, fresh for every handshake: a HELLO with another nonce is a new host, never a retry.
        nonce: u32,
    },
    /// Load a technique.
    SetTechnique(Technique),
    /// Prepare the tube.
    Prepare,
    /// Fire exposure `id` (host-chosen, strictly increasing within a session).
    Expose {
        /// Session id from HELLO_ACK: the device refuses any other.
        session: u32,
        /// Exposure id.
        id: u32,
        /// The request.
        request: ExposureRequest,
    },
    /// What became of exposure `id`?
    QueryExposure {
        /// Session id from HELLO_ACK.
        session: u32,
        /// Exposure id.
        id: u32,
    },
    /// Make the tube safe.
    Disable,
    /// Read the interlock chain.
    Interlocks,
    /// Read the detector geometry.
    DetectorGeometry,
    /// Arm the detector.
    Arm,
    /// Read out the armed frame.
    ReadFrame,
    /// Acquire the flood frame.
    FloodFrame,
    /// Disarm the detector.
    Disarm,
    /// Send frame `seq` again.
    ResendFrame {
        /// Frame sequence number.
        seq: u64,
    },
}

fn target_code(t: Target) -> u8 {
    match t {
        Target::W => 0,
        Target::Mo => 1,
        Target::Rh => 2,
    }
}
fn target_from(c: u8) -> Result<Target, FieldError> {
    Ok(match c {
        0 => Target::W,
        1 => Target::Mo,
        2 => Target::Rh,
        _ => return Err(FieldError("target")),
    })
}
fn filter_code(m: FilterMaterial) -> u8 {
    match m {
        FilterMaterial::Rh => 0,
        FilterMaterial::Mo => 1,
        FilterMaterial::Al => 2,
        FilterMaterial::Ag => 3,
    }
}
fn filter_from(c: u8) -> Result<FilterMaterial, FieldError> {
    Ok(match c {
        0 => FilterMaterial::Rh,
        1 => FilterMaterial::Mo,
        2 => FilterMaterial::Al,
        3 => FilterMaterial::Ag,
        _ => return Err(FieldError("filter_material")),
    })
}
fn end_code(e: ExposureEnd) -> u8 {
    match e {
        ExposureEnd::Planned => 0,
        ExposureEnd::Aec => 1,
        ExposureEnd::BackupTimer => 2,
        ExposureEnd::OperatorRelease => 3,
        ExposureEnd::Interlock => 4,
        ExposureEnd::Fault => 5,
    }
}
fn end_from(c: u8) -> Result<ExposureEnd, FieldError> {
    Ok(match c {
        0 => ExposureEnd::Planned,
        1 => ExposureEnd::Aec,
        2 => ExposureEnd::BackupTimer,
        3 => ExposureEnd::OperatorRelease,
        4 => ExposureEnd::Interlock,
        5 => ExposureEnd::Fault,
        _ => return Err(FieldError("end")),
    })
}
fn material_code(m: DetectorMaterial) -> u8 {
    match m {
        DetectorMaterial::ASe => 0,
        DetectorMaterial::CsI => 1,
    }
}
fn material_from(c: u8) -> Result<DetectorMaterial, FieldError> {
    Ok(match c {
        0 => DetectorMaterial::ASe,
        1 => DetectorMaterial::CsI,
        _ => return Err(FieldError("material")),
    })
}
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Request {
    /// The message type code.
    pub fn code(&self) -> u8 {
        match self {
            Self::Hello { .. } => code::HELLO,
            Self::SetTechnique(_) => code::SET_TECHNIQUE,
            Self::Prepare => code::PREPARE,
            Self::Expose { .. } => code::EXPOSE,
            Self::QueryExposure { .. } => code::QUERY_EXPOSURE,
            Self::Disable => code::DISABLE,
            Self::Interlocks => code::INTERLOCKS,
            Self::DetectorGeometry => code::DETECTOR_GEOMETRY,
            Self::Arm => code::ARM,
            Self::ReadFrame => code::READ_FRAME,
            Self::FloodFrame => code::FLOOD_FRAME,
            Self::Disarm => code::DISARM,
            Self::ResendFrame { .. } => code::RESEND_FRAME,
        }
    }

    /// The payload bytes.
    pub fn payload(&self) -> Vec<u8> {
        let w = PayloadWriter::default();
        match self {
            Self::Hello { major, minor, caps, nonce } => w.u8(*major).u8(*minor).u32(*caps).u32(*nonce),
            Self::SetTechnique(t) => w
                .f64(t.kvp.get())
                .f64(t.tube_current.get())
                .f64(t.mas_per_view.get())
                .u8(target_code(t.target))
                .u8(filter_code(t.filter.material))
                .f64(t.filter.thickness_mm)
                .u8(match t.focal_spot {
                    FocalSpot::Large => 0,
                    FocalSpot::Small => 1,
                }),
            Self::Expose { session, id, request } => {
                w.u32(*session).u32(*id).f64(request.mas.get()).u64(nanos(request.backup_time))
            }
            Self::QueryExposure { session, id } => w.u32(*session).u32(*id),
            Self::ResendFrame { seq } => w.u64(*seq),
            Self::Prepare
            | Self::Disable
            | Self::Interlocks
            | Self::DetectorGeometry
            | Self::Arm
            | Self::ReadFrame
            | Self::FloodFrame
            | Self::Disarm => w,
        }
        .0
    }

    /// Parses a request from its type code and payload.
    pub fn parse(kind: u8, payload: &[u8]) -> Result<Self, FieldError> {
        let mut r = PayloadReader::new(payload);
        let req = match kind {
            code::HELLO => Self::Hello {
                major: r.u8("major")?,
                minor: r.u8("minor")?,
                caps: r.u32("caps")?,
                nonce: r.u32("nonce")?,
            },
            code::SET_TECHNIQUE => {
                let kvp = Kilovolts::new(r.f64("kvp")?).map_err(|_| FieldError("kvp"))?;
                let tube_current =
                    Milliamperes::new(r.f64("tube_current_ma")?).map_err(|_| FieldError("tube_current_ma"))?;
                let mas_per_view =
                    MilliampereSeconds::new(r.f64("mas_per_view")?).map_err(|_| FieldError("mas_per_view"))?;
                let target = target_from(r.u8("target")?)?;
                let material = filter_from(r.u8("filter_material")?)?;
                let thickness_mm = r.f64("filter_thickness_mm")?;
                let focal_spot = match r.u8("focal_spot")? {
                    0 => FocalSpot::Large,
                    1 => FocalSpot::Small,
                    _ => return Err(FieldError("focal_spot")),
                };
                Self::SetTechnique(Technique {
                    kvp,
                    tube_current,
                    mas_per_view,
                    target,
                    filter: Filter { material, thickness_mm },
                    focal_spot,
                })
            }
            code::PREPARE => Self::Prepare,
            code::EXPOSE => Self::Expose {
                session: r.u32("session")?,
                id: r.u32("exposure_id")?,
                request: ExposureRequest {
                    mas: MilliampereSeconds::new(r.f64("mas")?).map_err(|_| FieldError("mas"))?,
                    backup_time: Duration::from_nanos(r.u64("backup_time_ns")?),
                },
            },
            code::QUERY_EXPOSURE => Self::QueryExposure { session: r.u32("session")?, id: r.u32("exposure_id")? },
            code::DISABLE => Self::Disable,
            code::INTERLOCKS => Self::Interlocks,
            code::DETECTOR_GEOMETRY => Self::DetectorGeometry,
            code::ARM => Self::Arm,
            code::READ_FRAME => Self::ReadFrame,
            code::FLOOD_FRAME => Self::FloodFrame,
            code::DISARM => Self::Disarm,
            code::RESEND_FRAME => Self::ResendFrame { seq: r.u64("frame_seq")? },
            _ => return Err(FieldError("type")),
        };
        r.finish("payload length")?;
        Ok(req)
    }
}

/// HELLO_ACK payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloAck {
    /// Device's protocol major.
    pub major: u8,
    /// Device's protocol minor.
    pub minor: u8,
    /// Capabilities the device offers.
    pub caps: u32,
    /// Firmware version (major, minor, patch).
    pub firmware: (u16, u16, u16),
    /// Session id: drawn fresh on every HELLO and device restart (never 0, never the previous one).
    pub session: u32,
    /// Frame-stream token of this session: the frame reader sends it on connect; the device serves the frame
    /// stream only to a connection that presented the open session's token.
    pub frame_token: u64,
}

impl HelloAck {
    /// Payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        PayloadWriter::default()
            .u8(self.major)
            .u8(self.minor)
            .u32(self.caps)
            .u16(self.firmware.0)
            .u16(self.firmware.1)
            .u16(self.firmware.2)
            .u32(self.session)
            .u64(self.frame_token)
            .0
    }
    /// Parses the payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FieldError> {
        let mut r = PayloadReader::new(payload);
        let ack = Self {
            major: r.u8("major")?,
            minor: r.u8("minor")?,
            caps: r.u32("caps")?,
            firmware: (r.u16("fw_major")?, r.u16("fw_minor")?, r.u16("fw_patch")?),
            session: r.u32("session")?,
            frame_token: r.u64("frame_token")?,
        };
        r.finish("payload length")?;
        Ok(ack)
    }
}

/// Device heartbeat payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceHeartbeat {
    /// Session id (0 when no session is open).
    pub session: u32,
    /// Device uptime, ms.
    pub uptime_ms: u64,
}

impl DeviceHeartbeat {
    /// Payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        PayloadWriter::default().u32(self.session).u64(self.uptime_ms).0
    }
    /// Parses the payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FieldError> {
        let mut r = PayloadReader::new(payload);
        let hb = Self { session: r.u32("session")?, uptime_ms: r.u64("uptime_ms")? };
        r.finish("payload length")?;
        Ok(hb)
    }
}

/// Exposure record payload: kvp f64, mas f64, duration_ns u64, end u8.
pub fn encode_record(r: &ExposureRecord) -> Vec<u8> {
    PayloadWriter::default().f64(r.kvp.get()).f64(r.mas.get()).u64(nanos(r.duration)).u8(end_code(r.end)).0
}

/// Parses an exposure record.
pub fn parse_record(r: &mut PayloadReader<'_>) -> Result<ExposureRecord, FieldError> {
    Ok(ExposureRecord {
        kvp: Kilovolts::new(r.f64("kvp")?).map_err(|_| FieldError("kvp"))?,
        mas: MilliampereSeconds::new(r.f64("mas")?).map_err(|_| FieldError("mas"))?,
        duration: Duration::from_nanos(r.u64("duration_ns")?),
        end: end_from(r.u8("end")?)?,
    })
}

/// What became of an exposure id (QUERY_EXPOSURE answer).
#[derive(Debug, Clone, PartialEq)]
pub enum ExposureOutcome {
    /// The device never executed this id: it is safe to send it again.
    Unknown,
    /// It was fired and produced this record.
    Done(ExposureRecord),
    /// It was attempted and failed with this error code and message (no beam or unknown outcome).
    Failed(u8, String),
}

impl ExposureOutcome {
    /// Payload bytes: state u8 (0 unknown, 1 done + record, 2 failed + code u8 + utf-8 message).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Unknown => vec![0],
            Self::Done(r) => PayloadWriter::default().u8(1).bytes(&encode_record(r)).0,
            Self::Failed(c, m) => PayloadWriter::default().u8(2).u8(*c).bytes(m.as_bytes()).0,
        }
    }
    /// Parses the payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FieldError> {
        let mut r = PayloadReader::new(payload);
        let out = match r.u8("state")? {
            0 => Self::Unknown,
            1 => Self::Done(parse_record(&mut r)?),
            2 => {
                let c = r.u8("error_code")?;
                Self::Failed(c, String::from_utf8_lossy(r.rest()).into_owned())
            }
            _ => return Err(FieldError("state")),
        };
        r.finish("payload length")?;
        Ok(out)
    }
}

/// Interlock status payload: one byte of flags (bit 0 door closed, 1 e-stop clear, 2 switch held, 3 detector
/// ready, 4 link alive).
pub fn encode_interlocks(s: &InterlockStatus) -> Vec<u8> {
    let bits = u8::from(s.door_closed)
        | u8::from(s.emergency_stop_clear) << 1
        | u8::from(s.exposure_switch_held) << 2
        | u8::from(s.detector_ready) << 3
        | u8::from(s.link_alive) << 4;
    vec![bits]
}

/// Parses the interlock flags.
pub fn parse_interlocks(payload: &[u8]) -> Result<InterlockStatus, FieldError> {
    let mut r = PayloadReader::new(payload);
    let b = r.u8("interlock_flags")?;
    r.finish("payload length")?;
    if b & 0xE0 != 0 {
        return Err(FieldError("interlock_flags"));
    }
    Ok(InterlockStatus {
        door_closed: b & 1 != 0,
        emergency_stop_clear: b & 2 != 0,
        exposure_switch_held: b & 4 != 0,
        detector_ready: b & 8 != 0,
        link_alive: b & 16 != 0,
    })
}

/// Detector geometry payload: cols u32, rows u32, pitch_u_mm f64, pitch_v_mm f64, material u8,
/// layer_thickness_mm f64.
pub fn encode_geometry(g: &DetectorGeometry) -> Vec<u8> {
    PayloadWriter::default()
        .u32(u32::try_from(g.cols).unwrap_or(u32::MAX))
        .u32(u32::try_from(g.rows).unwrap_or(u32::MAX))
        .f64(g.pitch_u_mm)
        .f64(g.pitch_v_mm)
        .u8(material_code(g.material))
        .f64(g.layer_thickness_mm)
        .0
}

/// Parses the detector geometry.
pub fn parse_geometry(payload: &[u8]) -> Result<DetectorGeometry, FieldError> {
    let mut r = PayloadReader::new(payload);
    let g = DetectorGeometry {
        cols: r.u32("cols")? as usize,
        rows: r.u32("rows")? as usize,
        pitch_u_mm: r.f64("pitch_u_mm")?,
        pitch_v_mm: r.f64("pitch_v_mm")?,
        material: material_from(r.u8("material")?)?,
        layer_thickness_mm: r.f64("layer_thickness_mm")?,
    };
    r.finish("payload length")?;
    Ok(g)
}

/// FRAME_READY payload (answer to READ_FRAME, FLOOD_FRAME, RESEND_FRAME): the frame is on the frame stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameReady {
    /// Frame sequence number on the stream.
    pub seq: u64,
    /// Pixels along u.
    pub cols: u32,
    /// Pixels along v.
    pub rows: u32,
    /// CRC-32 of the pixel bytes, checked again end to end.
    pub data_crc: u32,
}

impl FrameReady {
    /// Payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        PayloadWriter::default().u64(self.seq).u32(self.cols).u32(self.rows).u32(self.data_crc).0
    }
    /// Parses the payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FieldError> {
        let mut r = PayloadReader::new(payload);
        let f =
            Self { seq: r.u64("frame_seq")?, cols: r.u32("cols")?, rows: r.u32("rows")?, data_crc: r.u32("data_crc")? };
        r.finish("payload length")?;
        Ok(f)
    }
}

/// ERROR payload: code u8, then a UTF-8 message.
pub fn encode_error(code: u8, message: &str) -> Vec<u8> {
    PayloadWriter::default().u8(code).bytes(message.as_bytes()).0
}

/// Parses an ERROR payload.
pub fn parse_error(payload: &[u8]) -> Result<(u8, String), FieldError> {
    let mut r = PayloadReader::new(payload);
    let c = r.u8("error_code")?;
    Ok((c, String::from_utf8_lossy(r.rest()).into_owned()))
}
