//! Issue 14 item 7: one device thread rendered frames and ran the link watchdog, so while a slow frame
//! rendered the watchdog stood still, only keepalives went out, and Modbus waited (5 s, then exception 06).
//! The backend now runs on its own worker thread and the protocol thread stays responsive. Also: after
//! `MAX_DEVICE_FAILURES` backend panics in a row the serial link went silent; the device now answers every
//! later request with an error naming the failure, and stays safe.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tomolab_firmware_bridge::device::DeviceConfig;
use tomolab_firmware_bridge::device::server::{MAX_DEVICE_FAILURES, ServerHandle, serve};
use tomolab_firmware_bridge::host::backend::{MotionConfig, connect, open_serial};
use tomolab_firmware_bridge::host::client::LinkConfig;
use tomolab_firmware_bridge::protocol::message::{HelloAck, Request, caps, code};
use tomolab_firmware_bridge::protocol::wire::{PROTOCOL_MAJOR, PROTOCOL_MINOR, Packet, PacketDecoder, encode_packet};
use tomolab_hal::Devices;
use tomolab_hal::mock::{MockConfig, MockUnit};

use crate::common::*;
use crate::server::endpoints;
use crate::server::wrappers::{PanicOnAwait, WatchedTube};

/// A mock-backed server whose detector sleeps `delay` in every readout from the `slow_from`-th on; the tube
/// reports whether it was left disabled and counts beams.
fn slow_server(
    device: DeviceConfig,
    delay: Duration,
    slow_from: u32,
) -> (ServerHandle, Arc<AtomicBool>, Arc<AtomicU32>) {
    let (disabled, beams) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU32::new(0)));
    let (dis, b) = (disabled.clone(), beams.clone());
    let config = loopback_serve(device);
    let h = serve(config, move || {
        let d = MockUnit::new(MockConfig::default(), vec![]).devices();
        Devices {
            tube: WatchedTube { inner: d.tube, disabled: dis, beams: b },
            gantry: d.gantry,
            detector: EverySlow { inner: d.detector, slow_from, delay, reads: 0 },
            paddle: d.paddle,
            interlocks: d.interlocks,
        }
    })
    .unwrap();
    (h, disabled, beams)
}

/// A detector whose readouts from the `slow_from`-th (1-based) on each take `delay` of wall time.
struct EverySlow<D> {
    inner: D,
    slow_from: u32,
    delay: Duration,
    reads: u32,
}

impl<D: tomolab_hal::Detector> tomolab_hal::Detector for EverySlow<D> {
    type Error = D::Error;
    fn geometry(&self) -> tomolab_hal::DetectorGeometry {
        self.inner.geometry()
    }
    fn arm(&mut self) -> Result<(), Self::Error> {
        self.inner.arm()
    }
    fn read_frame(&mut self) -> Result<tomolab_hal::Frame, Self::Error> {
        self.reads += 1;
        if self.reads >= self.slow_from {
            std::thread::sleep(self.delay);
        }
        self.inner.read_frame()
    }
    fn flood_frame(&mut self) -> Result<tomolab_hal::Frame, Self::Error> {
        self.inner.flood_frame()
    }
    fn disarm(&mut self) -> Result<(), Self::Error> {
        self.inner.disarm()
    }
}

#[test]
fn a_bridge_exam_completes_when_every_frame_takes_twice_the_link_watchdog() {
    let device = DeviceConfig {
        link_timeout: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(100),
        ..DeviceConfig::default()
    };
    // Each frame: twice the device's watchdog, and longer than the host's whole retry budget (2 x 500 ms).
    let link = LinkConfig {
        command_timeout: Duration::from_millis(500),
        retries: 1,
        heartbeat_interval: Duration::from_millis(100),
        frame_timeout: Duration::from_millis(2000),
    };
    let delay = (device.link_timeout * 2).max(link.command_timeout * (link.retries + 1)) + Duration::from_millis(100);
    let (h, _disabled, beams) = slow_server(device, delay, 1);
    let (mut devices, _hb) = connect(&endpoints(&h), link, MotionConfig::default()).unwrap();
    let acq = run_exam(&mut devices);
    assert!(acq.is_complete(), "{:?}", acq.meta.status);
    assert_eq!(acq.frames.len(), 25);
    assert_eq!(beams.load(Ordering::Relaxed), 25, "every view's exposure fired once");
    assert_eq!(without_timestamps(acq), without_timestamps(direct_exam()), "every view is the real one");
    assert_eq!(h.device_failures(), 0);
}

/// A raw host on the serial link: packets in and out, no client logic.
struct RawHost {
    port: Box<dyn serialport::SerialPort>,
    decoder: PacketDecoder,
    seq: u16,
}

impl RawHost {
    fn open(h: &ServerHandle) -> Self {
        let port = open_serial(h.pty_path.as_deref().unwrap(), Duration::from_millis(5)).unwrap();
        Self { port, decoder: PacketDecoder::new(), seq: 0 }
    }

    fn send(&mut self, kind: u8, seq: u16, payload: Vec<u8>) {
        let bytes = encode_packet(&Packet { version: PROTOCOL_MAJOR, kind, seq, ack: 0, payload });
        self.port.write_all(&bytes).unwrap();
        self.port.flush().unwrap();
    }

    fn request(&mut self, req: &Request) -> u16 {
        self.seq += 1;
        self.send(req.code(), self.seq, req.payload());
        self.seq
    }

    fn heartbeat(&mut self) {
        self.send(code::HEARTBEAT, 0, Vec::new());
    }

    /// Packets that arrived so far.
    fn receive(&mut self) -> Vec<Packet> {
        let mut buf = [0u8; 512];
        match self.port.read(&mut buf) {
            Ok(n) => self.decoder.push(&buf[..n]).into_iter().filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn hello(&mut self) -> HelloAck {
        let seq =
            self.request(&Request::Hello { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR, caps: caps::ALL, nonce: 7 });
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(p) = self.receive().into_iter().find(|p| p.kind == code::HELLO_ACK && p.ack == seq) {
                return HelloAck::parse(&p.payload).unwrap();
            }
        }
        panic!("no HELLO_ACK");
    }
}

/// A raw Modbus TCP read of `count` registers at `addr`: the answer PDU and how long it took.
fn timed_modbus_read(addr: std::net::SocketAddr, reg: u16, count: u16) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut adu = vec![0, 1, 0, 0, 0, 6, 1, 0x03];
    adu.extend_from_slice(&reg.to_be_bytes());
    adu.extend_from_slice(&count.to_be_bytes());
    let t = Instant::now();
    s.write_all(&adu).unwrap();
    let mut head = [0u8; 7];
    s.read_exact(&mut head).unwrap();
    let mut pdu = vec![0u8; usize::from(u16::from_be_bytes([head[4], head[5]])) - 1];
    s.read_exact(&mut pdu).unwrap();
    (pdu, t.elapsed())
}

/// During a 5 s frame: the device's heartbeats keep coming, a Modbus status read is answered at once (the old
/// device thread answered it only after the frame), and when the host then goes silent the session closes
/// at the watchdog (the old keepalive vouched for the request until the frame returned); the unit goes safe as
/// soon as the frame returns.
#[test]
fn during_a_slow_frame_heartbeats_modbus_and_the_watchdog_keep_running() {
    let device = DeviceConfig {
        link_timeout: Duration::from_millis(1000),
        heartbeat_interval: Duration::from_millis(100),
        compression_window_n: None,
        ..DeviceConfig::default()
    };
    let delay = Duration::from_secs(5);
    let (h, disabled, _beams) = slow_server(device, delay, 1);
    let mut host = RawHost::open(&h);
    let session = host.hello().session;
    let t0 = Instant::now();
    let frame_seq = host.request(&Request::ReadFrame);
    let modbus = h.modbus_addr.unwrap();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        timed_modbus_read(modbus, tomolab_firmware_bridge::protocol::regs::GANTRY_STATUS, 8)
    });
    // Phase 1, 1.5 s: the host is alive (heartbeats every 100 ms); the device's heartbeats are collected.
    let mut beats: Vec<Duration> = Vec::new();
    let mut last_hb = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        if last_hb.elapsed() >= Duration::from_millis(100) {
            host.heartbeat();
            last_hb = Instant::now();
        }
        for p in host.receive() {
            if p.kind == code::HEARTBEAT {
                beats.push(t0.elapsed());
            } else {
                assert_ne!(p.ack, frame_seq, "no answer yet: the frame takes {delay:?}");
            }
        }
    }
    let (pdu, took) = reader.join().unwrap();
    assert_eq!(pdu[0], 0x03, "a normal answer, not an exception: {pdu:02x?}");
    assert!(took < Duration::from_millis(1000), "the Modbus read waited {took:?} for the frame");
    assert!(beats.len() >= 5, "device heartbeats during the frame: {beats:?}");
    let gaps = beats.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(gaps < Duration::from_millis(600), "a gap of {gaps:?} between device heartbeats: {beats:?}");
    // Phase 2: the host goes silent. The watchdog (1 s) closes the session at about 2.5 s, while the frame
    // still renders (until 5 s): the heartbeats stop then.
    let mut late = Vec::new();
    while t0.elapsed() < Duration::from_millis(4500) {
        for p in host.receive() {
            if p.kind == code::HEARTBEAT && t0.elapsed() > Duration::from_millis(3200) {
                late.push((t0.elapsed(), p.ack));
            }
        }
    }
    assert!(late.is_empty(), "heartbeats after the watchdog closed session {session:#x}: {late:?}");
    // The render returns at 5 s; the unit goes safe right after it.
    while !disabled.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(disabled.load(Ordering::Relaxed), "the tube was disabled when the frame returned");
    assert!(t0.elapsed() >= delay, "nothing could call the backend while it rendered");
    // A new host is served.
    assert_ne!(host.hello().session, session);
}

#[test]
fn after_max_device_failures_every_request_gets_an_error_naming_the_failure() {
    use tomolab_firmware_bridge::protocol::regs::*;
    let disabled = Arc::new(AtomicBool::new(false));
    let dis = disabled.clone();
    let config = loopback_serve(DeviceConfig { link_timeout: Duration::from_secs(3), ..DeviceConfig::default() });
    let h = serve(config, move || {
        let d = MockUnit::new(MockConfig::default(), vec![]).devices();
        Devices {
            tube: WatchedTube { inner: d.tube, disabled: dis, beams: Arc::new(AtomicU32::new(0)) },
            gantry: PanicOnAwait(d.gantry),
            detector: d.detector,
            paddle: d.paddle,
            interlocks: d.interlocks,
        }
    })
    .unwrap();
    let mut values = [0u16; 9];
    values[0..4].copy_from_slice(&f64_to_regs(10.0));
    values[8] = GANTRY_CMD_AWAIT;
    let mut fc16 = vec![0x10, 0x00, 0x10, 0x00, 0x09, 18];
    values.iter().for_each(|v| fc16.extend_from_slice(&v.to_be_bytes()));
    let mut s = TcpStream::connect(h.modbus_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ask = |tid: u16, pdu: &[u8]| {
        let mut adu = tid.to_be_bytes().to_vec();
        adu.extend_from_slice(&[0, 0]);
        adu.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
        adu.push(1);
        adu.extend_from_slice(pdu);
        s.write_all(&adu).unwrap();
        let mut head = [0u8; 7];
        s.read_exact(&mut head).unwrap();
        let mut rest = vec![0u8; usize::from(u16::from_be_bytes([head[4], head[5]])) - 1];
        s.read_exact(&mut rest).unwrap();
        rest
    };
    for i in 0..MAX_DEVICE_FAILURES {
        assert_eq!(ask(i as u16, &fc16), [0x90, 0x04], "panic {i}: exception 04");
    }
    assert_eq!(h.device_failures(), u64::from(MAX_DEVICE_FAILURES));
    assert!(disabled.load(Ordering::Relaxed), "the unit is safe");
    // Modbus: every later request, even a status read, gets exception 04.
    assert_eq!(ask(100, &[0x03, 0x00, 0x06, 0x00, 0x01]), [0x83, 0x04]);
    // Serial: the link answers (not silence), and the error names the failure.
    let err = connect(&endpoints(&h), crate::server::real_link(), MotionConfig::default()).unwrap_err();
    assert!(err.to_string().contains("await_angle panicked"), "{err}");
    assert_eq!(h.device_failures(), u64::from(MAX_DEVICE_FAILURES), "nothing ran any more");
}
