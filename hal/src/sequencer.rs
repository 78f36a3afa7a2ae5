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

use crate::acquisition::{
    AbortReason, Acquisition, AcquisitionMeta, DoseSummary, ExamPlan, ExamStatus, ExposureLogEntry, ExposurePurpose,
    TechniqueMode, ViewRecord,
};
use crate::devices::{Clock, Compression, CompressionPaddle, Detector, Frame, Gantry, Interlock, Interlocks, XrayTube};
use crate::error::{Error, ErrorKind};
use crate::presets::Motion;
use crate::technique::{ExposureEnd, ExposureRecord, ExposureRequest, Technique};
use crate::unit::{Parts, Unit};
use crate::units::{Degrees, MilliGray, Newtons};

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
                preset: plan.preset.clone(),
                status: ExamStatus::Complete,
                detector,
                geometry,
                technique: None,
                compression: None,
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

    /// Tube off, motion stopped, detector disarmed, compression released: each attempted whatever the others do.
    fn make_safe<U: Unit>(dev: &mut Parts<'_, U>, errors: &mut Vec<String>) {
        if let Err(e) = dev.tube.disable() {
            errors.push(format!("tube disable: {e}"));
        }
        if let Err(e) = dev.gantry.stop() {
            errors.push(format!("gantry stop: {e}"));
        }
        if let Err(e) = dev.detector.disarm() {
            errors.push(format!("detector disarm: {e}"));
        }
        if let Err(e) = dev.paddle.release() {
            errors.push(format!("paddle release: {e}"));
        }
    }

    fn check_interlocks<I: Interlocks>(interlocks: &mut I) -> Result<(), Stop> {
        let status = interlocks.status().map_err(device("interlocks"))?;
        match status.first_open() {
            None => Ok(()),
            Some(Interlock::ExposureSwitch) => Err(Stop::Abort(AbortReason::ExposureSwitchReleased)),
            Some(interlock) => Err(Stop::Abort(AbortReason::Interlock { interlock })),
        }
    }

    fn check_force<P: CompressionPaddle>(&self, paddle: &mut P) -> Result<Compression, Stop> {
        let state = paddle.state().map_err(device("paddle"))?;
        let force = state.force.get();
        if force < self.limits.exposure_force_min.get() || force > self.limits.powered_force_max.get() {
            return Err(Stop::Abort(AbortReason::ForceOutOfWindow { force_n: force }));
        }
        Ok(state)
    }

    /// The dose check against the worst case: what was delivered plus `worst_case_mgd` must stay within the
    /// budget. `refuse` turns a failure into a refusal (nothing exposed yet) instead of an abort.
    fn check_projected(run: &Run, worst_case_mgd: f64, refuse: bool) -> Result<(), Stop> {
        let budget = run.meta.dose.budget_mgd;
        let projected = run.meta.dose.delivered_mgd + worst_case_mgd;
        if projected > budget {
            let reason = AbortReason::DoseBudget { projected_mgd: projected, budget_mgd: budget };
            return Err(if refuse { Stop::Refused(reason) } else { Stop::Abort(reason) });
        }
        Ok(())
    }

    fn check_frame(frame: &Frame, run: &Run, what: &str) -> Result<(), Stop> {
        let det = &run.meta.detector;
        if frame.cols != det.cols || frame.rows != det.rows || frame.data.len() != det.pixel_count() {
            return Err(Stop::Abort(AbortReason::Device {
                device: "detector".into(),
                kind: ErrorKind::OutOfRange,
                message: format!(
                    "{what} is {}x{} with {} values; the detector is {}x{}",
                    frame.cols,
                    frame.rows,
                    frame.data.len(),
                    det.cols,
                    det.rows
                ),
            }));
        }
        Ok(())
    }

    /// Fires one exposure (the detector must be armed) and books its dose. Aborts on any abnormal end.
    fn expose<T: XrayTube>(
        &mut self,
        tube: &mut T,
        technique: &Technique,
        mgd_per_mas: f64,
        entry: (ExposurePurpose, f64),
        run: &mut Run,
    ) -> Result<ExposureRecord, Stop> {
        let (purpose, nominal_angle_deg) = entry;
        let request = self.request(technique);
        let record = tube.expose(&request).map_err(device("tube"))?;
        let estimated_mgd = mgd_per_mas * record.mas.get();
        run.meta.dose.delivered_mgd += estimated_mgd;
        run.meta.exposures.push(ExposureLogEntry { purpose, nominal_angle_deg, record, estimated_mgd });
        let overran =
            record.duration > request.backup_time || record.mas.get() > self.worst_case_mas(technique) * (1.0 + 1e-9);
        if record.end == ExposureEnd::BackupTimer || overran {
            self.backup_latched = true;
            return Err(Stop::Abort(AbortReason::BackupTimer));
        }
        match record.end {
            ExposureEnd::Planned | ExposureEnd::Aec => Ok(record),
            ExposureEnd::OperatorRelease => Err(Stop::Abort(AbortReason::ExposureSwitchReleased)),
            end @ (ExposureEnd::Interlock | ExposureEnd::Fault | ExposureEnd::BackupTimer) => {
                Err(Stop::Abort(AbortReason::ExposureFault { end }))
            }
        }
    }

    fn dose_rate(
        dose: &dyn DoseModel,
        technique: &Technique,
        compression: &Compression,
        angle: f64,
    ) -> Result<f64, Stop> {
        let rate = dose.mgd_per_mas(technique, compression, angle);
        if rate.is_finite() && rate >= 0.0 {
            Ok(rate)
        } else {
            Err(Stop::Refused(AbortReason::DoseModel { message: format!("returned {rate} mGy/mAs at {angle} deg") }))
        }
    }

    /// The exam proper, in its order: preconditions, dark frame, compression, technique, whole-plan dose check,
    /// flood frame, sweep.
    fn exam<U: Unit>(
        &mut self,
        dev: &mut Parts<'_, U>,
        ctx: &Context<'_>,
        run: &mut Run,
        mut observer: Option<&mut dyn ViewObserver>,
    ) -> Result<(), Stop> {
        // Preconditions before anything moves: a refusal here touches nothing else.
        Self::check_interlocks(&mut dev.interlocks).map_err(|s| match s {
            Stop::Abort(r) | Stop::Refused(r) => Stop::Refused(r),
        })?;

        // Dark frame: armed, no beam.
        dev.detector.arm().map_err(device("detector"))?;
        let dark = dev.detector.read_frame().map_err(device("detector"))?;
        Self::check_frame(&dark, run, "dark frame")?;
        run.dark = Some(dark);

        // Compression, never commanded above the limit (checked in the plan).
        let compression = dev.paddle.compress(ctx.plan.compression_force).map_err(device("paddle"))?;
        run.meta.compression = Some(compression);
        let compression = self.check_force(&mut dev.paddle)?;

        let technique = self.choose_technique::<U>(dev, ctx, &compression, run)?;
        run.meta.technique = Some(technique);

        // Whole-plan dose check on the worst case, before the first view.
        let rates = ctx
            .plan
            .angles
            .iter()
            .map(|a| Self::dose_rate(ctx.dose, &technique, &compression, a.get()))
            .collect::<Result<Vec<_>, _>>()?;
        let worst = self.worst_case_mas(&technique);
        Self::check_projected(run, rates.iter().map(|r| r * worst).sum::<f64>(), true)?;

        dev.tube.set_technique(&technique).map_err(device("tube"))?;
        // Flood per mAs for the view technique, so recon can normalise each view by its delivered mAs.
        let flood = dev.detector.flood_frame().map_err(device("detector"))?;
        Self::check_frame(&flood, run, "flood frame")?;
        run.flood = Some(flood);
        dev.tube.prepare().map_err(device("tube"))?;

        let sweep = Sweep::new(ctx.plan, &technique);
        sweep.start::<U>(dev)?;
        for (k, nominal) in ctx.plan.angles.iter().enumerate() {
            let view = ViewStep { nominal: nominal.get(), rate: rates[k], worst };
            self.acquire_view::<U>(dev, ctx, &sweep, &technique, view, run)?;
            if let (Some(observer), Some(frame)) = (observer.as_deref_mut(), run.frames.last()) {
                observer
                    .on_view(&run.meta, frame, run.dark.as_ref(), run.flood.as_ref())
                    .map_err(|message| Stop::Abort(AbortReason::Interrupted { message }))?;
            }
        }
        Ok(())
    }

    /// The view technique: the plan's, or the AEC's choice from a pre-shot at 0 deg.
    fn choose_technique<U: Unit>(
        &mut self,
        dev: &mut Parts<'_, U>,
        ctx: &Context<'_>,
        compression: &Compression,
        run: &mut Run,
    ) -> Result<Technique, Stop> {
        let technique = match (ctx.plan.technique, ctx.aec) {
            (TechniqueMode::Manual { technique }, _) => technique,
            (TechniqueMode::Aec { preshot }, Some(aec)) => {
                let rate = Self::dose_rate(ctx.dose, &preshot, compression, 0.0)?;
                Self::check_projected(run, rate * self.worst_case_mas(&preshot), true)?;
                dev.tube.set_technique(&preshot).map_err(device("tube"))?;
                dev.tube.prepare().map_err(device("tube"))?;
                dev.gantry.move_to(Degrees(0.0)).map_err(device("gantry"))?;
                dev.detector.arm().map_err(device("detector"))?;
                Self::check_interlocks(&mut dev.interlocks)?;
                self.check_force(&mut dev.paddle)?;
                self.expose(&mut dev.tube, &preshot, rate, (ExposurePurpose::Preshot, 0.0), run)?;
                let frame = dev.detector.read_frame().map_err(device("detector"))?;
                Self::check_frame(&frame, run, "pre-shot frame")?;
                aec.choose(&frame, run.dark.as_ref(), &preshot, compression, ctx.plan.angles.len())
                    .map_err(|e| Stop::Abort(AbortReason::Aec { message: e.to_string() }))?
            }
            (TechniqueMode::Aec { .. }, None) => {
                return Err(Stop::Refused(AbortReason::Aec { message: "no AEC algorithm".into() }));
            }
        };
        if technique.mas_per_view.get() <= 0.0 {
            return Err(Stop::Refused(AbortReason::Aec { message: "chosen technique has no mAs".into() }));
        }
        Ok(technique)
    }

    /// One view: position (or wait for the sweep), arm, last checks, beam, read-out, record.
    fn acquire_view<U: Unit>(
        &mut self,
        dev: &mut Parts<'_, U>,
        ctx: &Context<'_>,
        sweep: &Sweep,
        technique: &Technique,
        view: ViewStep,
        run: &mut Run,
    ) -> Result<(), Stop> {
        let nominal = view.nominal;
        let angle_start = if sweep.continuous {
            dev.gantry
                .await_angle(gantry_angle(nominal - sweep.direction * sweep.half_arc)?)
                .map_err(device("gantry"))?
                .get()
        } else {
            dev.gantry.move_to(gantry_angle(nominal)?).map_err(device("gantry"))?;
            dev.gantry.position().map_err(device("gantry"))?.get()
        };
        dev.detector.arm().map_err(device("detector"))?;
        // Last checks immediately before the beam.
        Self::check_interlocks(&mut dev.interlocks)?;
        self.check_force(&mut dev.paddle)?;
        Self::check_projected(run, view.rate * view.worst, false)?;
        let time_since_start = ctx.clock.now().saturating_sub(run.t0);
        let record = self.expose(&mut dev.tube, technique, view.rate, (ExposurePurpose::View, nominal), run)?;
        let angle_end =
            if sweep.continuous { dev.gantry.position().map_err(device("gantry"))?.get() } else { angle_start };
        let frame = dev.detector.read_frame().map_err(device("detector"))?;
        Self::check_frame(&frame, run, "view frame")?;
        let pose = run.meta.geometry.pose_at(0.5 * (angle_start + angle_end));
        run.meta.views.push(ViewRecord {
            nominal_angle_deg: nominal,
            angle_start_deg: angle_start,
            angle_end_deg: angle_end,
            pose,
            exposure: record,
            time_since_start,
            estimated_mgd: MilliGray(view.rate * record.mas.get()),
        });
        run.frames.push(frame);
        Ok(())
    }
}

/// What an exam runs against besides the devices.
struct Context<'a> {
    plan: &'a ExamPlan,
    dose: &'a dyn DoseModel,
    aec: Option<&'a dyn Aec>,
    clock: &'a dyn Clock,
}

/// One view of the sweep: its nominal angle, dose rate (mGy/mAs) and worst-case mAs.
#[derive(Clone, Copy)]
struct ViewStep {
    nominal: f64,
    rate: f64,
    worst: f64,
}

/// The gantry's motion for the views: step-and-shoot, or one continuous sweep with the beam on over
/// `2 * half_arc` around each nominal angle.
struct Sweep {
    continuous: bool,
    direction: f64,
    half_arc: f64,
    first: f64,
    last: f64,
    run_up: f64,
    speed: f64,
}

impl Sweep {
    fn new(plan: &ExamPlan, technique: &Technique) -> Self {
        let first = plan.angles[0].get();
        let last = plan.angles[plan.angles.len() - 1].get();
        let direction = if last >= first { 1.0 } else { -1.0 };
        let (half_arc, run_up) = match plan.motion {
            Motion::Continuous { exposure_arc_deg, run_up_deg } => (exposure_arc_deg / 2.0, run_up_deg),
            _ => (0.0, 0.0),
        };
        let exposure_s = technique.exposure_time().as_secs_f64();
        let continuous = half_arc > 0.0 && exposure_s > 0.0 && plan.angles.len() > 1;
        let speed = if continuous { 2.0 * half_arc / exposure_s } else { 0.0 };
        Self { continuous, direction, half_arc, first, last, run_up, speed }
    }

    /// Moves to the run-up position and starts the sweep (continuous motion only).
    fn start<U: Unit>(&self, dev: &mut Parts<'_, U>) -> Result<(), Stop> {
        if self.continuous {
            let reach = self.direction * (self.half_arc + self.run_up);
            dev.gantry.move_to(gantry_angle(self.first - reach)?).map_err(device("gantry"))?;
            dev.gantry.start_sweep(gantry_angle(self.last + reach)?, self.speed).map_err(device("gantry"))?;
        }
        Ok(())
    }
}

fn gantry_angle(a: f64) -> Result<Degrees, Stop> {
    Degrees::new(a).map_err(|e| {
        Stop::Abort(AbortReason::Device {
            device: "gantry".into(),
            kind: ErrorKind::OutOfRange,
            message: e.to_string(),
        })
    })
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
