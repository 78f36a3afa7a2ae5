//! The backend contract suites, run against the in-memory mock.

use tomolab_hal::XrayTube;
use tomolab_hal::contract;
use tomolab_hal::mock::{MockConfig, MockUnit, mock_technique};

fn unit() -> MockUnit {
    MockUnit::new(MockConfig::default(), vec![])
}

#[test]
fn mock_tube_meets_the_contract() {
    contract::tube_suite(|| unit().devices().tube, &mock_technique(2.0));
}

#[test]
fn mock_survives_extreme_speeds_and_times() {
    contract::extreme_values_suite(
        || unit().devices().tube,
        || unit().devices().gantry,
        &mock_technique(2.0),
        MockConfig::default().angle_limit_deg,
    );
}

#[test]
fn mock_gantry_meets_the_contract() {
    contract::gantry_suite(|| unit().devices().gantry, MockConfig::default().angle_limit_deg);
}

#[test]
fn mock_detector_meets_the_contract() {
    contract::detector_suite(|| unit().devices().detector);
    let u = unit();
    let mut devices = u.devices();
    devices.tube.set_technique(&mock_technique(1.0)).unwrap();
    contract::flood_suite(&mut devices.detector);
}

#[test]
fn mock_paddle_meets_the_contract() {
    contract::paddle_suite(|| unit().devices().paddle, MockConfig::default().paddle_force_limit_n);
}

#[test]
fn mock_interlocks_meet_the_contract() {
    contract::interlocks_suite(|| unit().devices().interlocks);
}

#[test]
fn devices_work_through_mutable_borrows() {
    fn arm_and_read<D: tomolab_hal::Detector>(mut d: D) -> usize {
        d.arm().unwrap();
        d.read_frame().unwrap().data.len()
    }
    let u = unit();
    let mut devices = u.devices();
    assert_eq!(arm_and_read(&mut devices.detector), MockConfig::default().detector.pixel_count());
}

/// Issue 14 item 2: the mock let an exposure whose planned time exceeded its backup time run to its planned
/// time (54 of 216 fuzzed exposures); the beam must end at the backup time, recorded as ended by the timer.
#[test]
fn mock_exposure_never_outlasts_its_backup_time() {
    use std::time::Duration;
    use tomolab_hal::{ExposureEnd, ExposureRequest, MilliampereSeconds};
    let u = unit();
    let mut tube = u.devices().tube;
    let technique = mock_technique(2.0); // 100 mA: 20 ms planned
    tube.set_technique(&technique).unwrap();
    tube.prepare().unwrap();
    let request =
        ExposureRequest { mas: MilliampereSeconds::new(2.0).unwrap(), backup_time: Duration::from_millis(10) };
    let record = tube.expose(&request).unwrap();
    assert!(record.duration <= request.backup_time, "{:?} > {:?}", record.duration, request.backup_time);
    assert_eq!(record.end, ExposureEnd::BackupTimer);
    assert!(record.mas.get() <= 1.0 + 1e-12, "{}", record.mas);
}

/// Issue 14 item 5: SWEEP at 1e-300 deg/s then AWAIT made the mock compute a 1e300 s wait in
/// `Duration::from_secs_f64`, which panicked; it must be an `OutOfRange` error.
#[test]
fn mock_sweep_at_1e_minus_300_deg_per_s_is_out_of_range_not_a_panic() {
    use tomolab_hal::Error as _;
    use tomolab_hal::{Degrees, ErrorKind, Gantry};
    let u = unit();
    let mut g = u.devices().gantry;
    g.move_to(Degrees::new(-25.0).unwrap()).unwrap();
    g.start_sweep(Degrees::new(25.0).unwrap(), 1e-300).unwrap();
    let err = g.await_angle(Degrees::new(0.0).unwrap()).expect_err("a 1e300 s wait cannot succeed");
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    // The unit is still usable afterwards.
    g.stop().unwrap();
    g.move_to(Degrees::new(5.0).unwrap()).unwrap();
}

mod properties {
    use std::time::Duration;

    use proptest::prelude::*;
    use tomolab_hal::Error as _;
    use tomolab_hal::contract;
    use tomolab_hal::mock::{MockConfig, MockUnit, mock_technique};
    use tomolab_hal::{Degrees, ErrorKind, ExposureRequest, Gantry, MilliampereSeconds, Milliamperes, XrayTube};

    /// Extreme values for speeds and times: zero, subnormal, tiny, huge, infinite, NaN, negative.
    fn extreme_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE / 4.0),
            Just(f64::MIN_POSITIVE),
            Just(1e-300),
            Just(1e-12),
            Just(1e300),
            Just(f64::MAX),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(-1.0),
            Just(-1e300),
            any::<f64>(),
            0.001f64..100.0,
        ]
    }

    fn extreme_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::from_nanos(1)),
            Just(Duration::MAX),
            Just(Duration::from_secs(u64::MAX / 2)),
            (0u64..=u64::MAX).prop_map(Duration::from_nanos),
            (0u64..10_000_000).prop_map(Duration::from_micros),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Issue 14 item 2 in general: for random techniques and backup times the mock's exposure never outlasts
        /// its backup time, never delivers more than that time allows, and says when the timer ended it.
        #[test]
        fn mock_honours_the_backup_time_for_random_techniques(
            ma in 0.001f64..2000.0,
            mas in 0.0f64..2000.0,
            backup_ns in 0u64..20_000_000_000,
        ) {
            let u = MockUnit::new(MockConfig::default(), vec![]);
            let mut tube = u.devices().tube;
            let technique = tomolab_hal::Technique {
                tube_current: Milliamperes::new(ma).unwrap(),
                mas_per_view: MilliampereSeconds::new(mas).unwrap(),
                ..mock_technique(1.0)
            };
            tube.set_technique(&technique).unwrap();
            tube.prepare().unwrap();
            let request = ExposureRequest {
                mas: technique.mas_per_view,
                backup_time: Duration::from_nanos(backup_ns),
            };
            contract::backup_timer_clause(&mut tube, &technique, &request);
        }

        /// Issue 14 item 5: no gantry speed or awaited angle, however extreme, panics the mock; an unusable
        /// one is an `OutOfRange` (or, for a passed angle, `Timeout`) error.
        #[test]
        fn mock_gantry_survives_extreme_speeds(speed in extreme_f64(), start in -30.0f64..30.0, end in -30.0f64..30.0, target in -30.0f64..30.0) {
            let u = MockUnit::new(MockConfig::default(), vec![]);
            let mut g = u.devices().gantry;
            g.move_to(Degrees::new(start).unwrap()).unwrap();
            match g.start_sweep(Degrees::new(end).unwrap(), speed) {
                Err(e) => prop_assert_eq!(e.kind(), ErrorKind::OutOfRange),
                Ok(()) => {
                    if let Err(e) = g.await_angle(Degrees::new(target).unwrap()) {
                        prop_assert!(matches!(e.kind(), ErrorKind::OutOfRange | ErrorKind::Timeout), "{}", e);
                    }
                    g.position().unwrap();
                    g.stop().unwrap();
                }
            }
        }

        /// Issue 14 item 5: extreme exposure times (mAs over mA, backup times from 0 to `Duration::MAX`) never
        /// panic the mock tube, and the backup time is honoured whenever the exposure succeeds.
        #[test]
        fn mock_tube_survives_extreme_exposure_times(
            mas in extreme_f64(),
            ma in extreme_f64(),
            backup in extreme_duration(),
            twice in any::<bool>(),
        ) {
            let u = MockUnit::new(MockConfig::default(), vec![]);
            let mut tube = u.devices().tube;
            let (Ok(mas), Ok(ma)) = (MilliampereSeconds::new(mas.abs()), Milliamperes::new(ma.abs())) else {
                // Values the checked constructors refuse cannot reach the trait.
                return Ok(());
            };
            let technique = tomolab_hal::Technique { tube_current: ma, mas_per_view: mas, ..mock_technique(1.0) };
            let _ = technique.exposure_time();
            tube.set_technique(&technique).unwrap();
            tube.prepare().unwrap();
            let request = ExposureRequest { mas, backup_time: backup };
            for _ in 0..if twice { 2 } else { 1 } {
                match tube.expose(&request) {
                    Ok(record) => prop_assert!(record.duration <= backup),
                    Err(e) => prop_assert!(matches!(e.kind(), ErrorKind::OutOfRange | ErrorKind::NotReady), "{}", e),
                }
                let _ = tube.prepare();
            }
        }
    }
}
