//! The HAL traits implemented over the links: tube, detector and interlocks over the serial control link
//! (frames over the frame stream), gantry and paddle over Modbus.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tomolab_hal::Devices;
use tomolab_hal::{
    Compression, CompressionPaddle, Degrees, Detector, DetectorGeometry, ErrorKind, ExposureRecord, ExposureRequest,
    Frame, Gantry, InterlockStatus, Interlocks, Millimetres, Newtons, Technique, XrayTube,
};

use crate::error::{BridgeError, kind_from_code};
use crate::host::client::{ControlClient, LinkConfig, MonotonicTime, TimeSource};
use crate::host::framesource::{FrameSource, TcpFrameSource};
use crate::host::modbus::{ModbusClient, ModbusTarget, RegisterBus};
use crate::protocol::frames::{FrameKind, data_crc};
use crate::protocol::message::{FrameReady, Request, parse_geometry, parse_interlocks};
use crate::protocol::regs::*;

/// A control client shared by the tube, detector and interlock handles.
pub type SharedClient<S, C> = Arc<Mutex<ControlClient<S, C>>>;
/// A register bus shared by the gantry and paddle handles.
pub type SharedBus<B> = Arc<Mutex<B>>;

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, BridgeError> {
    m.lock().map_err(|_| BridgeError::link("link state poisoned by a panic in another thread"))
}

/// Wraps a control client for sharing.
pub fn share_client<S, C>(client: ControlClient<S, C>) -> SharedClient<S, C> {
    Arc::new(Mutex::new(client))
}

/// Wraps a register bus for sharing.
pub fn share_bus<B>(bus: B) -> SharedBus<B> {
    Arc::new(Mutex::new(bus))
}

/// The tube and generator over the control link.
#[derive(Debug)]
pub struct BridgeTube<S, C = MonotonicTime> {
    client: SharedClient<S, C>,
}

impl<S, C> BridgeTube<S, C> {
    /// A tube handle on this link.
    pub fn new(client: SharedClient<S, C>) -> Self {
        Self { client }
    }
}

impl<S: Read + Write, C: TimeSource> XrayTube for BridgeTube<S, C> {
    type Error = BridgeError;

    fn set_technique(&mut self, technique: &Technique) -> Result<(), BridgeError> {
        lock(&self.client)?.request(&Request::SetTechnique(*technique)).map(drop)
    }

    fn prepare(&mut self) -> Result<(), BridgeError> {
        lock(&self.client)?.request(&Request::Prepare).map(drop)
    }

    fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, BridgeError> {
        lock(&self.client)?.expose(request)
    }

    fn disable(&mut self) -> Result<(), BridgeError> {
        lock(&self.client)?.request(&Request::Disable).map(drop)
    }
}

/// The interlock chain over the control link.
#[derive(Debug)]
pub struct BridgeInterlocks<S, C = MonotonicTime> {
    client: SharedClient<S, C>,
}

impl<S, C> BridgeInterlocks<S, C> {
    /// An interlock handle on this link.
    pub fn new(client: SharedClient<S, C>) -> Self {
        Self { client }
    }
}

impl<S: Read + Write, C: TimeSource> Interlocks for BridgeInterlocks<S, C> {
    type Error = BridgeError;

    fn status(&mut self) -> Result<InterlockStatus, BridgeError> {
        let payload = lock(&self.client)?.request(&Request::Interlocks)?;
        parse_interlocks(&payload).map_err(|e| BridgeError::link(format!("interlocks: {e}")))
    }
}

/// The detector: control over the link, frames from a [`FrameSource`].
#[derive(Debug)]
pub struct BridgeDetector<S, C, F> {
    client: SharedClient<S, C>,
    frames: F,
    geometry: DetectorGeometry,
}

impl<S: Read + Write, C: TimeSource, F: FrameSource> BridgeDetector<S, C, F> {
    /// A detector handle; reads the geometry from the device once.
    pub fn new(client: SharedClient<S, C>, frames: F) -> Result<Self, BridgeError> {
        let payload = lock(&client)?.request(&Request::DetectorGeometry)?;
        let geometry = parse_geometry(&payload).map_err(|e| BridgeError::link(format!("detector geometry: {e}")))?;
        geometry.validate().map_err(|e| BridgeError::new(ErrorKind::OutOfRange, format!("detector geometry: {e}")))?;
        Ok(Self { client, frames, geometry })
    }

    fn fetch(&mut self, ready: FrameReady, kind: FrameKind) -> Result<Frame, BridgeError> {
        let (retries, timeout) = {
            let c = lock(&self.client)?;
            (c.config().retries, c.config().frame_timeout)
        };
        if (ready.cols as usize, ready.rows as usize) != (self.geometry.cols, self.geometry.rows) {
            return Err(BridgeError::new(
                ErrorKind::OutOfRange,
                format!(
                    "frame {} is {}x{}, detector is {}x{}",
                    ready.seq, ready.cols, ready.rows, self.geometry.cols, self.geometry.rows
                ),
            ));
        }
        for attempt in 0..=retries {
            if let Ok(m) = self.frames.receive(ready.seq, timeout)
                && m.kind == kind
                && (m.frame.cols, m.frame.rows) == (self.geometry.cols, self.geometry.rows)
                && data_crc(&m.frame) == ready.data_crc
            {
                return Ok(m.frame);
            }
            if attempt < retries {
                lock(&self.client)?.request(&Request::ResendFrame { seq: ready.seq })?;
            }
        }
        Err(BridgeError::timeout(format!("frame {} not received intact after {} attempts", ready.seq, retries + 1)))
    }

    fn frame(&mut self, req: Request, kind: FrameKind) -> Result<Frame, BridgeError> {
        let payload = lock(&self.client)?.request(&req)?;
        let ready = FrameReady::parse(&payload).map_err(|e| BridgeError::link(format!("frame ready: {e}")))?;
        self.fetch(ready, kind)
    }
}

impl<S: Read + Write, C: TimeSource, F: FrameSource> Detector for BridgeDetector<S, C, F> {
    type Error = BridgeError;

    fn geometry(&self) -> DetectorGeometry {
        self.geometry
    }

    fn arm(&mut self) -> Result<(), BridgeError> {
        lock(&self.client)?.request(&Request::Arm).map(drop)
    }

    fn read_frame(&mut self) -> Result<Frame, BridgeError> {
        self.frame(Request::ReadFrame, FrameKind::Readout)
    }

    fn flood_frame(&mut self) -> Result<Frame, BridgeError> {
        self.frame(Request::FloodFrame, FrameKind::Flood)
    }

    fn disarm(&mut self) -> Result<(), BridgeError> {
        lock(&self.client)?.request(&Request::Disarm).map(drop)
    }
}

/// Timing of Modbus motion commands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionConfig {
    /// Deadline for a command to finish (status not busy).
    pub command_timeout: Duration,
    /// Interval between status polls while a command runs.
    pub poll_interval: Duration,
    /// Attempts after the first when the link fails (Modbus commands never fire radiation).
    pub retries: u32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self { command_timeout: Duration::from_secs(30), poll_interval: Duration::from_millis(10), retries: 2 }
    }
}

fn with_retries<T>(retries: u32, mut op: impl FnMut() -> Result<T, BridgeError>) -> Result<T, BridgeError> {
    let mut last = None;
    for _ in 0..=retries {
        match op() {
            Err(e) if matches!(e.kind, ErrorKind::Link | ErrorKind::Timeout) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| BridgeError::link("no attempt made")))
}

/// Writes a command block, then polls the status block until the command is no longer busy.
fn run_command<B: RegisterBus>(
    bus: &Mutex<B>,
    config: &MotionConfig,
    write_at: u16,
    values: &[u16],
    status_at: u16,
    status_len: u16,
    what: &str,
) -> Result<Vec<u16>, BridgeError> {
    with_retries(config.retries, || {
        let mut bus = lock(bus)?;
        bus.write(write_at, values)?;
        let start = std::time::Instant::now();
        loop {
            let regs = bus.read(status_at, status_len)?;
            if regs[0] & STATUS_BUSY == 0 {
                if regs[0] & STATUS_FAULT != 0 {
                    let code = u8::try_from(regs[1]).unwrap_or(u8::MAX);
                    return Err(BridgeError::new(kind_from_code(code), format!("{what}: controller reported a fault")));
                }
                return Ok(regs);
            }
            if start.elapsed() > config.command_timeout {
                return Err(BridgeError::timeout(format!("{what}: still busy after {:?}", config.command_timeout)));
            }
            std::thread::sleep(config.poll_interval);
        }
    })
}

/// The arc gantry over Modbus.
#[derive(Debug)]
pub struct BridgeGantry<B> {
    bus: SharedBus<B>,
    config: MotionConfig,
}

impl<B: RegisterBus> BridgeGantry<B> {
    /// A gantry handle on this bus.
    pub fn new(bus: SharedBus<B>, config: MotionConfig) -> Self {
        Self { bus, config }
    }

    fn command(&mut self, cmd: u16, target: f64, speed: f64, what: &str) -> Result<Vec<u16>, BridgeError> {
        let mut values = Vec::with_capacity(9);
        values.extend_from_slice(&f64_to_regs(target));
        values.extend_from_slice(&f64_to_regs(speed));
        values.push(cmd);
        run_command(&self.bus, &self.config, GANTRY_TARGET_DEG, &values, GANTRY_STATUS, 8, what)
    }
}

impl<B: RegisterBus> Gantry for BridgeGantry<B> {
    type Error = BridgeError;

    fn move_to(&mut self, angle: Degrees) -> Result<(), BridgeError> {
        self.command(GANTRY_CMD_MOVE, angle.get(), 0.0, "gantry move").map(drop)
    }

    fn start_sweep(&mut self, end: Degrees, speed_deg_per_s: f64) -> Result<(), BridgeError> {
        if !speed_deg_per_s.is_finite() {
            return Err(BridgeError::new(ErrorKind::OutOfRange, "sweep speed must be finite"));
        }
        self.command(GANTRY_CMD_SWEEP, end.get(), speed_deg_per_s, "gantry sweep").map(drop)
    }

    fn await_angle(&mut self, angle: Degrees) -> Result<Degrees, BridgeError> {
        let regs = self.command(GANTRY_CMD_AWAIT, angle.get(), 0.0, "gantry await")?;
        let reached = regs_to_f64(&regs[usize::from(GANTRY_RESULT_DEG - GANTRY_STATUS)..]);
        Ok(Degrees::new(reached)?)
    }

    fn position(&mut self) -> Result<Degrees, BridgeError> {
        let regs = with_retries(self.config.retries, || lock(&self.bus)?.read(GANTRY_ANGLE_DEG, 4))?;
        Ok(Degrees::new(regs_to_f64(&regs))?)
    }

    fn stop(&mut self) -> Result<(), BridgeError> {
        run_command(&self.bus, &self.config, GANTRY_COMMAND, &[GANTRY_CMD_STOP], GANTRY_STATUS, 3, "gantry stop")
            .map(drop)
    }
}

/// The compression paddle over Modbus.
#[derive(Debug)]
pub struct BridgePaddle<B> {
    bus: SharedBus<B>,
    config: MotionConfig,
}

impl<B: RegisterBus> BridgePaddle<B> {
    /// A paddle handle on this bus.
    pub fn new(bus: SharedBus<B>, config: MotionConfig) -> Self {
        Self { bus, config }
    }
}

fn compression(force_n: f64, thickness_mm: f64) -> Result<Compression, BridgeError> {
    Ok(Compression { force: Newtons::new(force_n)?, thickness: Millimetres::new(thickness_mm)? })
}

impl<B: RegisterBus> CompressionPaddle for BridgePaddle<B> {
    type Error = BridgeError;

    fn compress(&mut self, target: Newtons) -> Result<Compression, BridgeError> {
        let mut values = f64_to_regs(target.get()).to_vec();
        values.push(PADDLE_CMD_COMPRESS);
        let regs = run_command(
            &self.bus,
            &self.config,
            PADDLE_TARGET_N,
            &values,
            PADDLE_STATUS,
            PADDLE_END - PADDLE_STATUS,
            "paddle compress",
        )?;
        let at = |a: u16| usize::from(a - PADDLE_STATUS);
        compression(
            regs_to_f64(&regs[at(PADDLE_RESULT_FORCE_N)..]),
            regs_to_f64(&regs[at(PADDLE_RESULT_THICKNESS_MM)..]),
        )
    }

    fn state(&mut self) -> Result<Compression, BridgeError> {
        let regs = with_retries(self.config.retries, || lock(&self.bus)?.read(PADDLE_FORCE_N, 8))?;
        compression(regs_to_f64(&regs[0..4]), regs_to_f64(&regs[4..8]))
    }

    fn release(&mut self) -> Result<(), BridgeError> {
        run_command(&self.bus, &self.config, PADDLE_COMMAND, &[PADDLE_CMD_RELEASE], PADDLE_STATUS, 3, "paddle release")
            .map(drop)
    }
}

/// Where the real (or virtual) device listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Serial port path of the control link (e.g. `/dev/ttyUSB0` or a pty).
    pub serial: String,
    /// Modbus TCP address of the gantry/paddle controller.
    pub modbus: SocketAddr,
    /// TCP address of the detector frame stream.
    pub frames: SocketAddr,
}

impl std::str::FromStr for Endpoints {
    type Err = BridgeError;

    /// Parses `serial:PATH,modbus:HOST:PORT,frames:HOST:PORT` (any order), the form of `tomolab exam --device`.
    fn from_str(s: &str) -> Result<Self, BridgeError> {
        let bad = |m: String| BridgeError::new(ErrorKind::OutOfRange, m);
        let (mut serial, mut modbus, mut frames) = (None, None, None);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                part.split_once(':').ok_or_else(|| bad(format!("device spec part `{part}`: expected KEY:VALUE")))?;
            let addr = |v: &str| v.parse::<SocketAddr>().map_err(|e| bad(format!("device spec `{key}`: `{v}`: {e}")));
            match key {
                "serial" => serial = Some(value.to_string()),
                "modbus" => modbus = Some(addr(value)?),
                "frames" => frames = Some(addr(value)?),
                other => return Err(bad(format!("device spec: unknown key `{other}` (serial, modbus, frames)"))),
            }
        }
        Ok(Self {
            serial: serial.ok_or_else(|| bad("device spec: `serial:PATH` missing".into()))?,
            modbus: modbus.ok_or_else(|| bad("device spec: `modbus:HOST:PORT` missing".into()))?,
            frames: frames.ok_or_else(|| bad("device spec: `frames:HOST:PORT` missing".into()))?,
        })
    }
}

/// The serial transport of a real link.
pub type SerialTransport = Box<dyn serialport::SerialPort>;

/// The device set of a real link.
pub type BridgeDevices = Devices<
    BridgeTube<SerialTransport>,
    BridgeGantry<ModbusClient>,
    BridgeDetector<SerialTransport, MonotonicTime, TcpFrameSource<MonotonicTime>>,
    BridgePaddle<ModbusClient>,
    BridgeInterlocks<SerialTransport>,
>;

/// Keeps the host heartbeat going while the host is idle; stops the thread on drop.
#[derive(Debug)]
pub struct HeartbeatGuard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeartbeatGuard {
    /// Starts a thread sending heartbeats on this client whenever it has been quiet.
    pub fn spawn<S, C>(client: SharedClient<S, C>) -> Self
    where
        S: Read + Write + Send + 'static,
        C: TimeSource + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let interval = match client.lock() {
                    Ok(mut c) => {
                        let _ = c.heartbeat_if_due();
                        c.config().heartbeat_interval
                    }
                    Err(_) => return,
                };
                std::thread::sleep(interval / 4);
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens a serial port (or pty) for the control link: 115200 8N1, reads returning after `read_timeout`; stale
/// input is discarded.
pub fn open_serial(path: &str, read_timeout: Duration) -> Result<SerialTransport, BridgeError> {
    let port = serialport::new(path, 115_200)
        .timeout(read_timeout)
        .open()
        .map_err(|e| BridgeError::link(format!("serial {path}: {e}")))?;
    // Whatever the device sent before we opened the port is stale.
    let _ = port.clear(serialport::ClearBuffer::Input);
    Ok(port)
}

/// Opens every link to a device and returns its HAL devices, plus the heartbeat that keeps the link alive.
pub fn connect(
    endpoints: &Endpoints,
    link: LinkConfig,
    motion: MotionConfig,
) -> Result<(BridgeDevices, HeartbeatGuard), BridgeError> {
    let port = open_serial(&endpoints.serial, Duration::from_millis(5))?;
    let clock = MonotonicTime::default();
    let client = share_client(ControlClient::new(port, clock, link));
    let token = {
        let mut c = client.lock().map_err(|_| BridgeError::link("poisoned"))?;
        c.handshake()?;
        c.frame_token()
    };
    let frames = TcpFrameSource::connect(endpoints.frames, clock, token)?;
    let bus = share_bus(ModbusClient::new(ModbusTarget::Tcp(endpoints.modbus), 1, link.command_timeout)?);
    let devices = Devices {
        tube: BridgeTube::new(client.clone()),
        gantry: BridgeGantry::new(bus.clone(), motion),
        detector: BridgeDetector::new(client.clone(), frames)?,
        paddle: BridgePaddle::new(bus, motion),
        interlocks: BridgeInterlocks::new(client.clone()),
    };
    Ok((devices, HeartbeatGuard::spawn(client)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse_and_name_the_bad_field() {
        let e: Endpoints = "serial:/dev/pts/3,modbus:127.0.0.1:5020,frames:127.0.0.1:5021".parse().unwrap();
        assert_eq!(e.serial, "/dev/pts/3");
        assert_eq!(e.modbus.port(), 5020);
        assert_eq!(e.frames.port(), 5021);
        let err = "serial:/dev/x,modbus:nowhere,frames:127.0.0.1:1".parse::<Endpoints>().unwrap_err();
        assert!(err.message.contains("modbus"), "{err}");
        let err = "serial:/dev/x,modbus:127.0.0.1:1".parse::<Endpoints>().unwrap_err();
        assert!(err.message.contains("frames"), "{err}");
    }
}
