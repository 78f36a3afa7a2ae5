//! Shared helpers.

use tomolab_phantom::material::{GLANDULAR, LIGAMENT};
use tomolab_phantom::{BreastParams, LabelVolume};

/// A default breast at a coarse voxel, for fast tests.
pub fn coarse_breast(glandular_fraction: f64, seed: u64) -> BreastParams {
    BreastParams { voxel_mm: 0.5, glandular_fraction, seed, ..BreastParams::default() }
}

/// Path length of dense (glandular or ligament) tissue along z, in mm, per (i, j).
pub fn dense_projection(v: &LabelVolume) -> Vec<f64> {
    let n = v.grid.nx * v.grid.ny;
    let mut p = vec![0.0; n];
    for k in 0..v.grid.nz {
        for (q, &l) in p.iter_mut().zip(v.slice(k)) {
            if l == GLANDULAR || l == LIGAMENT {
                *q += v.grid.cubic_voxel_mm();
            }
        }
    }
    p
}

/// Fits `P(f) ~ f^-beta` to the radially averaged power spectrum of the square ROI of `image`
/// (row-major `nx` wide) starting at `roi = (i0, j0, side)` (pixels of `pixel_mm`), over
/// `band = (f_lo, f_hi)` cycles/mm. The ROI's mean is removed and a Hann window applied.
pub fn fit_beta(image: &[f64], nx: usize, roi: (usize, usize, usize), pixel_mm: f64, band: (f64, f64)) -> f64 {
    let (i0, j0, side) = roi;
    let (f_lo, f_hi) = band;
    use rustfft::FftPlanner;
    use rustfft::num_complex::Complex;
    let mut roi: Vec<f64> =
        (0..side).flat_map(|j| (0..side).map(move |i| (i, j))).map(|(i, j)| image[(j0 + j) * nx + i0 + i]).collect();
    let mean = roi.iter().sum::<f64>() / roi.len() as f64;
    let hann = |n: usize| 0.5 - 0.5 * (std::f64::consts::TAU * (n as f64 + 0.5) / side as f64).cos();
    for j in 0..side {
        for i in 0..side {
            roi[j * side + i] = (roi[j * side + i] - mean) * hann(i) * hann(j);
        }
    }
    let mut data: Vec<Complex<f64>> = roi.iter().map(|&v| Complex::new(v, 0.0)).collect();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(side);
    for row in data.chunks_mut(side) {
        fft.process(row);
    }
    let mut col = vec![Complex::new(0.0, 0.0); side];
    for i in 0..side {
        for j in 0..side {
            col[j] = data[j * side + i];
        }
        fft.process(&mut col);
        for j in 0..side {
            data[j * side + i] = col[j];
        }
    }
    let df = 1.0 / (side as f64 * pixel_mm);
    let nbins = side / 2;
    let mut sum = vec![0.0; nbins + 1];
    let mut cnt = vec![0usize; nbins + 1];
    for j in 0..side {
        for i in 0..side {
            let fi = if i <= side / 2 { i as f64 } else { i as f64 - side as f64 };
            let fj = if j <= side / 2 { j as f64 } else { j as f64 - side as f64 };
            let r = (fi * fi + fj * fj).sqrt().round() as usize;
            if r <= nbins {
                sum[r] += data[j * side + i].norm_sqr();
                cnt[r] += 1;
            }
        }
    }
    let (mut sx, mut sy, mut sxx, mut sxy, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for r in 1..=nbins {
        let f = r as f64 * df;
        if f < f_lo || f > f_hi || cnt[r] == 0 {
            continue;
        }
        let (x, y) = (f.ln(), (sum[r] / cnt[r] as f64).ln());
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        n += 1.0;
    }
    let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    -slope
}
