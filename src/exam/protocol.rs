//! The exam as a value: a protocol (plan, AEC, dose models, the phantom's ground truth) that runs on any unit
//! (the simulated one, or a device over the firmware bridge), and the outcome it summarises.

use anyhow::Context;
use serde::Serialize;
use tomolab_hal::acquisition::ExamStatus;
use tomolab_hal::aec::{AecReading, PreshotAec};
use tomolab_hal::sequencer::{Aec, AecError, SafetyLimits, Sequencer, ViewObserver};
use tomolab_hal::technique::Technique;
use tomolab_hal::{Acquisition, Clock, Compression, DetectorGeometry, ExamPlan, Frame, PresetName, ScanPreset, Unit};
use tomolab_phantom::GroundTruth;
use tomolab_simulator::dose::BudgetDose;
use tomolab_simulator::{AntiScatterGrid, ScatterModel};

use super::{ExamConfig, Resolution};
use crate::dose_report::{DoseInputs, DoseReport};

/// What the exam chose and measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExamSummary {
    /// Preset.
    pub preset: PresetName,
    /// Seed.
    pub seed: u64,
    /// Resolution.
    pub resolution: Resolution,
    /// How the exam ended.
    pub status: ExamStatus,
    /// Views acquired.
    pub views: usize,
    /// The technique used for the views.
    pub technique: Option<Technique>,
    /// Total mAs of the views.
    pub total_mas: f64,
    /// What the AEC read from the pre-shot, if AEC ran.
    pub aec: Option<AecReading>,
    /// Compressed thickness, mm.
    pub thickness_mm: Option<f64>,
    /// Duration of the exam on the unit's clock (what a real sweep would take), s.
    pub exam_time_s: f64,
    /// Mean glandular dose the sequencer booked (conversion-factor formalism), mGy.
    pub estimated_mgd: f64,
    /// Mean glandular dose from the Monte Carlo on the phantom, mGy (absent when no report was made).
    pub mgd_mgy: Option<f64>,
    /// Its standard error, mGy.
    pub mgd_std_error_mgy: Option<f64>,
    /// Detector grid of the frames.
    pub detector: DetectorGeometry,
    /// The anti-scatter grid in the beam (2D mammography), with its Bucky factor at this breast.
    pub anti_scatter_grid: Option<GridSummary>,
}

/// The anti-scatter grid of an exam.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GridSummary {
    /// Primary and scatter transmission.
    pub grid: AntiScatterGrid,
    /// Scatter-to-primary ratio the scatter model gives behind the breast without the grid.
    pub spr_without_grid: f64,
    /// Exposure factor the grid costs at that SPR, `(1 + SPR) / (T_p + T_s SPR)`; the AEC's mAs and the dose
    /// follow it.
    pub bucky_factor: f64,
    /// Contrast improvement factor at that SPR.
    pub contrast_improvement: f64,
}

impl GridSummary {
    /// The grid's figures behind `thickness_mm` of breast of `glandular_fraction` (no scatter: SPR 0).
    pub fn new(grid: AntiScatterGrid, scatter: bool, thickness_mm: f64, glandular_fraction: f64) -> Self {
        let spr = if scatter { ScatterModel::default().spr(thickness_mm, glandular_fraction, 0.0) } else { 0.0 };
        Self {
            grid,
            spr_without_grid: spr,
            bucky_factor: grid.bucky_factor(spr),
            contrast_improvement: grid.contrast_improvement(spr),
        }
    }
}

/// Everything a simulated exam produced.
#[derive(Debug)]
pub struct ExamOutcome {
    /// The acquisition.
    pub acquisition: Acquisition,
    /// The phantom's ground truth.
    pub truth: GroundTruth,
    /// Summary.
    pub summary: ExamSummary,
    /// Per-view dose report (Monte Carlo on the phantom and the formalism).
    pub dose: Option<DoseReport>,
}

/// The exam's dose models: the sequencer's budget estimate and the phantom Monte Carlo of the report.
#[derive(Debug)]
pub struct ExamDose {
    /// Formalism (with the model-breast Monte Carlo where its tables stop) for the budget check.
    pub budget: BudgetDose,
    /// The phantom and unit for the Monte Carlo report.
    pub inputs: DoseInputs,
}

/// What runs an exam on a unit: the plan, the AEC, the dose models and the phantom's ground truth, all made
/// from one [`ExamConfig`]. It holds no device: [`ExamProtocol::run`] takes the unit.
#[derive(Debug)]
pub struct ExamProtocol {
    /// The configuration it was made from.
    pub config: ExamConfig,
    /// The exam plan.
    pub plan: ExamPlan,
    /// The AEC, if the technique is automatic.
    pub aec: Option<PreshotAec>,
    /// The dose model of the budget check and what the dose report needs.
    pub dose: ExamDose,
    /// The phantom's ground truth.
    pub truth: GroundTruth,
    /// The detector grid of the frames.
    pub detector: DetectorGeometry,
}

impl ExamProtocol {
    /// Runs the sequencer on `unit` (the simulated unit, or the firmware bridge to a device) and summarises.
    pub fn run<U: Unit>(&self, unit: &mut U, clock: &dyn Clock) -> anyhow::Result<ExamOutcome> {
        self.run_observed(unit, clock, None)
    }

    /// [`ExamProtocol::run`], handing each view to `observer` as it arrives (to stream it to disk, see
    /// [`tomolab_hal::journal`]).
    pub fn run_observed<U: Unit>(
        &self,
        unit: &mut U,
        clock: &dyn Clock,
        observer: Option<&mut dyn ViewObserver>,
    ) -> anyhow::Result<ExamOutcome> {
        let mut sequencer = Sequencer::new(SafetyLimits::default())?;
        let recording = self.aec.clone().map(|inner| RecordingAec { inner, reading: std::cell::Cell::new(None) });
        let aec = recording.as_ref().map(|a| a as &dyn Aec);
        let t0 = clock.now();
        let acquisition = sequencer.run_observed(unit, &self.plan, &self.dose.budget, aec, clock, observer)?;
        let exam_time_s = clock.now().saturating_sub(t0).as_secs_f64();
        self.summarise(acquisition, exam_time_s, recording.and_then(|r| r.reading.get()))
    }

    /// The dose report and summary of an acquisition (a fresh one, or one recovered from a journal).
    pub fn summarise(
        &self,
        acquisition: Acquisition,
        exam_time_s: f64,
        aec: Option<AecReading>,
    ) -> anyhow::Result<ExamOutcome> {
        let (config, dose) = (&self.config, &self.dose);
        let report = if acquisition.meta.views.is_empty() {
            None
        } else {
            Some(DoseReport::compute(&dose.inputs, &dose.budget, &acquisition).context("dose report")?)
        };
        let summary = ExamSummary {
            preset: config.preset,
            seed: config.seed,
            resolution: config.resolution,
            status: acquisition.meta.status.clone(),
            views: acquisition.frames.len(),
            technique: acquisition.meta.technique,
            total_mas: acquisition.meta.views.iter().map(|v| v.exposure.mas.get()).sum(),
            aec,
            thickness_mm: acquisition.meta.compression.map(|c| c.thickness.get()),
            exam_time_s,
            estimated_mgd: acquisition.meta.dose.delivered_mgd,
            mgd_mgy: report.as_ref().map(|r| r.total_mgd_mgy),
            mgd_std_error_mgy: report.as_ref().map(|r| r.total_std_error_mgy),
            detector: self.detector,
            anti_scatter_grid: ScanPreset::builtin(config.preset).anti_scatter_grid.then(|| {
                GridSummary::new(
                    AntiScatterGrid::linear_mammography(),
                    config.physics.scatter,
                    config.phantom.thickness_mm,
                    config.phantom.glandular_fraction,
                )
            }),
        };
        Ok(ExamOutcome { acquisition, truth: self.truth.clone(), summary, dose: report })
    }
}

/// Keeps what the AEC read from the pre-shot, for the summary.
struct RecordingAec {
    inner: PreshotAec,
    reading: std::cell::Cell<Option<AecReading>>,
}

impl Aec for RecordingAec {
    fn choose(
        &self,
        preshot: &Frame,
        dark: Option<&Frame>,
        preshot_technique: &Technique,
        compression: &Compression,
        views: usize,
    ) -> Result<Technique, AecError> {
        self.reading.set(self.inner.read(preshot, dark, preshot_technique, compression).ok());
        self.inner.choose(preshot, dark, preshot_technique, compression, views)
    }
}
