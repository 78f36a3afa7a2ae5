//! The virtual device served over real transports: a serial port or a pseudo-terminal for the control link,
//! Modbus TCP for gantry and paddle, and a TCP port for the frame stream.
//!
//! One device thread owns the backend (built there from a `Send` factory, so `!Send` backends such as the
//! mock work) and the [`VirtualDevice`]; the transports talk to it through a channel, so requests from the
//! serial line and from Modbus are executed one at a time, in arrival order. Servers bind where they are told;
//! the CLI defaults to loopback because Modbus has no authentication.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_modbus::{ExceptionCode, Request, Response};
use tomolab_hal::sequencer::Devices;
use tomolab_hal::{CompressionPaddle, Detector, Gantry, Interlocks, XrayTube};

use crate::device::{DeviceConfig, VirtualDevice};
use crate::frames::encode_frame;

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
    threads: Vec<JoinHandle<()>>,
    _pty_slave: Option<serialport::TTYPort>,
}

impl ServerHandle {
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

enum ModbusOp {
    Read { addr: u16, count: u16, input: bool },
    Write { addr: u16, values: Vec<u16>, single: bool },
}

type ModbusReply = tokio::sync::oneshot::Sender<Result<Response, ExceptionCode>>;

enum Event {
    Serial(Vec<u8>),
    Modbus(ModbusOp, ModbusReply),
}

struct Service {
    tx: mpsc::Sender<Event>,
}

type ServiceFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, ExceptionCode>> + Send>>;

impl tokio_modbus::server::Service for Service {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = ServiceFuture;

    fn call(&self, req: Self::Request) -> Self::Future {
        let op = match req {
            Request::ReadHoldingRegisters(addr, count) => ModbusOp::Read { addr, count, input: false },
            Request::ReadInputRegisters(addr, count) => ModbusOp::Read { addr, count, input: true },
            Request::WriteSingleRegister(addr, v) => ModbusOp::Write { addr, values: vec![v], single: true },
            Request::WriteMultipleRegisters(addr, values) => {
                ModbusOp::Write { addr, values: values.into_owned(), single: false }
            }
            _ => return Box::pin(std::future::ready(Err(ExceptionCode::IllegalFunction))),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.tx.send(Event::Modbus(op, reply)).is_err() {
            return Box::pin(std::future::ready(Err(ExceptionCode::ServerDeviceFailure)));
        }
        Box::pin(async move { answer.await.unwrap_or(Err(ExceptionCode::ServerDeviceFailure)) })
    }
}

fn modbus_op<T, G, D, P, I>(dev: &mut VirtualDevice<T, G, D, P, I>, op: ModbusOp) -> Result<Response, ExceptionCode>
where
    T: XrayTube,
    G: Gantry,
    D: Detector,
    P: CompressionPaddle,
    I: Interlocks,
{
    match op {
        ModbusOp::Read { addr, count, input } => dev
            .modbus_read(addr, count)
            .map(|v| if input { Response::ReadInputRegisters(v) } else { Response::ReadHoldingRegisters(v) }),
        ModbusOp::Write { addr, values, single } => {
            dev.modbus_write(addr, &values)?;
            Ok(if single {
                Response::WriteSingleRegister(addr, values[0])
            } else {
                Response::WriteMultipleRegisters(addr, values.len() as u16)
            })
        }
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
    let (tx, rx) = mpsc::channel::<Event>();
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
                        if tx.send(Event::Serial(buf[..n].to_vec())).is_err() {
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
    if let Some(addr) = config.frames {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        frames_addr = Some(listener.local_addr()?);
        let (ftx, frx) = mpsc::channel::<Vec<u8>>();
        frame_tx = Some(ftx);
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut conn: Option<TcpStream> = None;
            let accept = |conn: &mut Option<TcpStream>| {
                while let Ok((s, _)) = listener.accept() {
                    let ok = s.set_nonblocking(false).is_ok()
                        && s.set_nodelay(true).is_ok()
                        && s.set_write_timeout(Some(Duration::from_secs(1))).is_ok();
                    if ok {
                        *conn = Some(s);
                    }
                }
            };
            while !stop.load(Ordering::Relaxed) {
                accept(&mut conn);
                match frx.recv_timeout(Duration::from_millis(10)) {
                    Ok(bytes) => {
                        accept(&mut conn);
                        if let Some(c) = conn.as_mut()
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

    // The device thread.
    let device_config = config.device;
    let stop_dev = stop.clone();
    threads.push(std::thread::spawn(move || {
        let mut dev = VirtualDevice::new(factory(), device_config);
        let start = Instant::now();
        let mut write = |bytes: Vec<u8>| {
            if let Some(w) = serial_writer.as_mut()
                && !bytes.is_empty()
            {
                let _ = w.write_all(&bytes).and_then(|()| w.flush());
            }
        };
        while !stop_dev.load(Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(2)) {
                Ok(Event::Serial(bytes)) => write(dev.on_serial_bytes(&bytes, start.elapsed())),
                Ok(Event::Modbus(op, reply)) => {
                    let _ = reply.send(modbus_op(&mut dev, op));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // No transport left: keep the watchdog running until stopped.
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(2)),
            }
            write(dev.poll(start.elapsed()));
            for f in dev.take_frames() {
                if let Some(ftx) = frame_tx.as_ref() {
                    let _ = ftx.send(encode_frame(&f));
                }
            }
        }
        dev.go_safe();
    }));

    Ok(ServerHandle { pty_path, modbus_addr, modbus_rtu_addr, frames_addr, stop, threads, _pty_slave: pty_slave })
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
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            let new_service = move |_addr| Ok(Some(Service { tx: tx.clone() }));
            let abort = async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            if rtu {
                use tokio_modbus::server::rtu_over_tcp::{Server, accept_tcp_connection};
                let on_connected = |stream: tokio::net::TcpStream, addr| {
                    let made = accept_tcp_connection(stream, addr, &new_service);
                    async move { made }
                };
                let _ = Server::new(listener).serve_until(&on_connected, |_err| {}, abort).await;
            } else {
                use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
                let on_connected = |stream: tokio::net::TcpStream, addr| {
                    let made = accept_tcp_connection(stream, addr, &new_service);
                    async move { made }
                };
                let _ = Server::new(listener).serve_until(&on_connected, |_err| {}, abort).await;
            }
        });
    });
    Ok((thread, bound))
}
