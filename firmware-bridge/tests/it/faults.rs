//! Fault injection: 1,000 seeded fault schedules per fault kind, each a full wide-angle exam through the bridge
//! with the serial link and the frame stream corrupted. Under every schedule the link recovers (the exam
//! completes, identical to the clean one) or the exam aborts safely; never a double exposure, never a
//! corrupted frame.

use std::time::Duration;

use tomolab_firmware_bridge::fault::{FaultKind, FaultPlan, FaultyStream};
use tomolab_hal::{Acquisition, ExamStatus};

use crate::common::*;

const CASES_PER_KIND: u64 = 1000;

#[derive(Debug, Default)]
struct Tally {
    complete: u64,
    aborted: u64,
    no_link: u64,
    ended_safe: u64,
}

fn check_prefix(got: &Acquisition, clean: &Acquisition, seed: u64) {
    let n = got.frames.len();
    assert_eq!(n, got.meta.views.len(), "seed {seed}: frames and views differ in count");
    assert!(n <= clean.frames.len(), "seed {seed}: more views than planned");
    assert_eq!(got.frames[..], clean.frames[..n], "seed {seed}: a delivered frame differs from the device's frame");
    for (a, b) in got.meta.views.iter().zip(&clean.meta.views) {
        assert_eq!(a.exposure, b.exposure, "seed {seed}: exposure record differs");
        assert_eq!(a.angle_start_deg, b.angle_start_deg, "seed {seed}: angle differs");
    }
    if let Some(dark) = &got.dark {
        assert_eq!(Some(dark), clean.dark.as_ref(), "seed {seed}: dark frame corrupted");
    }
    if let Some(flood) = &got.flood {
        assert_eq!(Some(flood), clean.flood.as_ref(), "seed {seed}: flood frame corrupted");
    }
}

fn run_kind(kind: FaultKind) -> Tally {
    let clean = without_timestamps(direct_exam());
    let mut tally = Tally::default();
    for seed in 0..CASES_PER_KIND {
        let seed = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ kind as u64;
        let (unit, sim) = mock_sim(vec![]);
        let resetter = sim.clone();
        let serial = FaultyStream::new(sim.serial(), FaultPlan::seeded(kind, seed, 9000), seed)
            .with_reset_hook(move || resetter.reset_device());
        let frame_kind = if kind == FaultKind::Reset { FaultKind::Drop } else { kind };
        let frames = FaultyStream::new(sim.frame_stream(), FaultPlan::seeded(frame_kind, !seed, 7000), seed ^ 1);
        match sim_bridge(&sim, serial, frames) {
            Ok(mut devices) => {
                let mut acq = without_timestamps(run_exam(&mut devices));
                match &acq.meta.status {
                    ExamStatus::Complete => {
                        // A fault while making safe after the last view is reported there; the unit is checked
                        // safe below.
                        acq.meta.safe_state_errors.clear();
                        assert!(acq == clean, "seed {seed}: complete exam differs from the clean one");
                        tally.complete += 1;
                    }
                    ExamStatus::Aborted { reason, .. } | ExamStatus::Refused { reason } => {
                        if std::env::var_os("TOMOLAB_FAULT_VERBOSE").is_some() {
                            eprintln!("{kind:?} seed {seed}: {reason}");
                        }
                        check_prefix(&acq, &clean, seed);
                        tally.aborted += 1;
                    }
                }
                let beams = unit
                    .with_state(|s| s.exposures.iter().filter(|e| e.record.is_some_and(|r| r.mas.get() > 0.0)).count());
                assert!(
                    beams <= acq.meta.exposures.len() + 1,
                    "seed {seed}: {beams} beams fired for {} recorded exposures",
                    acq.meta.exposures.len()
                );
            }
            Err(_) => tally.no_link += 1,
        }
        // The host may have lost the link before it could make the unit safe: the device's watchdog does.
        sim.idle(Duration::from_millis(200));
        let fired = sim.with_device(|d| d.fired_ids().to_vec());
        let mut unique = fired.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), fired.len(), "seed {seed}: an exposure id fired twice: {fired:?}");
        let (calls, prepared, moving, force, armed) =
            unit.with_state(|s| (s.exposures.len(), s.prepared, s.moving, s.force_n, s.armed));
        assert_eq!(calls, fired.len(), "seed {seed}: backend exposures without a device fire");
        assert!(!prepared && !moving && force == 0.0 && !armed, "seed {seed}: unit not safe after the exam");
        tally.ended_safe += 1;
    }
    eprintln!("{kind:?}: {CASES_PER_KIND} schedules: {tally:?}");
    tally
}

macro_rules! fault_test {
    ($name:ident, $kind:expr, $must_complete:expr) => {
        #[test]
        fn $name() {
            let t = run_kind($kind);
            assert_eq!(t.complete + t.aborted + t.no_link, CASES_PER_KIND);
            if $must_complete {
                assert_eq!(t.complete, CASES_PER_KIND, "{t:?}");
            } else {
                assert!(t.complete > 0, "no schedule recovered: {t:?}");
            }
        }
    };
}

fault_test!(dropped_bytes_recover_or_abort_safely, FaultKind::Drop, false);
fault_test!(flipped_bits_recover_or_abort_safely, FaultKind::Flip, false);
fault_test!(duplicated_bytes_recover_or_abort_safely, FaultKind::Duplicate, false);
fault_test!(delayed_bytes_recover_or_abort_safely, FaultKind::Delay, false);
fault_test!(single_byte_reads_always_complete, FaultKind::SplitReads, true);
fault_test!(garbage_recovers_or_aborts_safely, FaultKind::Garbage, false);
fault_test!(device_resets_abort_safely, FaultKind::Reset, false);
