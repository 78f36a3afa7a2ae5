//! Host-side receivers of the detector frame stream.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::BridgeError;
use crate::host::client::TimeSource;
use crate::protocol::frames::{FrameDecoder, FrameMessage, FrameToken, encode_stream_hello};

/// Delivers frame `seq` from the frame stream, intact, or an error.
pub trait FrameSource {
    /// Waits up to `timeout` for frame `seq`. Frames with other sequence numbers are discarded; corrupted bytes
    /// are skipped by the decoder and never delivered.
    fn receive(&mut self, seq: u64, timeout: Duration) -> Result<FrameMessage, BridgeError>;
}

impl<F: FrameSource + ?Sized> FrameSource for Box<F> {
    fn receive(&mut self, seq: u64, timeout: Duration) -> Result<FrameMessage, BridgeError> {
        (**self).receive(seq, timeout)
    }
}

/// A frame receiver over any `Read` whose reads return within a bounded time.
#[derive(Debug)]
pub struct StreamFrameSource<R, C> {
    reader: R,
    clock: C,
    decoder: FrameDecoder,
}

impl<R: Read, C: TimeSource> StreamFrameSource<R, C> {
    /// Receives from this stream.
    pub fn new(reader: R, clock: C) -> Self {
        Self { reader, clock, decoder: FrameDecoder::default() }
    }

    /// Frames rejected so far (CRC or field checks).
    pub fn rejected(&self) -> u64 {
        self.decoder.rejected
    }
}

impl<R: Read, C: TimeSource> FrameSource for StreamFrameSource<R, C> {
    fn receive(&mut self, seq: u64, timeout: Duration) -> Result<FrameMessage, BridgeError> {
        let deadline = self.clock.now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            while let Some(next) = self.decoder.next_frame() {
                if let Ok(msg) = next
                    && msg.seq == seq
                {
                    return Ok(msg);
                }
            }
            if self.clock.now() >= deadline {
                return Err(BridgeError::timeout(format!("frame {seq} not received")));
            }
            match self.reader.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.decoder.reset(),
                Err(e) => return Err(BridgeError::link(format!("frame stream: {e}"))),
            }
        }
    }
}

/// A TCP stream whose end of file is an error (the device closed the stream: reconnect).
#[derive(Debug)]
struct TcpReader(TcpStream);

impl Read for TcpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 if !buf.is_empty() => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the device")),
            n => Ok(n),
        }
    }
}

/// The frame stream over TCP; reconnects after a link error (or when the device closes the stream, as it does
/// when the control session changes). On every connect it sends the stream hello with the control session's
/// frame token (see `docs/protocol.md`): the device serves only the reader of the open session.
#[derive(Debug)]
pub struct TcpFrameSource<C> {
    addr: SocketAddr,
    clock: C,
    token: FrameToken,
    read_timeout: Duration,
    inner: Option<StreamFrameSource<TcpReader, C>>,
}

impl<C: TimeSource + Clone> TcpFrameSource<C> {
    /// Connects to the device's frame port, presenting the token of the control session (take it from
    /// [`ControlClient::frame_token`](crate::host::client::ControlClient::frame_token) after the handshake; the
    /// current value is read on every reconnect).
    pub fn connect(addr: SocketAddr, clock: C, token: FrameToken) -> Result<Self, BridgeError> {
        let mut s = Self { addr, clock, token, read_timeout: Duration::from_millis(20), inner: None };
        s.reconnect()?;
        Ok(s)
    }

    fn reconnect(&mut self) -> Result<(), BridgeError> {
        self.inner = None;
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .map_err(|e| BridgeError::link(format!("frame stream connect {}: {e}", self.addr)))?;
        stream
            .set_read_timeout(Some(self.read_timeout))
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.write_all(&encode_stream_hello(self.token.get())))
            .map_err(|e| BridgeError::link(format!("frame stream: {e}")))?;
        self.inner = Some(StreamFrameSource::new(TcpReader(stream), self.clock.clone()));
        Ok(())
    }
}

impl<C: TimeSource + Clone> FrameSource for TcpFrameSource<C> {
    fn receive(&mut self, seq: u64, timeout: Duration) -> Result<FrameMessage, BridgeError> {
        if self.inner.is_none() {
            self.reconnect()?;
        }
        let Some(inner) = self.inner.as_mut() else {
            return Err(BridgeError::link("frame stream not connected"));
        };
        let result = inner.receive(seq, timeout);
        if matches!(&result, Err(e) if e.kind == tomolab_hal::ErrorKind::Link) {
            self.inner = None;
        }
        result
    }
}
