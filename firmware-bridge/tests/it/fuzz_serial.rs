//! Seeded fuzzing of the serial side's decoders: control packets (COBS framing + header + CRC, through the
//! streaming `PacketDecoder`), request and response payloads, and frame-stream headers (`FrameDecoder`). Inputs
//! are random bytes, mutated valid encodings (bit flips, truncation, splicing, length-field edits) and valid
//! ones. Checks: no panic, bounded work and memory per input (decoder buffers never exceed their stated bound),
//! valid inputs round-trip. Case count from `TOMOLAB_FUZZ_CASES`.

use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tomolab_firmware_bridge::protocol::frames::{
    FrameDecoder, FrameKind, FrameMessage, PREFIX_LEN, encode_frame, parse_stream_hello,
};
use tomolab_firmware_bridge::protocol::message::{
    ExposureOutcome, FrameReady, HelloAck, Request, parse_error, parse_geometry, parse_interlocks,
};
use tomolab_firmware_bridge::protocol::wire::{MAX_PACKET_LEN, Packet, PacketDecoder, decode_packet, encode_packet};
use tomolab_hal::Frame;

fn cases(default: u64) -> u64 {
    std::env::var("TOMOLAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(what: &str, n: u64, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    eprintln!("fuzz {what}: {n} inputs in {s:.2} s ({:.0} inputs/s)", n as f64 / s.max(1e-9));
}

fn random_packet(rng: &mut ChaCha8Rng) -> Packet {
    let len = rng.random_range(0..64);
    let mut payload = vec![0u8; len];
    rng.fill_bytes(&mut payload);
    Packet { version: rng.random(), kind: rng.random(), seq: rng.random(), ack: rng.random(), payload }
}

fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, donor: &[u8]) {
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..5) {
            0 if !bytes.is_empty() => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !bytes.is_empty() => {
                let n = rng.random_range(0..bytes.len());
                bytes.truncate(n);
            }
            2 if !donor.is_empty() => {
                let at = rng.random_range(0..=bytes.len());
                let from = rng.random_range(0..donor.len());
                let tail = bytes.split_off(at);
                bytes.extend_from_slice(&donor[from..]);
                bytes.extend(tail);
            }
            3 if bytes.len() >= 8 => {
                // Length-field edit (frame body_len at 4..8; for packets a header byte).
                let v: u32 = rng.random();
                bytes[4..8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let n = rng.random_range(0..32);
                bytes.extend((0..n).map(|_| rng.random::<u8>()));
            }
        }
    }
}

#[test]
fn fuzz_serial_packets_and_payloads() {
    let n = cases(100_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x005E_71A1_0001);
    let start = Instant::now();
    let mut decoder = PacketDecoder::new();
    let mut donor = encode_packet(&random_packet(&mut rng));
    let mut valid = 0u64;
    for i in 0..n {
        let p = random_packet(&mut rng);
        let good = encode_packet(&p);
        let mut bytes = good.clone();
        match i % 3 {
            0 => {
                // A valid packet round-trips, also through the streaming decoder after garbage and a delimiter.
                assert_eq!(decode_packet(&good[..good.len() - 1]), Ok(p.clone()));
                let mut d = PacketDecoder::new();
                let mut stream = vec![rng.random::<u8>(); rng.random_range(0..8)];
                stream.push(0);
                stream.extend_from_slice(&good);
                assert_eq!(d.push(&stream).into_iter().filter_map(Result::ok).next_back(), Some(p.clone()));
                valid += 1;
            }
            1 => mutate(&mut rng, &mut bytes, &donor),
            _ => {
                bytes = vec![0u8; rng.random_range(0..700)];
                rng.fill_bytes(&mut bytes);
            }
        }
        // The long-lived decoder sees everything: it must never hold more than one maximal COBS packet.
        let out = decoder.push(&bytes);
        assert!(out.len() <= bytes.len() + 1);
        let _ = decode_packet(&bytes);
        for q in out.into_iter().flatten() {
            assert!(q.payload.len() <= MAX_PACKET_LEN);
        }
        let kind: u8 = rng.random();
        if let Ok(r) = Request::parse(kind, &bytes) {
            assert_eq!(Request::parse(r.code(), &r.payload()), Ok(r));
        }
        let _ = Request::parse(p.kind, &p.payload);
        if let Ok(a) = HelloAck::parse(&bytes) {
            assert_eq!(HelloAck::parse(&a.encode()), Ok(a));
        }
        let _ = ExposureOutcome::parse(&bytes);
        let _ = FrameReady::parse(&bytes);
        let _ = parse_interlocks(&bytes);
        let _ = parse_geometry(&bytes);
        let _ = parse_error(&bytes);
        let _ = parse_stream_hello(&bytes);
        if i % 64 == 0 {
            donor = good;
        }
    }
    assert!(valid > 0);
    report("serial packets + payloads", n, start);
}

fn random_frame(rng: &mut ChaCha8Rng) -> FrameMessage {
    let (cols, rows) = (rng.random_range(0..8usize), rng.random_range(0..8usize));
    FrameMessage {
        seq: rng.random(),
        view: rng.random(),
        kind: if rng.random() { FrameKind::Flood } else { FrameKind::Readout },
        timestamp: Duration::from_nanos(rng.random()),
        frame: Frame { cols, rows, data: (0..cols * rows).map(|_| f32::from_bits(rng.random())).collect() },
    }
}

#[test]
fn fuzz_frame_stream_headers() {
    let n = cases(50_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x00F2_A3E5_0002);
    let start = Instant::now();
    // A small pixel bound, so a corrupted length can never make the decoder wait for (or buffer) more.
    const MAX_PIXELS: usize = 64;
    let bound = PREFIX_LEN + 32 + 4 * MAX_PIXELS + 4;
    let mut decoder = FrameDecoder::new(MAX_PIXELS);
    let mut donor = encode_frame(&random_frame(&mut rng));
    for i in 0..n {
        let m = random_frame(&mut rng);
        let good = encode_frame(&m);
        let mut bytes = good.clone();
        match i % 3 {
            0 => {
                let mut d = FrameDecoder::new(MAX_PIXELS);
                let garbage = rng.random_range(0..16);
                d.push(&(0..garbage).map(|_| rng.random::<u8>()).collect::<Vec<_>>());
                d.push(&good);
                let got: Vec<_> = std::iter::from_fn(|| d.next_frame()).filter_map(Result::ok).collect();
                let last = got.last().expect("a valid frame after garbage is recovered");
                assert_eq!((last.seq, last.view, last.kind, last.timestamp), (m.seq, m.view, m.kind, m.timestamp));
                let bits = |f: &FrameMessage| f.frame.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(last), bits(&m));
            }
            1 => mutate(&mut rng, &mut bytes, &donor),
            _ => {
                bytes = vec![0u8; rng.random_range(0..400)];
                rng.fill_bytes(&mut bytes);
                if rng.random() {
                    let k = bytes.len().min(4);
                    bytes[..k].copy_from_slice(&b"TLFR"[..k]);
                }
            }
        }
        decoder.push(&bytes);
        // Bounded work: each call consumes bytes or returns None.
        let mut steps = 0;
        while decoder.next_frame().is_some() {
            steps += 1;
            assert!(steps <= bytes.len() + bound, "decoder loops");
        }
        let _ = parse_stream_hello(&bytes);
        // Bounded memory: after draining, the buffer holds at most one incomplete maximal frame.
        assert!(decoder.buffered() <= bound, "decoder holds {} bytes (bound {bound})", decoder.buffered());
        if i % 64 == 0 {
            donor = good;
        }
    }
    report("frame-stream headers", n, start);
}

#[test]
fn fuzz_cobs_framing() {
    let n = cases(100_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x00C0_B5F4_0003);
    let start = Instant::now();
    let bound = cobs::max_encoding_length(MAX_PACKET_LEN);
    let mut stream_decoder = PacketDecoder::new();
    let mut donor = cobs::encode_vec(b"donor");
    for i in 0..n {
        let mut raw = vec![0u8; rng.random_range(0..600)];
        rng.fill_bytes(&mut raw);
        if rng.random_bool(0.3) {
            // Zero-rich data: the COBS worst and best cases.
            for b in raw.iter_mut().filter(|_| rng.random_bool(0.5)) {
                *b = 0;
            }
        }
        let good = cobs::encode_vec(&raw);
        assert!(!good.contains(&0), "COBS output holds no delimiter");
        assert!(good.len() <= cobs::max_encoding_length(raw.len()));
        let mut bytes = good.clone();
        match i % 3 {
            0 => assert_eq!(cobs::decode_vec(&good).ok(), Some(raw.clone()), "COBS round trip"),
            1 => mutate(&mut rng, &mut bytes, &donor),
            _ => {
                bytes = vec![0u8; rng.random_range(0..1200)];
                rng.fill_bytes(&mut bytes);
            }
        }
        let _ = cobs::decode_vec(&bytes);
        let _ = decode_packet(&bytes);
        // The streaming decoder, fed in random chunks with delimiters: bounded buffer, at most one result per
        // delimiter.
        let mut at = 0;
        while at < bytes.len() {
            let k = rng.random_range(1..=64).min(bytes.len() - at);
            let zeros = bytes[at..at + k].iter().filter(|&&b| b == 0).count();
            assert!(stream_decoder.push(&bytes[at..at + k]).len() <= zeros);
            assert!(stream_decoder.buffered() <= bound, "packet decoder holds {} bytes", stream_decoder.buffered());
            at += k;
        }
        if rng.random_bool(0.5) {
            let _ = stream_decoder.push(&[0]);
        }
        if i % 64 == 0 {
            donor = good;
        }
    }
    report("COBS framing", n, start);
}
