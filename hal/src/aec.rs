//! Automatic exposure control from a low-dose pre-shot, as clinical units do it.
//!
//! 1. The pre-shot frame, dark-subtracted and divided by the open-field signal, gives each pixel's
//!    transmission. Pixels below `breast_transmission_max` are breast.
//! 2. The breast is cut into square blocks (`block_mm`); the block with the lowest mean signal is the densest
//!    region.
//! 3. The lower-quartile block (by signal: the breast at full compressed thickness, away from the thinner
//!    periphery) gives an effective attenuation, -ln(T)/thickness; placed between the calibrated values for
//!    adipose and glandular tissue at the compressed thickness, it estimates the glandular fraction.
//! 4. The density rule picks kVp: fatty breasts (estimate below `fatty_glandular_max`) get `fatty_kvp`,
//!    others `standard_kvp`. For the wide-angle reference unit this is W/Rh at 28 kVp, and 30 kVp for fatty
//!    breasts, as in the FDA VICTRE DBT simulations of that unit (Badano et al., JAMA Netw Open
//!    1:e185474, 2018: W28kVp_Rh50um for the dense phantom, W30kVp_Rh50um for the fatty one).
//! 5. The total mAs brings the densest block to `target_counts` summed over all views (scaled by the ratio of
//!    open-field outputs when the kVp changes), and is split equally across the views. The tube current
//!    makes each exposure last `exposure_time_s`.
//!
//! The calibration (open-field counts per mAs per kVp, effective attenuation of fat and gland per thickness)
//! comes from the backend: the simulator computes it from its physics, a real unit from phantom measurements.

use serde::{Deserialize, Serialize};

use crate::devices::{Compression, Frame};
use crate::error::ErrorKind;
use crate::sequencer::{Aec, AecError};
use crate::technique::{Filter, Target, Technique};
use crate::units::{Kilovolts, MilliampereSeconds, Milliamperes};

/// Effective attenuation of the two breast tissues at one compressed thickness, for the pre-shot beam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityCalibration {
    /// Compressed thickness, mm.
    pub thickness_mm: f64,
    /// -ln(T)/thickness for 100% adipose tissue, 1/mm.
    pub mu_adipose_per_mm: f64,
    /// -ln(T)/thickness for 100% glandular tissue, 1/mm.
    pub mu_glandular_per_mm: f64,
}

/// Open-field detector signal per mAs at one kVp (dark-subtracted, counts).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCalibration {
    /// Tube voltage, kV.
    pub kvp: f64,
    /// Open-field counts per mAs.
    pub counts_per_mas: f64,
}

/// The pre-shot AEC and its calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreshotAec {
    /// Anode of the chosen technique.
    pub target: Target,
    /// Filter of the chosen technique.
    pub filter: Filter,
    /// kVp for breasts that are not fatty.
    pub standard_kvp: f64,
    /// kVp for fatty breasts.
    pub fatty_kvp: f64,
    /// Glandular fraction below which a breast counts as fatty.
    pub fatty_glandular_max: f64,
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
    /// Open-field output per kVp (at least the pre-shot kVp and both rule kVps).
    pub output: Vec<OutputCalibration>,
    /// Tissue attenuation per thickness for the pre-shot beam, sorted by thickness.
    pub density: Vec<DensityCalibration>,
}

/// What the AEC measured and chose; kept for the exam summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AecReading {
    /// Estimated glandular fraction (0..1).
    pub glandular_fraction: f64,
    /// Mean pre-shot signal of the densest block, counts above dark.
    pub densest_signal: f64,
    /// Fraction of the detector covered by breast.
    pub breast_area_fraction: f64,
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

impl PreshotAec {
    fn counts_per_mas(&self, kvp: f64) -> Result<f64, AecError> {
        let points: Vec<(f64, f64)> = self.output.iter().map(|o| (o.kvp, o.counts_per_mas)).collect();
        interpolate(&points, kvp).filter(|c| c.is_finite() && *c > 0.0).ok_or_else(|| {
            AecError::new(ErrorKind::OutOfRange, format!("no open-field output calibration at {kvp} kV"))
        })
    }

    /// Measures the pre-shot: glandular estimate, densest-block signal, breast area.
    pub fn read(
        &self,
        preshot: &Frame,
        dark: Option<&Frame>,
        preshot_technique: &Technique,
        compression: &Compression,
    ) -> Result<AecReading, AecError> {
        let mas = preshot_technique.mas_per_view.get();
        let open = self.counts_per_mas(preshot_technique.kvp.get())? * mas;
        let (cols, rows) = (preshot.cols, preshot.rows);
        if preshot.data.len() != cols * rows || dark.is_some_and(|d| d.data.len() != preshot.data.len()) {
            return Err(AecError::new(ErrorKind::OutOfRange, "pre-shot and dark frames differ in size"));
        }
        let signal = |i: usize| f64::from(preshot.data[i]) - dark.map_or(0.0, |d| f64::from(d.data[i]));
        let block = ((self.block_mm / self.pixel_pitch_mm).round() as usize).clamp(1, cols.min(rows));
        let (bc, br) = (cols / block, rows / block);
        let mut blocks: Vec<f64> = Vec::with_capacity(bc * br);
        let mut breast_pixels = 0usize;
        for by in 0..br {
            for bx in 0..bc {
                let (mut sum, mut inside) = (0.0, 0usize);
                for y in by * block..(by + 1) * block {
                    for x in bx * block..(bx + 1) * block {
                        let s = signal(y * cols + x);
                        if s < self.breast_transmission_max * open {
                            inside += 1;
                        }
                        sum += s;
                    }
                }
                breast_pixels += inside;
                // A block counts when it lies wholly in the breast.
                if inside == block * block {
                    blocks.push(sum / (block * block) as f64);
                }
            }
        }
        if blocks.is_empty() {
            return Err(AecError::new(ErrorKind::Other, "no breast found in the pre-shot (no block fully attenuated)"));
        }
        blocks.sort_by(f64::total_cmp);
        let densest = blocks[0];
        if densest <= 0.0 {
            return Err(AecError::new(ErrorKind::DeviceFault, "the densest region received no signal in the pre-shot"));
        }
        let representative = blocks[blocks.len() / 4];
        let thickness = compression.thickness.get();
        let mu = -(representative / open).clamp(1e-12, 1.0).ln() / thickness;
        let fat: Vec<(f64, f64)> = self.density.iter().map(|d| (d.thickness_mm, d.mu_adipose_per_mm)).collect();
        let gland: Vec<(f64, f64)> = self.density.iter().map(|d| (d.thickness_mm, d.mu_glandular_per_mm)).collect();
        let (mu_a, mu_g) = interpolate(&fat, thickness)
            .zip(interpolate(&gland, thickness))
            .ok_or_else(|| AecError::new(ErrorKind::OutOfRange, format!("no density calibration at {thickness} mm")))?;
        let glandular_fraction = ((mu - mu_a) / (mu_g - mu_a)).clamp(0.0, 1.0);
        Ok(AecReading {
            glandular_fraction,
            densest_signal: densest,
            breast_area_fraction: breast_pixels as f64 / (cols * rows) as f64,
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
        let kvp =
            if reading.glandular_fraction < self.fatty_glandular_max { self.fatty_kvp } else { self.standard_kvp };
        let per_mas_pre = reading.densest_signal / preshot_technique.mas_per_view.get();
        let per_mas = per_mas_pre * self.counts_per_mas(kvp)? / self.counts_per_mas(preshot_technique.kvp.get())?;
        let total_mas = self.target_counts / per_mas;
        let mas_per_view = total_mas / views.max(1) as f64;
        let (lo, hi) = self.tube_current_range_ma;
        let ma = (mas_per_view / self.exposure_time_s).clamp(lo, hi);
        Ok(Technique {
            kvp: Kilovolts::new(kvp).map_err(|e| AecError::new(ErrorKind::OutOfRange, e.to_string()))?,
            tube_current: Milliamperes::new(ma).map_err(|e| AecError::new(ErrorKind::OutOfRange, e.to_string()))?,
            mas_per_view: MilliampereSeconds::new(mas_per_view)
                .map_err(|e| AecError::new(ErrorKind::OutOfRange, e.to_string()))?,
            target: self.target,
            filter: self.filter,
            focal_spot: preshot_technique.focal_spot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::technique::FilterMaterial;
    use crate::units::{Millimetres, Newtons};

    fn aec() -> PreshotAec {
        PreshotAec {
            target: Target::W,
            filter: Filter { material: FilterMaterial::Rh, thickness_mm: 0.05 },
            standard_kvp: 28.0,
            fatty_kvp: 30.0,
            fatty_glandular_max: 0.25,
            target_counts: 50_000.0,
            exposure_time_s: 0.1,
            tube_current_range_ma: (5.0, 200.0),
            breast_transmission_max: 0.9,
            block_mm: 2.0,
            pixel_pitch_mm: 1.0,
            output: vec![
                OutputCalibration { kvp: 28.0, counts_per_mas: 1000.0 },
                OutputCalibration { kvp: 30.0, counts_per_mas: 1300.0 },
            ],
            density: vec![DensityCalibration {
                thickness_mm: 50.0,
                mu_adipose_per_mm: 0.04,
                mu_glandular_per_mm: 0.08,
            }],
        }
    }

    /// A 20x20 pre-shot: left half open field, right half breast of effective mu at 50 mm, plus a dense
    /// 4x4 patch whose transmission is `dense_t`.
    fn preshot(mu: f64, dense_t: f64, mas: f64) -> Frame {
        let mut f = Frame::filled(20, 20, 0.0);
        for y in 0..20 {
            for x in 0..20 {
                let t = if x < 10 {
                    1.0
                } else if (12..16).contains(&x) && (4..8).contains(&y) {
                    dense_t
                } else {
                    (-mu * 50.0).exp()
                };
                f.data[y * 20 + x] = (1000.0 * mas * t) as f32 + 10.0;
            }
        }
        f
    }

    fn technique(mas: f64) -> Technique {
        crate::mock::mock_technique(mas)
    }

    fn compression() -> Compression {
        Compression { force: Newtons::new(100.0).unwrap(), thickness: Millimetres::new(50.0).unwrap() }
    }

    #[test]
    fn dense_breast_gets_28_kvp_and_the_densest_block_reaches_the_target() {
        let dark = Frame::filled(20, 20, 10.0);
        let pre = preshot(0.07, 0.01, 0.5);
        let reading = aec().read(&pre, Some(&dark), &technique(0.5), &compression()).unwrap();
        assert!((reading.glandular_fraction - 0.75).abs() < 1e-3, "{reading:?}");
        let t = aec().choose(&pre, Some(&dark), &technique(0.5), &compression(), 25).unwrap();
        assert_eq!(t.kvp.get(), 28.0);
        // Densest block: 1000 counts/mAs x 0.01 = 10 counts/mAs, so 50,000 counts need 5,000 mAs in total:
        // 200 mAs per view over 25 views.
        assert!((t.mas_per_view.get() - 200.0).abs() < 1e-6, "{t:?}");
        assert!((t.tube_current.get() - 200.0).abs() < 1e-9, "clamped to the tube's range");
    }

    #[test]
    fn fatty_breast_gets_30_kvp_with_output_scaling() {
        let dark = Frame::filled(20, 20, 10.0);
        let pre = preshot(0.045, (-0.045f64 * 50.0).exp(), 0.5);
        let t = aec().choose(&pre, Some(&dark), &technique(0.5), &compression(), 25).unwrap();
        assert_eq!(t.kvp.get(), 30.0);
        let per_mas = 1000.0 * (-0.045f64 * 50.0).exp() * 1.3;
        assert!((t.mas_per_view.get() - 50_000.0 / per_mas / 25.0).abs() < 1e-3, "{t:?}");
    }

    #[test]
    fn no_breast_in_the_field_is_an_error() {
        let pre = Frame::filled(20, 20, 500.0);
        let err = aec().choose(&pre, None, &technique(0.5), &compression(), 25).unwrap_err();
        assert!(err.to_string().contains("no breast"), "{err}");
    }
}
