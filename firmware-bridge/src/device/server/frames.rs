//! The frame-stream transport: one TCP port, served only to the reader presenting the open session's frame
//! token (issue 14 item 6); other connections are closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::protocol::frames::{FrameToken, STREAM_HELLO_LEN, parse_stream_hello};

/// Binds `addr` and writes every encoded frame sent on the returned channel to the admitted reader, until
/// `stop`; the thread, the bound address and the channel.
pub(super) fn spawn_frames(
    addr: SocketAddr,
    token: FrameToken,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(JoinHandle<()>, SocketAddr, mpsc::Sender<Vec<u8>>)> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let (ftx, frx) = mpsc::channel::<Vec<u8>>();
    let thread = std::thread::spawn(move || {
        // The reader of the open session and the token it presented; connections still owing their stream
        // hello wait in `pending` (bounded, with a deadline) and never touch `conn` unless the token is right.
        let mut conn: Option<(TcpStream, u64)> = None;
        let mut pending: Vec<PendingReader> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            admit_readers(&listener, &mut pending, &mut conn, &token);
            match frx.recv_timeout(Duration::from_millis(10)) {
                Ok(bytes) => {
                    admit_readers(&listener, &mut pending, &mut conn, &token);
                    if let Some((c, _)) = conn.as_mut()
                        && c.write_all(&bytes).is_err()
                    {
                        conn = None;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    Ok((thread, bound, ftx))
}

/// A frame-stream connection that has not yet presented its stream hello.
struct PendingReader {
    stream: TcpStream,
    since: Instant,
    hello: Vec<u8>,
}

/// Longest wait for a connection's stream hello; connections waiting at once.
const READER_HELLO_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_PENDING_READERS: usize = 8;

/// Accepts new frame-stream connections and admits those whose stream hello carries the open session's token;
/// others are closed. The admitted reader's connection is also closed when the session's token changes.
fn admit_readers(
    listener: &TcpListener,
    pending: &mut Vec<PendingReader>,
    conn: &mut Option<(TcpStream, u64)>,
    token: &FrameToken,
) {
    while let Ok((s, _)) = listener.accept() {
        if s.set_nonblocking(true).is_ok() {
            if pending.len() >= MAX_PENDING_READERS {
                pending.remove(0);
            }
            pending.push(PendingReader { stream: s, since: Instant::now(), hello: Vec::new() });
        }
    }
    let current = token.get();
    pending.retain_mut(|p| {
        let mut buf = [0u8; STREAM_HELLO_LEN];
        let want = STREAM_HELLO_LEN - p.hello.len();
        match p.stream.read(&mut buf[..want]) {
            Ok(0) => return false,
            Ok(n) => p.hello.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        if p.hello.len() < STREAM_HELLO_LEN {
            return p.since.elapsed() < READER_HELLO_TIMEOUT;
        }
        if current != 0 && parse_stream_hello(&p.hello) == Some(current) {
            let s = p.stream.try_clone();
            if let Ok(s) = s
                && s.set_nonblocking(false).is_ok()
                && s.set_nodelay(true).is_ok()
                && s.set_write_timeout(Some(Duration::from_secs(1))).is_ok()
            {
                *conn = Some((s, current));
            }
        }
        false
    });
    if conn.as_ref().is_some_and(|(_, t)| *t != current) {
        // The session that opened this stream is over.
        *conn = None;
    }
}
