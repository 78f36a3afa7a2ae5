//! Seeded fuzzing of every Modbus ADU parser of ours: request decoding on the device side (Modbus TCP MBAP
//! framing and RTU framing, then the PDU decoder, then execution on a virtual device), and response decoding
//! on the host side (the `ModbusClient` over tokio-modbus, fed crafted answers through an in-memory pipe).
//!
//! Inputs mix random bytes, mutated valid encodings (bit flips, truncation, splicing, length-field and
//! byte-count edits) and valid ones. Checks: no panic, bounded work per input (every loop is bounded by the
//! input length), bounded memory (decoder buffers never exceed the ADU limit), valid inputs round-trip. The case
//! count comes from `TOMOLAB_FUZZ_CASES`; a long run by hand:
//! `TOMOLAB_FUZZ_CASES=10000000 cargo test --release -p tomolab-firmware-bridge fuzz_ -- --nocapture`.

use std::time::Instant;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tomolab_firmware_bridge::device::execute_modbus;
use tomolab_firmware_bridge::device::{DeviceConfig, VirtualDevice};
use tomolab_firmware_bridge::protocol::modbus::{
    MAX_PDU, MAX_RTU_ADU, MAX_TCP_ADU, MbapDecoder, MbapFrame, PduRequest, RtuDecoder, RtuFrame, UNIT_ID,
    decode_request_pdu,
};
use tomolab_hal::mock::{MockConfig, MockDevices, MockUnit};

/// Cases of one harness: `TOMOLAB_FUZZ_CASES`, or `default`.
fn cases(default: u64) -> u64 {
    std::env::var("TOMOLAB_FUZZ_CASES").ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn report(name: &str, n: u64, start: Instant) {
    let s = start.elapsed().as_secs_f64();
    eprintln!("{name}: {n} inputs in {s:.2} s, {:.0} inputs/s", n as f64 / s.max(1e-9));
}

/// A random valid request, biased toward the register map and its edges.
fn valid_request(rng: &mut ChaCha8Rng) -> PduRequest {
    let addr = match rng.random_range(0..4) {
        0 => rng.random_range(0..32),
        1 => rng.random_range(96..136),
        2 => rng.random_range(65400..=65535),
        _ => rng.random(),
    };
    let max = |limit: u16| u16::try_from(65536 - u32::from(addr)).unwrap_or(u16::MAX).min(limit);
    match rng.random_range(0..4) {
        0 | 1 => PduRequest::Read { addr, count: rng.random_range(1..=max(125)), input: rng.random() },
        2 => {
            let v = if rng.random_bool(0.5) { rng.random_range(0..6) } else { rng.random() };
            PduRequest::Write { addr, values: vec![v], single: true }
        }
        _ => {
            let n = rng.random_range(1..=max(123));
            let values = (0..n).map(|_| if rng.random_bool(0.3) { rng.random_range(0..6) } else { rng.random() });
            PduRequest::Write { addr, values: values.collect(), single: false }
        }
    }
}

/// One of the mutations of a valid encoding; `len_at` is where a length field sits (if any).
fn mutate(rng: &mut ChaCha8Rng, mut b: Vec<u8>, other: &[u8], len_at: Option<usize>) -> Vec<u8> {
    match rng.random_range(0..7) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                if !b.is_empty() {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        1 => b.truncate(rng.random_range(0..=b.len())),
        2 => {
            let cut = rng.random_range(0..=b.len());
            b.truncate(cut);
            b.extend_from_slice(&other[rng.random_range(0..=other.len())..]);
        }
        3 => {
            if let Some(at) = len_at.filter(|&at| b.len() >= at + 2) {
                let v: u16 = match rng.random_range(0..3) {
                    0 => rng.random(),
                    1 => u16::from_be_bytes([b[at], b[at + 1]]).wrapping_add(rng.random_range(0..5)).wrapping_sub(2),
                    _ => [0, 1, 2, 254, 255, 256, 65535][rng.random_range(0..7)],
                };
                b[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        4 => {
            // The byte count / quantity fields of the PDU.
            if !b.is_empty() {
                let i = rng.random_range(0..b.len());
                b[i] = [0, 1, 2, 0x7B, 0x7C, 0x7D, 0x7E, 0x80, 0xF6, 0xFF][rng.random_range(0..10)];
            }
        }
        5 => {
            let at = rng.random_range(0..=b.len());
            let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
            b.splice(at..at, junk);
        }
        _ => {
            // Another function code (unsupported, >= 0x80, or a known one on the wrong body).
            if let Some(i) = len_at.map(|at| at + 3).filter(|&i| i < b.len()) {
                b[i] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F, 0x10, 0x17, 0x2B, 0x80, 0x83, 0x90, 0xFF]
                    [rng.random_range(0..14)];
            }
        }
    }
    b
}

fn random_bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let mut b = vec![0u8; rng.random_range(0..=max)];
    rng.fill_bytes(&mut b);
    b
}

/// Pushes `bytes` in random chunks.
fn chunks<'a>(rng: &mut ChaCha8Rng, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = if rng.random_bool(0.5) { rest.len() } else { rng.random_range(1..=rest.len()) };
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

fn device() -> VirtualDevice<MockDevices> {
    let d: MockDevices = MockUnit::new(MockConfig::default(), vec![]).devices();
    VirtualDevice::new(d, DeviceConfig::default())
}

/// Checks an answer PDU to a request PDU that starts with `function`.
fn check_answer(function: u8, answer: &[u8]) {
    assert!(!answer.is_empty() && answer.len() <= MAX_PDU, "answer of {} bytes", answer.len());
    assert!(answer[0] == function || answer[0] == function | 0x80, "answer {answer:02x?} to function {function:#x}");
    if answer[0] & 0x80 != 0 {
        assert_eq!(answer.len(), 2);
        assert!((1..=4).contains(&answer[1]), "exception {:#x}", answer[1]);
    }
}

#[test]
fn fuzz_modbus_tcp_request_adus() {
    let n = cases(100_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x4D42_5443);
    let mut dev = device();
    let start = Instant::now();
    for i in 0..n {
        if i % 5000 == 0 {
            dev = device();
        }
        let req = valid_request(&mut rng);
        let frame = MbapFrame { transaction: rng.random(), unit: UNIT_ID, pdu: req.encode() };
        let valid = frame.encode();
        let mode = rng.random_range(0..10);
        let bytes = match mode {
            0..=2 => random_bytes(&mut rng, 300),
            3..=7 => {
                let other = MbapFrame { transaction: 1, unit: rng.random(), pdu: valid_request(&mut rng).encode() };
                mutate(&mut rng, valid.clone(), &other.encode(), Some(4))
            }
            _ => valid.clone(),
        };
        let mut decoder = MbapDecoder::new();
        let mut frames = Vec::new();
        for chunk in chunks(&mut rng, &bytes) {
            match decoder.push(chunk) {
                Ok(f) => frames.extend(f),
                Err(_) => break,
            }
            assert!(decoder.buffered() <= MAX_TCP_ADU, "MBAP buffer {} bytes", decoder.buffered());
        }
        if mode >= 8 {
            assert_eq!(frames, std::slice::from_ref(&frame), "a valid ADU round-trips");
            assert_eq!(decode_request_pdu(&frames[0].pdu), Ok(req.clone()));
        }
        for f in frames.iter().take(4) {
            assert!(!f.pdu.is_empty() && f.pdu.len() <= MAX_PDU);
            let answer = match decode_request_pdu(&f.pdu) {
                Ok(r) => {
                    assert_eq!(r.encode(), f.pdu, "a decoded request re-encodes to its bytes");
                    execute_modbus(&mut dev, &r)
                }
                Err((function, code)) => vec![function | 0x80, code],
            };
            check_answer(f.pdu[0], &answer);
            let out = MbapFrame { transaction: f.transaction, unit: f.unit, pdu: answer }.encode();
            assert!(out.len() <= MAX_TCP_ADU);
        }
    }
    report("fuzz_modbus_tcp_request_adus", n, start);
}

#[test]
fn fuzz_modbus_rtu_request_adus() {
    let n = cases(30_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x4D42_5254);
    let mut dev = device();
    let mut decoder = RtuDecoder::new();
    let start = Instant::now();
    for i in 0..n {
        if i % 5000 == 0 {
            dev = device();
        }
        let req = valid_request(&mut rng);
        let frame = RtuFrame { unit: if rng.random_bool(0.9) { UNIT_ID } else { rng.random() }, pdu: req.encode() };
        let valid = frame.encode();
        let mode = rng.random_range(0..10);
        let bytes = match mode {
            0..=2 => random_bytes(&mut rng, 300),
            3..=7 => {
                let other = RtuFrame { unit: UNIT_ID, pdu: valid_request(&mut rng).encode() }.encode();
                mutate(&mut rng, valid.clone(), &other, None)
            }
            _ => valid.clone(),
        };
        // Each input follows a silence, as on a real line.
        decoder.idle();
        let mut frames = Vec::new();
        for chunk in chunks(&mut rng, &bytes) {
            frames.extend(decoder.push(chunk));
            assert!(decoder.buffered() <= MAX_RTU_ADU, "RTU buffer {} bytes", decoder.buffered());
        }
        if mode >= 8 {
            assert_eq!(frames, std::slice::from_ref(&frame), "a valid RTU frame round-trips");
        }
        for f in frames.iter().take(4) {
            assert_eq!(f.clone().encode().len(), f.pdu.len() + 3);
            if f.pdu.is_empty() {
                continue;
            }
            let answer = match decode_request_pdu(&f.pdu) {
                Ok(r) => execute_modbus(&mut dev, &r),
                Err((function, code)) => vec![function | 0x80, code],
            };
            check_answer(f.pdu[0], &answer);
        }
    }
    report("fuzz_modbus_rtu_request_adus", n, start);
}

#[test]
fn fuzz_modbus_request_pdus() {
    let n = cases(200_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x4D42_5044);
    let start = Instant::now();
    for _ in 0..n {
        let req = valid_request(&mut rng);
        let valid = req.encode();
        let bytes = match rng.random_range(0..10) {
            0..=2 => random_bytes(&mut rng, 260),
            3..=7 => {
                let other = valid_request(&mut rng).encode();
                mutate(&mut rng, valid.clone(), &other, None)
            }
            _ => valid.clone(),
        };
        match decode_request_pdu(&bytes) {
            Ok(r) => {
                assert_eq!(r.encode(), bytes);
                let (addr, count) = match &r {
                    PduRequest::Read { addr, count, .. } => (*addr, u32::from(*count)),
                    PduRequest::Write { addr, values, .. } => (*addr, values.len() as u32),
                };
                assert!(u32::from(addr) + count <= 65536, "accepted a wrapping range: {r:?}");
            }
            Err((function, code)) => {
                assert!((1..=3).contains(&code));
                assert_eq!(Some(&function), bytes.first().or(Some(&0x80)));
            }
        }
        if bytes == valid {
            assert_eq!(decode_request_pdu(&bytes), Ok(req));
        }
    }
    report("fuzz_modbus_request_pdus", n, start);
}

/// Host side: `ModbusClient::read` / `write` against crafted answers. The fake device reads the request,
/// answers with the case's bytes (the transaction id patched in unless the case scrambles it) and hangs up, so
/// no case waits for a timeout.
#[test]
fn fuzz_modbus_client_response_adus() {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tomolab_firmware_bridge::host::modbus::{ModbusClient, ModbusTarget, RegisterBus};

    let n = cases(20_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x4D42_434C);
    // (answer bytes, patch the transaction id)
    type Answers = Rc<RefCell<VecDeque<(Vec<u8>, bool)>>>;
    let queue: Answers = Rc::default();
    let q = queue.clone();
    let open = move || {
        let (answer, patch) = q.borrow_mut().pop_front().unwrap_or_default();
        let fut: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<tokio_modbus::client::Context>>>> =
            Box::pin(async move {
                let (client, mut device) = tokio::io::duplex(1024);
                tokio::spawn(async move {
                    let mut req = [0u8; 7];
                    if device.read_exact(&mut req).await.is_err() {
                        return;
                    }
                    let len = usize::from(u16::from_be_bytes([req[4], req[5]])).saturating_sub(1);
                    let mut pdu = vec![0u8; len];
                    let _ = device.read_exact(&mut pdu).await;
                    let mut answer = answer;
                    if patch && answer.len() >= 2 {
                        answer[..2].copy_from_slice(&req[..2]);
                    }
                    let _ = device.write_all(&answer).await;
                    // Hang up: an incomplete answer ends in EOF, not in a timeout.
                });
                Ok(tokio_modbus::client::tcp::attach_slave(client, tokio_modbus::Slave(UNIT_ID)))
            });
        fut
    };
    let mut client = ModbusClient::new(ModbusTarget::Custom(Box::new(open)), UNIT_ID, Duration::from_secs(5)).unwrap();
    let start = Instant::now();
    let (mut ok, mut err) = (0u64, 0u64);
    for _ in 0..n {
        let req = valid_request(&mut rng);
        let (count, values) = match &req {
            PduRequest::Read { count, .. } => (*count, Vec::new()),
            PduRequest::Write { values, .. } => (0, values.clone()),
        };
        let regs: Vec<u16> = (0..count).map(|_| rng.random()).collect();
        // The client's writes are FC16, its reads FC03.
        let sent = match &req {
            PduRequest::Read { addr, count, .. } => PduRequest::Read { addr: *addr, count: *count, input: false },
            PduRequest::Write { addr, values, .. } => {
                PduRequest::Write { addr: *addr, values: values.clone(), single: false }
            }
        };
        let valid = MbapFrame { transaction: 0, unit: UNIT_ID, pdu: sent.answer(&regs) }.encode();
        let mode = rng.random_range(0..10);
        let (answer, patch) = match mode {
            0..=1 => (random_bytes(&mut rng, 300), rng.random_bool(0.5)),
            2 => {
                let code = [1u8, 2, 3, 4, 6, 0x0B, 0x55][rng.random_range(0..7)];
                (MbapFrame { transaction: 0, unit: UNIT_ID, pdu: vec![sent.function() | 0x80, code] }.encode(), true)
            }
            3..=7 => {
                let other = MbapFrame { transaction: 0, unit: UNIT_ID, pdu: valid_request(&mut rng).answer(&regs) };
                (mutate(&mut rng, valid.clone(), &other.encode(), Some(4)), rng.random_bool(0.8))
            }
            _ => (valid.clone(), true),
        };
        queue.borrow_mut().push_back((answer, patch));
        let result = match &sent {
            PduRequest::Read { addr, count, .. } => client.read(*addr, *count).map(Some),
            PduRequest::Write { addr, .. } => client.write(*addr, &values).map(|()| None),
        };
        match (&result, mode >= 8) {
            (Ok(Some(v)), _) => assert_eq!(v.len(), usize::from(count), "a read answers exactly count registers"),
            (Ok(None), _) => {}
            (Err(e), true) => panic!("a valid answer was refused: {e}"),
            (Err(_), false) => {}
        }
        if mode >= 8 {
            if let Ok(Some(v)) = &result {
                assert_eq!(v, &regs, "a valid read answer round-trips");
            }
        }
        if result.is_ok() {
            ok += 1
        } else {
            err += 1
        }
        client.disconnect();
    }
    assert!(ok > 0 && err > 0);
    report("fuzz_modbus_client_response_adus", n, start);
}

/// Found by the long fuzz run: an RTU FC16 header whose byte count makes a frame longer than any RTU ADU (9 +
/// 250 > 256) made the decoder wait for the whole "frame", so its buffer grew past `MAX_RTU_ADU`.
#[test]
fn an_rtu_header_announcing_an_oversized_frame_does_not_grow_the_buffer() {
    let mut d = RtuDecoder::new();
    let mut bytes = vec![UNIT_ID, 0x10, 0x00, 0x10, 0x00, 0x7D, 0xFA];
    bytes.extend(std::iter::repeat_n(0x55, 300));
    for b in &bytes {
        d.push(std::slice::from_ref(b));
        assert!(d.buffered() <= MAX_RTU_ADU, "RTU buffer {} bytes", d.buffered());
    }
    // A valid frame after the junk is still found.
    let frame = RtuFrame { unit: UNIT_ID, pdu: vec![0x03, 0, 0, 0, 2] };
    d.idle();
    assert_eq!(d.push(&frame.encode()), [frame]);
}
