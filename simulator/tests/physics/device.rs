//! The simulated unit through the HAL: contract suites, kinematics, and the sequencer's safe behaviour under
//! every injected fault.

use tomolab_hal::acquisition::{AbortReason, ExposurePurpose};
use tomolab_hal::mock::mock_technique;
use tomolab_hal::sequencer::{FixedDoseRate, Sequencer};
use tomolab_hal::{
    Acquisition, DetectorGeometry, DetectorMaterial, ExamPlan, ExamStatus, ExposureEnd, Gantry, Interlock, MilliGray,
    Newtons, PresetName, ScanPreset, TechniqueMode, XrayTube, contract,
};
use tomolab_simulator::device::{FaultPlan, OpenFieldRenderer, SimConfig, SimUnit};

fn renderer() -> Box<OpenFieldRenderer> {
    Box::new(OpenFieldRenderer {
        detector: DetectorGeometry {
            cols: 6,
            rows: 4,
            pitch_u_mm: 1.0,
            pitch_v_mm: 1.0,
            material: DetectorMaterial::ASe,
            layer_thickness_mm: 0.2,
        },
        dark_counts: 40.0,
        counts_per_mas: 200.0,
    })
}

fn unit(faults: FaultPlan) -> SimUnit {
    SimUnit::new(SimConfig { faults, ..SimConfig::new(50.0) }, renderer())
}

#[test]
fn simulated_devices_meet_the_hal_contracts() {
    let tech = mock_technique(2.0);
    contract::tube_suite(|| unit(FaultPlan::default()).devices().tube, &tech);
    contract::gantry_suite(|| unit(FaultPlan::default()).devices().gantry, SimConfig::new(50.0).gantry.limit_deg);
    // Issue 14 item 5: extreme speeds (1e-300 deg/s then await) and backup times never panic the unit.
    contract::extreme_values_suite(
        || unit(FaultPlan::default()).devices().tube,
        || unit(FaultPlan::default()).devices().gantry,
        &tech,
        SimConfig::new(50.0).gantry.limit_deg,
    );
    contract::detector_suite(|| unit(FaultPlan::default()).devices().detector);
    contract::paddle_suite(|| unit(FaultPlan::default()).devices().paddle, 200.0);
    contract::interlocks_suite(|| unit(FaultPlan::default()).devices().interlocks);
    let u = unit(FaultPlan::default());
    let mut d = u.devices();
    d.tube.set_technique(&tech).unwrap();
    contract::flood_suite(&mut d.detector);
}

#[test]
fn sweep_kinematics_respect_speed_and_acceleration() {
    let u = unit(FaultPlan::default());
    let mut g = u.devices().gantry;
    let clock = u.clock();
    use tomolab_hal::Clock;
    g.move_to(tomolab_hal::Degrees::new(-25.0).unwrap()).unwrap();
    let t0 = clock.now().as_secs_f64();
    g.start_sweep(tomolab_hal::Degrees::new(25.0).unwrap(), 10.0).unwrap();
    // Accelerating at 30 deg/s^2 to 10 deg/s takes 1/3 s and 5/3 deg; then cruise.
    let a = g.await_angle(tomolab_hal::Degrees::new(-25.0 + 5.0 / 3.0).unwrap()).unwrap();
    assert!((clock.now().as_secs_f64() - t0 - 1.0 / 3.0).abs() < 1e-9, "{a}");
    g.await_angle(tomolab_hal::Degrees::new(0.0).unwrap()).unwrap();
    let expected = 1.0 / 3.0 + (25.0 - 5.0 / 3.0) / 10.0;
    assert!((clock.now().as_secs_f64() - t0 - expected).abs() < 1e-9);
    assert!(g.start_sweep(tomolab_hal::Degrees::new(25.0).unwrap(), 100.0).is_err(), "speed limit");
}

fn plan(preset: PresetName) -> ExamPlan {
    let p = ScanPreset::builtin(preset);
    // 2 mAs at 20 mA: 0.1 s per exposure; the 0.18 deg exposure arc gives a 1.8 deg/s sweep.
    let technique = mock_technique(2.0);
    let technique = tomolab_hal::Technique { tube_current: tomolab_hal::Milliamperes::new(20.0).unwrap(), ..technique };
    ExamPlan::from_preset(
        &p,
        TechniqueMode::Manual { technique },
        Newtons::new(100.0).unwrap(),
        MilliGray::new(3.0).unwrap(),
    )
    .unwrap()
}

fn exam(faults: FaultPlan) -> (SimUnit, Acquisition) {
    let u = unit(faults);
    let mut seq = Sequencer::new(Default::default()).unwrap();
    let acq = seq
        .run(&mut u.devices(), &plan(PresetName::WideAngle), &FixedDoseRate { mgd_per_mas: 0.02 }, None, &u.clock())
        .unwrap();
    (u, acq)
}

fn assert_safe_and_partial(u: &SimUnit, acq: &Acquisition, views: usize) -> AbortReason {
    let mut d = u.devices();
    assert!(
        d.tube
            .expose(&tomolab_hal::ExposureRequest {
                mas: tomolab_hal::MilliampereSeconds::new(1.0).unwrap(),
                backup_time: std::time::Duration::from_secs(1)
            })
            .is_err(),
        "tube still live after the abort"
    );
    use tomolab_hal::CompressionPaddle;
    assert_eq!(d.paddle.state().unwrap().force.get(), 0.0, "compression not released");
    let p1 = d.gantry.position().unwrap();
    assert_eq!(acq.frames.len(), views);
    assert_eq!(acq.meta.views.len(), views);
    let _ = p1;
    match &acq.meta.status {
        ExamStatus::Aborted { reason, views_acquired } => {
            assert_eq!(*views_acquired, views);
            reason.clone()
        }
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn clean_exam_records_real_timestamps_and_motion() {
    let (_, acq) = exam(FaultPlan::default());
    assert!(acq.is_complete(), "{:?}", acq.meta.status);
    let views = &acq.meta.views;
    assert_eq!(views.len(), 25);
    // Exposures centred on the nominal angles, each sweeping 0.18 deg.
    for v in views {
        let mid = 0.5 * (v.angle_start_deg + v.angle_end_deg);
        assert!((mid - v.nominal_angle_deg).abs() < 1e-6, "{v:?}");
        assert!(((v.angle_end_deg - v.angle_start_deg) - 0.18).abs() < 1e-6, "{v:?}");
    }
    // At 1.8 deg/s, views 50/24 deg apart are about 1.16 s apart.
    let dt = (views[13].time_since_start - views[12].time_since_start).as_secs_f64();
    assert!((dt - (50.0 / 24.0) / 1.8).abs() < 1e-6, "{dt}");
}

#[test]
fn tube_arc_aborts_safely() {
    let (u, acq) = exam(FaultPlan { tube_arc_at: Some(5), ..Default::default() });
    assert_eq!(assert_safe_and_partial(&u, &acq, 5), AbortReason::ExposureFault { end: ExposureEnd::Fault });
}

#[test]
fn kv_drop_aborts_safely() {
    let (u, acq) = exam(FaultPlan { kv_drop_at: Some(11), ..Default::default() });
    assert_eq!(assert_safe_and_partial(&u, &acq, 11), AbortReason::ExposureFault { end: ExposureEnd::Fault });
    assert!(acq.meta.exposures[11].record.kvp.get() < 28.0 * 0.9);
}

#[test]
fn dropped_frame_aborts_safely() {
    let (u, acq) = exam(FaultPlan { dropped_frame_at: Some(8), ..Default::default() });
    let reason = assert_safe_and_partial(&u, &acq, 8);
    assert!(
        matches!(reason, AbortReason::Device { ref device, kind: tomolab_hal::ErrorKind::Timeout, .. } if device == "detector")
    );
}

#[test]
fn motor_stall_aborts_safely() {
    let (u, acq) = exam(FaultPlan { motor_stall_at: Some(14), ..Default::default() });
    let reason = assert_safe_and_partial(&u, &acq, 14);
    assert!(
        matches!(reason, AbortReason::Device { ref device, kind: tomolab_hal::ErrorKind::DeviceFault, .. } if device == "gantry")
    );
}

#[test]
fn paddle_force_drift_aborts_safely() {
    let (u, acq) = exam(FaultPlan { force_drift_at: Some(3), force_drift_n: 120.0, ..Default::default() });
    let reason = assert_safe_and_partial(&u, &acq, 4);
    assert!(matches!(reason, AbortReason::ForceOutOfWindow { force_n } if force_n > 200.0), "{reason:?}");
}

#[test]
fn emergency_stop_aborts_safely() {
    let (u, acq) = exam(FaultPlan { emergency_stop_at: Some(20), ..Default::default() });
    let reason = assert_safe_and_partial(&u, &acq, 20);
    assert_eq!(reason, AbortReason::ExposureFault { end: ExposureEnd::Interlock });
    use tomolab_hal::Interlocks;
    assert_eq!(u.devices().interlocks.status().unwrap().first_open(), Some(Interlock::EmergencyStop));
}

#[test]
fn switch_release_ends_the_sweep() {
    let (u, acq) = exam(FaultPlan { switch_release_at: Some(2), ..Default::default() });
    assert_eq!(assert_safe_and_partial(&u, &acq, 2), AbortReason::ExposureSwitchReleased);
    // The partial exposure is logged with how it ended; it is not a view.
    let last = acq.meta.exposures.last().unwrap();
    assert_eq!((last.purpose, last.record.end), (ExposurePurpose::View, ExposureEnd::OperatorRelease));
}
