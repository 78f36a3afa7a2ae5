//! Behaviour every backend must show, as reusable test suites.
//!
//! Each suite takes a factory that builds a fresh device in its ready state (interlocks clear, link up), runs
//! the device through its contract and panics with a message naming the violated clause. The same suites run
//! against the in-memory [`mock`](crate::mock), the simulator and the firmware bridge.

use crate::devices::{CompressionPaddle, Detector, Gantry, Interlocks, XrayTube};
use crate::error::{Error, ErrorKind};
use crate::technique::{ExposureEnd, ExposureRequest, Technique};
use crate::units::{Degrees, Newtons};

fn deg(value: f64) -> Degrees {
    Degrees::new(value).expect("contract suites use angles within one turn")
}

fn newtons(value: f64) -> Newtons {
    Newtons::new(value).expect("contract suites use forces within range")
}

/// The tube contract: preparation before beam, exposures honour mAs and backup time, `disable` makes safe.
///
/// `technique` must be one the backend accepts.
pub fn tube_suite<T: XrayTube>(mut make: impl FnMut() -> T, technique: &Technique) {
    let request = ExposureRequest { mas: technique.mas_per_view, backup_time: technique.exposure_time().mul_f64(1.5) };

    let mut tube = make();
    let err = tube.expose(&request).err().map(|e| e.kind());
    assert_eq!(err, Some(ErrorKind::NotReady), "tube: expose without technique/preparation must fail NotReady");

    let mut tube = make();
    tube.set_technique(technique).expect("tube: set_technique of an accepted technique");
    tube.prepare().expect("tube: prepare after set_technique");
    let record = tube.expose(&request).expect("tube: expose when prepared");
    assert_eq!(record.end, ExposureEnd::Planned, "tube: a clean exposure ends as planned");
    let rel = (record.mas.get() - request.mas.get()).abs() / request.mas.get();
    assert!(rel <= 0.02, "tube: delivered {} vs requested {} (more than 2% off)", record.mas, request.mas);
    assert!(record.duration <= request.backup_time, "tube: exposure outlasted its backup time");
    let kv_rel = (record.kvp.get() - technique.kvp.get()).abs() / technique.kvp.get();
    assert!(kv_rel <= 0.05, "tube: measured kV {} vs set {}", record.kvp, technique.kvp);

    // Never later than the backup time: an exposure whose planned time exceeds its backup time must end at
    // the backup time, recorded as ended by the backup timer, with no more than the mAs that time allows.
    let planned = technique.exposure_time();
    for factor in [0.5, 0.999] {
        let short = ExposureRequest { mas: technique.mas_per_view, backup_time: planned.mul_f64(factor) };
        backup_timer_clause(&mut tube, technique, &short);
    }

    tube.disable().expect("tube: disable");
    tube.disable().expect("tube: disable is idempotent");
    match tube.expose(&request) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotReady, "tube: expose after disable must fail NotReady"),
        Ok(r) => assert_eq!(r.mas.get(), 0.0, "tube: no beam after disable"),
    }
}

/// The gantry contract: positioning, sweeps, range checks and stopping.
///
/// `limit_deg` is the mechanical limit either side of 0 (at least 30 deg).
pub fn gantry_suite<G: Gantry>(mut make: impl FnMut() -> G, limit_deg: f64) {
    let mut g = make();
    g.move_to(deg(10.0)).expect("gantry: move_to within range");
    let p = g.position().expect("gantry: position").get();
    assert!((p - 10.0).abs() <= 0.05, "gantry: position {p} after move_to 10 deg");
    if limit_deg + 1.0 <= Degrees::MAX {
        let err = g.move_to(deg(limit_deg + 1.0)).err().map(|e| e.kind());
        assert_eq!(err, Some(ErrorKind::OutOfRange), "gantry: move beyond the limit must fail OutOfRange");
    }

    let mut g = make();
    g.move_to(deg(-20.0)).expect("gantry: move to sweep start");
    g.start_sweep(deg(20.0), 10.0).expect("gantry: start_sweep");
    let a = g.await_angle(deg(-5.0)).expect("gantry: await_angle ahead of the sweep").get();
    assert!((a + 5.0).abs() <= 0.1, "gantry: await_angle(-5) returned {a}");
    let b = g.await_angle(deg(5.0)).expect("gantry: await_angle further ahead").get();
    assert!(b >= a && (b - 5.0).abs() <= 0.1, "gantry: sweep must advance monotonically ({a} then {b})");
    assert!(g.await_angle(deg(-10.0)).is_err(), "gantry: awaiting an angle already passed must fail");
    g.stop().expect("gantry: stop");
    g.stop().expect("gantry: stop is idempotent");
    let p1 = g.position().expect("gantry: position after stop").get();
    let p2 = g.position().expect("gantry: position after stop").get();
    assert!((p1 - p2).abs() <= 1e-6, "gantry: motion continued after stop ({p1} -> {p2})");
}

/// The detector contract: arming, frame sizes, flood, disarm.
pub fn detector_suite<D: Detector>(mut make: impl FnMut() -> D) {
    let mut d = make();
    let geometry = d.geometry();
    geometry.validate().expect("detector: geometry must be valid");
    let err = d.read_frame().err().map(|e| e.kind());
    assert_eq!(err, Some(ErrorKind::NotReady), "detector: read_frame without arm must fail NotReady");
    d.arm().expect("detector: arm");
    let dark = d.read_frame().expect("detector: read after arm");
    assert_eq!((dark.cols, dark.rows), (geometry.cols, geometry.rows), "detector: frame size differs from geometry");
    assert_eq!(dark.data.len(), geometry.pixel_count(), "detector: frame data length");
    let err = d.read_frame().err().map(|e| e.kind());
    assert_eq!(err, Some(ErrorKind::NotReady), "detector: read_frame disarms; a second read must fail NotReady");
    d.disarm().expect("detector: disarm");
    d.disarm().expect("detector: disarm is idempotent");
}

/// The detector's flood contract; needs the tube's technique loaded, so it takes the pair.
pub fn flood_suite<D: Detector>(detector: &mut D) {
    let geometry = detector.geometry();
    let flood = detector.flood_frame().expect("detector: flood_frame when not armed");
    assert_eq!(flood.data.len(), geometry.pixel_count(), "detector: flood size differs from geometry");
    assert!(flood.data.iter().all(|v| v.is_finite() && *v > 0.0), "detector: flood must be positive and finite");
}

/// The paddle contract: compression to a target, monotone thickness, release, limit.
///
/// `limit_n` is the paddle's powered-compression limit.
pub fn paddle_suite<P: CompressionPaddle>(mut make: impl FnMut() -> P, limit_n: f64) {
    let mut p = make();
    let light = p.compress(newtons(50.0)).expect("paddle: compress to 50 N");
    assert!((light.force.get() - 50.0).abs() <= 5.0, "paddle: force {} after compress(50 N)", light.force);
    assert!(light.thickness.get() > 0.0, "paddle: thickness must be positive");
    let firm = p.compress(newtons(120.0)).expect("paddle: compress to 120 N");
    assert!((firm.force.get() - 120.0).abs() <= 12.0, "paddle: force {} after compress(120 N)", firm.force);
    assert!(firm.thickness.get() <= light.thickness.get(), "paddle: more force must not thicken the breast");
    let read = p.state().expect("paddle: state");
    assert!((read.force.get() - firm.force.get()).abs() <= 5.0, "paddle: state disagrees with compress");
    p.release().expect("paddle: release");
    p.release().expect("paddle: release is idempotent");
    let after = p.state().expect("paddle: state after release");
    assert!(after.force.get() < 1.0, "paddle: force {} after release", after.force);
    if limit_n + 10.0 <= Newtons::MAX {
        let err = p.compress(newtons(limit_n + 10.0)).err().map(|e| e.kind());
        assert_eq!(err, Some(ErrorKind::OutOfRange), "paddle: compress above the limit must fail OutOfRange");
    }
}

/// The interlock contract: readable, consistent, clear in the ready state.
pub fn interlocks_suite<I: Interlocks>(mut make: impl FnMut() -> I) {
    let mut i = make();
    let a = i.status().expect("interlocks: status");
    let b = i.status().expect("interlocks: status again");
    assert_eq!(a, b, "interlocks: two readings without a change must agree");
    assert_eq!(a.first_open(), None, "interlocks: the ready state must be all clear");
}

/// The backup-timer clause for one request on a prepared tube: the beam never outlasts `request.backup_time`
/// and never delivers more than the tube current allows in that time; if the request could not be completed
/// in time, the record says the backup timer ended it. Prepares the tube again afterwards.
///
/// Used by [`tube_suite`]; public so backend tests can drive it with random techniques and backup times.
pub fn backup_timer_clause<T: XrayTube>(tube: &mut T, technique: &Technique, request: &ExposureRequest) {
    let record = match tube.expose(request) {
        Ok(record) => record,
        Err(e) => panic!("tube: expose of a valid request failed: {e}"),
    };
    assert!(
        record.duration <= request.backup_time,
        "tube: exposure lasted {:?}, past its backup time {:?}",
        record.duration,
        request.backup_time
    );
    let allowed_mas = technique.tube_current.get() * request.backup_time.as_secs_f64();
    assert!(
        record.mas.get() <= allowed_mas * (1.0 + 1e-9) + 1e-12,
        "tube: delivered {} in a backup time that allows {allowed_mas} mAs",
        record.mas
    );
    let needed = request.mas.get() / technique.tube_current.get();
    if needed > request.backup_time.as_secs_f64() * (1.0 + 1e-9) {
        assert_eq!(
            record.end,
            ExposureEnd::BackupTimer,
            "tube: an exposure needing {needed} s with a backup time of {:?} must end by the backup timer",
            request.backup_time
        );
    }
    tube.prepare().expect("tube: prepare after an exposure");
}

/// Extreme numbers for speeds and times: zero, subnormal, tiny, huge, infinite, NaN and negative.
pub const EXTREME_F64: [f64; 14] = [
    0.0,
    -0.0,
    f64::MIN_POSITIVE / 4.0,
    f64::MIN_POSITIVE,
    1e-300,
    1e-12,
    1e300,
    f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -1.0,
    -1e300,
    f64::MIN,
];

/// No value a caller (or the wire) can pass panics the device: every extreme sweep speed, followed by an
/// await, and every extreme backup time, either works or fails with an error. `technique` must be one the
/// backend accepts; `limit_deg` as in [`gantry_suite`]. Each case uses a fresh device from its factory.
pub fn extreme_values_suite<T: XrayTube, G: Gantry>(
    mut make_tube: impl FnMut() -> T,
    mut make_gantry: impl FnMut() -> G,
    technique: &Technique,
    limit_deg: f64,
) {
    let edge = (limit_deg * 0.5).min(20.0);
    for speed in EXTREME_F64 {
        let mut g = make_gantry();
        g.move_to(deg(-edge)).expect("gantry: move to sweep start");
        if g.start_sweep(deg(edge), speed).is_ok() {
            // Whatever the outcome, it must be a value, not a panic.
            let _ = g.await_angle(deg(0.0));
            let _ = g.position();
        }
        g.stop().expect("gantry: stop after an extreme sweep");
    }
    let backups = [
        std::time::Duration::ZERO,
        std::time::Duration::from_nanos(1),
        std::time::Duration::from_secs(u64::MAX / 2),
        std::time::Duration::MAX,
    ];
    for backup_time in backups {
        let mut tube = make_tube();
        tube.set_technique(technique).expect("tube: set_technique of an accepted technique");
        tube.prepare().expect("tube: prepare after set_technique");
        let request = ExposureRequest { mas: technique.mas_per_view, backup_time };
        if let Ok(record) = tube.expose(&request) {
            assert!(record.duration <= backup_time, "tube: exposure outlasted a backup time of {backup_time:?}");
        }
    }
}
