//! Automatic exposure control from a low-dose pre-shot, as clinical units do it.
//!
//! 1. The pre-shot frame, dark-subtracted and divided by the open-field signal, gives each pixel's
//!    transmission. Pixels below `breast_transmission_max` are breast.
//! 2. The breast is cut into square blocks (`block_mm`). The block with the lowest mean signal is the densest
//!    region; it sets the mAs.
//! 3. The glandularity is estimated where the tissue path is the full compressed thickness: a compressed
//!    breast's edge bulges out with a radius of about half its thickness (the usual idealization in dosimetry
//!    and in the phantom crate's outline), so only blocks at least that far inside the breast outline (in
//!    every direction; the chest-wall edge of the detector is not an outline) are averaged. Their mean
//!    effective attenuation, -ln(T)/thickness averaged per pixel, placed between the calibrated values of a skin-covered adipose
//!    and glandular slab at the compressed thickness, is the raw estimate; each block's transmission is taken
//!    against its own open field (the field falls off by about 10 % toward the panel's corners). What remains
//!    is the estimator's bias on the phantoms it was calibrated on (`density_bias`, per thickness: the
//!    breast's denser centre, ligaments and beam hardening), subtracted as a clinical AEC is calibrated on
//!    phantoms. (The earlier estimator took the lower-quartile block against bare slabs and ran 0.1-0.17
//!    high.)
//! 4. The [`TechniqueTable`] picks kV and filter from the thickness and the estimate; the preset's nominal kV is
//!    the table's value at the reference breast.
//! 5. The total mAs brings the densest block to `target_counts` summed over all views, predicted at the chosen
//!    beam: the block's pre-shot attenuation is read as an equivalent glandularity and its transmission
//!    recomputed with the chosen beam's calibration (a harder beam passes a thick breast better, so it needs
//!    fewer mAs and less dose). It is split equally across the views; the tube current makes each exposure
//!    last `exposure_time_s`.
//!
//! The calibration (open-field counts per mAs and slab attenuation per thickness, for the pre-shot beam and
//! every beam the table can choose) comes from the backend: the simulator computes it from its physics, a real
//! unit from phantom measurements.

pub mod table;

use serde::{Deserialize, Serialize};
pub use table::{BeamChoice, TechniqueRow, TechniqueTable};

use crate::devices::{Compression, Frame};
use crate::error::ErrorKind;
use crate::sequencer::{Aec, AecError};
use crate::technique::Technique;
use crate::units::{Kilovolts, MilliampereSeconds, Milliamperes};

/// Effective attenuation of the two breast tissues at one compressed thickness, for one beam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityCalibration {
    /// Compressed thickness, mm.
    pub thickness_mm: f64,
    /// -ln(T)/thickness for 100% adipose tissue (under the skin), 1/mm.
    pub mu_adipose_per_mm: f64,
    /// -ln(T)/thickness for 100% glandular tissue (under the skin), 1/mm.
    pub mu_glandular_per_mm: f64,
}

/// One beam's calibration: open-field output and slab attenuation per thickness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeamCalibration {
    /// The beam.
    pub beam: BeamChoice,
    /// Open-field detector signal per mAs (dark-subtracted, counts).
    pub counts_per_mas: f64,
    /// Tissue attenuation per thickness, sorted by thickness.
    pub density: Vec<DensityCalibration>,
}

impl BeamCalibration {
    /// (adipose, glandular) effective attenuation at `thickness_mm`, 1/mm (clamped to the calibrated range).
    pub fn mu_at(&self, thickness_mm: f64) -> Option<(f64, f64)> {
        let fat: Vec<(f64, f64)> = self.density.iter().map(|d| (d.thickness_mm, d.mu_adipose_per_mm)).collect();
        let gland: Vec<(f64, f64)> = self.density.iter().map(|d| (d.thickness_mm, d.mu_glandular_per_mm)).collect();
        interpolate(&fat, thickness_mm).zip(interpolate(&gland, thickness_mm))
    }
}

/// The pre-shot AEC and its calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreshotAec {
    /// The unit's nominal beam (the table's offsets apply to its kV).
    pub nominal: BeamChoice,
    /// kV and filter by thickness and glandularity.
    pub table: TechniqueTable,
    /// Signal the densest block must reach, summed over all views, counts above dark.
    pub target_counts: f64,
    /// Duration of each view's exposure, s (sets the tube current).
    pub exposure_time_s: f64,
    /// Allowed tube current, mA.
    pub tube_current_range_ma: (f64, f64),
    /// Pixels transmitting less than this are breast.
    pub breast_transmission_max: f64,
    /// Side of the blocks the breast is averaged over, mm.
    pub block_mm: f64,
    /// Detector pixel pitch, mm (to size the blocks).
    pub pixel_pitch_mm: f64,
    /// Geometric magnification of the breast's mid-plane onto the detector (sizes the rim left out).
    pub magnification: f64,
    /// Calibration of the pre-shot beam and of every beam the table can choose.
    pub beams: Vec<BeamCalibration>,
    /// The estimator's bias on the phantoms it was calibrated on, (thickness mm, estimate minus truth), sorted
    /// by thickness: subtracted from the estimate (interpolated in thickness); empty: none.
    pub density_bias: Vec<(f64, f64)>,
    /// The open field of each block (row-major over the frame's blocks) relative to the mean open field that
    /// `counts_per_mas` gives (the field falls off toward the panel's far corners); empty: uniform.
    pub open_field_blocks: Vec<f64>,
}

/// What the AEC measured and chose; kept for the exam summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AecReading {
    /// Estimated glandular fraction (0..1), bias-corrected.
    pub glandular_fraction: f64,
    /// The estimate before the bias correction (may lie outside 0..1).
    pub raw_glandular_fraction: f64,
    /// Mean pre-shot signal of the densest block, counts above dark.
    pub densest_signal: f64,
    /// Fraction of the detector covered by breast.
    pub breast_area_fraction: f64,
    /// Blocks the glandularity estimate averaged.
    pub estimate_blocks: usize,
    /// The densest block's transmission (signal over its own open field).
    pub densest_transmission: f64,
    /// The densest block's open field relative to the mean open field.
    pub densest_open_relative: f64,
}

fn interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let first = points.first()?;
    let last = points.last()?;
    if x <= first.0 {
        return Some(first.1);
    }
    if x >= last.0 {
        return Some(last.1);
    }
    points.windows(2).find(|w| x <= w[1].0).map(|w| {
        let t = (x - w[0].0) / (w[1].0 - w[0].0);
        w[0].1 + t * (w[1].1 - w[0].1)
    })
}

fn out_of_range(message: String) -> AecError {
    AecError::new(ErrorKind::OutOfRange, message)
}

/// The beam of a technique.
pub fn beam_of(t: &Technique) -> BeamChoice {
    BeamChoice { target: t.target, filter: t.filter, kvp: t.kvp.get() }
}

/// Mean signal, mean attenuation and breast flag of each block, and the breast's pixel count.
struct Blocks {
    cols: usize,
    rows: usize,
    mean: Vec<f64>,
    /// Mean over the block's pixels of -ln(signal / open field): the attenuation averaged per pixel, not the
    /// log of the averaged signal, which would read a block of dense and fatty pixels as fattier than it is.
    neg_log: Vec<f64>,
    breast: Vec<bool>,
    breast_pixels: usize,
}

impl Blocks {
    /// `open` gives each block's open-field signal.
    fn of(preshot: &Frame, dark: Option<&Frame>, block: usize, open: impl Fn(usize) -> f64, max_t: f64) -> Self {
        let (cols, rows) = (preshot.cols / block, preshot.rows / block);
        let signal = |i: usize| f64::from(preshot.data[i]) - dark.map_or(0.0, |d| f64::from(d.data[i]));
        let (mut mean, mut neg_log, mut breast, mut breast_pixels) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
        let n = (block * block) as f64;
        for by in 0..rows {
            for bx in 0..cols {
                let (mut sum, mut log_sum, mut inside) = (0.0, 0.0, 0usize);
                let open = open(by * cols + bx);
                let threshold = max_t * open;
                for y in by * block..(by + 1) * block {
                    for x in bx * block..(bx + 1) * block {
                        let s = signal(y * preshot.cols + x);
                        inside += usize::from(s < threshold);
                        sum += s;
                        log_sum -= (s / open).clamp(1e-12, 1.0).ln();
                    }
                }
                breast_pixels += inside;
                mean.push(sum / n);
                neg_log.push(log_sum / n);
                // A block counts when it lies wholly in the breast.
                breast.push(inside == block * block);
            }
        }
        Self { cols, rows, mean, neg_log, breast, breast_pixels }
    }

    /// Steps (up to `reach`) from block `i` to the breast outline, the least over 16 directions; the detector's
    /// edges are not an outline (the breast may continue past them, as it does into the chest wall).
    fn depth(&self, i: usize, reach: usize) -> usize {
        let (x0, y0) = ((i % self.cols) as f64, (i / self.cols) as f64);
        (0..16)
            .map(|k| {
                let a = k as f64 * core::f64::consts::PI / 8.0;
                (1..=reach)
                    .find(|&s| {
                        let (x, y) = ((x0 + a.cos() * s as f64).round(), (y0 + a.sin() * s as f64).round());
                        let inside = x >= 0.0 && y >= 0.0 && (x as usize) < self.cols && (y as usize) < self.rows;
                        inside && !self.breast[y as usize * self.cols + x as usize]
                    })
                    .map_or(reach, |s| s - 1)
            })
            .min()
            .unwrap_or(0)
    }
}

impl PreshotAec {
    /// The calibration of `beam`.
    pub fn calibration(&self, beam: &BeamChoice) -> Result<&BeamCalibration, AecError> {
        self.beams.iter().find(|c| c.beam == *beam).ok_or_else(|| {
            out_of_range(format!(
                "no calibration for {:?}/{:?} {} mm at {} kV",
                beam.target, beam.filter.material, beam.filter.thickness_mm, beam.kvp
            ))
        })
    }

    fn mu_at(&self, beam: &BeamChoice, thickness_mm: f64) -> Result<(f64, f64), AecError> {
        self.calibration(beam)?
            .mu_at(thickness_mm)
            .ok_or_else(|| out_of_range(format!("no density calibration at {thickness_mm} mm")))
    }

    /// Measures the pre-shot: glandular estimate, densest-block signal, breast area.
    pub fn read(
        &self,
        preshot: &Frame,
        dark: Option<&Frame>,
        preshot_technique: &Technique,
        compression: &Compression,
    ) -> Result<AecReading, AecError> {
        let beam = beam_of(preshot_technique);
        let open = self.calibration(&beam)?.counts_per_mas * preshot_technique.mas_per_view.get();
        if !(open.is_finite() && open > 0.0) {
            return Err(out_of_range(format!("no open-field output calibration at {} kV", beam.kvp)));
        }
        let (cols, rows) = (preshot.cols, preshot.rows);
        if preshot.data.len() != cols * rows || dark.is_some_and(|d| d.data.len() != preshot.data.len()) {
            return Err(out_of_range("pre-shot and dark frames differ in size".into()));
        }
        let block = ((self.block_mm / self.pixel_pitch_mm).round() as usize).clamp(1, cols.min(rows).max(1));
        let grid = (cols / block) * (rows / block);
        let relative = |i: usize| if self.open_field_blocks.len() == grid { self.open_field_blocks[i] } else { 1.0 };
        let blocks = Blocks::of(preshot, dark, block, |i| open * relative(i), self.breast_transmission_max);
        let breast: Vec<usize> = (0..blocks.mean.len()).filter(|&i| blocks.breast[i]).collect();
        let Some(&densest_block) = breast.iter().min_by(|&&a, &&b| blocks.mean[a].total_cmp(&blocks.mean[b])) else {
            return Err(AecError::new(ErrorKind::Other, "no breast found in the pre-shot (no block fully attenuated)"));
        };
        let densest = blocks.mean[densest_block];
        if densest <= 0.0 {
            return Err(AecError::new(ErrorKind::DeviceFault, "the densest region received no signal in the pre-shot"));
        }
        // Blocks where the path is the full thickness: farther inside than the rim's width.
        let thickness = compression.thickness.get();
        let block_mm = block as f64 * self.pixel_pitch_mm;
        let reach = ((0.5 * thickness * self.magnification + 0.5 * block_mm) / block_mm).ceil().max(1.0) as usize;
        let depths: Vec<usize> = breast.iter().map(|&i| blocks.depth(i, reach)).collect();
        let deepest = depths.iter().copied().max().unwrap_or(0);
        let chosen: Vec<usize> = breast.iter().zip(&depths).filter(|(_, d)| **d == deepest).map(|(i, _)| *i).collect();
        let mu = chosen.iter().map(|&i| blocks.neg_log[i]).sum::<f64>() / chosen.len() as f64 / thickness;
        let (mu_a, mu_g) = self.mu_at(&beam, thickness)?;
        let raw = (mu - mu_a) / (mu_g - mu_a);
        let bias = interpolate(&self.density_bias, thickness).unwrap_or(0.0);
        Ok(AecReading {
            glandular_fraction: (raw - bias).clamp(0.0, 1.0),
            raw_glandular_fraction: raw,
            densest_signal: densest,
            breast_area_fraction: blocks.breast_pixels as f64 / (cols * rows) as f64,
            estimate_blocks: chosen.len(),
            densest_transmission: densest / (open * relative(densest_block)),
            densest_open_relative: relative(densest_block),
        })
    }

    /// The beam and mAs per view for a reading: the table's beam, and the mAs that brings the densest block to
    /// the target at that beam.
    pub fn technique_for(
        &self,
        reading: &AecReading,
        preshot_technique: &Technique,
        compression: &Compression,
        views: usize,
    ) -> Result<Technique, AecError> {
        let thickness = compression.thickness.get();
        let pre = beam_of(preshot_technique);
        let chosen = self
            .table
            .choose(&self.nominal, thickness, reading.glandular_fraction)
            .ok_or_else(|| out_of_range("the technique table is empty".into()))?;
        // The densest block as an equivalent glandularity (may lie outside 0..1: a lesion, a thin rim).
        let mu_dense = -reading.densest_transmission.clamp(1e-300, 1.0).ln() / thickness;
        let (a0, g0) = self.mu_at(&pre, thickness)?;
        let g_dense = (mu_dense - a0) / (g0 - a0);
        let (a1, g1) = self.mu_at(&chosen, thickness)?;
        let open_per_mas = self.calibration(&chosen)?.counts_per_mas * reading.densest_open_relative;
        let per_mas = open_per_mas * (-(a1 + g_dense * (g1 - a1)) * thickness).exp();
        let mas_per_view = self.target_counts / per_mas / views.max(1) as f64;
        let (lo, hi) = self.tube_current_range_ma;
        let ma = (mas_per_view / self.exposure_time_s).clamp(lo, hi);
        let err = |e: crate::units::UnitError| out_of_range(e.to_string());
        Ok(Technique {
            kvp: Kilovolts::new(chosen.kvp).map_err(err)?,
            tube_current: Milliamperes::new(ma).map_err(err)?,
            mas_per_view: MilliampereSeconds::new(mas_per_view).map_err(err)?,
            target: chosen.target,
            filter: chosen.filter,
            focal_spot: preshot_technique.focal_spot,
        })
    }
}

impl Aec for PreshotAec {
    fn choose(
        &self,
        preshot: &Frame,
        dark: Option<&Frame>,
        preshot_technique: &Technique,
        compression: &Compression,
        views: usize,
    ) -> Result<Technique, AecError> {
        let reading = self.read(preshot, dark, preshot_technique, compression)?;
        self.technique_for(&reading, preshot_technique, compression, views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::technique::{Filter, FilterMaterial, Target};
    use crate::units::{Millimetres, Newtons};

    const RH: Filter = Filter { material: FilterMaterial::Rh, thickness_mm: 0.05 };
    const AG: Filter = Filter { material: FilterMaterial::Ag, thickness_mm: 0.05 };

    fn beam(filter: Filter, kvp: f64) -> BeamChoice {
        BeamChoice { target: Target::W, filter, kvp }
    }

    fn calibration(b: BeamChoice, counts: f64, mu_a: f64, mu_g: f64) -> BeamCalibration {
        let d = |t| DensityCalibration { thickness_mm: t, mu_adipose_per_mm: mu_a, mu_glandular_per_mm: mu_g };
        BeamCalibration { beam: b, counts_per_mas: counts, density: vec![d(10.0), d(100.0)] }
    }

    /// Up to 50 mm: the nominal W/Rh 28 kV; thicker: W/Ag at +3 kV.
    fn aec() -> PreshotAec {
        let row = |t, k, h| TechniqueRow {
            thickness_max_mm: t,
            glandular_min: 0.0,
            kvp_offset_kedge: k,
            kvp_offset_al: k,
            hard_filter: h,
        };
        PreshotAec {
            nominal: beam(RH, 28.0),
            table: TechniqueTable {
                rows: vec![row(50.0, 0.0, false), row(120.0, 3.0, true)],
                hard_filter: AG,
                kvp_range: (20.0, 49.0),
            },
            target_counts: 50_000.0,
            exposure_time_s: 0.1,
            tube_current_range_ma: (5.0, 200.0),
            breast_transmission_max: 0.9,
            block_mm: 2.0,
            pixel_pitch_mm: 1.0,
            magnification: 1.0,
            open_field_blocks: Vec::new(),
            density_bias: Vec::new(),
            beams: vec![
                calibration(beam(RH, 28.0), 1000.0, 0.04, 0.08),
                calibration(beam(AG, 31.0), 2000.0, 0.03, 0.06),
            ],
        }
    }

    /// A 40x40 pre-shot at 1 mm pixels: x < 10 open field, x >= 10 breast of effective `mu` over `t_mm`, and a
    /// dense 4x4 patch of transmission `dense_t` just inside the outline (in the rim the estimate leaves out).
    fn preshot(mu: f64, t_mm: f64, dense_t: f64, mas: f64) -> Frame {
        let mut f = Frame::filled(40, 40, 0.0);
        for y in 0..40 {
            for x in 0..40 {
                let t = if x < 10 {
                    1.0
                } else if (10..14).contains(&x) && (20..24).contains(&y) {
                    dense_t
                } else {
                    (-mu * t_mm).exp()
                };
                f.data[y * 40 + x] = (1000.0 * mas * t) as f32 + 10.0;
            }
        }
        f
    }

    fn technique(mas: f64) -> Technique {
        crate::mock::mock_technique(mas)
    }

    fn compression(t_mm: f64) -> Compression {
        Compression { force: Newtons::new(100.0).unwrap(), thickness: Millimetres::new(t_mm).unwrap() }
    }

    #[test]
    fn the_estimate_averages_the_full_thickness_interior_and_the_densest_block_sets_the_mas() {
        let dark = Frame::filled(40, 40, 10.0);
        let pre = preshot(0.07, 10.0, 0.01, 0.5);
        let reading = aec().read(&pre, Some(&dark), &technique(0.5), &compression(10.0)).unwrap();
        // Uniform interior at mu 0.07 between 0.04 (fat) and 0.08 (gland): 0.75; the dense patch in the rim
        // does not move it.
        assert!((reading.glandular_fraction - 0.75).abs() < 1e-3, "{reading:?}");
        let mut biased = aec();
        biased.density_bias = vec![(5.0, 0.1), (15.0, 0.2)];
        let r = biased.read(&pre, Some(&dark), &technique(0.5), &compression(10.0)).unwrap();
        assert!((r.glandular_fraction - 0.60).abs() < 1e-3 && (r.raw_glandular_fraction - 0.75).abs() < 1e-3, "{r:?}");
        assert!(reading.estimate_blocks > 0 && (reading.breast_area_fraction - 0.75).abs() < 1e-9, "{reading:?}");
        let t = aec().choose(&pre, Some(&dark), &technique(0.5), &compression(10.0), 25).unwrap();
        assert_eq!((t.kvp.get(), t.filter), (28.0, RH));
        // Densest block: 1000 counts/mAs x 0.01 = 10 counts/mAs at the pre-shot beam, which is the chosen one:
        // 50,000 counts need 5,000 mAs in total, 200 mAs per view over 25 views.
        assert!((t.mas_per_view.get() - 200.0).abs() < 1e-6, "{t:?}");
        assert!((t.tube_current.get() - 200.0).abs() < 1e-9, "clamped to the tube's range");
    }

    #[test]
    fn a_thick_breast_gets_the_harder_beam_and_its_mas_at_that_beam() {
        let t_mm = 60.0;
        let dense_t = (-0.075f64 * t_mm).exp();
        let pre = preshot(0.05, t_mm, dense_t, 0.5);
        let dark = Frame::filled(40, 40, 10.0);
        let reading = aec().read(&pre, Some(&dark), &technique(0.5), &compression(t_mm)).unwrap();
        assert!((reading.glandular_fraction - 0.25).abs() < 1e-3, "{reading:?}");
        let t = aec().choose(&pre, Some(&dark), &technique(0.5), &compression(t_mm), 25).unwrap();
        assert_eq!((t.kvp.get(), t.filter), (31.0, AG));
        // The densest block (mu 0.075: equivalent glandularity 0.875) through the W/Ag beam's calibration:
        // mu 0.03 + 0.875 x 0.03, 2000 counts per mAs in the open field.
        let per_mas = 2000.0 * (-(0.03 + 0.875 * 0.03) * t_mm).exp();
        let expected = 50_000.0 / per_mas / 25.0;
        assert!((t.mas_per_view.get() / expected - 1.0).abs() < 1e-4, "{} vs {expected}", t.mas_per_view.get());
    }

    #[test]
    fn no_breast_in_the_field_and_an_uncalibrated_beam_are_errors() {
        let pre = Frame::filled(40, 40, 500.0);
        let err = aec().choose(&pre, None, &technique(0.5), &compression(10.0), 25).unwrap_err();
        assert!(err.to_string().contains("no breast"), "{err}");
        let mut a = aec();
        a.beams.truncate(1);
        let err = a.choose(&preshot(0.05, 60.0, 0.01, 0.5), None, &technique(0.5), &compression(60.0), 25);
        assert!(err.unwrap_err().to_string().contains("no calibration for W/Ag"));
    }
}
