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

/// Line integrals of one view for its preview, or -ln of the raw counts when calibration is missing.
fn line_integrals(
    frame: &tomolab_hal::Frame,
    dark: Option<&tomolab_hal::Frame>,
    flood: Option<&tomolab_hal::Frame>,
    mas: f64,
) -> Vec<f32> {
    frame
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let d = dark.map_or(0.0, |d| d.data[i]);
            let f = flood.map_or(1.0, |f| f.data[i] * mas as f32);
            -((v - d).max(1e-3) / f.max(1e-3)).ln()
        })
        .collect()
}

/// The processed image of a 2D exam (its one view) as `path`, the For Presentation look: line integrals
/// (log of the flat-fielded signal) in the previews' shared window, attenuation bright.
pub fn write_processed_2d(acq: &Acquisition, path: &Path) -> anyhow::Result<()> {
    let (frame, view) = match (acq.frames.as_slice(), acq.meta.views.as_slice()) {
        ([frame], [view]) => (frame, view),
        _ => anyhow::bail!("a processed 2D image needs exactly one view, the acquisition has {}", acq.frames.len()),
    };
    let p = line_integrals(frame, acq.dark.as_ref(), acq.flood.as_ref(), view.exposure.mas.get());
    tomolab_recon::io::write_preview_png(path, &p, frame.cols, frame.rows)
        .with_context(|| format!("writing {}", path.display()))
}

/// One PNG per view with the previews' shared window ([`tomolab_recon::io::write_preview_png`]): attenuation
/// bright, as on a mammogram.
fn write_previews(acq: &Acquisition, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (k, (frame, view)) in acq.frames.iter().zip(&acq.meta.views).enumerate() {
        let p = line_integrals(frame, acq.dark.as_ref(), acq.flood.as_ref(), view.exposure.mas.get());
        tomolab_recon::io::write_preview_png(&dir.join(format!("view_{k:02}.png")), &p, frame.cols, frame.rows)
            .with_context(|| format!("writing preview of view {k}"))?;
    }
    Ok(())
}
