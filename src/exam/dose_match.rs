//! Equal-dose comparison exams: a manual technique whose booked mean glandular dose equals another exam's.
//!
//! DBT against 2D is only a fair comparison at the same dose to the breast. [`match_dose`] takes the
//! reference exam's bundle (`acquisition.json`: its view technique and its delivered dose, pre-shot included,
//! as booked by the conversion-factor formalism) and turns an exam configuration into a manual exam with the
//! same kV, target and filter whose mAs per view makes the same formalism book the same total:
//! `mas_per_view = delivered_mgd / sum over the views of mgd_per_mas(angle)`. Both exams' doses therefore come
//! from one model; the phantom (and so its glandularity) must be the same, which the caller ensures by using
//! the same phantom settings and seed.

use std::path::Path;

use anyhow::{Context, bail};
use tomolab_hal::devices::Compression;
use tomolab_hal::sequencer::DoseModel;
use tomolab_hal::technique::Technique;
use tomolab_hal::{Millimetres, Newtons};

use super::{ExamConfig, TechniqueConfig, prepare_protocol};

/// The reference exam's view technique and delivered dose (mGy), from `DIR/acquisition/acquisition.json`
/// (or `DIR/acquisition.json` when `DIR` is the bundle itself).
pub fn reference_dose(exam_dir: &Path) -> anyhow::Result<(Technique, f64)> {
    let bundle =
        if exam_dir.join("acquisition.json").is_file() { exam_dir.to_path_buf() } else { exam_dir.join("acquisition") };
    let path = bundle.join("acquisition.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let meta = &doc["acquisition"];
    let technique: Technique = serde_json::from_value(meta["technique"].clone())
        .with_context(|| format!("{}: acquisition.technique (the exam chose no technique?)", path.display()))?;
    let mgd = meta["dose"]["delivered_mgd"]
        .as_f64()
        .with_context(|| format!("{}: no acquisition.dose.delivered_mgd", path.display()))?;
    if !(mgd.is_finite() && mgd > 0.0) {
        bail!("{}: acquisition.dose.delivered_mgd = {mgd}: nothing to match", path.display());
    }
    Ok((technique, mgd))
}

/// Makes `config` a manual exam with the reference's kV, target and filter and the mAs per view that books
/// `target_mgd` in total; returns that mAs per view.
pub fn match_dose(config: &mut ExamConfig, technique: &Technique, target_mgd: f64) -> anyhow::Result<f64> {
    let manual = |mas_per_view: f64| TechniqueConfig::Manual {
        target: technique.target,
        filter: technique.filter.material,
        filter_mm: technique.filter.thickness_mm,
        kvp: technique.kvp.get(),
        mas_per_view,
    };
    config.technique = manual(1.0);
    let protocol = prepare_protocol(config)?;
    let compression = Compression {
        force: Newtons::new(config.safety.compression_force_n).context("safety.compression_force_n")?,
        thickness: Millimetres::new(config.phantom.thickness_mm).context("phantom.thickness_mm")?,
    };
    let per_mas: f64 =
        protocol.plan.angles.iter().map(|a| protocol.dose.budget.mgd_per_mas(technique, &compression, a.get())).sum();
    if !(per_mas.is_finite() && per_mas > 0.0) {
        bail!("the dose model gives {per_mas} mGy/mAs for {technique:?}: cannot match the dose");
    }
    let mas = target_mgd / per_mas;
    config.technique = manual(mas);
    config.validate().context("the dose-matched technique")?;
    Ok(mas)
}
