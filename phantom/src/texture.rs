//! Power-law (1/f^beta) Gaussian random fields on a coarse grid.
//!
//! White Gaussian noise is drawn plane by plane (one seeded stream per z plane), transformed with
//! a real-to-complex FFT along x and complex FFTs along y and z, shaped by the amplitude filter
//! `|f|^(-beta/2)` (so the power spectrum falls as `|f|^-beta`, the mean is removed), transformed
//! back and scaled to unit standard deviation. By the projection-slice theorem the 2D spectrum of
//! a projection of such a field is the `f_z = 0` slice of its 3D spectrum, so a 3D exponent beta
//! gives the same beta in projection; thresholding (see `breast`) keeps it close.
//!
//! The field is periodic over the grid; callers pad the grid so opposite faces do not meet inside
//! the breast. Every reduction (mean, variance) is summed over fixed chunks in a fixed order so the
//! result does not depend on the thread count.

use std::sync::Arc;

use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::rng::{Purpose, stream};

/// A scalar field sampled at the nodes `origin_mm + (i, j, k) * spacing_mm`, x fastest.
#[derive(Debug, Clone)]
pub(crate) struct CoarseField {
    /// Nodes along x, y, z.
    pub n: [usize; 3],
    /// Node spacing in mm.
    pub spacing_mm: f64,
    /// Position of node (0, 0, 0) in mm.
    pub origin_mm: [f64; 3],
    /// Values, index `(k * ny + j) * nx + i`.
    pub data: Vec<f32>,
}

impl CoarseField {
    /// Value at node (i, j, k).
    pub fn at(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[(k * self.n[1] + j) * self.n[0] + i]
    }

    /// Fractional node coordinate of `x_mm` along `axis`, clamped into the grid: the lower node and
    /// the weight of the upper one.
    pub fn locate(&self, axis: usize, x_mm: f64) -> (usize, f32) {
        let n = self.n[axis];
        let f = ((x_mm - self.origin_mm[axis]) / self.spacing_mm).clamp(0.0, (n - 1) as f64);
        let i0 = (f.floor() as usize).min(n.saturating_sub(2));
        (i0, (f - i0 as f64) as f32)
    }

    /// Trilinear interpolation at a point in mm (clamped to the grid).
    pub fn sample(&self, p: [f64; 3]) -> f32 {
        let (i, tx) = self.locate(0, p[0]);
        let (j, ty) = self.locate(1, p[1]);
        let (k, tz) = self.locate(2, p[2]);
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let plane = |k: usize| {
            let r0 = lerp(self.at(i, j, k), self.at(i + 1, j, k), tx);
            let r1 = lerp(self.at(i, j + 1, k), self.at(i + 1, j + 1, k), tx);
            lerp(r0, r1, ty)
        };
        lerp(plane(k), plane(k + 1), tz)
    }

    /// Minimum and maximum value.
    pub fn min_max(&self) -> (f32, f32) {
        self.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
    }
}

/// The smallest n' >= n whose prime factors are 2, 3 and 5 (fast FFT sizes).
pub(crate) fn fft_friendly(n: usize) -> usize {
    let mut m = n.max(2);
    loop {
        let mut r = m;
        for p in [2, 3, 5] {
            while r % p == 0 {
                r /= p;
            }
        }
        if r == 1 {
            return m;
        }
        m += 1;
    }
}

const CHUNK: usize = 1 << 16;

/// Sum of `f(x)` over `data` in a thread-count-independent order.
fn ordered_sum(data: &[f32], f: impl Fn(f64) -> f64 + Sync) -> f64 {
    let partial: Vec<f64> = data.par_chunks(CHUNK).map(|c| c.iter().map(|&v| f(v as f64)).sum()).collect();
    partial.iter().sum()
}

/// A zero-mean, unit-variance Gaussian random field with power spectrum `|f|^-beta` on a grid of
/// `n` nodes spaced `spacing_mm`, from `seed`.
pub(crate) fn power_law_field(n: [usize; 3], spacing_mm: f64, beta: f64, seed: u64) -> Vec<f32> {
    let [nx, ny, nz] = n;
    let plane = nx * ny;
    let mut real = vec![0f32; nx * ny * nz];
    real.par_chunks_mut(plane).enumerate().for_each(|(k, p)| {
        let mut rng = stream(seed, Purpose::TextureNoise, k as u64);
        for v in p.iter_mut() {
            *v = rng.sample(StandardNormal);
        }
    });

    let nxc = nx / 2 + 1;
    let mut rplanner = RealFftPlanner::<f32>::new();
    let r2c = rplanner.plan_fft_forward(nx);
    let c2r = rplanner.plan_fft_inverse(nx);
    let mut planner = FftPlanner::<f32>::new();
    let (fy, iy) = (planner.plan_fft_forward(ny), planner.plan_fft_inverse(ny));
    let (fz, iz) = (planner.plan_fft_forward(nz), planner.plan_fft_inverse(nz));
    let mut spec = vec![ZERO; nxc * ny * nz];

    // x: real -> complex, row by row.
    spec.par_chunks_mut(nxc).zip(real.par_chunks(nx)).for_each_init(
        || (vec![0f32; nx], r2c.make_scratch_vec()),
        |(buf, scratch), (out, row)| {
            buf.copy_from_slice(row);
            // Lengths match by construction, so this cannot fail.
            let _ = r2c.process_with_scratch(buf, out, scratch);
        },
    );
    fft_along_y(&mut spec, [nxc, ny], &fy);
    fft_along_z(&mut spec, nxc * ny, nz, &fz);
    apply_power_law(&mut spec, n, spacing_mm, beta);
    fft_along_z(&mut spec, nxc * ny, nz, &iz);
    fft_along_y(&mut spec, [nxc, ny], &iy);
    real.par_chunks_mut(nx).zip(spec.par_chunks_mut(nxc)).for_each_init(
        || c2r.make_scratch_vec(),
        |scratch, (row, input)| {
            // The filtered spectrum is Hermitian up to rounding; make the bins realfft requires
            // to be real exactly real.
            input[0].im = 0.0;
            if nx % 2 == 0 {
                input[nxc - 1].im = 0.0;
            }
            let _ = c2r.process_with_scratch(input, row, scratch);
        },
    );
    standardize(&mut real);
    real
}

const ZERO: Complex<f32> = Complex::new(0.0, 0.0);

/// Complex transform along y of every x column of every z plane, in place (`[nxc, ny]` is the plane shape).
fn fft_along_y(spec: &mut [Complex<f32>], [nxc, ny]: [usize; 2], fft: &Arc<dyn Fft<f32>>) {
    spec.par_chunks_mut(nxc * ny).for_each_init(
        || (vec![ZERO; ny], vec![ZERO; fft.get_inplace_scratch_len()]),
        |(col, scratch), p| {
            for i in 0..nxc {
                for j in 0..ny {
                    col[j] = p[j * nxc + i];
                }
                fft.process_with_scratch(col, scratch);
                for j in 0..ny {
                    p[j * nxc + i] = col[j];
                }
            }
        },
    );
}

/// Complex transform along z: gather the columns into a transposed buffer (parallel over columns),
/// transform them, scatter back (parallel over planes of `stride` values).
fn fft_along_z(spec: &mut [Complex<f32>], stride: usize, nz: usize, fft: &Arc<dyn Fft<f32>>) {
    let mut t = vec![ZERO; spec.len()];
    {
        let src: &[Complex<f32>] = spec;
        t.par_chunks_mut(nz).enumerate().for_each_init(
            || vec![ZERO; fft.get_inplace_scratch_len()],
            |scratch, (c, col)| {
                for (k, v) in col.iter_mut().enumerate() {
                    *v = src[k * stride + c];
                }
                fft.process_with_scratch(col, scratch);
            },
        );
    }
    spec.par_chunks_mut(stride).enumerate().for_each(|(k, plane)| {
        for (c, v) in plane.iter_mut().enumerate() {
            *v = t[c * nz + k];
        }
    });
}

/// Filters the half spectrum of an `n` grid: amplitude |f|^(-beta/2), zero at DC.
fn apply_power_law(spec: &mut [Complex<f32>], [nx, ny, nz]: [usize; 3], spacing_mm: f64, beta: f64) {
    let nxc = nx / 2 + 1;
    let freq = |m: usize, len: usize| -> f64 {
        let s = if m <= len / 2 { m as f64 } else { m as f64 - len as f64 };
        s / (len as f64 * spacing_mm)
    };
    let half_beta = 0.5 * beta;
    spec.par_chunks_mut(nxc * ny).enumerate().for_each(|(k, p)| {
        let fz2 = freq(k, nz).powi(2);
        for j in 0..ny {
            let fy2 = freq(j, ny).powi(2);
            for i in 0..nxc {
                let fx = i as f64 / (nx as f64 * spacing_mm);
                let f2 = fx * fx + fy2 + fz2;
                let a = if f2 > 0.0 { f2.powf(-0.5 * half_beta) as f32 } else { 0.0 };
                p[j * nxc + i] *= a;
            }
        }
    });
}

/// Shifts and scales `real` to zero mean and unit variance (sums in a thread-count-independent order).
fn standardize(real: &mut [f32]) {
    let len = real.len() as f64;
    let mean = ordered_sum(real, |v| v) / len;
    let var = ordered_sum(real, |v| (v - mean) * (v - mean)) / len;
    let scale = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    let (mean, scale) = (mean as f32, scale as f32);
    real.par_iter_mut().for_each(|v| *v = (*v - mean) * scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_friendly_sizes() {
        assert_eq!(fft_friendly(7), 8);
        assert_eq!(fft_friendly(11), 12);
        assert_eq!(fft_friendly(97), 100);
        assert_eq!(fft_friendly(1), 2);
    }

    #[test]
    fn field_is_standardized() {
        let f = power_law_field([24, 20, 10], 0.5, 3.0, 1);
        let n = f.len() as f64;
        let mean: f64 = f.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var: f64 = f.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var - 1.0).abs() < 1e-3, "var {var}");
    }
}
