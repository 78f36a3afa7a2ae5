//! The sequencer's safety rules: one test per fault kind, and a property test over random fault schedules,
//! operator actions and plans.

use proptest::prelude::*;
use tomolab_hal::acquisition::{AbortReason, ExposurePurpose};
use tomolab_hal::mock::{MockConfig, MockFault, MockUnit, ScheduledFault, mock_technique};
use tomolab_hal::sequencer::{Aec, AecError, FixedDoseRate, PlanError, SafetyLimits, Sequencer};
use tomolab_hal::{
    Acquisition, Compression, ErrorKind, ExamPlan, ExamStatus, Frame, Interlock, MilliGray, Newtons, PresetName,
    ScanPreset, Technique, TechniqueMode,
};

/// A simple AEC: scale the pre-shot so the views reach `target_counts` above dark.
struct TargetSignalAec {
    target_counts: f64,
}

impl Aec for TargetSignalAec {
    fn choose(
        &self,
        pre: &Frame,
        dark: Option<&Frame>,
        t: &Technique,
        _: &Compression,
        _: usize,
    ) -> Result<Technique, AecError> {
        let signal = pre.mean() - dark.map_or(0.0, Frame::mean);
        if signal <= 0.0 {
            return Err(AecError::new(ErrorKind::DeviceFault, "pre-shot has no signal"));
        }
        let per_mas = signal / t.mas_per_view.get();
        t.with_mas_per_view(self.target_counts / per_mas)
            .map_err(|e| AecError::new(ErrorKind::OutOfRange, e.to_string()))
    }
}

#[derive(Debug, Clone)]
struct Case {
    preset: PresetName,
    mas: f64,
    aec: bool,
    rate: f64,
    budget: f64,
    force: f64,
    faults: Vec<ScheduledFault>,
}

impl Case {
    fn clean(preset: PresetName) -> Self {
        Case { preset, mas: 1.0, aec: false, rate: 0.05, budget: 3.0, force: 100.0, faults: vec![] }
    }
}

struct Outcome {
    unit: MockUnit,
    result: Result<Acquisition, PlanError>,
    limits: SafetyLimits,
    plan: ExamPlan,
    rate: f64,
}

fn run(case: &Case) -> Outcome {
    let limits = SafetyLimits::default();
    let unit = MockUnit::new(MockConfig::default(), case.faults.clone());
    let preset = ScanPreset::builtin(case.preset);
    let technique = if case.aec {
        TechniqueMode::Aec { preshot: mock_technique(0.2) }
    } else {
        TechniqueMode::Manual { technique: mock_technique(case.mas) }
    };
    let plan = ExamPlan::from_preset(
        &preset,
        technique,
        Newtons::new(case.force).unwrap(),
        MilliGray::new(case.budget).unwrap(),
    )
    .unwrap();
    let aec = TargetSignalAec { target_counts: 100.0 * case.mas };
    let mut seq = Sequencer::new(limits).unwrap();
    let dose = FixedDoseRate { mgd_per_mas: case.rate };
    let result = seq.run(&mut unit.devices(), &plan, &dose, Some(&aec), &unit.clock());
    Outcome { unit, result, limits, plan, rate: case.rate }
}

/// Every safety property, checked against the mock's own record of what happened.
fn check_invariants(o: &Outcome) -> Result<(), TestCaseError> {
    let limits = &o.limits;
    let (fmin, fmax) = (limits.exposure_force_min.get(), limits.powered_force_max.get());
    o.unit.with_state(|s| {
        let acq = match &o.result {
            Err(_) => {
                prop_assert_eq!(s.calls, 0, "a refused plan must not touch any device");
                return Ok(());
            }
            Ok(acq) => acq,
        };
        // No exposure outside an armed sweep.
        for e in &s.exposures {
            prop_assert!(e.detector_armed, "exposure with the detector disarmed: {:?}", e);
            prop_assert!(e.positioned, "exposure without positioning: {:?}", e);
            prop_assert!(e.prepared, "exposure with an unprepared tube: {:?}", e);
            prop_assert!(!e.after_disable, "exposure after the tube was disabled: {:?}", e);
            prop_assert!(e.status_polled_after_positioning, "exposure without a fresh interlock reading: {:?}", e);
            prop_assert!(e.force_polled_after_positioning, "exposure without a fresh force reading: {:?}", e);
            prop_assert!(e.last_status_clear, "exposure after an interlock reading that was not clear: {:?}", e);
            prop_assert!(
                (fmin..=fmax).contains(&e.last_force_read_n),
                "exposure after force reading out of window: {:?}",
                e
            );
            if e.record.is_some_and(|r| r.mas.get() > 0.0) {
                prop_assert!(e.chain_clear, "beam with the interlock chain open");
                prop_assert!(e.force_n <= fmax, "beam with force above the maximum");
            }
        }
        // Force never commanded above the configured maximum.
        prop_assert!(s.commanded_forces_n.iter().all(|&f| f <= fmax), "commanded {:?}", s.commanded_forces_n);
        // Dose budget never exceeded (the mock's own tally).
        let delivered: f64 = s.exposures.iter().filter_map(|e| e.record).map(|r| r.mas.get() * o.rate).sum();
        let budget = o.plan.dose_budget.get().min(limits.exam_dose_limit.get());
        prop_assert!(delivered <= budget + 1e-9, "delivered {} mGy > budget {}", delivered, budget);
        prop_assert!((delivered - acq.meta.dose.delivered_mgd).abs() < 1e-9, "dose bookkeeping differs from the unit");
        // Safe state at the end, whatever happened.
        prop_assert!(!s.prepared, "tube still prepared");
        prop_assert!(!s.moving, "gantry still moving");
        prop_assert!(!s.armed, "detector still armed");
        prop_assert_eq!(s.force_n, 0.0, "compression not released");
        // Every exposure is logged; nothing re-exposed.
        prop_assert_eq!(s.exposures.iter().filter(|e| e.record.is_some()).count(), acq.meta.exposures.len());
        let preshots = acq.meta.exposures.iter().filter(|e| e.purpose == ExposurePurpose::Preshot).count();
        prop_assert!(preshots <= 1);
        let view_angles: Vec<f64> = acq
            .meta
            .exposures
            .iter()
            .filter(|e| e.purpose == ExposurePurpose::View)
            .map(|e| e.nominal_angle_deg)
            .collect();
        prop_assert!(view_angles.len() <= o.plan.angles.len());
        prop_assert!(view_angles.windows(2).all(|w| w[1] > w[0]), "a view angle was exposed twice: {:?}", view_angles);
        // Partial data kept: every view whose exposure ended normally and whose frame was read is in the result,
        // with its own frame.
        let kept = s
            .exposures
            .iter()
            .skip(preshots)
            .filter(|e| e.frame_read && e.record.is_some_and(|r| r.end.is_normal()))
            .count();
        prop_assert_eq!(acq.frames.len(), kept);
        prop_assert_eq!(acq.meta.views.len(), acq.frames.len());
        let cfg = s.config;
        for (v, f) in acq.meta.views.iter().zip(&acq.frames) {
            let expected = cfg.dark_counts + cfg.counts_per_mas * v.exposure.mas.get() as f32;
            prop_assert!((f.data[0] - expected).abs() <= 1e-3 * expected, "frame does not belong to its view");
        }
        match &acq.meta.status {
            ExamStatus::Complete => {
                prop_assert_eq!(acq.frames.len(), o.plan.angles.len());
                prop_assert!(acq.meta.exposures.iter().all(|e| e.record.end.is_normal()));
            }
            ExamStatus::Aborted { views_acquired, .. } => prop_assert_eq!(*views_acquired, acq.frames.len()),
            ExamStatus::Refused { .. } => prop_assert!(view_angles.is_empty(), "refused exams expose no view"),
        }
        Ok(())
    })
}

fn aborted_because(o: &Outcome) -> (AbortReason, usize) {
    match &o.result.as_ref().expect("plan accepted").meta.status {
        ExamStatus::Aborted { reason, views_acquired } => (reason.clone(), *views_acquired),
        other => panic!("expected an abort, got {other:?}"),
    }
}

/// Runs a wide-angle exam with one fault at the call where view `k` is about to be exposed.
fn with_fault_at_view(fault: MockFault, k: usize) -> Outcome {
    // Find the call index of the k-th exposure in a clean run, then schedule the fault there.
    let clean = run(&Case::clean(PresetName::WideAngle));
    let call = clean.unit.with_state(|s| s.exposures[k].call);
    let o = run(&Case { faults: vec![ScheduledFault { at_call: call, fault }], ..Case::clean(PresetName::WideAngle) });
    check_invariants(&o).unwrap();
    o
}

#[test]
fn clean_exam_completes_with_every_view() {
    for preset in [PresetName::WideAngle, PresetName::NarrowAngle, PresetName::StepAndShoot, PresetName::Mammography] {
        let o = run(&Case::clean(preset));
        check_invariants(&o).unwrap();
        let acq = o.result.as_ref().unwrap();
        assert!(acq.is_complete(), "{preset}: {:?}", acq.meta.status);
        assert_eq!(acq.frames.len(), o.plan.angles.len());
    }
}

#[test]
fn tube_arc_aborts_safely_keeping_earlier_views() {
    let o = with_fault_at_view(MockFault::KvDrop, 7);
    assert_eq!(aborted_because(&o), (AbortReason::ExposureFault { end: tomolab_hal::ExposureEnd::Fault }, 7));
}

#[test]
fn generator_error_aborts_safely() {
    let (reason, views) = aborted_because(&with_fault_at_view(MockFault::TubeError, 3));
    assert!(matches!(reason, AbortReason::Device { ref device, .. } if device == "tube"), "{reason:?}");
    assert_eq!(views, 3);
}

#[test]
fn dropped_frame_aborts_safely() {
    let o = with_fault_at_view(MockFault::DetectorTimeout, 10);
    let (reason, views) = aborted_because(&o);
    assert!(
        matches!(reason, AbortReason::Device { ref device, kind: tomolab_hal::ErrorKind::Timeout, .. } if device == "detector")
    );
    assert_eq!(views, 10);
}

#[test]
fn motor_stall_aborts_safely() {
    // Schedule the stall at the await_angle call just before view 12 (two calls before the exposure's arm).
    let clean = run(&Case::clean(PresetName::WideAngle));
    let call = clean.unit.with_state(|s| s.exposures[12].call) - 4;
    let o = run(&Case {
        faults: vec![ScheduledFault { at_call: call, fault: MockFault::GantryStall }],
        ..Case::clean(PresetName::WideAngle)
    });
    check_invariants(&o).unwrap();
    let (reason, views) = aborted_because(&o);
    assert!(matches!(reason, AbortReason::Device { ref device, .. } if device == "gantry"), "{reason:?}");
    assert_eq!(views, 12);
}

#[test]
fn paddle_force_drift_aborts_before_the_next_exposure() {
    let o = with_fault_at_view(MockFault::ForceDrift(150.0), 5);
    // The drift is seen at the next force reading, before view 6.
    let (reason, views) = aborted_because(&o);
    assert!(matches!(reason, AbortReason::ForceOutOfWindow { force_n } if force_n > 200.0), "{reason:?}");
    assert_eq!(views, 6);
    let o = with_fault_at_view(MockFault::ForceDrift(-95.0), 5);
    assert!(matches!(aborted_because(&o).0, AbortReason::ForceOutOfWindow { .. }));
}

#[test]
fn emergency_stop_aborts_safely() {
    let o = with_fault_at_view(MockFault::EmergencyStop, 9);
    // Pressed at the moment of exposure: the generator's hardware interlock blocks the beam.
    let (reason, views) = aborted_because(&o);
    assert_eq!(reason, AbortReason::ExposureFault { end: tomolab_hal::ExposureEnd::Interlock });
    assert_eq!(views, 9);
    // Pressed earlier: the sequencer sees it before the next exposure.
    let clean = run(&Case::clean(PresetName::WideAngle));
    let call = clean.unit.with_state(|s| s.exposures[9].call) - 3;
    let o = run(&Case {
        faults: vec![ScheduledFault { at_call: call, fault: MockFault::EmergencyStop }],
        ..Case::clean(PresetName::WideAngle)
    });
    check_invariants(&o).unwrap();
    assert_eq!(aborted_because(&o), (AbortReason::Interlock { interlock: Interlock::EmergencyStop }, 9));
}

#[test]
fn releasing_the_exposure_switch_ends_the_sweep() {
    let o = with_fault_at_view(MockFault::SwitchReleaseDuringExposure, 4);
    assert_eq!(aborted_because(&o), (AbortReason::ExposureSwitchReleased, 4));
    let clean = run(&Case::clean(PresetName::WideAngle));
    let call = clean.unit.with_state(|s| s.exposures[15].call) - 3;
    let o = run(&Case {
        faults: vec![ScheduledFault { at_call: call, fault: MockFault::SwitchRelease }],
        ..Case::clean(PresetName::WideAngle)
    });
    check_invariants(&o).unwrap();
    assert_eq!(aborted_because(&o), (AbortReason::ExposureSwitchReleased, 15));
}

#[test]
fn backup_timer_ends_the_exposure_and_latches() {
    let clean = run(&Case::clean(PresetName::WideAngle));
    let call = clean.unit.with_state(|s| s.exposures[2].call);
    let limits = SafetyLimits::default();
    let unit =
        MockUnit::new(MockConfig::default(), vec![ScheduledFault { at_call: call, fault: MockFault::BackupOverrun }]);
    let plan = clean.plan.clone();
    let mut seq = Sequencer::new(limits).unwrap();
    let dose = FixedDoseRate { mgd_per_mas: 0.05 };
    let acq = seq.run(&mut unit.devices(), &plan, &dose, None, &unit.clock()).unwrap();
    assert!(matches!(acq.meta.status, ExamStatus::Aborted { reason: AbortReason::BackupTimer, views_acquired: 2 }));
    let overrun = unit.with_state(|s| s.exposures[2].record.unwrap());
    assert!(overrun.duration <= mock_technique(1.0).exposure_time().mul_f64(limits.backup_time_factor));
    // Latched: the next exam is refused without touching the unit until the timer is reset.
    let fresh = MockUnit::new(MockConfig::default(), vec![]);
    assert_eq!(seq.run(&mut fresh.devices(), &plan, &dose, None, &fresh.clock()), Err(PlanError::BackupTimerLatched));
    assert_eq!(fresh.with_state(|s| s.calls), 0);
    seq.reset_backup_timer();
    assert!(seq.run(&mut fresh.devices(), &plan, &dose, None, &fresh.clock()).unwrap().is_complete());
}

#[test]
fn link_loss_aborts_and_the_device_side_goes_safe() {
    let o = with_fault_at_view(MockFault::LinkLoss, 6);
    let (reason, views) = aborted_because(&o);
    assert!(matches!(reason, AbortReason::Device { kind: tomolab_hal::ErrorKind::Link, .. }), "{reason:?}");
    assert_eq!(views, 6);
}

#[test]
fn door_opening_aborts() {
    let clean = run(&Case::clean(PresetName::StepAndShoot));
    let call = clean.unit.with_state(|s| s.exposures[4].call) - 3;
    let o = run(&Case {
        faults: vec![ScheduledFault { at_call: call, fault: MockFault::DoorOpen }],
        ..Case::clean(PresetName::StepAndShoot)
    });
    check_invariants(&o).unwrap();
    assert_eq!(aborted_because(&o), (AbortReason::Interlock { interlock: Interlock::Door }, 4));
}

#[test]
fn plan_over_the_dose_budget_is_refused_before_any_exposure() {
    // 25 views x 1 mAs x 0.05 mGy/mAs x 1.1 backup = 1.375 mGy worst case > 1.2 mGy budget.
    let o = run(&Case { budget: 1.2, ..Case::clean(PresetName::WideAngle) });
    check_invariants(&o).unwrap();
    let acq = o.result.as_ref().unwrap();
    assert!(
        matches!(acq.meta.status, ExamStatus::Refused { reason: AbortReason::DoseBudget { .. } }),
        "{:?}",
        acq.meta.status
    );
    assert!(o.unit.with_state(|s| s.exposures.is_empty()));
    // Just inside the budget it runs.
    let o = run(&Case { budget: 1.4, ..Case::clean(PresetName::WideAngle) });
    assert!(o.result.unwrap().is_complete());
}

#[test]
fn compression_above_the_limit_is_refused_without_touching_the_unit() {
    let o = run(&Case { force: 190.0, ..Case::clean(PresetName::WideAngle) });
    assert!(matches!(o.result, Err(PlanError::Plan { field: "compression_force", .. })));
    check_invariants(&o).unwrap();
}

#[test]
fn safety_limits_outside_the_regulation_are_rejected() {
    let bad = SafetyLimits { powered_force_max: Newtons::new(250.0).unwrap(), ..SafetyLimits::default() };
    assert!(matches!(Sequencer::new(bad), Err(PlanError::Limits { field: "powered_force_max", .. })));
    let bad = SafetyLimits { powered_force_max: Newtons::new(100.0).unwrap(), ..SafetyLimits::default() };
    assert!(Sequencer::new(bad).is_err());
}

#[test]
fn aec_chooses_the_technique_from_the_preshot() {
    let o = run(&Case { aec: true, mas: 1.5, ..Case::clean(PresetName::WideAngle) });
    check_invariants(&o).unwrap();
    let acq = o.result.unwrap();
    assert!(acq.is_complete());
    assert!((acq.meta.technique.unwrap().mas_per_view.get() - 1.5).abs() < 1e-9);
    assert_eq!(acq.meta.exposures[0].purpose, ExposurePurpose::Preshot);
}

fn arb_fault() -> impl Strategy<Value = MockFault> {
    prop_oneof![
        Just(MockFault::TubeError),
        Just(MockFault::KvDrop),
        Just(MockFault::BackupOverrun),
        Just(MockFault::DetectorTimeout),
        Just(MockFault::GantryStall),
        Just(MockFault::PaddleError),
        (-150.0..150.0f64).prop_map(MockFault::ForceDrift),
        Just(MockFault::EmergencyStop),
        Just(MockFault::DoorOpen),
        Just(MockFault::SwitchRelease),
        Just(MockFault::SwitchReleaseDuringExposure),
        Just(MockFault::LinkLoss),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![
            PresetName::WideAngle,
            PresetName::NarrowAngle,
            PresetName::StepAndShoot,
            PresetName::Mammography,
        ]),
        0.2..4.0f64,
        any::<bool>(),
        0.005..0.1f64,
        0.1..3.5f64,
        10.0..200.0f64,
        prop::collection::vec((1usize..260, arb_fault()), 0..4),
    )
        .prop_map(|(preset, mas, aec, rate, budget, force, faults)| Case {
            preset,
            mas,
            aec,
            rate,
            budget,
            force,
            faults: faults.into_iter().map(|(at_call, fault)| ScheduledFault { at_call, fault }).collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]
    /// Random plans, fault schedules and operator actions: every safety property holds in every case.
    #[test]
    fn safety_holds_under_random_faults_and_operator_actions(case in arb_case()) {
        check_invariants(&run(&case))?;
    }
}
