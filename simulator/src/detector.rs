//! The detector model: presampling blur, binning, quantum and electronic noise, gain, offset, defects.
//!
//! [`DetectorModel::read_out`] turns a [`ProjectedImage`] (expected absorbed energy per pixel, keV) into the
//! raw frame the hardware would return, in this order:
//!
//! 1. **Presampling blur.** The conversion layer's blur (charge or light spread) is applied as its MTF,
//!    separably along rows and columns, by FFT on edge-replicated rows, so that the discrete filter's
//!    response equals the configured MTF exactly up to the Nyquist frequency. The pixel aperture is not added
//!    here: it comes from the projector, which integrates each pixel over its area when
//!    `rays_per_pixel_axis > 1` (the presampling MTF is then `MTF_conversion x |sinc(f a)|`).
//! 2. **Binning** (1x1 or 2x2): charges of 2x2 pixels are summed before readout (partial edge pixels are
//!    dropped, as `DetectorGeometry::binned`), so electronic noise is added once per binned pixel.
//! 3. **Quantum noise.** The number of detected quanta is Poisson with mean `E1 / Eq`, where `Eq = E2 / E1`
//!    is the pixel's effective energy per quantum from the projector's second moment; the signal is
//!    `n * Eq`. This compound-Poisson approximation reproduces the variance `E2` of an energy-integrating
//!    detector exactly. Noise is added after the blur (white noise power spectrum): right for direct-conversion
//!    a-Se, whose charge spread is small; for CsI the true NPS is coloured by the light spread (approximation).
//! 4. **Gain and offset.** `raw = gain_map * gain_adu_per_kev * E + offset_adu + N(0, electronic_noise_adu)`,
//!    with a fixed per-pixel gain pattern of relative rms `gain_nonuniformity`.
//! 5. **Defective pixels.** A fixed, seeded set of pixels reads dead (the offset) or stuck high (saturation).
//! 6. Clamping to `0..=saturation_adu`.
//!
//! Variance of a uniform exposure therefore follows `gain^2 * gain_map^2 * Eq * E1 + electronic^2`.
//!
//! Randomness: every row draws from its own ChaCha8 stream, keyed by the frame seed and the row index, so a
//! frame is identical whatever the number of threads. The fixed pattern (gain map, defects) comes from
//! `pattern_seed` the same way and does not change from frame to frame.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use tomolab_hal::Frame;

use crate::error::{PhysicsError, check_at_least};
use crate::ray_tracer::ProjectedImage;

/// The conversion layer's presampling blur, as a line-spread shape.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "shape")]
pub enum ConversionMtf {
    /// No blur beyond the pixel aperture (ideal direct conversion).
    Ideal,
    /// Gaussian line spread of standard deviation `sigma_mm`: `MTF(f) = exp(-2 pi^2 sigma^2 f^2)`.
    Gaussian {
        /// Standard deviation of the line-spread function, mm.
        sigma_mm: f64,
    },
    /// Exponential (Lorentzian-MTF) line spread `exp(-|x| / L) / 2L`, the shape of light spread in a
    /// scintillator or of K-fluorescence re-absorption: `MTF(f) = 1 / (1 + (2 pi f L)^2)`.
    Exponential {
        /// Decay length `L`, mm.
        length_mm: f64,
    },
}

impl ConversionMtf {
    /// The MTF at spatial frequency `f_per_mm` (cycles/mm).
    pub fn value(&self, f_per_mm: f64) -> f64 {
        use std::f64::consts::PI;
        match *self {
            Self::Ideal => 1.0,
            Self::Gaussian { sigma_mm } => (-2.0 * PI * PI * sigma_mm * sigma_mm * f_per_mm * f_per_mm).exp(),
            Self::Exponential { length_mm } => 1.0 / (1.0 + (2.0 * PI * f_per_mm * length_mm).powi(2)),
        }
    }

    /// Half-width of the line spread worth padding for, mm.
    fn support_mm(&self) -> f64 {
        match *self {
            Self::Ideal => 0.0,
            Self::Gaussian { sigma_mm } => 6.0 * sigma_mm,
            Self::Exponential { length_mm } => 12.0 * length_mm,
        }
    }

    fn check(&self) -> Result<(), PhysicsError> {
        match *self {
            Self::Ideal => Ok(()),
            Self::Gaussian { sigma_mm } => check_at_least("mtf.sigma_mm", sigma_mm, 0.0, false).map(drop),
            Self::Exponential { length_mm } => check_at_least("mtf.length_mm", length_mm, 0.0, false).map(drop),
        }
    }
}

/// The detector's electronics and conversion characteristics.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectorModel {
    /// Conversion gain, ADU per keV absorbed.
    pub gain_adu_per_kev: f64,
    /// Dark offset, ADU.
    pub offset_adu: f64,
    /// Electronic (readout) noise, ADU rms per (binned) pixel.
    pub electronic_noise_adu: f64,
    /// Presampling blur of the conversion layer.
    pub conversion_mtf: ConversionMtf,
    /// Whether to draw quantum (Poisson) noise.
    pub quantum_noise: bool,
    /// Relative rms of the fixed per-pixel gain pattern.
    pub gain_nonuniformity: f64,
    /// Fraction of pixels that are defective (half dead, half stuck high).
    pub defective_fraction: f64,
    /// Binning factor: 1 or 2.
    pub binning: usize,
    /// Largest value the ADC returns, ADU.
    pub saturation_adu: f64,
    /// Seed of the fixed pattern (gain map and defect map).
    pub pattern_seed: u64,
}

impl Default for DetectorModel {
    /// An 85 um a-Se panel: 14-bit ADC (an open field of about 5 mAs at 650 mm reads about 9000 ADU), 2 ADU
    /// electronic noise, a slight Gaussian charge spread.
    fn default() -> Self {
        Self {
            gain_adu_per_kev: 0.1,
            offset_adu: 50.0,
            electronic_noise_adu: 2.0,
            conversion_mtf: ConversionMtf::Gaussian { sigma_mm: 0.02 },
            quantum_noise: true,
            gain_nonuniformity: 0.0,
            defective_fraction: 0.0,
            binning: 1,
            saturation_adu: 16383.0,
            pattern_seed: 0x7031_ab1e,
        }
    }
}

/// A pixel's fixed-pattern state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PixelState {
    Good(f64),
    Dead,
    Stuck,
}

/// Seeds one row's RNG stream: `seed` mixed with a domain tag; the row is the ChaCha stream number.
fn row_rng(seed: u64, domain: u64, row: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ domain.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(row as u64);
    rng
}

const DOMAIN_PATTERN: u64 = 1;
const DOMAIN_FRAME: u64 = 2;

/// Applies `mtf` along each row of `data` (`cols` wide, spacing `pitch_mm`).
fn blur_rows(data: &mut [f64], cols: usize, pitch_mm: f64, mtf: &ConversionMtf) {
    let pad = (mtf.support_mm() / pitch_mm).ceil() as usize + 1;
    let n = cols + 2 * pad;
    let mut planner = RealFftPlanner::<f64>::new();
    let r2c: Arc<dyn RealToComplex<f64>> = planner.plan_fft_forward(n);
    let c2r: Arc<dyn ComplexToReal<f64>> = planner.plan_fft_inverse(n);
    let gains: Vec<f64> = (0..n / 2 + 1).map(|k| mtf.value(k as f64 / (n as f64 * pitch_mm)) / n as f64).collect();
    data.par_chunks_mut(cols).for_each_init(
        || (r2c.make_input_vec(), r2c.make_output_vec(), r2c.make_scratch_vec(), c2r.make_scratch_vec()),
        |(buf, spec, s1, s2), row| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = row[i.saturating_sub(pad).min(cols - 1)];
            }
            if r2c.process_with_scratch(buf, spec, s1).is_err() {
                return;
            }
            for (c, g) in spec.iter_mut().zip(&gains) {
                *c *= *g;
            }
            // The DC and Nyquist bins must be real for the inverse transform.
            spec[0].im = 0.0;
            if n % 2 == 0 {
                if let Some(last) = spec.last_mut() {
                    last.im = 0.0;
                }
            }
            if c2r.process_with_scratch(spec, buf, s2).is_err() {
                return;
            }
            row.copy_from_slice(&buf[pad..pad + cols]);
        },
    );
}

fn transpose(data: &[f64], cols: usize, rows: usize) -> Vec<f64> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Blurs a row-major image with the conversion MTF along both axes.
pub fn apply_mtf(data: &mut [f64], cols: usize, rows: usize, pitch_u_mm: f64, pitch_v_mm: f64, mtf: &ConversionMtf) {
    if matches!(mtf, ConversionMtf::Ideal) || data.is_empty() {
        return;
    }
    blur_rows(data, cols, pitch_u_mm, mtf);
    let mut t = transpose(data, cols, rows);
    blur_rows(&mut t, rows, pitch_v_mm, mtf);
    data.copy_from_slice(&transpose(&t, rows, cols));
}

fn bin2(data: &[f64], cols: usize, rows: usize) -> (Vec<f64>, usize, usize) {
    let (bc, br) = (cols / 2, rows / 2);
    let mut out = vec![0.0; bc * br];
    for r in 0..br {
        for c in 0..bc {
            let a = (2 * r) * cols + 2 * c;
            out[r * bc + c] = data[a] + data[a + 1] + data[a + cols] + data[a + cols + 1];
        }
    }
    (out, bc, br)
}

impl DetectorModel {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), PhysicsError> {
        check_at_least("gain_adu_per_kev", self.gain_adu_per_kev, 0.0, true)?;
        check_at_least("offset_adu", self.offset_adu, 0.0, false)?;
        check_at_least("electronic_noise_adu", self.electronic_noise_adu, 0.0, false)?;
        check_at_least("gain_nonuniformity", self.gain_nonuniformity, 0.0, false)?;
        check_at_least("saturation_adu", self.saturation_adu, self.offset_adu, true)?;
        if !(0.0..=1.0).contains(&self.defective_fraction) {
            return Err(PhysicsError::invalid("defective_fraction", "must lie within 0..=1"));
        }
        if !matches!(self.binning, 1 | 2) {
            return Err(PhysicsError::invalid("binning", format!("must be 1 or 2, got {}", self.binning)));
        }
        self.conversion_mtf.check()
    }

    /// The fixed pattern of a `cols` x `rows` (binned) frame.
    fn pattern(&self, cols: usize, rows: usize) -> Vec<PixelState> {
        let mut out = vec![PixelState::Good(1.0); cols * rows];
        if self.gain_nonuniformity == 0.0 && self.defective_fraction == 0.0 {
            return out;
        }
        let gauss = Normal::new(0.0, self.gain_nonuniformity).ok();
        out.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
            let mut rng = row_rng(self.pattern_seed, DOMAIN_PATTERN, r);
            for p in row.iter_mut() {
                let g: f64 = 1.0 + gauss.map_or(0.0, |d| d.sample(&mut rng));
                let u: f64 = rng.random();
                *p = if u < self.defective_fraction / 2.0 {
                    PixelState::Dead
                } else if u < self.defective_fraction {
                    PixelState::Stuck
                } else {
                    PixelState::Good(g.max(0.0))
                };
            }
        });
        out
    }

    /// Blurred and binned (E1, E2) images and the output size.
    fn prepare(&self, image: &ProjectedImage) -> Result<(Vec<f64>, Vec<f64>, usize, usize), PhysicsError> {
        self.validate()?;
        let (cols, rows) = (image.cols, image.rows);
        if image.energy_kev.len() != cols * rows || image.energy_sq_kev2.len() != cols * rows {
            return Err(PhysicsError::invalid("image", "energy arrays must hold cols * rows pixels"));
        }
        let mut e1 = image.energy_kev.clone();
        // Blurring conserves each pixel's quantum energy to first order: blur E1, keep E2 / E1 per pixel.
        let eq: Vec<f64> = (0..e1.len()).map(|i| image.quantum_energy_kev(i)).collect();
        apply_mtf(&mut e1, cols, rows, image.pitch_u_mm, image.pitch_v_mm, &self.conversion_mtf);
        let mut e2: Vec<f64> = e1.iter().zip(&eq).map(|(a, q)| a.max(0.0) * q).collect();
        let (mut c, mut r) = (cols, rows);
        if self.binning == 2 {
            if cols < 2 || rows < 2 {
                return Err(PhysicsError::invalid("binning", "2x2 binning needs at least 2 x 2 pixels"));
            }
            (e1, c, r) = bin2(&e1, cols, rows);
            (e2, _, _) = bin2(&e2, cols, rows);
        }
        Ok((e1, e2, c, r))
    }

    /// The raw frame: blur, binning, noise, gain, offset, defects. Same `seed`, same frame, on any number of
    /// threads.
    pub fn read_out(&self, image: &ProjectedImage, seed: u64) -> Result<Frame, PhysicsError> {
        self.frame(image, Some(seed))
    }

    /// The noise-free frame (expected raw values, fixed pattern included): what averaging infinitely many
    /// frames would give, up to clamping.
    pub fn expected(&self, image: &ProjectedImage) -> Result<Frame, PhysicsError> {
        self.frame(image, None)
    }

    fn frame(&self, image: &ProjectedImage, seed: Option<u64>) -> Result<Frame, PhysicsError> {
        let (e1, e2, cols, rows) = self.prepare(image)?;
        let pattern = self.pattern(cols, rows);
        let electronic = Normal::new(0.0, self.electronic_noise_adu)
            .map_err(|e| PhysicsError::invalid("electronic_noise_adu", e.to_string()))?;
        let mut data = vec![0.0f32; cols * rows];
        data.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
            let mut rng = seed.map(|s| row_rng(s, DOMAIN_FRAME, r));
            for (c, out) in row.iter_mut().enumerate() {
                let i = r * cols + c;
                let mean = e1[i].max(0.0);
                let energy = match rng.as_mut() {
                    Some(rng) if self.quantum_noise && mean > 0.0 => {
                        let eq = e2[i] / mean;
                        match Poisson::new(mean / eq) {
                            Ok(p) => p.sample(rng) * eq,
                            Err(_) => mean,
                        }
                    }
                    _ => mean,
                };
                let noise = match rng.as_mut() {
                    Some(rng) if self.electronic_noise_adu > 0.0 => electronic.sample(rng),
                    _ => 0.0,
                };
                let v = match pattern[i] {
                    PixelState::Good(g) => g * self.gain_adu_per_kev * energy + self.offset_adu + noise,
                    PixelState::Dead => self.offset_adu + noise,
                    PixelState::Stuck => self.saturation_adu,
                };
                *out = v.clamp(0.0, self.saturation_adu) as f32;
            }
        });
        Ok(Frame { cols, rows, data })
    }

    /// Indices of the defective pixels of a frame of this model's output size for `cols` x `rows` unbinned
    /// pixels (for tests and for a defect map a calibration would measure).
    pub fn defective_pixels(&self, cols: usize, rows: usize) -> Vec<usize> {
        let (c, r) = if self.binning == 2 { (cols / 2, rows / 2) } else { (cols, rows) };
        self.pattern(c, r)
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(p, PixelState::Good(_)))
            .map(|(i, _)| i)
            .collect()
    }
}
