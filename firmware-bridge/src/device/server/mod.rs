//! The virtual device served over real transports: a serial port or a pseudo-terminal for the control link
//! (`serial.rs`), Modbus TCP and RTU-over-TCP for gantry and paddle (`modbus.rs`), and a TCP port for the frame
//! stream (`frames.rs`).
//!
//! Two device threads (`engine.rs`): the protocol thread owns the [`DeviceProtocol`]
//! and answers at once whatever it can (heartbeats, the watchdog, duplicates, exposure queries, Modbus status
//! reads); the backend worker owns the unit and runs the queued backend calls one at a time, in arrival order
//! (serial and Modbus in one queue, so never two beams). A frame that renders slower than the link watchdog
//! therefore does not look like a lost link. Servers bind where they are told; the CLI defaults to loopback
//! because Modbus has no authentication.

mod engine;
mod frames;
mod modbus;
mod serial;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tomolab_hal::Unit;

pub use engine::MAX_DEVICE_FAILURES;

use crate::device::{DeviceConfig, DeviceProtocol, Outcome};
use crate::protocol::frames::FrameToken;
use crate::protocol::modbus::PduRequest;
use engine::{Engine, Failure};

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
    /// Times a backend call failed (panicked); the device went safe each time.
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

/// What reaches the protocol thread.
enum Event {
    /// Serial bytes and the time (since the server started) they arrived.
    Serial(Vec<u8>, std::time::Duration),
    /// A decoded Modbus request, and where its answer PDU goes.
    Modbus(PduRequest, modbus::ModbusReply),
    /// The backend worker finished the job in flight.
    Done(Result<Outcome, Failure>),
}

/// Starts serving the unit the factory builds (inside the backend worker thread).
pub fn serve<F, U>(config: ServeConfig, factory: F) -> std::io::Result<ServerHandle>
where
    F: FnOnce() -> U + Send + 'static,
    U: Unit + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Event>();
    let (jobs_tx, jobs_rx) = mpsc::channel();
    let mut protocol = DeviceProtocol::new(config.device);
    // The open session's frame token (issue 14 item 6): shared with the protocol, checked on connect.
    let frame_token = FrameToken::default();
    protocol.share_frame_token(frame_token.clone());
    // The server's clock: serial bytes are stamped when they arrive.
    let mut engine = Engine::new(protocol, rx, jobs_tx);
    let failures = engine.failures.clone();
    let mut threads = Vec::new();

    let link = serial::open(&config.serial, tx.clone(), stop.clone(), engine.start)?;
    let (mut pty_path, mut pty_slave) = (None, None);
    if let Some(link) = link {
        engine.serial = Some(link.writer);
        threads.push(link.reader);
        (pty_path, pty_slave) = (link.pty_path, link.pty_slave);
    }
    let mut spawn_modbus = |addr: Option<SocketAddr>, rtu: bool| -> std::io::Result<Option<SocketAddr>> {
        let Some(addr) = addr else { return Ok(None) };
        let (thread, bound) = modbus::spawn_modbus(addr, rtu, tx.clone(), stop.clone())?;
        threads.push(thread);
        Ok(Some(bound))
    };
    let modbus_addr = spawn_modbus(config.modbus, false)?;
    let modbus_rtu_addr = spawn_modbus(config.modbus_rtu_over_tcp, true)?;
    let mut frames_addr = None;
    if let Some(addr) = config.frames {
        let (thread, bound, frames) = frames::spawn_frames(addr, frame_token, stop.clone())?;
        threads.push(thread);
        frames_addr = Some(bound);
        engine.frames = Some(frames);
    }

    let events = tx.clone();
    drop(tx);
    threads.push(std::thread::spawn(move || engine::worker(factory, jobs_rx, events)));
    let stop_protocol = stop.clone();
    threads.push(std::thread::spawn(move || engine.run(&stop_protocol)));

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
