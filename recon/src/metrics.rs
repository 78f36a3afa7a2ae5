//! Image-quality metrics for reconstructions.
//!
//! - [`artifact_spread`]: the artifact-spread function (ASF) of a bead along z and its FWHM (the usual DBT
//!   measure of depth resolution; Wu et al. 2004, Rodriguez-Ruiz et al. 2016);
//! - [`edge_mtf`]: in-plane MTF from a slanted edge (ESF binned at a quarter pixel, derivative, Hann
//!   window, DFT; after IEC 62220-1);
//! - [`sdnr`]: signal-difference-to-noise ratio of a lesion against background;
//! - [`rmse`] and [`ssim`] against a ground-truth volume.

use crate::error::{Result, invalid};
use crate::geometry::Volume;

/// The artifact-spread function of one bead.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Asf {
    /// Slice heights, mm.
    pub z_mm: Vec<f64>,
    /// ASF per slice (1 at the in-focus slice).
    pub asf: Vec<f64>,
    /// Index of the in-focus (brightest) slice.
    pub peak_slice: usize,
    /// Depth of the peak refined by a parabola through the three slices around it, mm.
    pub peak_z_mm: f64,
    /// Full width at half maximum along z, mm; `None` when the ASF does not fall to one half inside the volume.
    pub fwhm_mm: Option<f64>,
}

fn disc_stats(volume: &Volume, iz: usize, cx: f64, cy: f64, r_in: f64, r_out: f64) -> (f64, usize) {
    let g = &volume.geometry;
    let (dx, dy) = (g.voxel_mm[0], g.voxel_mm[1]);
    let origin = g.first_centre_mm();
    let ix0 = (((cx - r_out - origin[0]) / dx).floor().max(0.0)) as usize;
    let ix1 = (((cx + r_out - origin[0]) / dx).ceil().max(0.0) as usize).min(g.nx.saturating_sub(1));
    let iy0 = (((cy - r_out - origin[1]) / dy).floor().max(0.0)) as usize;
    let iy1 = (((cy + r_out - origin[1]) / dy).ceil().max(0.0) as usize).min(g.ny.saturating_sub(1));
    let (mut sum, mut n) = (0.0, 0);
    for iy in iy0..=iy1 {
        for ix in ix0..=ix1 {
            let p = g.position(ix as f64, iy as f64, 0.0);
            let r = ((p.x - cx).powi(2) + (p.y - cy).powi(2)).sqrt();
            if r >= r_in && r <= r_out {
                sum += f64::from(volume.at(ix, iy, iz));
                n += 1;
            }
        }
    }
    (if n > 0 { sum / n as f64 } else { 0.0 }, n)
}

/// ASF of a bead at in-plane position (`x_mm`, `y_mm`): per slice, the mean inside `radius_mm` minus the
/// mean of the ring 3..5 radii, normalised to the brightest slice.
pub fn artifact_spread(volume: &Volume, x_mm: f64, y_mm: f64, radius_mm: f64) -> Result<Asf> {
    let g = &volume.geometry;
    if !(radius_mm.is_finite() && radius_mm > 0.0) {
        return Err(invalid("radius_mm", format!("must be positive, got {radius_mm}")));
    }
    let mut signal = Vec::with_capacity(g.nz);
    for iz in 0..g.nz {
        let (s, n) = disc_stats(volume, iz, x_mm, y_mm, 0.0, radius_mm);
        let (b, nb) = disc_stats(volume, iz, x_mm, y_mm, 3.0 * radius_mm, 5.0 * radius_mm);
        if n == 0 || nb == 0 {
            return Err(invalid(
                "bead position",
                format!("({x_mm}, {y_mm}) mm is outside the volume or the radius is below a voxel"),
            ));
        }
        signal.push(s - b);
    }
    let peak = (0..g.nz).max_by(|&a, &b| signal[a].total_cmp(&signal[b])).unwrap_or(0);
    let top = signal[peak];
    if top.is_nan() || top <= 0.0 {
        return Err(invalid("bead", "no positive signal at the bead position"));
    }
    let asf: Vec<f64> = signal.iter().map(|s| s / top).collect();
    let z_mm: Vec<f64> = (0..g.nz).map(|iz| g.slice_z_mm(iz)).collect();
    let dz = g.voxel_mm[2];
    let peak_z_mm = if peak > 0 && peak + 1 < g.nz {
        let (a, b, c) = (asf[peak - 1], asf[peak], asf[peak + 1]);
        let denom = a - 2.0 * b + c;
        let off = if denom.abs() > 1e-12 { 0.5 * (a - c) / denom } else { 0.0 };
        z_mm[peak] + off.clamp(-0.5, 0.5) * dz
    } else {
        z_mm[peak]
    };
    let crossing = |range: &mut dyn Iterator<Item = usize>, step: isize| -> Option<f64> {
        for i in range {
            let j = (i as isize + step) as usize;
            if asf[j] < 0.5 {
                let t = (asf[i] - 0.5) / (asf[i] - asf[j]);
                return Some(z_mm[i] + t * (z_mm[j] - z_mm[i]));
            }
        }
        None
    };
    let above = crossing(&mut (peak..g.nz - 1), 1);
    let below = crossing(&mut (1..=peak).rev(), -1);
    let fwhm_mm = match (above, below) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    Ok(Asf { z_mm, asf, peak_slice: peak, peak_z_mm, fwhm_mm })
}

/// An MTF curve.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mtf {
    /// Spatial frequency, cycles/mm.
    pub frequency: Vec<f64>,
    /// Modulation (1 at zero frequency).
    pub mtf: Vec<f64>,
    /// Frequency where the MTF first falls to 0.5, cycles/mm.
    pub mtf50: Option<f64>,
}

/// MTF from a slanted straight edge filling a `cols` x `rows` region of interest of pixel size `pixel_mm`.
pub fn edge_mtf(image: &[f32], cols: usize, rows: usize, pixel_mm: f64) -> Result<Mtf> {
    if image.len() != cols * rows || cols < 8 || rows < 8 {
        return Err(invalid("roi", format!("{} values for a {cols}x{rows} region (at least 8x8)", image.len())));
    }
    let (img, cols, rows) = edge_along_rows(image, cols, rows);
    let edge = fit_edge(&img, cols, rows)?;
    let esf = oversampled_esf(&img, cols, rows, edge)?;
    check_edge_step(&img, cols, rows, edge, &esf)?;
    let mtf = mtf_of_esf(&esf, pixel_mm)?;
    // A clean edge's MTF starts at 1 and does not rise much above it; noise or texture without an edge gives a
    // spectrum that climbs far above 1 (a skin boundary in a DBT slice reached 2.6).
    if let Some((f, m)) = mtf.frequency.iter().zip(&mtf.mtf).find(|(_, m)| **m > MAX_EDGE_MTF) {
        return Err(invalid(
            "roi",
            format!("the MTF reaches {m:.2} at {f:.2} /mm: the region holds no clean straight edge"),
        ));
    }
    Ok(mtf)
}

/// The largest MTF value a measured edge may show (noise lifts a true MTF a little above 1 near zero).
const MAX_EDGE_MTF: f64 = 1.2;

/// Smallest edge step, in standard deviations of the pixels on either side of the edge.
const MIN_EDGE_STEP_SIGMAS: f64 = 3.0;

/// Refuses a region whose two sides do not differ by a clear step: the ESF's first and last quarters against
/// the scatter of the pixels more than 3 pixels from the fitted edge.
fn check_edge_step(img: &[f32], cols: usize, rows: usize, (mr, mc, slope): EdgeLine, esf: &[f64]) -> Result<()> {
    let q = (esf.len() / 4).max(1);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let step = (mean(&esf[esf.len() - q..]) - mean(&esf[..q])).abs();
    let cos = 1.0 / (1.0 + slope * slope).sqrt();
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for r in 0..rows {
        let edge = mc + slope * (r as f64 - mr);
        for c in 0..cols {
            let d = (c as f64 - edge) * cos;
            let v = f64::from(img[r * cols + c]);
            if d < -3.0 {
                low.push(v);
            } else if d > 3.0 {
                high.push(v);
            }
        }
    }
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0)
    };
    if low.len() < 8 || high.len() < 8 {
        return Err(invalid("roi", "the fitted edge leaves too few pixels on one side; centre the region on the edge"));
    }
    let sigma = (0.5 * (var(&low) + var(&high))).sqrt();
    if step < MIN_EDGE_STEP_SIGMAS * sigma {
        return Err(invalid(
            "roi",
            format!(
                "no edge: the two sides differ by {step:.3e}, under {MIN_EDGE_STEP_SIGMAS} times the pixel noise \
                 {sigma:.3e}"
            ),
        ));
    }
    Ok(())
}

/// The image transposed if needed so that the edge runs along rows (intensity changes along columns).
fn edge_along_rows(image: &[f32], cols: usize, rows: usize) -> (Vec<f32>, usize, usize) {
    let (gx, gy) = image.chunks(cols).enumerate().fold((0.0f64, 0.0f64), |(gx, gy), (r, row)| {
        let gx = gx + row.windows(2).map(|w| f64::from((w[1] - w[0]).abs())).sum::<f64>();
        let gy = if r + 1 < rows {
            gy + row
                .iter()
                .zip(&image[(r + 1) * cols..(r + 2) * cols])
                .map(|(a, b)| f64::from((b - a).abs()))
                .sum::<f64>()
        } else {
            gy
        };
        (gx, gy)
    });
    if gx >= gy {
        (image.to_vec(), cols, rows)
    } else {
        let mut t = vec![0.0; image.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = image[r * cols + c];
            }
        }
        (t, rows, cols)
    }
}

/// ESF bin width, pixels.
const ESF_BIN: f64 = 0.25;

/// A straight line through the edge: `col = mc + slope * (row - mr)`, as (mr, mc, slope).
type EdgeLine = (f64, f64, f64);

/// Fits the edge: per row, the centroid of the absolute derivative; then a least-squares line.
fn fit_edge(img: &[f32], cols: usize, rows: usize) -> Result<EdgeLine> {
    let mut fit = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &img[r * cols..(r + 1) * cols];
        let (mut s, mut sw) = (0.0, 0.0);
        for (c, w) in row.windows(2).enumerate() {
            let d = f64::from((w[1] - w[0]).abs());
            s += d * (c as f64 + 0.5);
            sw += d;
        }
        if sw > 0.0 {
            fit.push((r as f64, s / sw));
        }
    }
    if fit.len() < 4 {
        return Err(invalid("roi", "no edge found"));
    }
    let n = fit.len() as f64;
    let (mr, mc) = (fit.iter().map(|p| p.0).sum::<f64>() / n, fit.iter().map(|p| p.1).sum::<f64>() / n);
    let slope = fit.iter().map(|p| (p.0 - mr) * (p.1 - mc)).sum::<f64>()
        / fit.iter().map(|p| (p.0 - mr).powi(2)).sum::<f64>().max(1e-12);
    Ok((mr, mc, slope))
}

/// The edge-spread function binned at a quarter pixel across the fitted edge (empty bins take the
/// previous value).
fn oversampled_esf(img: &[f32], cols: usize, rows: usize, (mr, mc, slope): EdgeLine) -> Result<Vec<f64>> {
    let cos = 1.0 / (1.0 + slope * slope).sqrt();
    let bin = ESF_BIN;
    let half = cols as f64;
    let nbins = (2.0 * half / bin) as usize;
    let mut sum = vec![0.0f64; nbins];
    let mut count = vec![0usize; nbins];
    for r in 0..rows {
        let edge = mc + slope * (r as f64 - mr);
        for c in 0..cols {
            let d = (c as f64 - edge) * cos + half;
            let b = (d / bin) as usize;
            if d >= 0.0 && b < nbins {
                sum[b] += f64::from(img[r * cols + c]);
                count[b] += 1;
            }
        }
    }
    let filled: Vec<usize> = (0..nbins).filter(|&b| count[b] > 0).collect();
    let (first, last) = match (filled.first(), filled.last()) {
        (Some(&f), Some(&l)) if l > f + 8 => (f, l),
        _ => return Err(invalid("roi", "edge too short to sample")),
    };
    let mut esf: Vec<f64> = Vec::with_capacity(last - first + 1);
    let mut prev = sum[first] / count[first] as f64;
    for b in first..=last {
        let v = if count[b] > 0 { sum[b] / count[b] as f64 } else { prev };
        esf.push(v);
        prev = v;
    }
    Ok(esf)
}

/// The MTF of a quarter-pixel ESF: Hann-windowed derivative, DFT up to Nyquist, MTF50.
fn mtf_of_esf(esf: &[f64], pixel_mm: f64) -> Result<Mtf> {
    let bin = ESF_BIN;
    let m = esf.len() - 1;
    let lsf: Vec<f64> = (0..m)
        .map(|i| {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (m as f64 - 1.0).max(1.0)).cos();
            (esf[i + 1] - esf[i]) * w
        })
        .collect();
    let dc: f64 = lsf.iter().sum();
    if dc.abs() < 1e-12 {
        return Err(invalid("roi", "the edge has no contrast"));
    }
    let spacing_mm = bin * pixel_mm;
    let nyquist = 1.0 / (2.0 * pixel_mm);
    let mut frequency = Vec::new();
    let mut mtf = Vec::new();
    for k in 0..m {
        let f = k as f64 / (m as f64 * spacing_mm);
        if f > nyquist {
            break;
        }
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &v) in lsf.iter().enumerate() {
            let a = 2.0 * std::f64::consts::PI * (k * i) as f64 / m as f64;
            re += v * a.cos();
            im -= v * a.sin();
        }
        frequency.push(f);
        mtf.push((re * re + im * im).sqrt() / dc.abs());
    }
    let mtf50 = (1..mtf.len()).find(|&i| mtf[i] < 0.5).map(|i| {
        let t = (mtf[i - 1] - 0.5) / (mtf[i - 1] - mtf[i]);
        frequency[i - 1] + t * (frequency[i] - frequency[i - 1])
    });
    Ok(Mtf { frequency, mtf, mtf50 })
}

/// Signal-difference-to-noise ratio: (mean(signal) - mean(background)) / std(background).
pub fn sdnr(signal: &[f32], background: &[f32]) -> Result<f64> {
    if signal.is_empty() || background.len() < 2 {
        return Err(invalid("roi", "signal needs at least one value and background at least two"));
    }
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    let (ms, mb) = (mean(signal), mean(background));
    let var = background.iter().map(|&x| (f64::from(x) - mb).powi(2)).sum::<f64>() / (background.len() - 1) as f64;
    if var <= 0.0 {
        return Err(invalid("background", "has zero variance"));
    }
    Ok((ms - mb) / var.sqrt())
}

/// Values of slice `iz` inside the disc of radius `r_mm` around (`x_mm`, `y_mm`), or in the ring
/// `r_in_mm..r_mm` when `r_in_mm > 0`.
pub fn disc_values(volume: &Volume, iz: usize, x_mm: f64, y_mm: f64, r_in_mm: f64, r_mm: f64) -> Vec<f32> {
    let g = &volume.geometry;
    let mut out = Vec::new();
    if iz >= g.nz {
        return out;
    }
    for iy in 0..g.ny {
        for ix in 0..g.nx {
            let p = g.position(ix as f64, iy as f64, 0.0);
            let r = ((p.x - x_mm).powi(2) + (p.y - y_mm).powi(2)).sqrt();
            if r >= r_in_mm && r <= r_mm {
                out.push(volume.at(ix, iy, iz));
            }
        }
    }
    out
}

/// Values of a row-major `cols`-wide image (a projection) inside the disc of radius `r_px` pixels around the
/// fractional pixel `centre` = (col, row), or in the ring `r_in_px..r_px` when `r_in_px > 0`.
pub fn image_disc_values(image: &[f32], cols: usize, centre: (f64, f64), r_in_px: f64, r_px: f64) -> Vec<f32> {
    let rows = image.len().checked_div(cols).unwrap_or(0);
    let (c0, r0) = centre;
    let lo = |c: f64| (c - r_px).floor().max(0.0) as usize;
    let (col_lo, row_lo) = (lo(c0), lo(r0));
    let col_hi = ((c0 + r_px).ceil().max(0.0) as usize).min(cols.saturating_sub(1));
    let row_hi = ((r0 + r_px).ceil().max(0.0) as usize).min(rows.saturating_sub(1));
    let mut out = Vec::new();
    for row in row_lo..=row_hi {
        for col in col_lo..=col_hi {
            let r = ((col as f64 - c0).powi(2) + (row as f64 - r0).powi(2)).sqrt();
            if r >= r_in_px && r <= r_px {
                out.push(image[row * cols + col]);
            }
        }
    }
    out
}

/// Per slice: mean over the disc of radius `r_mm` around (`x_mm`, `y_mm`) minus the mean over the ring
/// `1.5 r_mm .. 2.5 r_mm` (the background of [`sdnr`] as `tomolab metrics` measures it). Its peak over the
/// slices is where an object is in focus.
pub fn contrast_profile(volume: &Volume, x_mm: f64, y_mm: f64, r_mm: f64) -> Vec<f64> {
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
    (0..volume.geometry.nz)
        .map(|iz| {
            let disc = disc_values(volume, iz, x_mm, y_mm, 0.0, r_mm);
            let ring = disc_values(volume, iz, x_mm, y_mm, 1.5 * r_mm, 2.5 * r_mm);
            mean(&disc) - mean(&ring)
        })
        .collect()
}

fn same_grid(a: &Volume, b: &Volume) -> Result<()> {
    if a.geometry != b.geometry || a.data.len() != b.data.len() {
        return Err(invalid("truth", "the ground truth's grid differs from the reconstruction's"));
    }
    Ok(())
}

/// Root-mean-square error against a ground truth on the same grid.
pub fn rmse(volume: &Volume, truth: &Volume) -> Result<f64> {
    same_grid(volume, truth)?;
    let s: f64 = volume.data.iter().zip(&truth.data).map(|(&a, &b)| f64::from(a - b).powi(2)).sum();
    Ok((s / volume.data.len().max(1) as f64).sqrt())
}

/// Mean structural similarity (Wang et al. 2004) over 8x8 windows (stride 4) of every slice, with the
/// dynamic range L taken from the truth and the usual constants (0.01 L)^2, (0.03 L)^2.
pub fn ssim(volume: &Volume, truth: &Volume) -> Result<f64> {
    same_grid(volume, truth)?;
    let g = &volume.geometry;
    let (lo, hi) = truth.data.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let l = f64::from((hi - lo).max(f32::MIN_POSITIVE));
    let (c1, c2) = ((0.01 * l).powi(2), (0.03 * l).powi(2));
    let win = 8.min(g.nx).min(g.ny);
    let (mut total, mut n) = (0.0, 0usize);
    for iz in 0..g.nz {
        let (a, b) = (volume.slice(iz), truth.slice(iz));
        let mut y0 = 0;
        while y0 + win <= g.ny {
            let mut x0 = 0;
            while x0 + win <= g.nx {
                let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for y in y0..y0 + win {
                    for x in x0..x0 + win {
                        let (p, q) = (f64::from(a[y * g.nx + x]), f64::from(b[y * g.nx + x]));
                        sa += p;
                        sb += q;
                        saa += p * p;
                        sbb += q * q;
                        sab += p * q;
                    }
                }
                let k = (win * win) as f64;
                let (ma, mb) = (sa / k, sb / k);
                let (va, vb, cov) = (saa / k - ma * ma, sbb / k - mb * mb, sab / k - ma * mb);
                total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                n += 1;
                x0 += 4;
            }
            y0 += 4;
        }
    }
    if n == 0 {
        return Err(invalid("volume", "too small for SSIM windows"));
    }
    Ok(total / n as f64)
}
