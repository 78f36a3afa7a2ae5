//! Modbus application data units as the device sees them: request PDUs decoded and checked, answers and
//! exceptions encoded, MBAP (TCP) and RTU framing (see docs/modbus.md).
//!
//! The virtual device parses Modbus requests itself rather than through tokio-modbus's server, whose codec
//! closes the connection on any malformed request; a Modbus server must answer those with an exception.

/// The one unit id the virtual device serves (see docs/modbus.md for other ids).
pub const UNIT_ID: u8 = 1;
/// Largest Modbus PDU (function code and data), bytes.
pub const MAX_PDU: usize = 253;
/// Largest Modbus RTU ADU (address, PDU, CRC), bytes.
pub const MAX_RTU_ADU: usize = 256;
/// Largest Modbus TCP ADU (MBAP header and PDU), bytes: the bound of [`MbapDecoder`]'s buffer.
pub const MAX_TCP_ADU: usize = 7 + MAX_PDU;
/// Largest register count of one write multiple (function 16).
pub const MAX_WRITE: u16 = 123;

/// Exception 01, illegal function.
pub const EX_ILLEGAL_FUNCTION: u8 = 0x01;
/// Exception 02, illegal data address.
pub const EX_ILLEGAL_DATA_ADDRESS: u8 = 0x02;
/// Exception 03, illegal data value.
pub const EX_ILLEGAL_DATA_VALUE: u8 = 0x03;
/// Exception 04, server device failure.
pub const EX_SERVER_DEVICE_FAILURE: u8 = 0x04;
/// Exception 06, server device busy.
pub const EX_SERVER_DEVICE_BUSY: u8 = 0x06;
/// Exception 0B, gateway target device failed to respond (a unit id other than [`UNIT_ID`] over TCP).
pub const EX_GATEWAY_TARGET_FAILED: u8 = 0x0B;

/// A decoded request PDU of a supported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PduRequest {
    /// Function 03 (holding) or 04 (input): `count` registers from `addr`.
    Read {
        /// First register.
        addr: u16,
        /// Registers, 1..=125.
        count: u16,
        /// Function 04.
        input: bool,
    },
    /// Function 06 (`single`, one value) or 16.
    Write {
        /// First register.
        addr: u16,
        /// Values, 1..=123 (one for function 06).
        values: Vec<u16>,
        /// Function 06.
        single: bool,
    },
}

impl PduRequest {
    /// The function code.
    pub fn function(&self) -> u8 {
        match self {
            Self::Read { input: false, .. } => 0x03,
            Self::Read { input: true, .. } => 0x04,
            Self::Write { single: true, .. } => 0x06,
            Self::Write { single: false, .. } => 0x10,
        }
    }

    /// The PDU bytes of this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut pdu = vec![self.function()];
        match self {
            Self::Read { addr, count, .. } => {
                pdu.extend_from_slice(&addr.to_be_bytes());
                pdu.extend_from_slice(&count.to_be_bytes());
            }
            Self::Write { addr, values, single: true } => {
                pdu.extend_from_slice(&addr.to_be_bytes());
                pdu.extend_from_slice(&values.first().copied().unwrap_or(0).to_be_bytes());
            }
            Self::Write { addr, values, single: false } => {
                pdu.extend_from_slice(&addr.to_be_bytes());
                let n = u16::try_from(values.len()).unwrap_or(u16::MAX);
                pdu.extend_from_slice(&n.to_be_bytes());
                pdu.push(u8::try_from(values.len() * 2).unwrap_or(u8::MAX));
                for v in values {
                    pdu.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        pdu
    }

    /// The normal (non-exception) answer PDU, given the registers read (ignored for writes).
    pub fn answer(&self, registers: &[u16]) -> Vec<u8> {
        let mut pdu = vec![self.function()];
        match self {
            Self::Read { .. } => {
                // count <= 125 was checked on decoding, so the byte count fits.
                pdu.push(u8::try_from(registers.len() * 2).unwrap_or(u8::MAX));
                for r in registers {
                    pdu.extend_from_slice(&r.to_be_bytes());
                }
            }
            Self::Write { addr, values, single: true } => {
                pdu.extend_from_slice(&addr.to_be_bytes());
                pdu.extend_from_slice(&values.first().copied().unwrap_or(0).to_be_bytes());
            }
            Self::Write { addr, values, single: false } => {
                pdu.extend_from_slice(&addr.to_be_bytes());
                pdu.extend_from_slice(&u16::try_from(values.len()).unwrap_or(u16::MAX).to_be_bytes());
            }
        }
        pdu
    }
}

/// The exception answer PDU to a request with function code `function` (a code >= 0x80 keeps its value).
pub fn exception_pdu(function: u8, code: u8) -> Vec<u8> {
    vec![function | 0x80, code]
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Decodes a request PDU. The error is the exception answer's (function byte, code), in the specification's
/// order: 01 for an unsupported function (any code >= 0x80 included), 03 for a malformed request or a count
/// out of range, 02 for addresses past 65535 (the range `addr..addr + count` must not wrap). Whether the
/// addresses are in the register map is the device's check.
pub fn decode_request_pdu(pdu: &[u8]) -> Result<PduRequest, (u8, u8)> {
    let Some(&function) = pdu.first() else {
        return Err((0x80, EX_ILLEGAL_FUNCTION));
    };
    let value = Err((function, EX_ILLEGAL_DATA_VALUE));
    let address = Err((function, EX_ILLEGAL_DATA_ADDRESS));
    let wraps = |addr: u16, count: u16| u32::from(addr) + u32::from(count) > 0x1_0000;
    match function {
        0x03 | 0x04 => {
            if pdu.len() != 5 {
                return value;
            }
            let (addr, count) = (be16(pdu, 1), be16(pdu, 3));
            if count == 0 || count > crate::protocol::regs::MAX_READ {
                return value;
            }
            if wraps(addr, count) {
                return address;
            }
            Ok(PduRequest::Read { addr, count, input: function == 0x04 })
        }
        0x06 => {
            if pdu.len() != 5 {
                return value;
            }
            Ok(PduRequest::Write { addr: be16(pdu, 1), values: vec![be16(pdu, 3)], single: true })
        }
        0x10 => {
            if pdu.len() < 6 {
                return value;
            }
            let (addr, count, bytes) = (be16(pdu, 1), be16(pdu, 3), usize::from(pdu[5]));
            if count == 0 || count > MAX_WRITE || bytes != 2 * usize::from(count) || pdu.len() != 6 + bytes {
                return value;
            }
            if wraps(addr, count) {
                return address;
            }
            let values = pdu[6..].chunks_exact(2).map(|w| u16::from_be_bytes([w[0], w[1]])).collect();
            Ok(PduRequest::Write { addr, values, single: false })
        }
        _ => Err((function, EX_ILLEGAL_FUNCTION)),
    }
}

/// One Modbus TCP request frame: the MBAP header's transaction id and unit id, and the PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbapFrame {
    /// Transaction id (echoed in the answer).
    pub transaction: u16,
    /// Unit id.
    pub unit: u8,
    /// The PDU (1..=253 bytes).
    pub pdu: Vec<u8>,
}

impl MbapFrame {
    /// The ADU bytes: MBAP header (protocol id 0) and PDU.
    pub fn encode(&self) -> Vec<u8> {
        let len = u16::try_from(self.pdu.len() + 1).unwrap_or(u16::MAX);
        let mut adu = Vec::with_capacity(7 + self.pdu.len());
        adu.extend_from_slice(&self.transaction.to_be_bytes());
        adu.extend_from_slice(&[0, 0]);
        adu.extend_from_slice(&len.to_be_bytes());
        adu.push(self.unit);
        adu.extend_from_slice(&self.pdu);
        adu
    }
}

/// The MBAP header's length field is outside 2..=254: the stream cannot be resynchronised, so the
/// connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("modbus tcp: MBAP length field {0} outside 2..=254")]
pub struct MbapLengthError(pub u16);

/// Splits a Modbus TCP byte stream into request frames; its buffer never exceeds [`MAX_TCP_ADU`] bytes.
/// Frames with a protocol id other than 0 are skipped (they are not Modbus).
#[derive(Debug, Default)]
pub struct MbapDecoder {
    buf: Vec<u8>,
}

impl MbapDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes buffered (a partial frame).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes received bytes; returns the complete frames, or the framing error after which the stream is
    /// unusable.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<MbapFrame>, MbapLengthError> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            // Take only what the current frame needs, so the buffer stays bounded.
            let need = if self.buf.len() < 7 { 7 - self.buf.len() } else { self.frame_len()? - self.buf.len() };
            let take = need.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() >= 7 && self.buf.len() == self.frame_len()? {
                let frame = std::mem::take(&mut self.buf);
                if be16(&frame, 2) == 0 {
                    frames.push(MbapFrame { transaction: be16(&frame, 0), unit: frame[6], pdu: frame[7..].to_vec() });
                }
            }
        }
        Ok(frames)
    }

    fn frame_len(&self) -> Result<usize, MbapLengthError> {
        let len = be16(&self.buf, 4);
        if !(2..=254).contains(&len) {
            return Err(MbapLengthError(len));
        }
        Ok(6 + usize::from(len))
    }
}

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// One Modbus RTU frame: the slave address and the PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtuFrame {
    /// Slave address (0 = broadcast).
    pub unit: u8,
    /// The PDU.
    pub pdu: Vec<u8>,
}

impl RtuFrame {
    /// The ADU bytes: address, PDU, CRC-16 (low byte first).
    pub fn encode(&self) -> Vec<u8> {
        let mut adu = Vec::with_capacity(self.pdu.len() + 3);
        adu.push(self.unit);
        adu.extend_from_slice(&self.pdu);
        let crc = CRC16.checksum(&adu);
        adu.extend_from_slice(&crc.to_le_bytes());
        adu
    }
}

/// Splits a Modbus RTU byte stream (RTU framing over TCP) into request frames. The frame length follows from
/// the function code (03, 04, 06: 8 bytes; 16: 9 + byte count); for other codes it is the shortest prefix with
/// a valid CRC. A bad CRC drops one byte and resynchronises; [`Self::idle`] (the inter-frame silence) drops a
/// partial frame. The buffer never exceeds [`MAX_RTU_ADU`] bytes.
#[derive(Debug, Default)]
pub struct RtuDecoder {
    buf: Vec<u8>,
    /// Bytes discarded while resynchronising.
    pub discarded: u64,
}

impl RtuDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes buffered (a partial frame).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The line went quiet: a partial frame is dropped.
    pub fn idle(&mut self) {
        self.discarded += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Takes received bytes; returns the complete frames with a valid CRC.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<RtuFrame> {
        let mut frames = Vec::new();
        for &b in bytes {
            self.buf.push(b);
            while let Some(step) = self.scan() {
                match step {
                    Scan::Frame(n) => {
                        let rest = self.buf.split_off(n);
                        let frame = std::mem::replace(&mut self.buf, rest);
                        frames.push(RtuFrame { unit: frame[0], pdu: frame[1..n - 2].to_vec() });
                    }
                    Scan::Skip => {
                        self.buf.remove(0);
                        self.discarded += 1;
                    }
                }
            }
        }
        frames
    }

    /// What the buffer holds: a frame of n bytes, a byte to skip, or (None) not enough yet.
    fn scan(&self) -> Option<Scan> {
        let b = &self.buf;
        if b.len() < 4 {
            return None;
        }
        let crc_ok = |n: usize| CRC16.checksum(&b[..n - 2]).to_le_bytes() == [b[n - 2], b[n - 1]];
        let expected = match b[1] {
            0x03 | 0x04 | 0x06 => Some(8),
            0x10 if b.len() >= 7 => Some(9 + usize::from(b[6])),
            0x10 => return None,
            _ => None,
        };
        match expected {
            // A byte count no RTU frame can carry: not a frame start (keeps the buffer bounded; found by fuzzing).
            Some(n) if n > MAX_RTU_ADU => Some(Scan::Skip),
            Some(n) if b.len() < n => None,
            Some(n) if crc_ok(n) => Some(Scan::Frame(n)),
            Some(_) => Some(Scan::Skip),
            None => {
                if crc_ok(b.len()) {
                    Some(Scan::Frame(b.len()))
                } else if b.len() >= MAX_RTU_ADU {
                    Some(Scan::Skip)
                } else {
                    None
                }
            }
        }
    }
}

enum Scan {
    Frame(usize),
    Skip,
}
