//! The virtual device served over real transports: a serial port or a pseudo-terminal for the control link,
//! Modbus TCP for gantry and paddle, and a TCP port for the frame stream.
//!
//! One device thread owns the backend (built there from a `Send` factory, so `!Send` backends such as the
//! mock work) and the [`VirtualDevice`]; the transports talk to it through a channel, so requests from the
//! serial line and from Modbus are executed one at a time, in arrival order. Servers bind where they are told;
//! the CLI defaults to loopback because Modbus has no authentication.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tomolab_hal::Devices;
use tomolab_hal::{CompressionPaddle, Detector, Gantry, Interlocks, XrayTube};

use crate::device::{DeviceConfig, VirtualDevice};
use crate::frames::{FrameToken, STREAM_HELLO_LEN, encode_frame, parse_stream_hello};
use crate::message::{DeviceHeartbeat, code};
use crate::modbus::{
    EX_GATEWAY_TARGET_FAILED, EX_SERVER_DEVICE_BUSY, EX_SERVER_DEVICE_FAILURE, MbapDecoder, MbapFrame, PduRequest,
    RtuDecoder, RtuFrame, UNIT_ID, decode_request_pdu, exception_pdu,
};
use crate::wire::{Packet, PacketDecoder, encode_packet};

/// Where the control link is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialEndpoint {
    /// No control link.
    None,
    /// An existing serial port (or one end of an external pty pair).
    Path(String),
    /// A new pseudo-terminal; its path is in [`ServerHandle::pty_path`].
    Pty,
}

/// What to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Control link.
    pub serial: SerialEndpoint,
    /// Modbus TCP listen address (port 0 picks one).
    pub modbus: Option<SocketAddr>,
    /// Listen address for Modbus RTU framing over TCP (what a serial-to-Ethernet gateway carries).
    pub modbus_rtu_over_tcp: Option<SocketAddr>,
    /// Frame stream listen address (port 0 picks one).
    pub frames: Option<SocketAddr>,
    /// Device behaviour.
    pub device: DeviceConfig,
}

/// A running server; dropping it stops every thread (the device goes safe first).
#[derive(Debug)]
pub struct ServerHandle {
    /// Path of the pseudo-terminal the host should open, with [`SerialEndpoint::Pty`].
    pub pty_path: Option<String>,
    /// Bound Modbus TCP address.
    pub modbus_addr: Option<SocketAddr>,
    /// Bound Modbus RTU-over-TCP address.
    pub modbus_rtu_addr: Option<SocketAddr>,
    /// Bound frame-stream address.
    pub frames_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
    _pty_slave: Option<serialport::TTYPort>,
}

impl ServerHandle {
    /// Times the device thread failed (a backend panicked) and restarted after going safe.
    pub fn device_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Stops the server and waits for its threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Blocks until the server stops (it runs until the process ends or another thread drops the handle).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A Modbus request for the device thread, and where its answer PDU goes.
type ModbusReply = mpsc::SyncSender<Vec<u8>>;

enum Event {
    /// Serial bytes and the time (since the server started) they arrived.
    Serial(Vec<u8>, Duration),
    Modbus(PduRequest, ModbusReply),
}

/// Longest wait of a Modbus connection for the device thread's answer; then it answers exception 06 (busy).
const MODBUS_DEVICE_TIMEOUT: Duration = Duration::from_secs(5);
/// Modbus connections served at once; further connections are closed at once.
const MAX_MODBUS_CONNECTIONS: usize = 8;
/// Longest time the keepalive vouches for one running request (a slow frame); past it the host's timeouts run.
const MAX_KEEPALIVE: Duration = Duration::from_secs(120);
/// Consecutive device failures after which the device thread gives up (after going safe) and exits.
const MAX_DEVICE_FAILURES: u32 = 8;

/// Executes a decoded Modbus request on the device: the answer PDU (normal or exception). This is what the
/// device thread runs for every Modbus request the connection threads decoded.
pub fn execute_modbus<T, G, D, P, I>(dev: &mut VirtualDevice<T, G, D, P, I>, req: &PduRequest) -> Vec<u8>
where
    T: XrayTube,
    G: Gantry,
    D: Detector,
    P: CompressionPaddle,
    I: Interlocks,
{
    let result = match req {
        PduRequest::Read { addr, count, .. } => dev.modbus_read(*addr, *count),
        PduRequest::Write { addr, values, .. } => dev.modbus_write(*addr, values).map(|()| Vec::new()),
    };
    match result {
        Ok(regs) => req.answer(&regs),
        Err(e) => exception_pdu(req.function(), u8::from(e)),
    }
}

/// Starts serving the devices the factory builds (inside the device thread).
pub fn serve<F, T, G, D, P, I>(config: ServeConfig, factory: F) -> std::io::Result<ServerHandle>
where
    F: FnOnce() -> Devices<T, G, D, P, I> + Send + 'static,
    T: XrayTube + 'static,
    G: Gantry + 'static,
    D: Detector + 'static,
    P: CompressionPaddle + 'static,
    I: Interlocks + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Event>();
    // The server's clock: serial bytes are stamped when they arrive, so a slow request on the device thread
    // (a frame that takes longer than the link watchdog) does not make the host's heartbeats look late.
    let start = Instant::now();
    let mut threads = Vec::new();
    let io_err = |e: serialport::Error| std::io::Error::other(e.to_string());

    // Control link.
    let mut pty_path = None;
    let mut pty_slave = None;
    let serial: Option<serialport::TTYPort> = match &config.serial {
        SerialEndpoint::None => None,
        SerialEndpoint::Path(path) => Some(serialport::new(path, 115_200).open_native().map_err(io_err)?),
        SerialEndpoint::Pty => {
            let (master, slave) = serialport::TTYPort::pair().map_err(io_err)?;
            pty_path = serialport::SerialPort::name(&slave);
            pty_slave = Some(slave);
            Some(master)
        }
    };
    let mut serial_writer: Option<Box<dyn Write + Send>> = None;
    if let Some(mut port) = serial {
        serialport::SerialPort::set_timeout(&mut port, Duration::from_millis(20)).map_err(io_err)?;
        let mut reader = port.try_clone_native().map_err(io_err)?;
        serial_writer = Some(Box::new(port));
        let (tx, stop) = (tx.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while !stop.load(Ordering::Relaxed) {
                match reader.read(&mut buf) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                    Ok(n) => {
                        if tx.send(Event::Serial(buf[..n].to_vec(), start.elapsed())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    // EIO while no host holds the pty open, and similar: wait and retry.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    // Modbus TCP, and Modbus RTU framing over TCP.
    let mut modbus_addr = None;
    if let Some(addr) = config.modbus {
        let (thread, bound) = spawn_modbus(addr, false, tx.clone(), stop.clone())?;
        modbus_addr = Some(bound);
        threads.push(thread);
    }
    let mut modbus_rtu_addr = None;
    if let Some(addr) = config.modbus_rtu_over_tcp {
        let (thread, bound) = spawn_modbus(addr, true, tx.clone(), stop.clone())?;
        modbus_rtu_addr = Some(bound);
        threads.push(thread);
    }

    // Frame stream.
    let mut frames_addr = None;
    let mut frame_tx: Option<mpsc::Sender<Vec<u8>>> = None;
    // The open session's frame token (issue 14 item 6): shared with the device, checked on connect.
    let frame_token = FrameToken::default();
    if let Some(addr) = config.frames {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        frames_addr = Some(listener.local_addr()?);
        let (ftx, frx) = mpsc::channel::<Vec<u8>>();
        frame_tx = Some(ftx);
        let stop = stop.clone();
        let token = frame_token.clone();
        threads.push(std::thread::spawn(move || {
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
        }));
    }
    drop(tx);

    // The serial writer is shared with the keepalive thread: while the device thread is busy with a request (a
    // slow frame), the keepalive thread tells the host so with heartbeats acking that request, and the host
    // waits on (issue 14 item 7).
    let serial_writer = serial_writer.map(|w| Arc::new(std::sync::Mutex::new(w)));
    let busy = Arc::new(std::sync::Mutex::new(None::<(Busy, Instant)>));
    if let Some(w) = serial_writer.clone() {
        let (busy, stop) = (busy.clone(), stop.clone());
        let (interval, major) = (config.device.heartbeat_interval, config.device.protocol_major);
        threads.push(std::thread::spawn(move || keepalive(&w, &busy, &stop, interval, major, start)));
    }

    // The device thread.
    let device_config = config.device;
    let stop_dev = stop.clone();
    let failed = failures.clone();
    threads.push(std::thread::spawn(move || {
        let mut dev = VirtualDevice::new(factory(), device_config);
        dev.share_frame_token(frame_token);
        let write = |bytes: Vec<u8>| {
            if let Some(w) = serial_writer.as_ref()
                && !bytes.is_empty()
                && let Ok(mut w) = w.lock()
            {
                let _ = w.write_all(&bytes).and_then(|()| w.flush());
            }
        };
        // The server's own view of the requests (sequence numbers only), for the keepalive.
        let mut peek = PacketDecoder::new();
        let mut consecutive = 0u32;
        while !stop_dev.load(Ordering::Relaxed) {
            // A backend that panics must not kill the device thread silently (issue 14 item 5): the request
            // fails (Modbus: exception 04), the device goes safe and restarts (session closed), and serving
            // goes on; after repeated failures the thread exits, safe.
            let step = catch_unwind(AssertUnwindSafe(|| {
                let mut first = match rx.recv_timeout(Duration::from_millis(2)) {
                    Ok(ev) => Some(ev),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    // No transport left: keep the watchdog running until stopped.
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(Duration::from_millis(2));
                        None
                    }
                };
                // Everything that arrived meanwhile is handled before the watchdog looks at the link.
                // (Bounded, so a flood of requests cannot starve the heartbeats and the watchdog.)
                let mut handled = 0;
                while let Some(ev) = first.take().or_else(|| (handled < 64).then(|| rx.try_recv().ok()).flatten()) {
                    handled += 1;
                    match ev {
                        Event::Serial(bytes, at) => {
                            let request = peek
                                .push(&bytes)
                                .into_iter()
                                .filter_map(Result::ok)
                                .rfind(|p| p.kind != code::HEARTBEAT && p.seq != 0);
                            set_busy(&busy, request.map(|p| Busy { seq: p.seq, session: dev.session_id() }));
                            let out = dev.on_serial_bytes(&bytes, at);
                            set_busy(&busy, None);
                            write(out);
                        }
                        Event::Modbus(req, reply) => {
                            // A panicking command is answered with exception 04 once the device is safe.
                            let answer = catch_unwind(AssertUnwindSafe(|| execute_modbus(&mut dev, &req)))
                                .unwrap_or_else(|_| {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    dev.reset();
                                    exception_pdu(req.function(), EX_SERVER_DEVICE_FAILURE)
                                });
                            let _ = reply.send(answer);
                        }
                    }
                }
                write(dev.poll(start.elapsed()));
                for f in dev.take_frames() {
                    if let Some(ftx) = frame_tx.as_ref() {
                        let _ = ftx.send(encode_frame(&f));
                    }
                }
            }));
            if step.is_ok() {
                consecutive = 0;
                continue;
            }
            failed.fetch_add(1, Ordering::Relaxed);
            consecutive += 1;
            if catch_unwind(AssertUnwindSafe(|| dev.reset())).is_err() || consecutive >= MAX_DEVICE_FAILURES {
                break;
            }
        }
        let _ = catch_unwind(AssertUnwindSafe(|| dev.go_safe()));
    }));

    Ok(ServerHandle {
        pty_path,
        modbus_addr,
        modbus_rtu_addr,
        frames_addr,
        stop,
        failures,
        threads,
        _pty_slave: pty_slave,
    })
}

/// The request the device thread is executing: its sequence number, the session, since when.
#[derive(Debug, Clone, Copy)]
struct Busy {
    seq: u16,
    session: Option<u32>,
}

fn set_busy(busy: &std::sync::Mutex<Option<(Busy, Instant)>>, b: Option<Busy>) {
    if let Ok(mut g) = busy.lock() {
        *g = b.map(|b| (b, Instant::now()));
    }
}

/// While the device thread has been busy with one request for a heartbeat interval, sends a device heartbeat
/// every interval whose `ack` is that request's sequence number: the host's "still working on it".
fn keepalive(
    writer: &std::sync::Mutex<Box<dyn Write + Send>>,
    busy: &std::sync::Mutex<Option<(Busy, Instant)>>,
    stop: &AtomicBool,
    interval: Duration,
    major: u8,
    start: Instant,
) {
    let tick = (interval / 4).max(Duration::from_millis(5));
    let mut last_sent: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        let current = busy.lock().ok().and_then(|g| *g);
        let Some((b, since)) = current else { continue };
        if since.elapsed() > MAX_KEEPALIVE {
            // A backend stuck in a request: stop vouching for it, so the host times out instead of waiting forever.
            continue;
        }
        let due = since.elapsed() >= interval && last_sent.is_none_or(|t| t.elapsed() >= interval);
        if !due {
            continue;
        }
        let hb = DeviceHeartbeat {
            session: b.session.unwrap_or(0),
            uptime_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let bytes =
            encode_packet(&Packet { version: major, kind: code::HEARTBEAT, seq: 0, ack: b.seq, payload: hb.encode() });
        if let Ok(mut w) = writer.lock() {
            let _ = w.write_all(&bytes).and_then(|()| w.flush());
        }
        last_sent = Some(Instant::now());
    }
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

fn spawn_modbus(
    addr: SocketAddr,
    rtu: bool,
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(JoinHandle<()>, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let thread = std::thread::spawn(move || {
        let open = Arc::new(AtomicUsize::new(0));
        let mut conns: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    conns.retain(|c| !c.is_finished());
                    if open.load(Ordering::Relaxed) >= MAX_MODBUS_CONNECTIONS {
                        drop(s);
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    let (tx, stop, open) = (tx.clone(), stop.clone(), open.clone());
                    conns.push(std::thread::spawn(move || {
                        let _ = serve_modbus_connection(s, rtu, &tx, &stop);
                        open.fetch_sub(1, Ordering::Relaxed);
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        for c in conns {
            let _ = c.join();
        }
    });
    Ok((thread, bound))
}

/// The device thread's answer PDU to a request, or exception 04 (device failed) / 06 (device busy).
fn ask_device(tx: &mpsc::Sender<Event>, req: PduRequest) -> Vec<u8> {
    let function = req.function();
    let (reply, answer) = mpsc::sync_channel(1);
    if tx.send(Event::Modbus(req, reply)).is_err() {
        return exception_pdu(function, EX_SERVER_DEVICE_FAILURE);
    }
    match answer.recv_timeout(MODBUS_DEVICE_TIMEOUT) {
        Ok(pdu) => pdu,
        Err(mpsc::RecvTimeoutError::Timeout) => exception_pdu(function, EX_SERVER_DEVICE_BUSY),
        Err(mpsc::RecvTimeoutError::Disconnected) => exception_pdu(function, EX_SERVER_DEVICE_FAILURE),
    }
}

/// The answer PDU to a request PDU for this unit: malformed or unsupported requests get their exception
/// without reaching the device.
fn answer_pdu(tx: &mpsc::Sender<Event>, pdu: &[u8]) -> Vec<u8> {
    match decode_request_pdu(pdu) {
        Ok(req) => ask_device(tx, req),
        Err((function, code)) => exception_pdu(function, code),
    }
}

/// One Modbus connection (TCP, or RTU framing over TCP), until the peer closes, the stream breaks or the
/// server stops. Unit ids: see docs/modbus.md.
fn serve_modbus_connection(
    mut stream: TcpStream,
    rtu: bool,
    tx: &mpsc::Sender<Event>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut tcp = MbapDecoder::new();
    let mut rtu_decoder = RtuDecoder::new();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                // The line went quiet: an RTU partial frame is over (the inter-frame silence).
                rtu_decoder.idle();
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        if rtu {
            for RtuFrame { unit, pdu } in rtu_decoder.push(&buf[..n]) {
                // Frames for other slaves on the bus, and broadcasts (which nobody acknowledges), are ignored.
                if unit == UNIT_ID {
                    out.extend(RtuFrame { unit, pdu: answer_pdu(tx, &pdu) }.encode());
                }
            }
        } else {
            let frames = tcp.push(&buf[..n]).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
            for MbapFrame { transaction, unit, pdu } in frames? {
                let answer = if unit == UNIT_ID {
                    answer_pdu(tx, &pdu)
                } else {
                    let function = pdu.first().copied().unwrap_or(0);
                    exception_pdu(function, EX_GATEWAY_TARGET_FAILED)
                };
                out.extend(MbapFrame { transaction, unit, pdu: answer }.encode());
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
        }
    }
    Ok(())
}
