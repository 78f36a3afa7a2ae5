//! Parser robustness for every decoder of external bytes: control packets, request and response payloads,
//! frame stream. Encode-then-decode is the identity; arbitrary bytes never panic; every single-bit flip is
//! rejected; a valid frame after garbage is recovered.

use std::time::Duration;

use proptest::prelude::*;
use tomolab_firmware_bridge::protocol::frames::{FrameDecoder, FrameKind, FrameMessage, encode_frame};
use tomolab_firmware_bridge::protocol::message::{
    ExposureOutcome, FrameReady, HelloAck, Request, parse_error, parse_geometry, parse_interlocks,
};
use tomolab_firmware_bridge::protocol::wire::{Packet, PacketDecoder, decode_packet, encode_packet};
use tomolab_hal::mock::mock_technique;
use tomolab_hal::{ExposureRequest, Frame, MilliampereSeconds};

fn packet() -> impl Strategy<Value = Packet> {
    (any::<u8>(), any::<u8>(), any::<u16>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(version, kind, seq, ack, payload)| Packet { version, kind, seq, ack, payload })
}

fn frame_msg() -> impl Strategy<Value = FrameMessage> {
    (any::<u64>(), any::<u32>(), any::<bool>(), any::<u64>(), 0usize..6, 0usize..6, any::<u32>()).prop_map(
        |(seq, view, flood, ts, cols, rows, salt)| FrameMessage {
            seq,
            view,
            kind: if flood { FrameKind::Flood } else { FrameKind::Readout },
            timestamp: Duration::from_nanos(ts),
            frame: Frame {
                cols,
                rows,
                data: (0..cols * rows).map(|i| f32::from_bits(salt.wrapping_add(i as u32 * 7919))).collect(),
            },
        },
    )
}

fn requests() -> Vec<Request> {
    vec![
        Request::Hello { major: 2, minor: 0, caps: 31, nonce: 0xDEAD_BEEF },
        Request::SetTechnique(mock_technique(1.5)),
        Request::Prepare,
        Request::Expose {
            session: 0x1234_5678,
            id: 7,
            request: ExposureRequest {
                mas: MilliampereSeconds::new(1.0).unwrap(),
                backup_time: Duration::from_millis(11),
            },
        },
        Request::QueryExposure { session: 0x1234_5678, id: 7 },
        Request::Disable,
        Request::Interlocks,
        Request::DetectorGeometry,
        Request::Arm,
        Request::ReadFrame,
        Request::FloodFrame,
        Request::Disarm,
        Request::ResendFrame { seq: 99 },
    ]
}

fn decode_all(bytes: &[u8]) -> Vec<Packet> {
    PacketDecoder::new().push(bytes).into_iter().filter_map(Result::ok).collect()
}

fn frames_in(bytes: &[u8]) -> Vec<FrameMessage> {
    let mut d = FrameDecoder::default();
    d.push(bytes);
    std::iter::from_fn(|| d.next_frame()).filter_map(Result::ok).collect()
}

#[test]
fn every_request_round_trips() {
    for r in requests() {
        assert_eq!(Request::parse(r.code(), &r.payload()), Ok(r.clone()), "{r:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn packets_round_trip(p in packet()) {
        let bytes = encode_packet(&p);
        prop_assert_eq!(decode_all(&bytes), vec![p]);
    }

    #[test]
    fn packet_bit_flips_are_rejected(p in packet(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = encode_packet(&p);
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(!decode_all(&bytes).contains(&p));
        let body = &bytes[..bytes.len() - 1];
        if i < bytes.len() - 1 && !body.contains(&0) {
            prop_assert!(decode_packet(body).map_or(true, |q| q != p));
        }
    }

    #[test]
    fn packet_after_garbage_is_recovered(garbage in proptest::collection::vec(any::<u8>(), 0..200), p in packet()) {
        let mut bytes = garbage;
        bytes.push(0);
        bytes.extend(encode_packet(&p));
        let all = decode_all(&bytes);
        prop_assert_eq!(all.last(), Some(&p));
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600), kind in any::<u8>()) {
        let _ = decode_all(&bytes);
        let _ = decode_packet(&bytes);
        let _ = Request::parse(kind, &bytes);
        let _ = HelloAck::parse(&bytes);
        let _ = ExposureOutcome::parse(&bytes);
        let _ = FrameReady::parse(&bytes);
        let _ = parse_interlocks(&bytes);
        let _ = parse_geometry(&bytes);
        let _ = parse_error(&bytes);
        let _ = frames_in(&bytes);
    }

    #[test]
    fn frames_round_trip(m in frame_msg()) {
        let decoded = frames_in(&encode_frame(&m));
        prop_assert_eq!(decoded.len(), 1);
        // Compare bit patterns: NaN payloads must survive too.
        let bits = |f: &FrameMessage| f.frame.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&decoded[0]), bits(&m));
        prop_assert_eq!((decoded[0].seq, decoded[0].view, decoded[0].kind, decoded[0].timestamp), (m.seq, m.view, m.kind, m.timestamp));
    }

    #[test]
    fn frame_after_garbage_is_recovered(garbage in proptest::collection::vec(any::<u8>(), 0..300), m in frame_msg()) {
        let mut bytes = garbage;
        bytes.extend(encode_frame(&m));
        let decoded = frames_in(&bytes);
        prop_assert!(decoded.last().is_some_and(|d| d.seq == m.seq && d.frame.data.len() == m.frame.data.len()));
    }
}

#[test]
fn every_single_bit_flip_of_a_frame_is_rejected() {
    let m = FrameMessage {
        seq: 3,
        view: 2,
        kind: FrameKind::Readout,
        timestamp: Duration::from_millis(5),
        frame: Frame { cols: 4, rows: 3, data: (0..12).map(|i| i as f32 * 1.5).collect() },
    };
    let bytes = encode_frame(&m);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(frames_in(&b).is_empty(), "flip of byte {i} bit {bit} was accepted");
        }
    }
}

#[test]
fn every_single_bit_flip_of_each_request_packet_is_rejected() {
    for (seq, r) in requests().into_iter().enumerate() {
        let p = Packet { version: 1, kind: r.code(), seq: seq as u16, ack: 0, payload: r.payload() };
        let bytes = encode_packet(&p);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(!decode_all(&b).contains(&p), "{r:?}: flip of byte {i} bit {bit} accepted");
            }
        }
    }
}
