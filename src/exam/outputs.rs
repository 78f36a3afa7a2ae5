//! What an exam leaves on disk besides the journal: the acquisition bundle, ground truth, summary, per-view
//! previews and the dose report.

use std::path::Path;

use anyhow::Context;
use tomolab_hal::Acquisition;

use super::ExamOutcome;

/// Writes the acquisition bundle, ground truth, previews and summary into `dir`.
pub fn write_outputs(outcome: &ExamOutcome, dir: &Path) -> anyhow::Result<()> {
    let acq_dir = dir.join("acquisition");
    tomolab_hal::bundle::save(&outcome.acquisition, &acq_dir)?;
    std::fs::write(dir.join("ground_truth.json"), serde_json::to_vec_pretty(&outcome.truth)?)?;
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(&outcome.summary)?)?;
    write_previews(&outcome.acquisition, &dir.join("previews"))?;
    if let Some(report) = &outcome.dose {
        report.write(dir)?;
    }
    Ok(())
}

/// The line integrals of every view, by recon's preprocessing (dark, flood corrected for each view's
/// geometry, defect repair): what the previews and the processed 2D image show.
fn line_integrals(acq: &Acquisition) -> anyhow::Result<tomolab_recon::Projections> {
    tomolab_recon::line_integrals(acq, &tomolab_recon::PreprocessOptions::default())
        .context("normalising the frames for the previews")
}

/// The processed image of a 2D exam (its one view) as `path`, the For Presentation look: line integrals
/// (log of the flat-fielded signal) in the previews' shared window, attenuation bright.
pub fn write_processed_2d(acq: &Acquisition, path: &Path) -> anyhow::Result<()> {
    if acq.frames.len() != 1 {
        anyhow::bail!("a processed 2D image needs exactly one view, the acquisition has {}", acq.frames.len());
    }
    let p = line_integrals(acq)?;
    tomolab_recon::io::write_preview_png(path, &p.data, p.detector.cols, p.detector.rows)
        .with_context(|| format!("writing {}", path.display()))
}

/// One PNG per view with the previews' shared window ([`tomolab_recon::io::write_preview_png`]): attenuation
/// bright, as on a mammogram.
fn write_previews(acq: &Acquisition, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    if acq.frames.is_empty() {
        return Ok(());
    }
    let p = match line_integrals(acq) {
        Ok(p) => p,
        // An acquisition without dark or flood frames (a unit that sent none) still keeps its bundle.
        Err(e) => {
            eprintln!("warning: no view previews: {e:#}");
            return Ok(());
        }
    };
    for k in 0..p.views() {
        tomolab_recon::io::write_preview_png(
            &dir.join(format!("view_{k:02}.png")),
            p.view(k),
            p.detector.cols,
            p.detector.rows,
        )
        .with_context(|| format!("writing preview of view {k}"))?;
    }
    Ok(())
}
