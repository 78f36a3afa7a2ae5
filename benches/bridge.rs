//! Firmware-bridge benchmarks: command round-trip latency over a pseudo-terminal and over Modbus TCP on
//! loopback, and frame-stream throughput on loopback, all against the virtual device backed by the mock.
//!
//! Run: `cargo bench --bench bridge`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tomolab_firmware_bridge::device::DeviceConfig;
use tomolab_firmware_bridge::device::server::{SerialEndpoint, ServeConfig, serve};
use tomolab_firmware_bridge::host::backend::open_serial;
use tomolab_firmware_bridge::host::client::{ControlClient, LinkConfig, MonotonicTime};
use tomolab_firmware_bridge::host::modbus::{ModbusClient, ModbusTarget, RegisterBus};
use tomolab_firmware_bridge::protocol::frames::{FrameDecoder, FrameKind, FrameMessage, encode_frame};
use tomolab_firmware_bridge::protocol::message::Request;
use tomolab_firmware_bridge::protocol::regs::GANTRY_ANGLE_MDEG;
use tomolab_hal::Frame;
use tomolab_hal::mock::{MockConfig, MockUnit};

fn round_trips(c: &mut Criterion) {
    let config = ServeConfig {
        serial: SerialEndpoint::Pty,
        modbus: Some("127.0.0.1:0".parse().expect("loopback")),
        modbus_rtu_over_tcp: None,
        frames: None,
        device: DeviceConfig { link_timeout: Duration::from_secs(10), ..DeviceConfig::default() },
    };
    let server = serve(config, || MockUnit::new(MockConfig::default(), vec![]).devices()).expect("server");
    let path = server.pty_path.clone().expect("pty");
    let port = open_serial(&path, Duration::from_millis(5)).expect("open pty");
    let mut client = ControlClient::new(port, MonotonicTime::default(), LinkConfig::default());
    client.handshake().expect("handshake");
    let mut group = c.benchmark_group("round_trip");
    group.sample_size(30).measurement_time(Duration::from_secs(3));
    group
        .bench_function("serial_pty_interlocks", |b| b.iter(|| client.request(&Request::Interlocks).expect("request")));
    let mut modbus =
        ModbusClient::new(ModbusTarget::Tcp(server.modbus_addr.expect("modbus")), 1, Duration::from_secs(2))
            .expect("client");
    group.bench_function("modbus_tcp_read_gantry_angle", |b| {
        b.iter(|| modbus.read(GANTRY_ANGLE_MDEG, 2).expect("read"))
    });
    group.finish();
}

fn frame_throughput(c: &mut Criterion) {
    let msg = FrameMessage {
        seq: 1,
        view: 1,
        kind: FrameKind::Readout,
        timestamp: Duration::ZERO,
        frame: Frame { cols: 1024, rows: 1024, data: (0..1024 * 1024).map(|i| i as f32).collect() },
    };
    let bytes = encode_frame(&msg);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sender = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut go = [0u8; 1];
        // One frame per request byte, until the reader hangs up.
        while s.read_exact(&mut go).is_ok() {
            if s.write_all(&bytes).is_err() {
                break;
            }
        }
    });
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut group = c.benchmark_group("frame_stream");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(encode_frame(&msg).len() as u64));
    group.bench_function("loopback_tcp_1024x1024_f32", |b| {
        b.iter(|| {
            stream.write_all(&[1]).expect("request");
            loop {
                if let Some(Ok(f)) = decoder.next_frame() {
                    break f;
                }
                let n = stream.read(&mut buf).expect("read");
                decoder.push(&buf[..n]);
            }
        })
    });
    group.finish();
    drop(stream);
    let _ = sender.join();
}

criterion_group!(benches, round_trips, frame_throughput);
criterion_main!(benches);
