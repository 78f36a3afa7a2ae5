//! The exam sequencer: one state machine, generic over the device traits, that enforces the safety rules
//! whatever the backend does.
//!
//! Order of an exam: interlock check -> dark frame -> compression -> [AEC pre-shot] -> dose check of the whole
//! plan -> technique and flood frame (per mAs) -> sweep (per view: position, arm, interlocks, force, dose, expose, read out) -> release.
//!
//! Safety rules (21 CFR 900.12(b)(8) for compression; 21 CFR 1020.31 for exposure termination):
//! - powered compression is commanded no higher than the configured limit, itself within 111..=200 N, and no
//!   exposure is fired unless the force last read lies in the exposure window;
//! - the hold-to-run switch is read before every exposure; a release ends the sweep;
//! - every exposure carries a backup time; an exposure ended by the backup timer latches the sequencer until
//!   [`Sequencer::reset_backup_timer`];
//! - the dose budget is checked against the worst case (every exposure running to its backup timer) before the
//!   sweep and again before each exposure, so it cannot be exceeded by a backend that honours its backup timer;
//! - any fault aborts: tube disabled, motion stopped, detector disarmed, compression released, the views
//!   acquired so far kept and the acquisition marked incomplete. Nothing is ever re-exposed automatically.

use std::time::Duration;

use crate::acquisition::{AbortReason, Acquisition, AcquisitionMeta, DoseSummary, ExamPlan, ExamStatus, TechniqueMode};
use crate::devices::{Clock, Compression, Detector, Frame};
use crate::error::{Error, ErrorKind};
use crate::presets::Motion;
use crate::technique::{ExposureRequest, Technique};
use crate::unit::Unit;

mod steps;

use crate::units::{Degrees, MilliGray, Newtons};
use steps::Context;

/// Lower bound of the powered-compression limit, N (21 CFR 900.12(b)(8)(ii): 25 lbf).
pub const POWERED_FORCE_LIMIT_MIN_N: f64 = 111.0;
/// Upper bound of the powered-compression limit, N (21 CFR 900.12(b)(8)(ii): 45 lbf).
pub const POWERED_FORCE_LIMIT_MAX_N: f64 = 200.0;

/// The sequencer's safety configuration.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SafetyLimits {
    /// Where powered compression stops: must lie within 111..=200 N.
    pub powered_force_max: Newtons,
    /// No exposure unless the compression force is at least this.
    pub exposure_force_min: Newtons,
    /// Upper limit of any exam's dose budget (a plan may ask for less, never more).
    pub exam_dose_limit: MilliGray,
    /// Backup time = planned exposure time x this factor (> 1).
    pub backup_time_factor: f64,
}

impl Default for SafetyLimits {
    fn default() -> Self {
        Self {
            powered_force_max: Newtons(180.0),
            exposure_force_min: Newtons(20.0),
            exam_dose_limit: MilliGray(3.0),
            backup_time_factor: 1.1,
        }
    }
}

/// A plan or configuration the sequencer will not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The safety limits themselves are invalid.
    #[error("safety limits: {field}: {problem}")]
    Limits {
        /// Offending field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The plan is invalid.
    #[error("exam plan: {field}: {problem}")]
    Plan {
        /// Offending field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The backup timer ended an earlier exposure and has not been reset.
    #[error("backup timer latched by an earlier exposure; reset it before the next exam")]
    BackupTimerLatched,
}

fn plan_error(field: &'static str, problem: impl Into<String>) -> PlanError {
    PlanError::Plan { field, problem: problem.into() }
}

/// Estimates mean glandular dose for the dose-budget check.
pub trait DoseModel {
    /// Mean glandular dose per mAs, mGy/mAs, of one view at `angle_deg` with this technique and compression.
    fn mgd_per_mas(&self, technique: &Technique, compression: &Compression, angle_deg: f64) -> f64;
}

/// Automatic exposure control: turns a pre-shot into the technique for the views.
pub trait Aec {
    /// Chooses the technique (with its mAs per view) from the pre-shot frame.
    fn choose(
        &self,
        preshot: &Frame,
        dark: Option<&Frame>,
        preshot_technique: &Technique,
        compression: &Compression,
        views: usize,
    ) -> Result<Technique, AecError>;
}

/// Why an [`Aec`] could not choose a technique.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AecError {
    /// The generic kind: `OutOfRange` for a pre-shot outside the calibration or the generator's range,
    /// `DeviceFault` for a frame that cannot be read (no breast, no signal), `Other` otherwise.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
}

impl AecError {
    /// An error of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

impl Error for AecError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Receives each view as soon as it is acquired, so it can be streamed to disk (see [`crate::journal`]).
pub trait ViewObserver {
    /// Called right after view `meta.views.len() - 1` was read out, with the metadata so far, that view's frame
    /// and the calibration frames.
    ///
    /// # Contract
    /// Called once per acquired view, in order, before the next exposure. An `Err` aborts the exam (safely, as
    /// any fault) with [`AbortReason::Interrupted`]: views that cannot be recorded are not worth exposing.
    fn on_view(
        &mut self,
        meta: &AcquisitionMeta,
        frame: &Frame,
        dark: Option<&Frame>,
        flood: Option<&Frame>,
    ) -> Result<(), String>;
}

/// The exam state machine. Holds the backup-timer latch between exams.
#[derive(Debug, Clone)]
pub struct Sequencer {
    limits: SafetyLimits,
    backup_latched: bool,
}

/// Why the run stopped before completing (internal).
enum Stop {
    Refused(AbortReason),
    Abort(AbortReason),
}

fn device<E: Error>(name: &'static str) -> impl FnOnce(E) -> Stop {
    move |e| Stop::Abort(AbortReason::Device { device: name.into(), kind: e.kind(), message: e.to_string() })
}

struct Run {
    meta: AcquisitionMeta,
    frames: Vec<Frame>,
    dark: Option<Frame>,
    flood: Option<Frame>,
    t0: Duration,
}

impl Sequencer {
    /// A sequencer with these limits, checked.
    pub fn new(limits: SafetyLimits) -> Result<Self, PlanError> {
        let max = limits.powered_force_max.get();
        if !(POWERED_FORCE_LIMIT_MIN_N..=POWERED_FORCE_LIMIT_MAX_N).contains(&max) {
            return Err(PlanError::Limits {
                field: "powered_force_max",
                problem: format!("{max} N is outside the regulatory 111..=200 N"),
            });
        }
        if limits.exposure_force_min.get() >= max {
            return Err(PlanError::Limits {
                field: "exposure_force_min",
                problem: "must be below powered_force_max".into(),
            });
        }
        if !(limits.backup_time_factor.is_finite() && (1.0..=3.0).contains(&limits.backup_time_factor)) {
            return Err(PlanError::Limits { field: "backup_time_factor", problem: "must lie within 1..=3".into() });
        }
        Ok(Self { limits, backup_latched: false })
    }

    /// The limits in force.
    pub fn limits(&self) -> &SafetyLimits {
        &self.limits
    }

    /// Whether the backup timer is latched.
    pub fn backup_latched(&self) -> bool {
        self.backup_latched
    }

    /// Clears the backup-timer latch (an operator action after the cause is understood).
    pub fn reset_backup_timer(&mut self) {
        self.backup_latched = false;
    }

    fn check_plan(&self, plan: &ExamPlan, aec: bool) -> Result<(), PlanError> {
        if self.backup_latched {
            return Err(PlanError::BackupTimerLatched);
        }
        plan.geometry.validate().map_err(|e| plan_error("geometry", e.to_string()))?;
        if plan.angles.is_empty() {
            return Err(plan_error("angles", "at least one view is required"));
        }
        if let Some(h) = plan.support_height_mm {
            let sdd = plan.geometry.source_to_detector_mm;
            if !(h.is_finite() && (0.0..sdd).contains(&h)) {
                return Err(plan_error("support_height_mm", format!("{h} mm must lie in 0..{sdd} mm")));
            }
        }
        let force = plan.compression_force.get();
        if force > self.limits.powered_force_max.get() {
            return Err(plan_error(
                "compression_force",
                format!("{force} N exceeds the powered-compression limit {}", self.limits.powered_force_max),
            ));
        }
        if force < self.limits.exposure_force_min.get() {
            return Err(plan_error(
                "compression_force",
                format!("{force} N is below the exposure minimum {}", self.limits.exposure_force_min),
            ));
        }
        let reach = match plan.motion {
            Motion::Continuous { exposure_arc_deg, run_up_deg } => {
                if !(exposure_arc_deg.is_finite() && exposure_arc_deg >= 0.0) {
                    return Err(plan_error("motion.exposure_arc_deg", "must be finite and non-negative"));
                }
                if !(run_up_deg.is_finite() && run_up_deg >= 0.0) {
                    return Err(plan_error("motion.run_up_deg", "must be finite and non-negative"));
                }
                exposure_arc_deg / 2.0 + run_up_deg
            }
            _ => 0.0,
        };
        if let Some(a) = plan.angles.iter().find(|a| a.get().abs() + reach > Degrees::MAX) {
            return Err(plan_error("angles", format!("{a} plus the exposure arc and run-up leaves -360..=360 deg")));
        }
        let technique = match plan.technique {
            TechniqueMode::Manual { technique } => technique,
            TechniqueMode::Aec { preshot } => {
                if !aec {
                    return Err(plan_error("technique", "AEC mode needs an AEC algorithm"));
                }
                preshot
            }
        };
        if technique.mas_per_view.get() <= 0.0 {
            return Err(plan_error("technique.mas_per_view", "must be positive"));
        }
        Ok(())
    }

    fn budget_mgd(&self, plan: &ExamPlan) -> f64 {
        plan.dose_budget.get().min(self.limits.exam_dose_limit.get())
    }

    fn request(&self, technique: &Technique) -> ExposureRequest {
        ExposureRequest {
            mas: technique.mas_per_view,
            backup_time: technique.exposure_time().mul_f64(self.limits.backup_time_factor),
        }
    }

    /// Worst-case mAs of one exposure: the tube current for the whole backup time.
    fn worst_case_mas(&self, technique: &Technique) -> f64 {
        technique.mas_per_view.get() * self.limits.backup_time_factor
    }

    /// Runs one exam.
    ///
    /// Returns `Err` only for a plan refused before any device is touched. Otherwise the acquisition is returned
    /// whatever happened; its status says whether it is complete, refused (no view exposed) or aborted (partial).
    pub fn run<U: Unit>(
        &mut self,
        unit: &mut U,
        plan: &ExamPlan,
        dose: &dyn DoseModel,
        aec: Option<&dyn Aec>,
        clock: &dyn Clock,
    ) -> Result<Acquisition, PlanError> {
        self.run_observed(unit, plan, dose, aec, clock, None)
    }

    /// [`Sequencer::run`], handing each view to `observer` as soon as it is acquired.
    pub fn run_observed<U: Unit>(
        &mut self,
        unit: &mut U,
        plan: &ExamPlan,
        dose: &dyn DoseModel,
        aec: Option<&dyn Aec>,
        clock: &dyn Clock,
        observer: Option<&mut dyn ViewObserver>,
    ) -> Result<Acquisition, PlanError> {
        self.check_plan(plan, aec.is_some())?;
        let mut dev = unit.parts();
        let detector = dev.detector.geometry();
        detector.validate().map_err(|e| plan_error("detector", e.to_string()))?;
        let geometry = crate::geometry::ArcGeometry { detector, ..plan.geometry };
        let started_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut run = Run {
            meta: AcquisitionMeta {
                preset: plan.preset,
                status: ExamStatus::Complete,
                detector,
                geometry,
                technique: None,
                compression: None,
                support_height_mm: plan.support_height_mm,
                started_unix_ms,
                views: Vec::new(),
                exposures: Vec::new(),
                dose: DoseSummary { budget_mgd: self.budget_mgd(plan), delivered_mgd: 0.0 },
                safe_state_errors: Vec::new(),
            },
            frames: Vec::new(),
            dark: None,
            flood: None,
            t0: clock.now(),
        };
        let ctx = Context { plan, dose, aec, clock };
        let outcome = self.exam::<U>(&mut dev, &ctx, &mut run, observer);
        // Normal end of scan or not: automatic release; motion and tube made safe.
        Self::make_safe::<U>(&mut dev, &mut run.meta.safe_state_errors);
        if let Err(stop) = outcome {
            run.meta.status = match stop {
                Stop::Refused(reason) => ExamStatus::Refused { reason },
                Stop::Abort(reason) => ExamStatus::Aborted { reason, views_acquired: run.frames.len() },
            };
        }
        Ok(Acquisition { meta: run.meta, frames: run.frames, dark: run.dark, flood: run.flood })
    }
}

/// A dose model with a fixed mGy per mAs, for tests and for devices with a measured calibration.
#[derive(Debug, Clone, Copy)]
pub struct FixedDoseRate {
    /// Mean glandular dose per mAs, mGy/mAs.
    pub mgd_per_mas: f64,
}

impl DoseModel for FixedDoseRate {
    fn mgd_per_mas(&self, _: &Technique, _: &Compression, _: f64) -> f64 {
        self.mgd_per_mas
    }
}
