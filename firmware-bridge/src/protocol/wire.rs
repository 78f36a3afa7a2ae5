//! Packet framing of the serial control link: COBS with a zero delimiter, a fixed header and a CRC-32.
//!
//! On the wire each packet is `cobs(header ++ payload ++ crc32_le) ++ 0x00`, where the header is
//! `version u8, type u8, seq u16 le, ack u16 le` and the CRC (CRC-32/ISO-HDLC, the zlib polynomial) covers
//! header and payload. See `docs/protocol.md`.

use crc::{CRC_32_ISO_HDLC, Crc, Table};

/// The CRC used by the control link and the frame stream (CRC-32/ISO-HDLC), slice-by-16 tables for frames.
pub static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);

/// Protocol major version: a peer with another major is refused. Version 2 added the session id to EXPOSE and
/// QUERY_EXPOSURE, the host nonce to HELLO and the frame-stream token to HELLO_ACK (issue 14).
pub const PROTOCOL_MAJOR: u8 = 2;
/// Protocol minor version: additions that an older peer can ignore.
pub const PROTOCOL_MINOR: u8 = 0;
/// Header bytes before the payload.
pub const HEADER_LEN: usize = 6;
/// Largest decoded packet (header, payload and CRC); longer input is discarded.
pub const MAX_PACKET_LEN: usize = 512;

/// One decoded packet of the control link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Protocol major version of the sender.
    pub version: u8,
    /// Message type code.
    pub kind: u8,
    /// Sender's sequence number.
    pub seq: u16,
    /// Sequence number of the request this packet answers (0 if none).
    pub ack: u16,
    /// Message-specific payload.
    pub payload: Vec<u8>,
}

/// Why bytes were not accepted as a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// COBS decoding failed.
    #[error("packet: COBS decoding failed")]
    Cobs,
    /// Too short to hold header and CRC.
    #[error("packet: {0} bytes is shorter than header and CRC")]
    Short(usize),
    /// Longer than [`MAX_PACKET_LEN`].
    #[error("packet: longer than {MAX_PACKET_LEN} bytes")]
    TooLong,
    /// CRC mismatch.
    #[error("packet: CRC mismatch")]
    Crc,
}

/// Encodes a packet for the wire, delimiter included.
pub fn encode_packet(packet: &Packet) -> Vec<u8> {
    let mut raw = Vec::with_capacity(HEADER_LEN + packet.payload.len() + 4);
    raw.push(packet.version);
    raw.push(packet.kind);
    raw.extend_from_slice(&packet.seq.to_le_bytes());
    raw.extend_from_slice(&packet.ack.to_le_bytes());
    raw.extend_from_slice(&packet.payload);
    let crc = CRC32.checksum(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut out = cobs::encode_vec(&raw);
    out.push(0);
    out
}

/// Decodes one COBS-encoded packet (without its delimiter).
pub fn decode_packet(encoded: &[u8]) -> Result<Packet, WireError> {
    if encoded.len() > cobs::max_encoding_length(MAX_PACKET_LEN) {
        return Err(WireError::TooLong);
    }
    let raw = cobs::decode_vec(encoded).map_err(|_| WireError::Cobs)?;
    if raw.len() < HEADER_LEN + 4 {
        return Err(WireError::Short(raw.len()));
    }
    if raw.len() > MAX_PACKET_LEN {
        return Err(WireError::TooLong);
    }
    let (body, crc) = raw.split_at(raw.len() - 4);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32.checksum(body) != expected {
        return Err(WireError::Crc);
    }
    Ok(Packet {
        version: body[0],
        kind: body[1],
        seq: u16::from_le_bytes([body[2], body[3]]),
        ack: u16::from_le_bytes([body[4], body[5]]),
        payload: body[HEADER_LEN..].to_vec(),
    })
}

/// Splits a byte stream at zero delimiters and decodes each packet.
///
/// Bytes after an overlong run are discarded up to the next delimiter, so a lost delimiter costs at most the
/// packets around it and the decoder resynchronises on the next one.
#[derive(Debug, Default)]
pub struct PacketDecoder {
    buf: Vec<u8>,
    overflow: bool,
}

impl PacketDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns every packet (or rejection) completed by them, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Packet, WireError>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == 0 {
                if self.overflow {
                    out.push(Err(WireError::TooLong));
                } else if !self.buf.is_empty() {
                    out.push(decode_packet(&self.buf));
                }
                self.buf.clear();
                self.overflow = false;
            } else if self.buf.len() >= cobs::max_encoding_length(MAX_PACKET_LEN) {
                self.overflow = true;
                self.buf.clear();
            } else if !self.overflow {
                self.buf.push(b);
            }
        }
        out
    }

    /// Bytes of the partial packet held (never more than one maximal COBS-encoded packet).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops any partial packet (after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overflow = false;
    }
}

/// Little-endian payload writer.
#[derive(Debug, Default)]
pub struct PayloadWriter(pub Vec<u8>);

impl PayloadWriter {
    /// Appends a byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    /// Appends a u16.
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a u32.
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a u64.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends an IEEE-754 double.
    pub fn f64(mut self, v: f64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends raw bytes.
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
}

/// A payload field was missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload field `{0}` missing or malformed")]
pub struct FieldError(pub &'static str);

/// Little-endian payload reader; every getter names the field it reads.
#[derive(Debug)]
pub struct PayloadReader<'a> {
    rest: &'a [u8],
}

impl<'a> PayloadReader<'a> {
    /// Reads from these bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FieldError> {
        let (head, tail) = self.rest.split_first_chunk::<N>().ok_or(FieldError(field))?;
        self.rest = tail;
        Ok(*head)
    }
    /// A byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, FieldError> {
        Ok(self.take::<1>(field)?[0])
    }
    /// A u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, FieldError> {
        self.take(field).map(u16::from_le_bytes)
    }
    /// A u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, FieldError> {
        self.take(field).map(u32::from_le_bytes)
    }
    /// A u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, FieldError> {
        self.take(field).map(u64::from_le_bytes)
    }
    /// A finite double.
    pub fn f64(&mut self, field: &'static str) -> Result<f64, FieldError> {
        let v = f64::from_le_bytes(self.take(field)?);
        if v.is_finite() { Ok(v) } else { Err(FieldError(field)) }
    }
    /// The remaining bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
    /// Fails unless every byte was read.
    pub fn finish(&self, field: &'static str) -> Result<(), FieldError> {
        if self.rest.is_empty() { Ok(()) } else { Err(FieldError(field)) }
    }
}
