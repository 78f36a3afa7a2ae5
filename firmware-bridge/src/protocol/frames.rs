//! The detector frame stream: length-prefixed, CRC-checked frames with metadata, over any byte stream (TCP).
//!
//! Layout (little-endian; see `docs/protocol.md`):
//!
//! ```text
//! magic "TLFR" | body_len u32 | prefix_crc u32 (CRC-32 of the 8 bytes before it)
//! body: seq u64 | view u32 | kind u8 | format u8 (0 = f32) | reserved u16 | timestamp_ns u64 | cols u32 | rows u32
//!       | pixels (cols * rows * 4 bytes, f32 le, row-major)
//! body_crc u32 (CRC-32 of the body)
//! ```
//!
//! The prefix CRC lets the reader reject a corrupted length before waiting for it; the body CRC rejects any
//! corrupted pixel or field. After a rejection the decoder skips one byte and searches for the next magic, so a
//! valid frame after garbage is always recovered. A frame is delivered only when both CRCs match.

use std::time::Duration;

use tomolab_hal::Frame;

use crate::protocol::wire::CRC32;

/// Start of every frame.
pub const MAGIC: [u8; 4] = *b"TLFR";
/// Prefix bytes: magic, body length, prefix CRC.
pub const PREFIX_LEN: usize = 12;
/// Body bytes before the pixels.
pub const BODY_HEADER_LEN: usize = 32;
/// Default upper bound on pixels per frame accepted by a decoder (a 4096 x 4096 panel).
pub const DEFAULT_MAX_PIXELS: usize = 4096 * 4096;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A read-out of the armed panel (dark if nothing was exposed).
    Readout,
    /// The flood (gain) calibration frame, signal per mAs.
    Flood,
}

/// One frame of the stream with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameMessage {
    /// Stream sequence number (device-wide, increasing).
    pub seq: u64,
    /// The device's exposure count when the frame was read (which view it integrated; 0 before any).
    pub view: u32,
    /// What the frame holds.
    pub kind: FrameKind,
    /// Device time at read-out.
    pub timestamp: Duration,
    /// The pixels.
    pub frame: Frame,
}

/// CRC-32 of a frame's pixel bytes (as sent).
pub fn data_crc(frame: &Frame) -> u32 {
    let mut digest = CRC32.digest();
    for v in &frame.data {
        digest.update(&v.to_le_bytes());
    }
    digest.finalize()
}

/// Encodes a frame for the stream.
pub fn encode_frame(msg: &FrameMessage) -> Vec<u8> {
    let pixels = msg.frame.data.len();
    let body_len = BODY_HEADER_LEN + 4 * pixels;
    let mut out = Vec::with_capacity(PREFIX_LEN + body_len + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes());
    let prefix_crc = CRC32.checksum(&out);
    out.extend_from_slice(&prefix_crc.to_le_bytes());
    out.extend_from_slice(&msg.seq.to_le_bytes());
    out.extend_from_slice(&msg.view.to_le_bytes());
    out.push(match msg.kind {
        FrameKind::Readout => 0,
        FrameKind::Flood => 1,
    });
    out.push(0);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&u64::try_from(msg.timestamp.as_nanos()).unwrap_or(u64::MAX).to_le_bytes());
    out.extend_from_slice(&u32::try_from(msg.frame.cols).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&u32::try_from(msg.frame.rows).unwrap_or(u32::MAX).to_le_bytes());
    for v in &msg.frame.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let body_crc = CRC32.checksum(&out[PREFIX_LEN..]);
    out.extend_from_slice(&body_crc.to_le_bytes());
    out
}

/// Why bytes were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The prefix CRC did not match (corrupted length).
    #[error("frame prefix CRC mismatch")]
    PrefixCrc,
    /// The body length is impossible.
    #[error("frame body length {0} is impossible")]
    Length(u32),
    /// The body CRC did not match (corrupted pixels or metadata).
    #[error("frame body CRC mismatch")]
    BodyCrc,
    /// A field of the body is invalid (kind, format, size).
    #[error("frame field `{0}` invalid")]
    Field(&'static str),
}

/// Streaming decoder: push bytes, pull frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max_pixels: usize,
    /// Bytes skipped while searching for a frame (garbage, corrupted frames).
    pub skipped_bytes: u64,
    /// Frames rejected by a CRC or field check.
    pub rejected: u64,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PIXELS)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_pixels` pixels.
    pub fn new(max_pixels: usize) -> Self {
        Self { buf: Vec::new(), max_pixels, skipped_bytes: 0, rejected: 0 }
    }

    /// Feeds bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered (at most one incomplete frame of the accepted size once [`Self::next_frame`] returned
    /// `None`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops buffered bytes (after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    fn skip(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.skipped_bytes += n as u64;
    }

    /// The next complete frame, a rejection, or `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<FrameMessage, FrameError>> {
        // Search for the magic; keep a possible partial magic at the end.
        match self.buf.windows(4).position(|w| w == MAGIC) {
            Some(0) => {}
            Some(i) => self.skip(i),
            None => {
                let keep = self.buf.len().min(3);
                self.skip(self.buf.len() - keep);
                return None;
            }
        }
        if self.buf.len() < PREFIX_LEN {
            return None;
        }
        if CRC32.checksum(&self.buf[..8]) != u32_at(&self.buf, 8) {
            self.skip(1);
            self.rejected += 1;
            return Some(Err(FrameError::PrefixCrc));
        }
        let body_len = u32_at(&self.buf, 4);
        let len = body_len as usize;
        let max_len = BODY_HEADER_LEN.saturating_add(self.max_pixels.saturating_mul(4));
        if len < BODY_HEADER_LEN || len > max_len || (len - BODY_HEADER_LEN) % 4 != 0 {
            self.skip(1);
            self.rejected += 1;
            return Some(Err(FrameError::Length(body_len)));
        }
        let total = PREFIX_LEN + len + 4;
        if self.buf.len() < total {
            return None;
        }
        let body = &self.buf[PREFIX_LEN..PREFIX_LEN + len];
        if CRC32.checksum(body) != u32_at(&self.buf, PREFIX_LEN + len) {
            self.skip(1);
            self.rejected += 1;
            return Some(Err(FrameError::BodyCrc));
        }
        let parsed = Self::parse_body(body);
        match parsed {
            Ok(msg) => {
                self.buf.drain(..total);
                Some(Ok(msg))
            }
            Err(e) => {
                self.skip(1);
                self.rejected += 1;
                Some(Err(e))
            }
        }
    }

    fn parse_body(body: &[u8]) -> Result<FrameMessage, FrameError> {
        let seq = u64_at(body, 0);
        let view = u32_at(body, 8);
        let kind = match body[12] {
            0 => FrameKind::Readout,
            1 => FrameKind::Flood,
            _ => return Err(FrameError::Field("kind")),
        };
        if body[13] != 0 {
            return Err(FrameError::Field("format"));
        }
        if body[14] != 0 || body[15] != 0 {
            return Err(FrameError::Field("reserved"));
        }
        let timestamp = Duration::from_nanos(u64_at(body, 16));
        let cols = u32_at(body, 24) as usize;
        let rows = u32_at(body, 28) as usize;
        let pixels = &body[BODY_HEADER_LEN..];
        if cols.checked_mul(rows).and_then(|n| n.checked_mul(4)) != Some(pixels.len()) {
            return Err(FrameError::Field("cols x rows"));
        }
        let data = pixels.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>();
        Ok(FrameMessage { seq, view, kind, timestamp, frame: Frame { cols, rows, data } })
    }
}

/// First bytes a frame reader sends after connecting: magic "TLFS" then the session's frame token (u64 le).
pub const STREAM_HELLO_MAGIC: [u8; 4] = *b"TLFS";
/// Length of the reader's stream hello.
pub const STREAM_HELLO_LEN: usize = 12;

/// The stream hello a reader sends on connect, carrying the frame token of its control session.
pub fn encode_stream_hello(token: u64) -> [u8; STREAM_HELLO_LEN] {
    let mut out = [0u8; STREAM_HELLO_LEN];
    out[..4].copy_from_slice(&STREAM_HELLO_MAGIC);
    out[4..].copy_from_slice(&token.to_le_bytes());
    out
}

/// The token of a stream hello; `None` if the bytes are not one (wrong magic) or carry token 0 (no session).
pub fn parse_stream_hello(bytes: &[u8]) -> Option<u64> {
    let (magic, token) = bytes.split_first_chunk::<4>()?;
    let token: [u8; 8] = token.try_into().ok()?;
    let token = u64::from_le_bytes(token);
    (*magic == STREAM_HELLO_MAGIC && token != 0).then_some(token)
}

/// The frame token of the open control session, shared between the device (which draws it on HELLO and clears
/// it when the session closes) and the frame-stream server or reader (which checks or sends it). 0: no session.
#[derive(Debug, Clone, Default)]
pub struct FrameToken(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl FrameToken {
    /// The current token (0 when no session is open).
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Replaces the token.
    pub fn set(&self, token: u64) {
        self.0.store(token, std::sync::atomic::Ordering::SeqCst);
    }
}
