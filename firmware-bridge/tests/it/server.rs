//! The threaded virtual device over a pseudo-terminal pair and loopback TCP: contract suites, the full exam bit
//! for bit, and a third-party Modbus client reading the gantry angle.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tomolab_firmware_bridge::bridge::{BridgeDevices, Endpoints, HeartbeatGuard, MotionConfig, connect};
use tomolab_firmware_bridge::client::LinkConfig;
use tomolab_firmware_bridge::device::DeviceConfig;
use tomolab_firmware_bridge::server::{SerialEndpoint, ServeConfig, ServerHandle, serve};
use tomolab_hal::mock::{MockConfig, MockUnit};

use crate::common::*;

/// A virtual device backed by a fresh mock, on a new pty and loopback ports.
pub fn start_mock_server() -> ServerHandle {
    let config = ServeConfig {
        serial: SerialEndpoint::Pty,
        modbus: Some("127.0.0.1:0".parse().unwrap()),
        modbus_rtu_over_tcp: Some("127.0.0.1:0".parse().unwrap()),
        frames: Some("127.0.0.1:0".parse().unwrap()),
        device: DeviceConfig { link_timeout: Duration::from_secs(3), ..DeviceConfig::default() },
    };
    serve(config, || MockUnit::new(MockConfig::default(), vec![]).devices()).unwrap()
}

/// Endpoints of a running server.
pub fn endpoints(h: &ServerHandle) -> Endpoints {
    Endpoints { serial: h.pty_path.clone().unwrap(), modbus: h.modbus_addr.unwrap(), frames: h.frames_addr.unwrap() }
}

/// Link policy for real time on a loaded machine: generous deadlines.
pub fn real_link() -> LinkConfig {
    LinkConfig {
        command_timeout: Duration::from_millis(1000),
        retries: 3,
        heartbeat_interval: Duration::from_millis(200),
        frame_timeout: Duration::from_millis(2000),
    }
}

fn connect_to(h: &ServerHandle) -> (BridgeDevices, HeartbeatGuard) {
    connect(&endpoints(h), real_link(), MotionConfig::default()).unwrap()
}

#[test]
fn contract_suites_pass_over_a_pty_and_loopback_tcp() {
    let keep = RefCell::new(Vec::new());
    let make = || {
        let h = start_mock_server();
        let (d, hb) = connect_to(&h);
        keep.borrow_mut().push((h, hb));
        d
    };
    contract_suites(make);
}

#[test]
fn wide_angle_exam_over_a_pty_and_loopback_tcp_matches_the_direct_exam() {
    let h = start_mock_server();
    let (mut devices, _hb) = connect_to(&h);
    let acq = run_exam(&mut devices);
    assert!(acq.is_complete(), "{:?}", acq.meta.status);
    assert_eq!(without_timestamps(acq), without_timestamps(direct_exam()));
}

/// A Modbus-TCP request built by hand from the specification (MBAP header + PDU), not by tokio-modbus.
fn raw_modbus(stream: &mut TcpStream, tid: u16, pdu: &[u8]) -> Vec<u8> {
    let mut adu = Vec::new();
    adu.extend_from_slice(&tid.to_be_bytes());
    adu.extend_from_slice(&[0, 0]); // protocol id
    adu.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    adu.push(1); // unit id
    adu.extend_from_slice(pdu);
    stream.write_all(&adu).unwrap();
    let mut head = [0u8; 7];
    stream.read_exact(&mut head).unwrap();
    let len = u16::from_be_bytes([head[4], head[5]]) as usize;
    let mut rest = vec![0u8; len - 1];
    stream.read_exact(&mut rest).unwrap();
    [head.to_vec(), rest].concat()
}

#[test]
fn a_third_party_modbus_client_reads_the_gantry_angle_register() {
    let h = start_mock_server();
    let mut s = TcpStream::connect(h.modbus_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // FC16: write target 12.5 deg (f64, 4 regs), speed 0 (4 regs), command 1 = MOVE, at address 16.
    let mut pdu = vec![0x10, 0x00, 0x10, 0x00, 0x09, 18];
    for w in 12.5f64.to_bits().to_be_bytes().chunks(2).chain(0f64.to_bits().to_be_bytes().chunks(2)) {
        pdu.extend_from_slice(w);
    }
    pdu.extend_from_slice(&[0x00, 0x01]);
    assert_eq!(raw_modbus(&mut s, 1, &pdu), [0, 1, 0, 0, 0, 6, 1, 0x10, 0x00, 0x10, 0x00, 0x09]);
    // FC03: read 2 registers at address 0: the angle in millidegrees, i32 high word first: 12500 = 0x000030D4.
    let answer = raw_modbus(&mut s, 2, &[0x03, 0x00, 0x00, 0x00, 0x02]);
    assert_eq!(answer, [0, 2, 0, 0, 0, 7, 1, 0x03, 4, 0x00, 0x00, 0x30, 0xD4]);
    // FC04 on the same map, the double at address 2.
    let answer = raw_modbus(&mut s, 3, &[0x04, 0x00, 0x02, 0x00, 0x04]);
    assert_eq!(&answer[..9], &[0, 3, 0, 0, 0, 11, 1, 0x04, 8]);
    assert_eq!(f64::from_bits(u64::from_be_bytes(answer[9..17].try_into().unwrap())), 12.5);
    // Outside the map: exception 02 (illegal data address).
    assert_eq!(raw_modbus(&mut s, 4, &[0x03, 0x01, 0x00, 0x00, 0x01]), [0, 4, 0, 0, 0, 3, 1, 0x83, 0x02]);
    // A read-only register written: exception 02.
    assert_eq!(raw_modbus(&mut s, 5, &[0x06, 0x00, 0x00, 0x00, 0x01]), [0, 5, 0, 0, 0, 3, 1, 0x86, 0x02]);
}

#[test]
fn the_modbus_client_speaks_rtu_framing_too() {
    use tomolab_firmware_bridge::bridge::{BridgeGantry, BridgePaddle, share_bus};
    use tomolab_firmware_bridge::modbus::{ModbusClient, ModbusTarget};
    use tomolab_hal::{CompressionPaddle, Degrees, Gantry, Newtons};
    let h = start_mock_server();
    let target = ModbusTarget::RtuOverTcp(h.modbus_rtu_addr.unwrap());
    let bus = share_bus(ModbusClient::new(target, 1, Duration::from_secs(2)).unwrap());
    let mut gantry = BridgeGantry::new(bus.clone(), MotionConfig::default());
    gantry.move_to(Degrees::new(-7.25).unwrap()).unwrap();
    assert_eq!(gantry.position().unwrap().get(), -7.25);
    let mut paddle = BridgePaddle::new(bus, MotionConfig::default());
    assert_eq!(paddle.compress(Newtons::new(90.0).unwrap()).unwrap().force.get(), 90.0);
}

/// Forwards loopback TCP to `target`, but answers nothing on the first connection and closes it after the
/// first request: a link that breaks mid-request.
fn breaking_proxy(target: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut first, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = first.read(&mut buf);
        drop(first);
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(target).unwrap();
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut s2);
        });
        let (mut c, mut s) = (client, server);
        let _ = std::io::copy(&mut s, &mut c);
        let _ = up.join();
    });
    addr
}

#[test]
fn the_modbus_client_reconnects_after_a_broken_link() {
    use tomolab_firmware_bridge::bridge::{BridgeGantry, share_bus};
    use tomolab_firmware_bridge::modbus::{ModbusClient, ModbusTarget, RegisterBus};
    use tomolab_hal::Gantry;
    let h = start_mock_server();
    let proxy = breaking_proxy(h.modbus_addr.unwrap());
    let bus = share_bus(ModbusClient::new(ModbusTarget::Tcp(proxy), 1, Duration::from_secs(5)).unwrap());
    let mut gantry = BridgeGantry::new(bus.clone(), MotionConfig { retries: 2, ..MotionConfig::default() });
    assert_eq!(gantry.position().unwrap().get(), 0.0);
    assert_eq!(bus.lock().unwrap().connects, 2, "the broken context must be dropped and reopened");
    assert_eq!(bus.lock().unwrap().read(0, 2).unwrap(), vec![0, 0]);
}

#[test]
fn a_modbus_call_to_a_silent_device_times_out_and_drops_the_context() {
    use tomolab_firmware_bridge::modbus::{ModbusClient, ModbusTarget, RegisterBus};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = std::thread::spawn(move || {
        // Accept and stay silent.
        let a = listener.accept().map(|(s, _)| s);
        let b = listener.accept().map(|(s, _)| s);
        std::thread::sleep(Duration::from_millis(500));
        drop((a, b));
    });
    let mut client = ModbusClient::new(ModbusTarget::Tcp(addr), 1, Duration::from_millis(100)).unwrap();
    let err = client.read(0, 2).unwrap_err();
    assert_eq!(err.kind, tomolab_hal::ErrorKind::Timeout, "{err}");
    let err = client.read(0, 2).unwrap_err();
    assert_eq!(err.kind, tomolab_hal::ErrorKind::Timeout, "{err}");
    assert_eq!(client.connects, 2, "a timed-out context must not be reused");
    hold.join().unwrap();
}
