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

/// Log-scaled 8-bit preview of line integrals, or of raw counts when calibration is missing.
fn preview(
    frame: &tomolab_hal::Frame,
    dark: Option<&tomolab_hal::Frame>,
    flood: Option<&tomolab_hal::Frame>,
    mas: f64,
) -> image::GrayImage {
    let p: Vec<f32> = frame
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let d = dark.map_or(0.0, |d| d.data[i]);
            let f = flood.map_or(1.0, |f| f.data[i] * mas as f32);
            -((v - d).max(1e-3) / f.max(1e-3)).ln()
        })
        .collect();
    let mut sorted: Vec<f32> = p.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let lo = sorted.get(sorted.len() / 100).copied().unwrap_or(0.0);
    let hi = sorted.get(sorted.len() * 999 / 1000).copied().unwrap_or(1.0).max(lo + 1e-6);
    // Display convention: attenuation bright, as on a mammogram.
    image::GrayImage::from_fn(frame.cols as u32, frame.rows as u32, |x, y| {
        let v = p[y as usize * frame.cols + x as usize];
        image::Luma([(((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8])
    })
}

fn write_previews(acq: &Acquisition, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (k, (frame, view)) in acq.frames.iter().zip(&acq.meta.views).enumerate() {
        let img = preview(frame, acq.dark.as_ref(), acq.flood.as_ref(), view.exposure.mas.get());
        img.save(dir.join(format!("view_{k:02}.png"))).with_context(|| format!("writing preview of view {k}"))?;
    }
    Ok(())
}
