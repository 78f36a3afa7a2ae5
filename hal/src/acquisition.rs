//! The exam plan (what to acquire) and the acquisition record (what was acquired).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::devices::{Compression, Frame};
use crate::geometry::{ArcGeometry, DetectorGeometry, ViewPose};
use crate::presets::{Motion, PresetName, ScanPreset};
use crate::technique::{ExposureRecord, Technique};
use crate::units::{Degrees, MilliGray, Newtons};

/// Where the exposure technique comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum TechniqueMode {
    /// A fixed technique chosen by the operator.
    Manual {
        /// The technique for every view.
        technique: Technique,
    },
    /// Automatic exposure control: a low-dose pre-shot, then an [`Aec`](crate::sequencer::Aec) picks the technique.
    Aec {
        /// The pre-shot technique (its `mas_per_view` is the pre-shot mAs).
        preshot: Technique,
    },
}

/// Everything the sequencer needs to run one exam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamPlan {
    /// Name of the preset the plan came from (informational).
    pub preset: PresetName,
    /// Gantry and detector geometry used to compute each view's pose.
    pub geometry: ArcGeometry,
    /// View angles in acquisition order.
    pub angles: Vec<Degrees>,
    /// Tube motion.
    pub motion: Motion,
    /// Technique source.
    pub technique: TechniqueMode,
    /// Target compression force.
    pub compression_force: Newtons,
    /// Dose budget for the whole exam (mean glandular dose); capped by the sequencer's safety limits.
    pub dose_budget: MilliGray,
    /// Height of the breast support's top face above the detector surface, mm, if the unit knows it. The
    /// sequencer records it in [`AcquisitionMeta::support_height_mm`], so a reconstruction puts its slab on
    /// the breast without being told. `None` (the default, also for plans serialized before the field existed)
    /// records nothing.
    #[serde(default)]
    pub support_height_mm: Option<f64>,
}

impl ExamPlan {
    /// A plan with a preset's geometry, angles and motion.
    pub fn from_preset(
        preset: &ScanPreset,
        technique: TechniqueMode,
        compression_force: Newtons,
        dose_budget: MilliGray,
    ) -> Result<Self, crate::units::UnitError> {
        let angles = preset.sampling.angles_deg().into_iter().map(Degrees::new).collect::<Result<_, _>>()?;
        Ok(Self {
            preset: preset.name,
            geometry: preset.geometry,
            angles,
            motion: preset.motion,
            technique,
            compression_force,
            dose_budget,
            support_height_mm: None,
        })
    }
}

/// One acquired view: geometry, exposure and timing. Its frame has the same index in [`Acquisition::frames`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// Planned angle, degrees.
    pub nominal_angle_deg: f64,
    /// Gantry angle when the exposure began, degrees.
    pub angle_start_deg: f64,
    /// Gantry angle when the exposure ended, degrees.
    pub angle_end_deg: f64,
    /// Pose at the middle of the exposure: the geometry reconstruction uses.
    pub pose: ViewPose,
    /// What the generator delivered.
    pub exposure: ExposureRecord,
    /// Start of the exposure, since the exam started.
    #[serde(with = "crate::serde_duration")]
    pub time_since_start: Duration,
    /// Estimated mean glandular dose of this view.
    pub estimated_mgd: MilliGray,
}

/// Why an exam stopped early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum AbortReason {
    /// An interlock opened.
    Interlock {
        /// Which one.
        interlock: crate::devices::Interlock,
    },
    /// The operator released the hold-to-run exposure switch.
    ExposureSwitchReleased,
    /// The backup timer ended an exposure; it stays latched until reset.
    BackupTimer,
    /// The compression force left the permitted window.
    ForceOutOfWindow {
        /// Force measured, N.
        force_n: f64,
    },
    /// The next exposure could exceed the exam dose budget.
    DoseBudget {
        /// Dose delivered so far plus the worst case of the next exposure, mGy.
        projected_mgd: f64,
        /// The budget, mGy.
        budget_mgd: f64,
    },
    /// A device reported an error.
    Device {
        /// Which device.
        device: String,
        /// Its error kind.
        kind: crate::error::ErrorKind,
        /// Its message.
        message: String,
    },
    /// An exposure ended abnormally (generator fault or kV drop).
    ExposureFault {
        /// How it ended.
        end: crate::technique::ExposureEnd,
    },
    /// The dose model gave no usable estimate.
    DoseModel {
        /// Why.
        message: String,
    },
    /// The AEC could not choose a technique.
    Aec {
        /// Why.
        message: String,
    },
    /// The recording stopped before the exam ended: the process was killed (the bundle was recovered from its
    /// journal), or a view could not be streamed to disk.
    Interrupted {
        /// Why.
        message: String,
    },
}

impl core::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Interlock { interlock } => write!(f, "interlock open: {interlock:?}"),
            Self::ExposureSwitchReleased => f.write_str("exposure switch released"),
            Self::BackupTimer => f.write_str("backup timer ended an exposure (latched)"),
            Self::ForceOutOfWindow { force_n } => write!(f, "compression force {force_n} N outside the window"),
            Self::DoseBudget { projected_mgd, budget_mgd } => {
                write!(f, "dose budget: projected {projected_mgd:.3} mGy exceeds {budget_mgd:.3} mGy")
            }
            Self::Device { device, kind, message } => write!(f, "{device}: {kind}: {message}"),
            Self::ExposureFault { end } => write!(f, "exposure ended abnormally: {end:?}"),
            Self::DoseModel { message } => write!(f, "dose model: {message}"),
            Self::Aec { message } => write!(f, "AEC failed: {message}"),
            Self::Interrupted { message } => write!(f, "interrupted: {message}"),
        }
    }
}

/// How the exam ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ExamStatus {
    /// Every planned view was acquired.
    Complete,
    /// Refused before any exposure (the plan could exceed the dose budget, or a precondition failed).
    Refused {
        /// Why.
        reason: AbortReason,
    },
    /// Stopped part-way; the views acquired so far are kept.
    Aborted {
        /// Why.
        reason: AbortReason,
        /// Views acquired before the abort.
        views_acquired: usize,
    },
}

/// Dose bookkeeping for the exam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DoseSummary {
    /// The budget in force (the smaller of the plan's and the safety limit).
    pub budget_mgd: f64,
    /// Estimated mean glandular dose delivered, including any pre-shot, mGy.
    pub delivered_mgd: f64,
}

/// Every exposure fired, including pre-shots and exposures whose frame was lost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExposureLogEntry {
    /// What it was for.
    pub purpose: ExposurePurpose,
    /// Planned angle, degrees.
    pub nominal_angle_deg: f64,
    /// What the generator delivered.
    pub record: ExposureRecord,
    /// Estimated mean glandular dose, mGy.
    pub estimated_mgd: f64,
}

/// Why an exposure was fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposurePurpose {
    /// AEC pre-shot.
    Preshot,
    /// A projection view.
    View,
}

/// Everything about an acquisition except its pixel arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcquisitionMeta {
    /// The preset the plan came from.
    pub preset: PresetName,
    /// How the exam ended.
    pub status: ExamStatus,
    /// The detector grid of every frame.
    pub detector: DetectorGeometry,
    /// The gantry geometry used for the poses (nominal; each view's pose is authoritative).
    pub geometry: ArcGeometry,
    /// The view technique (after AEC), if one was chosen.
    pub technique: Option<Technique>,
    /// Compression at the start of the sweep, if compression happened: its `thickness` is the compressed
    /// breast thickness (paddle to support).
    pub compression: Option<Compression>,
    /// Height of the breast support's top face above the detector surface, mm (from the plan), so the breast
    /// lies between `support_height_mm` and `support_height_mm + compression.thickness`. Bundles written before
    /// this field existed load with `None`; reconstruction then assumes the breast lies on the detector cover
    /// (0 mm) unless told otherwise.
    #[serde(default)]
    pub support_height_mm: Option<f64>,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// The acquired views, in order.
    pub views: Vec<ViewRecord>,
    /// Every exposure fired.
    pub exposures: Vec<ExposureLogEntry>,
    /// Dose bookkeeping.
    pub dose: DoseSummary,
    /// Failures while making the unit safe at the end (empty when every safe-state command succeeded).
    pub safe_state_errors: Vec<String>,
}

/// A complete (or partial) acquisition: metadata plus raw frames and calibration frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Acquisition {
    /// Metadata.
    pub meta: AcquisitionMeta,
    /// One raw frame per view, same order as `meta.views`.
    pub frames: Vec<Frame>,
    /// Dark (offset) frame, if it was acquired.
    pub dark: Option<Frame>,
    /// Flood (gain) calibration frame, if it was acquired.
    pub flood: Option<Frame>,
}

impl Acquisition {
    /// Whether every planned view was acquired.
    pub fn is_complete(&self) -> bool {
        self.meta.status == ExamStatus::Complete
    }
}
