//! Preprocessing: from raw detector frames to line integrals.
//!
//! ```text
//! p = -ln( max((raw - dark) / (flood * mAs_k), min_transmission) )
//! ```
//!
//! `flood` is the dark-subtracted open-field signal per mAs (the bundle's convention). Zero or negative
//! dark-corrected counts (dead pixels, noise in the darkest regions) would make the log undefined; the
//! transmission is clamped at [`PreprocessOptions::min_transmission`] (default 1e-6, a line integral of
//! about 13.8, far beyond any breast). Defective pixels (from a mask, or found automatically in the flood)
//! are replaced by the median of their good 8-neighbours after the log. An optional crop keeps only the
//! pixel rectangle that contains the breast, and moves each pose's detector centre accordingly.

use rayon::prelude::*;
use tomolab_hal::{Acquisition, DetectorGeometry, Frame, ViewPose};

use crate::error::{Result, invalid};
use crate::geometry::Projections;

/// How raw frames become transmissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Normalisation {
    /// `(raw - dark) / (flood * mAs)`: dark and flood frames are required.
    #[default]
    DarkFlood,
    /// The frames already hold transmissions (I / I0): only the log is taken.
    Transmission,
    /// The frames already hold line integrals: used as they are.
    LineIntegrals,
}

/// Which pixels to repair.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum DefectRepair {
    /// No repair.
    None,
    /// Find dead and hot pixels in the flood (and dark) frames: see [`detect_defects`].
    #[default]
    Auto,
    /// An explicit mask, row-major like a frame, `true` = defective.
    Mask(Vec<bool>),
}

/// An optional crop of the detector.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Crop {
    /// Keep every pixel.
    #[default]
    None,
    /// Keep `cols` x `rows` pixels from (`col0`, `row0`).
    Rect {
        /// First column kept.
        col0: usize,
        /// First row kept.
        row0: usize,
        /// Columns kept.
        cols: usize,
        /// Rows kept.
        rows: usize,
    },
    /// Keep the bounding box of pixels whose line integral exceeds `threshold` in any view, plus `margin`
    /// pixels on every side (the breast, not the open field around it).
    Auto {
        /// Line-integral threshold.
        threshold: f32,
        /// Margin, pixels.
        margin: usize,
    },
}

/// Preprocessing options.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessOptions {
    /// How raw values become transmissions.
    pub normalisation: Normalisation,
    /// Defective-pixel repair.
    pub defects: DefectRepair,
    /// Smallest transmission passed to the log (guards zero and negative counts).
    pub min_transmission: f32,
    /// Optional crop.
    pub crop: Crop,
    /// With [`Normalisation::DarkFlood`]: divide each view by its open-field fluence relative to the flood's
    /// ([`open_field_fluence`]), so that air has a line integral of zero in every view. Off, an oblique view of a
    /// stationary detector carries the inverse-square and obliquity change of the fluence as a smooth ramp of
    /// line integral (about +-0.2 across the panel at 25 deg on the reference unit).
    pub flood_geometry: bool,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        Self {
            normalisation: Normalisation::DarkFlood,
            defects: DefectRepair::Auto,
            min_transmission: 1e-6,
            crop: Crop::None,
            flood_geometry: true,
        }
    }
}

/// Checks an acquisition for consistency: views, frames and calibration frames agree with the detector.
pub fn validate_acquisition(acq: &Acquisition) -> Result<()> {
    let det = &acq.meta.detector;
    det.validate().map_err(|e| invalid(format!("meta.{}", e.field), e.problem))?;
    if acq.meta.views.is_empty() {
        return Err(invalid("meta.views", "the acquisition has no views"));
    }
    if acq.frames.len() != acq.meta.views.len() {
        return Err(invalid(
            "frames",
            format!(
                "{} frames for {} view records; they must match one to one",
                acq.frames.len(),
                acq.meta.views.len()
            ),
        ));
    }
    let check = |name: String, f: &Frame| -> Result<()> {
        if f.cols != det.cols || f.rows != det.rows || f.data.len() != det.pixel_count() {
            return Err(invalid(
                name,
                format!("{}x{} with {} values, detector is {}x{}", f.cols, f.rows, f.data.len(), det.cols, det.rows),
            ));
        }
        Ok(())
    };
    for (k, f) in acq.frames.iter().enumerate() {
        check(format!("frames[{k}]"), f)?;
    }
    if let Some(d) = &acq.dark {
        check("dark".into(), d)?;
    }
    if let Some(f) = &acq.flood {
        check("flood".into(), f)?;
    }
    for (k, v) in acq.meta.views.iter().enumerate() {
        crate::geometry::validate_pose(&v.pose).map_err(|p| invalid(format!("meta.views[{k}].pose"), p))?;
    }
    Ok(())
}

/// Finds dead and hot pixels: a flood pixel that is not finite, not positive, or off its 3x3 median by more
/// than a factor 2 (either way); a dark pixel above the dark median by more than 20 robust sigmas.
pub fn detect_defects(flood: &Frame, dark: Option<&Frame>) -> Vec<bool> {
    let (cols, rows) = (flood.cols, flood.rows);
    let med = median_filter3(&flood.data, cols, rows);
    let mut mask: Vec<bool> = flood
        .data
        .iter()
        .zip(&med)
        .map(|(&v, &m)| !(v.is_finite() && v > 0.0 && m > 0.0) || v > 2.0 * m || v < 0.5 * m)
        .collect();
    if let Some(dark) = dark {
        let mut sorted: Vec<f32> = dark.data.iter().copied().filter(|v| v.is_finite()).collect();
        if !sorted.is_empty() {
            sorted.sort_by(f32::total_cmp);
            let median = sorted[sorted.len() / 2];
            let mut dev: Vec<f32> = sorted.iter().map(|v| (v - median).abs()).collect();
            dev.sort_by(f32::total_cmp);
            let sigma = (1.4826 * dev[dev.len() / 2]).max(1e-6 * median.abs()).max(f32::MIN_POSITIVE);
            for (m, &v) in mask.iter_mut().zip(&dark.data) {
                if !v.is_finite() || v > median + 20.0 * sigma {
                    *m = true;
                }
            }
        }
    }
    mask
}

fn median_filter3(data: &[f32], cols: usize, rows: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    let mut window = Vec::with_capacity(9);
    for r in 0..rows {
        for c in 0..cols {
            window.clear();
            for rr in r.saturating_sub(1)..(r + 2).min(rows) {
                for cc in c.saturating_sub(1)..(c + 2).min(cols) {
                    let v = data[rr * cols + cc];
                    if v.is_finite() {
                        window.push(v);
                    }
                }
            }
            window.sort_by(f32::total_cmp);
            out[r * cols + c] = if window.is_empty() { 0.0 } else { window[window.len() / 2] };
        }
    }
    out
}

/// Replaces every masked pixel of `image` by the median of its unmasked 8-neighbours (5x5 if none; left as
/// is if even that neighbourhood is all defective).
pub fn repair_defects(image: &mut [f32], cols: usize, mask: &[bool]) {
    let rows = image.len() / cols.max(1);
    let mut values = Vec::with_capacity(25);
    let defective: Vec<usize> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i).collect();
    let mut fixes = Vec::with_capacity(defective.len());
    for &i in &defective {
        let (r, c) = (i / cols, i % cols);
        for radius in [1usize, 2] {
            values.clear();
            for rr in r.saturating_sub(radius)..(r + radius + 1).min(rows) {
                for cc in c.saturating_sub(radius)..(c + radius + 1).min(cols) {
                    let j = rr * cols + cc;
                    if !mask[j] {
                        values.push(image[j]);
                    }
                }
            }
            if !values.is_empty() {
                break;
            }
        }
        if !values.is_empty() {
            values.sort_by(f32::total_cmp);
            let n = values.len();
            let m = if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) };
            fixes.push((i, m));
        }
    }
    for (i, m) in fixes {
        image[i] = m;
    }
}

/// Turns an acquisition into line integrals with its per-view poses.
pub fn line_integrals(acq: &Acquisition, options: &PreprocessOptions) -> Result<Projections> {
    validate_acquisition(acq)?;
    if !(options.min_transmission.is_finite() && options.min_transmission > 0.0 && options.min_transmission < 1.0) {
        return Err(invalid(
            "options.min_transmission",
            format!("must lie in (0, 1), got {}", options.min_transmission),
        ));
    }
    let det = acq.meta.detector;
    let npix = det.pixel_count();
    let mut data = normalised(acq, options)?;
    if let Some(mask) = &defect_mask(acq, &options.defects)? {
        if mask.iter().any(|&m| m) {
            data.chunks_mut(npix).for_each(|img| repair_defects(img, det.cols, mask));
        }
    }
    let poses = acq.meta.views.iter().map(|v| v.pose).collect();
    crop(Projections { detector: det, poses, data }, options.crop)
}

/// The line integrals of every frame, view after view, before defect repair.
fn normalised(acq: &Acquisition, options: &PreprocessOptions) -> Result<Vec<f32>> {
    let npix = acq.meta.detector.pixel_count();
    let views = acq.meta.views.len();
    let mut data = Vec::with_capacity(views * npix);
    match options.normalisation {
        Normalisation::DarkFlood => {
            let dark = acq.dark.as_ref().ok_or_else(|| {
                invalid(
                    "dark",
                    "no dark frame in the acquisition; acquire one, or pass already-normalised data explicitly",
                )
            })?;
            let flood = acq.flood.as_ref().ok_or_else(|| {
                invalid(
                    "flood",
                    "no flood frame in the acquisition; acquire one, or pass already-normalised data explicitly",
                )
            })?;
            let (mut flood_fluence, mut view_fluence) = (vec![1.0f32; npix], vec![1.0f32; npix]);
            if options.flood_geometry {
                open_field_fluence(&acq.meta.geometry.pose_at(0.0), &acq.meta.detector, &mut flood_fluence);
            }
            for (k, (frame, view)) in acq.frames.iter().zip(&acq.meta.views).enumerate() {
                let mas = view.exposure.mas.get() as f32;
                if !(mas.is_finite() && mas > 0.0) {
                    return Err(invalid(
                        format!("meta.views[{k}].exposure.mas"),
                        format!("must be positive, got {mas}"),
                    ));
                }
                if options.flood_geometry {
                    open_field_fluence(&view.pose, &acq.meta.detector, &mut view_fluence);
                }
                let geometry = view_fluence.iter().zip(&flood_fluence);
                let open = flood.data.iter().zip(geometry).map(|(&f, (&g, &g0))| f * (g / g0));
                data.extend(frame.data.iter().zip(&dark.data).zip(open).map(|((&raw, &d), f)| {
                    let t = (raw - d) / (f * mas);
                    // NaN (from a zero flood) and anything below the floor are clamped.
                    -(if t >= options.min_transmission { t } else { options.min_transmission }).ln()
                }));
            }
        }
        Normalisation::Transmission => {
            for frame in &acq.frames {
                data.extend(
                    frame
                        .data
                        .iter()
                        .map(|&t| -(if t >= options.min_transmission { t } else { options.min_transmission }).ln()),
                );
            }
        }
        Normalisation::LineIntegrals => {
            for (k, frame) in acq.frames.iter().enumerate() {
                if frame.data.iter().any(|v| !v.is_finite()) {
                    return Err(invalid(format!("frames[{k}]"), "non-finite line integral"));
                }
                data.extend_from_slice(&frame.data);
            }
        }
    }
    Ok(data)
}

/// The open-field fluence of a point source at `pose` on each detector pixel, up to a constant, into `out`
/// (row-major like a frame).
///
/// A pixel at `P` receives a fluence proportional to `cos(a) / r^2 = |n . (P - S)| / r^3`, `r = |P - S|` and `a`
/// the angle of incidence on the detector plane (normal `n`). The flood is taken at the arc's 0 deg pose (as
/// the simulator and units do for the gain calibration), so a view's open field is the flood times the ratio
/// of this fluence at the view's pose to that at the flood's; with a detector that turns with the tube the
/// ratio is 1. Not modelled: the converter's higher absorption at oblique incidence (a few tenths of a
/// percent at 25 deg) and the heel effect.
pub fn open_field_fluence(pose: &ViewPose, detector: &DetectorGeometry, out: &mut [f32]) {
    let n = pose.detector_normal();
    let (u, n_dot_u) = (pose.u_step_mm, n.dot(&pose.u_step_mm));
    out.par_chunks_mut(detector.cols.max(1)).enumerate().for_each(|(row, line)| {
        let d0 = pose.pixel_position(detector, 0.0, row as f64) - pose.source_mm;
        let n_dot_d0 = n.dot(&d0);
        for (col, g) in line.iter_mut().enumerate() {
            let c = col as f64;
            let (dx, dy, dz) = (d0.x + c * u.x, d0.y + c * u.y, d0.z + c * u.z);
            let r2 = dx * dx + dy * dy + dz * dz;
            // Scaled by 1e6 (a 1000 mm distance gives 1) to stay well inside f32's range.
            *g = (1e6 * (n_dot_d0 + c * n_dot_u).abs() / (r2 * r2.sqrt())) as f32;
        }
    });
}

/// The defective-pixel mask `defects` asks for (`None`: no repair).
fn defect_mask(acq: &Acquisition, defects: &DefectRepair) -> Result<Option<Vec<bool>>> {
    let npix = acq.meta.detector.pixel_count();
    Ok(match defects {
        DefectRepair::None => None,
        DefectRepair::Mask(m) => {
            if m.len() != npix {
                return Err(invalid(
                    "options.defects",
                    format!("mask has {} entries, detector has {npix} pixels", m.len()),
                ));
            }
            Some(m.clone())
        }
        DefectRepair::Auto => acq.flood.as_ref().map(|f| detect_defects(f, acq.dark.as_ref())),
    })
}

/// Applies the crop to the line integrals (and their poses).
fn crop(projections: Projections, crop: Crop) -> Result<Projections> {
    let det = projections.detector;
    let npix = det.pixel_count();
    match crop {
        Crop::None => Ok(projections),
        Crop::Rect { col0, row0, cols, rows } => projections.crop(col0, row0, cols, rows),
        Crop::Auto { threshold, margin } => {
            let (mut c0, mut c1, mut r0, mut r1) = (usize::MAX, 0, usize::MAX, 0);
            for img in projections.data.chunks(npix) {
                for (i, &v) in img.iter().enumerate() {
                    if v > threshold {
                        let (r, c) = (i / det.cols, i % det.cols);
                        c0 = c0.min(c);
                        c1 = c1.max(c);
                        r0 = r0.min(r);
                        r1 = r1.max(r);
                    }
                }
            }
            if c0 == usize::MAX {
                return Err(invalid(
                    "options.crop.threshold",
                    format!("no pixel has a line integral above {threshold}"),
                ));
            }
            let c0 = c0.saturating_sub(margin);
            let r0 = r0.saturating_sub(margin);
            let c1 = (c1 + margin).min(det.cols - 1);
            let r1 = (r1 + margin).min(det.rows - 1);
            projections.crop(c0, r0, c1 - c0 + 1, r1 - r0 + 1)
        }
    }
}
