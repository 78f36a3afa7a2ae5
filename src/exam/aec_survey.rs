//! The AEC over a grid of breasts (`tomolab aec-table`): for each compressed thickness and glandular fraction,
//! a real simulated exam (pre-shot, AEC, sweep) of the preset on a lesion-free breast, and what the AEC chose,
//! estimated and booked, or why the sequencer refused. Coarse on purpose (1 mm detector pixels, 0.5 mm
//! voxels, a short dose Monte Carlo): the AEC reads 5 mm blocks, so its choice does not depend on the pixel
//! pitch, and the booked dose is the formalism's.

use serde::Serialize;
use tomolab_hal::PresetName;
use tomolab_hal::acquisition::ExamStatus;
use tomolab_hal::technique::{FilterMaterial, Target};

use super::{ExamConfig, Resolution, run_exam};

/// One breast of the survey.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AecCase {
    /// Compressed thickness, mm.
    pub thickness_mm: f64,
    /// The phantom's glandular volume fraction (what the generator was asked for and hits).
    pub true_glandular: f64,
    /// The AEC's estimate (absent if the AEC did not read the pre-shot).
    pub estimated_glandular: Option<f64>,
    /// The estimate before the bias correction (what `data/aec/density_bias.csv` is measured from).
    pub raw_glandular: Option<f64>,
    /// Anode, filter, filter thickness (mm) and kV the AEC chose.
    pub beam: Option<(Target, FilterMaterial, f64, f64)>,
    /// mAs per view.
    pub mas_per_view: Option<f64>,
    /// mAs over all views.
    pub total_mas: f64,
    /// Mean glandular dose booked by the sequencer's formalism, mGy (0 when refused).
    pub booked_mgd: f64,
    /// "complete", or the refusal or abort with its figures.
    pub outcome: String,
}

/// The survey's exam of a breast of `thickness_mm` and `glandular` fraction on `preset`.
pub fn survey_config(preset: PresetName, thickness_mm: f64, glandular: f64, seed: u64) -> ExamConfig {
    let mut c = ExamConfig::defaults(preset, Resolution::Fast);
    c.seed = seed;
    c.phantom.thickness_mm = thickness_mm;
    c.phantom.glandular_fraction = glandular;
    c.phantom.voxel_mm = 0.5;
    c.phantom.lesions = Vec::new();
    c.geometry.detector_pitch_mm = Some(1.0);
    c.dose.histories_per_view = 2_000;
    c.dose.batches = 4;
    c
}

/// Runs the survey's exam of one breast.
pub fn aec_case(preset: PresetName, thickness_mm: f64, glandular: f64, seed: u64) -> anyhow::Result<AecCase> {
    let config = survey_config(preset, thickness_mm, glandular, seed);
    let outcome = run_exam(&config, None)?;
    let s = &outcome.summary;
    let technique = s.technique.filter(|_| matches!(s.status, ExamStatus::Complete));
    Ok(AecCase {
        thickness_mm,
        true_glandular: glandular,
        estimated_glandular: s.aec.map(|a| a.glandular_fraction),
        raw_glandular: s.aec.map(|a| a.raw_glandular_fraction),
        beam: technique.map(|t| (t.target, t.filter.material, t.filter.thickness_mm, t.kvp.get())),
        mas_per_view: technique.map(|t| t.mas_per_view.get()),
        total_mas: s.total_mas,
        booked_mgd: s.estimated_mgd,
        outcome: match &s.status {
            ExamStatus::Complete => "complete".into(),
            ExamStatus::Refused { reason } => format!("refused: {reason}"),
            ExamStatus::Aborted { reason, .. } => format!("aborted: {reason}"),
        },
    })
}
