//! Voxelizing a prepared breast, slice by slice: stage 1 draws anatomy and lesions and histograms the
//! texture of the undecided tissue; stage 2 labels that tissue against the threshold the histogram gave.

use super::ligaments::{Ligaments, RowScratch};
use super::{BINS, Outline, TISSUE};
use crate::material::{ADIPOSE, AIR, FIRST_OBJECT_LABEL, GLANDULAR, NIPPLE, SKIN};
use crate::shapes::Rasterized;
use crate::texture::CoarseField;
use tomolab_hal::VoxelGrid;

/// A breast ready to be voxelized slice by slice.
#[derive(Debug, Clone)]
pub(crate) struct BreastScene {
    pub grid: VoxelGrid,
    pub outline: Outline,
    /// Texture + bias, scaled to quantization units [0, BINS - 1].
    pub(super) field: CoarseField,
    /// Per voxel column i: lower coarse node and weight.
    pub(super) xlut: Vec<(u32, f32)>,
    pub(super) ligaments: Option<Ligaments>,
    pub lesions: Vec<Rasterized>,
    pub glandular_fraction: f64,
}

/// Inclusive index range of voxels along x whose centres satisfy |x| <= h.
fn x_range(grid: &VoxelGrid, h: f64) -> Option<(usize, usize)> {
    grid.centre_range(0, -h, h)
}

impl BreastScene {
    /// The texture of slice `k`, interpolated in z to the coarse (x, y) plane.
    fn texture_plane(&self, k: usize) -> Vec<f32> {
        let (k0, tz) = self.field.locate(2, self.grid.centre_along(2, k));
        let plane = self.field.n[0] * self.field.n[1];
        let a = &self.field.data[k0 * plane..(k0 + 1) * plane];
        let b = &self.field.data[(k0 + 1) * plane..(k0 + 2) * plane];
        a.iter().zip(b).map(|(&a, &b)| a + (b - a) * tz).collect()
    }

    /// The coarse row of `plane` at y, interpolated in y, into `row`.
    fn texture_row(&self, plane: &[f32], y: f64, row: &mut [f32]) {
        let (j0, ty) = self.field.locate(1, y);
        let n = self.field.n[0];
        let a = &plane[j0 * n..(j0 + 1) * n];
        let b = &plane[(j0 + 1) * n..(j0 + 2) * n];
        for ((r, &a), &b) in row.iter_mut().zip(a).zip(b) {
            *r = a + (b - a) * ty;
        }
    }

    #[inline]
    fn q(&self, row: &[f32], i: usize) -> u16 {
        let (i0, t) = self.xlut[i];
        let a = row[i0 as usize];
        let b = row[i0 as usize + 1];
        (a + (b - a) * t) as u16
    }

    /// Stage 1: anatomy and lesions, with undecided tissue marked [`TISSUE`]; adds the texture
    /// histogram of the undecided voxels to `hist` if given.
    pub fn stage1(&self, k: usize, out: &mut [u8], hist: Option<&mut [u64]>) {
        let grid = &self.grid;
        let nx = grid.nx;
        out.fill(AIR);
        let z = grid.centre_along(2, k);
        let o = &self.outline;
        let mut interior_rows = Vec::new();
        for j in 0..grid.ny {
            let y = grid.centre_along(1, j);
            let row = &mut out[j * nx..(j + 1) * nx];
            if let Some((a, b)) = o.half_width(y, z, 0.0).and_then(|h| x_range(grid, h)) {
                row[a..=b].fill(SKIN);
            }
            if let Some((a, b)) = o.nipple_half_width(y, z).and_then(|h| x_range(grid, h)) {
                row[a..=b].fill(NIPPLE);
            }
            if let Some((a, b)) = o.half_width(y, z, o.skin_mm).and_then(|h| x_range(grid, h)) {
                row[a..=b].fill(TISSUE);
                interior_rows.push((j, a, b));
            }
        }
        for l in &self.lesions {
            l.rasterize_slice(grid, k, out, |v| v == TISSUE || (FIRST_OBJECT_LABEL..TISSUE).contains(&v));
        }
        if let Some(hist) = hist {
            if interior_rows.is_empty() {
                return;
            }
            let plane = self.texture_plane(k);
            let mut crow = vec![0f32; self.field.n[0]];
            for &(j, a, b) in &interior_rows {
                self.texture_row(&plane, grid.centre_along(1, j), &mut crow);
                let row = &out[j * nx..(j + 1) * nx];
                for i in a..=b {
                    if row[i] == TISSUE {
                        hist[self.q(&crow, i) as usize] += 1;
                    }
                }
            }
        }
    }

    /// Stage 2: decides the undecided tissue of slice `k`: glandular where the texture reaches
    /// `threshold`, else ligament on a compartment face, else adipose.
    pub fn stage2(&self, k: usize, out: &mut [u8], threshold: u32) {
        let grid = &self.grid;
        let nx = grid.nx;
        let mut plane: Option<Vec<f32>> = None;
        let mut crow = vec![0f32; self.field.n[0]];
        let mut scratch = RowScratch::default();
        for j in 0..grid.ny {
            let row = &mut out[j * nx..(j + 1) * nx];
            let Some(first) = row.iter().position(|&v| v == TISSUE) else { continue };
            let last = row.iter().rposition(|&v| v == TISSUE).unwrap_or(first);
            let plane = plane.get_or_insert_with(|| self.texture_plane(k));
            self.texture_row(plane, grid.centre_along(1, j), &mut crow);
            for (i, l) in row.iter_mut().enumerate().take(last + 1).skip(first) {
                if *l == TISSUE {
                    *l = if self.q(&crow, i) as u32 >= threshold { GLANDULAR } else { ADIPOSE };
                }
            }
            if let Some(l) = &self.ligaments {
                // No ligaments inside the glandular core: |x| < a sqrt(rho^2 - c_row).
                let o = &self.outline;
                let y = grid.centre_along(1, j);
                let dz = (grid.centre_along(2, k) - o.zc_mm) / o.r_mm;
                let c_row = (y / o.b_mm).powi(2) + 0.5 * dz * dz;
                let h2 = l.inner_radius * l.inner_radius - c_row;
                match (h2 > 0.0).then(|| x_range(grid, o.a_mm * h2.sqrt())).flatten() {
                    Some((a, b)) => {
                        if a > first {
                            l.mark_row(grid, j, k, row, (first, a - 1), &mut scratch);
                        }
                        if b < last {
                            l.mark_row(grid, j, k, row, (b + 1, last), &mut scratch);
                        }
                    }
                    None => l.mark_row(grid, j, k, row, (first, last), &mut scratch),
                }
            }
        }
    }

    /// The threshold (in quantization units) that makes the glandular count closest to the
    /// requested fraction of the histogrammed tissue.
    pub fn threshold(&self, hist: &[u64]) -> u32 {
        let total: u64 = hist.iter().sum();
        let target = (self.glandular_fraction * total as f64).round() as u64;
        // count(q >= t) for t = BINS is 0; walk down.
        let mut best = (target, BINS as u32);
        let mut above = 0u64;
        for t in (0..BINS).rev() {
            above += hist[t];
            let err = above.abs_diff(target);
            if err < best.0 {
                best = (err, t as u32);
            }
            if above > target {
                break;
            }
        }
        best.1
    }
}
