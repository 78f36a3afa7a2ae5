//! Exposure integrity on the serial protocol (issue 14, items 1 and 3): exposure ids are unique per session,
//! the duplicate cache is keyed on the whole request and cleared on HELLO and on watchdog expiry, captured
//! packets never fire twice, a device reused by a second host after a refused exam exposes for real, and the
//! device refuses out-of-range techniques and exposures without compression whatever the host checked.

use std::time::Duration;

use proptest::prelude::*;
use tomolab_firmware_bridge::device::{DeviceConfig, VirtualDevice};
use tomolab_firmware_bridge::protocol::message::{ExposureOutcome, HelloAck, Request, code, error_code, parse_error};
use tomolab_firmware_bridge::protocol::wire::{PROTOCOL_MAJOR, Packet, PacketDecoder, PayloadWriter, encode_packet};
use tomolab_hal::mock::{MockConfig, MockDevices, MockUnit, mock_technique};
use tomolab_hal::sequencer::{Aec, SafetyLimits, Sequencer};
use tomolab_hal::{
    Compression, ExamPlan, ExamStatus, ExposureRequest, Frame, MilliGray, MilliampereSeconds, Newtons, PresetName,
    ScanPreset, SystemClock, Technique, TechniqueMode,
};

use crate::common::*;

type Dev = VirtualDevice<MockDevices>;

/// A host talking raw packets to a virtual device (sans-I/O, no client logic in between).
struct Raw {
    unit: MockUnit,
    dev: Dev,
    seq: u16,
    now: Duration,
}

fn devices(unit: &MockUnit) -> MockDevices {
    unit.devices()
}

impl Raw {
    fn new(config: DeviceConfig) -> Self {
        let unit = MockUnit::new(MockConfig::default(), vec![]);
        let dev = VirtualDevice::new(devices(&unit), config);
        Self { unit, dev, seq: 0, now: Duration::ZERO }
    }

    fn packet(&mut self, req: &Request) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        encode_packet(&Packet {
            version: PROTOCOL_MAJOR,
            kind: req.code(),
            seq: self.seq,
            ack: 0,
            payload: req.payload(),
        })
    }

    /// Feeds bytes; returns the answers (heartbeats dropped).
    fn feed(&mut self, bytes: &[u8]) -> Vec<Packet> {
        self.now += Duration::from_millis(1);
        let out = self.dev.on_serial_bytes(bytes, self.now);
        PacketDecoder::new()
            .push(&out)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|p| p.kind != code::HEARTBEAT)
            .collect()
    }

    fn send(&mut self, req: &Request) -> Packet {
        let bytes = self.packet(req);
        let mut answers = self.feed(&bytes);
        assert_eq!(answers.len(), 1, "{req:?}: one answer expected");
        answers.remove(0)
    }

    fn hello(&mut self) -> u32 {
        let p = self.send(&Request::Hello { major: PROTOCOL_MAJOR, minor: 0, caps: 0x1F, nonce: self.seq.into() });
        assert_eq!(p.kind, code::HELLO_ACK);
        HelloAck::parse(&p.payload).unwrap().session
    }

    fn ready(&mut self) {
        use tomolab_hal::CompressionPaddle;
        devices(&self.unit).paddle.compress(Newtons::new(100.0).unwrap()).unwrap();
        assert_eq!(self.send(&Request::SetTechnique(mock_technique(1.0))).kind, code::OK);
        assert_eq!(self.send(&Request::Prepare).kind, code::OK);
    }

    fn beams(&self) -> usize {
        self.unit.with_state(|s| s.exposures.iter().filter(|e| e.record.is_some_and(|r| r.mas.get() > 0.0)).count())
    }

    fn backend_calls(&self) -> usize {
        self.unit.with_state(|s| s.exposures.len())
    }
}

fn expose(session: u32, id: u32) -> Request {
    Request::Expose {
        session,
        id,
        request: ExposureRequest { mas: MilliampereSeconds::new(1.0).unwrap(), backup_time: Duration::from_millis(11) },
    }
}

fn error_of(p: &Packet) -> u8 {
    assert_eq!(p.kind, code::ERROR, "expected an ERROR, got {:#04x}", p.kind);
    parse_error(&p.payload).unwrap().0
}

/// Ids 1, 2, 1 in one session all fired: the second 1 is refused (EXPOSURE_ID_REUSED), no second beam.
#[test]
fn exposure_ids_1_2_1_in_one_session_fire_two_beams() {
    let mut h = Raw::new(sim_device());
    let s = h.hello();
    h.ready();
    assert_eq!(h.send(&expose(s, 1)).kind, code::OK);
    assert_eq!(h.send(&expose(s, 2)).kind, code::OK);
    assert_eq!(error_of(&h.send(&expose(s, 1))), error_code::EXPOSURE_ID_REUSED);
    assert_eq!(h.beams(), 2);
}

/// A replayed captured EXPOSE packet fired again once another id had been exposed.
#[test]
fn a_replayed_expose_packet_never_fires_twice() {
    let mut h = Raw::new(sim_device());
    let s = h.hello();
    h.ready();
    let captured = h.packet(&expose(s, 1));
    assert_eq!(h.feed(&captured)[0].kind, code::OK);
    // The retry of the same packet is answered from the cache.
    assert_eq!(h.feed(&captured)[0].kind, code::OK);
    assert_eq!(h.send(&expose(s, 2)).kind, code::OK);
    for _ in 0..3 {
        assert_eq!(error_of(&h.feed(&captured)[0]), error_code::EXPOSURE_ID_REUSED);
    }
    assert_eq!(h.beams(), 2);
}

/// After DISABLE a stale id still answered OK (with the record of a beam long past).
#[test]
fn after_disable_a_stale_exposure_id_never_answers_ok() {
    let mut h = Raw::new(sim_device());
    let s = h.hello();
    h.ready();
    assert_eq!(h.send(&expose(s, 1)).kind, code::OK);
    assert_eq!(h.send(&Request::Disable).kind, code::OK);
    assert_eq!(error_of(&h.send(&expose(s, 1))), error_code::EXPOSURE_ID_REUSED);
    let q = h.send(&Request::QueryExposure { session: s, id: 1 });
    assert_eq!(q.kind, code::OK);
    assert!(matches!(ExposureOutcome::parse(&q.payload).unwrap(), ExposureOutcome::Failed(..)), "{q:?}");
    assert_eq!(h.beams(), 1);
}

/// The duplicate cache was keyed on the sequence number only: another request with that number got the old
/// answer (and was never executed).
#[test]
fn a_reused_sequence_number_with_another_request_is_refused() {
    let mut h = Raw::new(sim_device());
    h.hello();
    let set = h.packet(&Request::SetTechnique(mock_technique(1.0)));
    assert_eq!(h.feed(&set)[0].kind, code::OK);
    let seq = h.seq;
    let prepare =
        encode_packet(&Packet { version: PROTOCOL_MAJOR, kind: code::PREPARE, seq, ack: 0, payload: Vec::new() });
    assert_eq!(error_of(&h.feed(&prepare)[0]), error_code::SEQ_REUSED);
    assert!(!h.unit.with_state(|s| s.prepared), "the refused request was executed");
    // The genuine retry still gets its cached answer.
    assert_eq!(h.feed(&set)[0].kind, code::OK);
    assert_eq!(h.dev.stats().duplicates, 1);
}

/// The reply cache and the exposure ids outlived the session: a new HELLO (a new host) inherited them.
#[test]
fn a_new_hello_forgets_the_old_sessions_cache_and_exposure_ids() {
    let mut h = Raw::new(sim_device());
    let s1 = h.hello();
    h.ready();
    assert_eq!(h.send(&expose(s1, 1)).kind, code::OK);
    let s2 = h.hello();
    assert_ne!(s1, s2, "a new HELLO must draw a new session id");
    // The old session's id is refused, the new host's id 1 is a new exposure.
    assert_eq!(error_of(&h.send(&expose(s1, 2))), error_code::STALE_SESSION);
    assert_eq!(h.send(&Request::Prepare).kind, code::OK);
    assert_eq!(h.send(&expose(s2, 1)).kind, code::OK);
    assert_eq!(h.beams(), 2);
    assert_eq!(h.dev.fired().len(), 2);
}

/// Guard (the watchdog already cleared the cache before issue 14; kept so it stays so): after link loss a retried
/// packet is never answered from the closed session's cache.
#[test]
fn watchdog_expiry_clears_the_reply_cache() {
    let config = sim_device();
    let mut h = Raw::new(config);
    h.hello();
    let set = h.packet(&Request::SetTechnique(mock_technique(1.0)));
    assert_eq!(h.feed(&set)[0].kind, code::OK);
    h.now += config.link_timeout * 2;
    let _ = h.dev.poll(h.now);
    assert!(!h.dev.session_open());
    assert_eq!(error_of(&h.feed(&set)[0]), error_code::NO_SESSION);
}

fn technique_payload(kvp: f64, ma: f64, mas: f64, filter_mm: f64) -> Vec<u8> {
    PayloadWriter::default().f64(kvp).f64(ma).f64(mas).u8(0).u8(0).f64(filter_mm).u8(0).0
}

fn raw_request(h: &mut Raw, kind: u8, payload: Vec<u8>) -> Packet {
    h.seq += 1;
    let bytes = encode_packet(&Packet { version: PROTOCOL_MAJOR, kind, seq: h.seq, ack: 0, payload });
    h.feed(&bytes).remove(0)
}

/// The device fired with no compression at all (only the host sequencer checked the force).
#[test]
fn device_refuses_an_exposure_without_compression() {
    let mut h = Raw::new(sim_device());
    let s = h.hello();
    assert_eq!(h.send(&Request::SetTechnique(mock_technique(1.0))).kind, code::OK);
    assert_eq!(h.send(&Request::Prepare).kind, code::OK);
    assert_eq!(error_of(&h.send(&expose(s, 1))), error_code::NO_COMPRESSION);
    assert_eq!(h.backend_calls(), 0);
}

/// The device accepted 2000 mAs at 0.001 mA (a 23-day exposure).
#[test]
fn device_refuses_2000_mas_at_0_001_ma() {
    let mut h = Raw::new(sim_device());
    let s = h.hello();
    h.ready();
    let p = raw_request(&mut h, code::SET_TECHNIQUE, technique_payload(28.0, 0.001, 2000.0, 0.05));
    assert_eq!(error_of(&p), error_code::TECHNIQUE_LIMIT);
    let p = raw_request(&mut h, code::EXPOSE, PayloadWriter::default().u32(s).u32(1).f64(2000.0).u64(11_000_000).0);
    assert_eq!(error_of(&p), error_code::TECHNIQUE_LIMIT);
    assert_eq!(h.backend_calls(), 0);
}

/// The device accepted a backup time of u64::MAX ns (585 years: no backup timer at all).
#[test]
fn device_refuses_a_backup_time_of_u64_max_ns() {
    let mut h = Raw::new(sim_device());
    let s = h.hello();
    h.ready();
    let p = raw_request(&mut h, code::EXPOSE, PayloadWriter::default().u32(s).u32(1).f64(1.0).u64(u64::MAX).0);
    assert_eq!(error_of(&p), error_code::TECHNIQUE_LIMIT);
    let p = raw_request(&mut h, code::EXPOSE, PayloadWriter::default().u32(s).u32(2).f64(1.0).u64(0).0);
    assert_eq!(error_of(&p), error_code::TECHNIQUE_LIMIT);
    assert_eq!(h.backend_calls(), 0);
}

/// The device accepted a negative filter thickness.
#[test]
fn device_refuses_a_negative_filter_thickness() {
    let mut h = Raw::new(sim_device());
    h.hello();
    for (kvp, ma, mas, filter) in [(28.0, 100.0, 1.0, -0.05), (60.0, 100.0, 1.0, 0.05), (28.0, 100.0, 700.0, 0.05)] {
        let p = raw_request(&mut h, code::SET_TECHNIQUE, technique_payload(kvp, ma, mas, filter));
        assert_eq!(error_of(&p), error_code::TECHNIQUE_LIMIT, "{kvp} kV {ma} mA {mas} mAs {filter} mm");
    }
    let p = raw_request(&mut h, code::SET_TECHNIQUE, technique_payload(28.0, 100.0, 1.0, 0.05));
    assert_eq!(p.kind, code::OK);
}

/// An AEC that fails (first host) or returns the reference technique (second host).
pub struct TestAec {
    pub fail: bool,
}

impl Aec for TestAec {
    fn choose(
        &self,
        _: &Frame,
        _: Option<&Frame>,
        _: &Technique,
        _: &Compression,
        _: usize,
    ) -> Result<Technique, tomolab_hal::sequencer::AecError> {
        if self.fail {
            Err(tomolab_hal::sequencer::AecError::new(tomolab_hal::ErrorKind::Other, "pre-shot too dark (test)"))
        } else {
            Ok(mock_technique(1.0))
        }
    }
}

pub fn aec_plan() -> ExamPlan {
    let preset = ScanPreset::builtin(PresetName::WideAngle);
    ExamPlan::from_preset(
        &preset,
        TechniqueMode::Aec { preshot: mock_technique(2.0) },
        Newtons::new(100.0).unwrap(),
        MilliGray::new(3.0).unwrap(),
    )
    .unwrap()
}

/// One bridged exam by a new host process (a new client, ids from 1) on the shared simulated device.
pub fn host_exam(sim: &MockSim, aec: &dyn Aec) -> tomolab_hal::Acquisition {
    let mut devices = sim_bridge(sim, sim.serial(), sim.frame_stream()).unwrap();
    let mut seq = Sequencer::new(SafetyLimits::default()).unwrap();
    seq.run(&mut devices, &aec_plan(), &DOSE, Some(aec), &SystemClock::default()).unwrap()
}

/// Each host starts its exposure ids at 1; the device remembered the first host's id 1 and answered the second
/// host's pre-shot with the old record ("OK, 2.0 mAs" for a beam that never fired), so every later exam
/// aborted and the bundle logged exposures that never happened.
#[test]
fn a_second_host_after_an_exam_ended_at_its_preshot_exposes_for_real() {
    let (unit, sim) = mock_sim(vec![]);
    let first = host_exam(&sim, &TestAec { fail: true });
    assert!(matches!(first.meta.status, ExamStatus::Aborted { .. }), "{:?}", first.meta.status);
    assert_eq!(first.meta.exposures.len(), 1, "the first exam ends after its pre-shot");
    let before = unit.with_state(|s| s.exposures.len());
    for round in 0..2 {
        let acq = host_exam(&sim, &TestAec { fail: false });
        assert!(acq.is_complete(), "round {round}: {:?}", acq.meta.status);
        let physical: Vec<_> = unit.with_state(|s| s.exposures[before..].iter().map(|e| e.record).collect());
        assert!(
            physical.len() >= acq.meta.exposures.len(),
            "round {round}: {} exposures logged, {} physically fired",
            acq.meta.exposures.len(),
            physical.len()
        );
        let physical = &physical[physical.len() - acq.meta.exposures.len()..];
        for (logged, real) in acq.meta.exposures.iter().zip(physical) {
            assert_eq!(Some(logged.record), *real, "round {round}: a logged exposure that did not physically happen");
        }
        assert_eq!(acq.meta.exposures.len(), 26, "pre-shot + 25 views");
    }
    assert_eq!(unit.with_state(|s| s.exposures.len()), before + 52, "every exposure fired exactly once");
}

/// The packets of one captured session: HELLO, technique, three exposures, a query, DISABLE, one more
/// exposure. Built against a device with the same boot seed, so the session id matches a fresh device's first.
fn captured_session(config: DeviceConfig) -> Vec<Vec<u8>> {
    let mut h = Raw::new(config);
    let hello = h.packet(&Request::Hello { major: PROTOCOL_MAJOR, minor: 0, caps: 0x1F, nonce: 42 });
    let ack = h.feed(&hello).remove(0);
    let s = HelloAck::parse(&ack.payload).unwrap().session;
    let mut out = vec![hello];
    for req in [
        Request::SetTechnique(mock_technique(1.0)),
        Request::Prepare,
        expose(s, 1),
        expose(s, 2),
        expose(s, 3),
        Request::QueryExposure { session: s, id: 2 },
        Request::Disable,
        Request::Prepare,
        expose(s, 4),
    ] {
        out.push(h.packet(&req));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Captured packets replayed and reordered at random: the number of beams equals the number of distinct
    /// (session, id) exposure requests the device accepted, and no pair fires twice.
    #[test]
    fn replayed_and_reordered_captured_packets_never_fire_twice(
        schedule in proptest::collection::vec(0usize..10, 1..60),
        idle in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let config = sim_device();
        let packets = captured_session(config);
        let mut h = Raw::new(config);
        devices(&h.unit).paddle.compress(Newtons::new(100.0).unwrap()).ok();
        use tomolab_hal::CompressionPaddle;
        let mut accepted = std::collections::BTreeSet::new();
        for (i, &k) in schedule.iter().enumerate() {
            if idle[i % idle.len()] && i % 7 == 0 {
                // Sometimes the link goes quiet long enough for the watchdog.
                h.now += config.link_timeout * 2;
                let _ = h.dev.poll(h.now);
                devices(&h.unit).paddle.compress(Newtons::new(100.0).unwrap()).ok();
            }
            let session = h.dev.session_id();
            let answers = h.feed(&packets[k]);
            let decoded = PacketDecoder::new().push(&packets[k]).remove(0).unwrap();
            if decoded.kind == code::EXPOSE && answers.iter().any(|a| a.kind == code::OK) {
                let Request::Expose { session: s, id, .. } = Request::parse(decoded.kind, &decoded.payload).unwrap() else {
                    unreachable!()
                };
                prop_assert_eq!(Some(s), session);
                accepted.insert((s, id));
            }
        }
        let fired = h.dev.fired().to_vec();
        let mut unique = fired.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), fired.len(), "a (session, id) fired twice: {:?}", fired);
        prop_assert_eq!(h.beams(), accepted.len(), "beams vs accepted exposure requests; fired {:?}", fired);
    }
}

/// Stray TCP connections to the frame port during a bridge exam over the threaded server; returns whether the
/// exam completed identical to the direct one (the frame stream belongs to the session's reader).
pub fn threaded_exam_with_stray_frame_connects(strays: usize) -> bool {
    use std::io::{Read as _, Write as _};
    let h = crate::server::start_mock_server();
    let addr = h.frames_addr.unwrap();
    let (mut devices, _hb) = tomolab_firmware_bridge::host::backend::connect(
        &crate::server::endpoints(&h),
        crate::server::real_link(),
        tomolab_firmware_bridge::host::backend::MotionConfig::default(),
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let stray = std::thread::spawn(move || {
        let (mut got, mut made) = (0usize, 0usize);
        let mut open: Vec<std::net::TcpStream> = Vec::new();
        let mut buf = [0u8; 4096];
        while made < strays || !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                // Silent, a wrong token, garbage: each stays open a while (up to 6 at once) and reads.
                match made % 3 {
                    0 => {}
                    1 => drop(s.write_all(&tomolab_firmware_bridge::protocol::frames::encode_stream_hello(0x1234))),
                    _ => drop(s.write_all(b"GET / HTTP/1.0\r\n\r\n")),
                }
                let _ = s.set_nonblocking(true);
                open.push(s);
                made += 1;
                if open.len() > 6 {
                    open.remove(0);
                }
            }
            for s in &mut open {
                if let Ok(n) = s.read(&mut buf) {
                    got += n;
                }
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        (got, made)
    });
    let acq = run_exam(&mut devices);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (stolen, made) = stray.join().unwrap();
    assert_eq!(stolen, 0, "a stray connection received frame bytes");
    assert!(made >= strays);
    acq.is_complete() && without_timestamps(acq) == without_timestamps(direct_exam())
}

/// One stray connect to the frame port took the stream from the real reader and aborted the exam at view 11,
/// after an exposure whose image was lost.
#[test]
fn a_stray_frame_port_connection_neither_aborts_the_exam_nor_loses_an_image() {
    assert!(threaded_exam_with_stray_frame_connects(40), "the exam did not complete identical to the direct one");
}
