//! The exam's steps, in order: safe state, checks before every beam, the technique (fixed or AEC from a
//! pre-shot), the sweep's motion and one view.

use super::{Aec, DoseModel, Run, Sequencer, Stop, ViewObserver, device};
use crate::acquisition::{AbortReason, ExamPlan, ExposureLogEntry, ExposurePurpose, TechniqueMode, ViewRecord};
use crate::devices::{Clock, Compression, CompressionPaddle, Detector, Frame, Gantry, Interlock, Interlocks, XrayTube};
use crate::error::ErrorKind;
use crate::presets::Motion;
use crate::technique::{ExposureEnd, ExposureRecord, Technique};
use crate::unit::{Parts, Unit};
use crate::units::{Degrees, MilliGray};

impl Sequencer {
    /// Tube off, motion stopped, detector disarmed, compression released: each attempted whatever the others do.
    pub(super) fn make_safe<U: Unit>(dev: &mut Parts<'_, U>, errors: &mut Vec<String>) {
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
    pub(super) fn exam<U: Unit>(
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
pub(super) struct Context<'a> {
    pub(super) plan: &'a ExamPlan,
    pub(super) dose: &'a dyn DoseModel,
    pub(super) aec: Option<&'a dyn Aec>,
    pub(super) clock: &'a dyn Clock,
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
