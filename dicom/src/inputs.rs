//! What an exam output directory holds, read with the workspace's own readers.
//!
//! `tomolab exam --out DIR` writes `acquisition/` (read by [`tomolab_hal::bundle::load`], which checks CRCs
//! and meaning), `recon/volume.nrrd` ([`tomolab_recon::io::read_nrrd`]), `summary.json` (the seed),
//! `dose.json` (the Monte Carlo dose per view) and `ground_truth.json` (lesions, in tomolab coordinates).
//! Only the bundle and the seed are required: a 2D exam has no volume, an exam run without the dose report no
//! `dose.json`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tomolab_hal::Acquisition;
use tomolab_recon::Volume;

use crate::error::{DicomError, Result};

/// One view's dose from `dose.json`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ViewDose {
    /// Mean glandular dose, mGy.
    pub mgd_mgy: f64,
    /// Incident air kerma at the breast's entrance surface, mGy.
    pub incident_air_kerma_mgy: f64,
    /// First half-value layer, mm Al.
    pub hvl_mm_al: f64,
}

/// The parts of `dose.json` the export uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DoseFile {
    /// One entry per view, in acquisition order.
    pub views: Vec<ViewDose>,
    /// Mean glandular dose of the whole exam, mGy.
    pub total_mgd_mgy: f64,
}

#[derive(Debug, Deserialize)]
struct SummaryFile {
    seed: u64,
}

/// A lesion or calcification of `ground_truth.json` (tomolab coordinates, mm).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct TruthPoint {
    /// Object id in the ground truth.
    pub id: usize,
    /// Its kind, as in the ground truth.
    pub kind: serde_json::Value,
    /// Centre, mm (tomolab frame).
    pub centre_mm: [f64; 3],
}

#[derive(Debug, Deserialize)]
struct TruthFile {
    objects: Vec<TruthPoint>,
}

/// Everything the export reads from an exam directory.
#[derive(Debug, Clone)]
pub struct ExamInputs {
    /// The directory read.
    pub dir: PathBuf,
    /// The acquisition bundle.
    pub acquisition: Acquisition,
    /// The reconstruction, if the exam made one.
    pub volume: Option<Volume>,
    /// The per-view dose report, if present.
    pub dose: Option<DoseFile>,
    /// Ground-truth objects, if present.
    pub truth: Vec<TruthPoint>,
    /// The exam's seed.
    pub seed: u64,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| DicomError::io(path, "read", e))?;
    serde_json::from_slice(&bytes).map_err(|e| DicomError::input(path, e.to_string()))
}

impl ExamInputs {
    /// Reads the exam directory `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(DicomError::input(dir, "not a directory (an exam output: tomolab exam --out DIR)"));
        }
        let acq_dir = dir.join("acquisition");
        let acquisition =
            tomolab_hal::bundle::load(&acq_dir).map_err(|e| DicomError::input(&acq_dir, e.to_string()))?;
        if acquisition.frames.is_empty() {
            return Err(DicomError::input(&acq_dir, "the acquisition has no views"));
        }
        let summary: SummaryFile = read_json(&dir.join("summary.json"))?;
        let nrrd = dir.join("recon").join("volume.nrrd");
        let volume = if nrrd.exists() {
            Some(tomolab_recon::io::read_nrrd(&nrrd).map_err(|e| DicomError::input(&nrrd, e.to_string()))?)
        } else {
            None
        };
        let dose_path = dir.join("dose.json");
        let dose: Option<DoseFile> = if dose_path.exists() { Some(read_json(&dose_path)?) } else { None };
        if let Some(d) = &dose
            && d.views.len() != acquisition.frames.len()
        {
            return Err(DicomError::input(
                &dose_path,
                format!("views: {} entries for {} acquired views", d.views.len(), acquisition.frames.len()),
            ));
        }
        let truth_path = dir.join("ground_truth.json");
        let truth = if truth_path.exists() { read_json::<TruthFile>(&truth_path)?.objects } else { Vec::new() };
        Ok(Self { dir: dir.to_path_buf(), acquisition, volume, dose, truth, seed: summary.seed })
    }

    /// The bytes that tell exams with the same seed apart (see [`crate::uid`]): preset, detector grid, view
    /// angles and the view technique, as JSON.
    pub fn fingerprint(&self) -> Vec<u8> {
        let m = &self.acquisition.meta;
        let angles: Vec<f64> = m.views.iter().map(|v| v.nominal_angle_deg).collect();
        serde_json::to_vec(&(m.preset.as_str(), &m.detector, angles, &m.technique)).unwrap_or_default()
    }
}
