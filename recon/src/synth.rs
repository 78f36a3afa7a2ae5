//! Synthetic 2D: a mammogram-like image from the reconstructed slices.
//!
//! An "enhanced average" along z: `alpha * max_z + (1 - alpha) * mean_z` per (x, y) column of voxels.
//! The maximum keeps small bright objects (calcifications) sharp; the mean keeps the tissue texture.

use rayon::prelude::*;

use crate::error::{Result, invalid};
use crate::geometry::Volume;

/// Synthetic 2D image (`ny` rows of `nx`), mixing maximum and mean along z with weight `alpha` in [0, 1].
pub fn synthetic_2d(volume: &Volume, alpha: f32) -> Result<Vec<f32>> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(invalid("alpha", format!("must lie in [0, 1], got {alpha}")));
    }
    let g = &volume.geometry;
    let n = g.slice_len();
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(g.nx).enumerate().for_each(|(iy, row)| {
        for (ix, o) in row.iter_mut().enumerate() {
            let mut max = f32::MIN;
            let mut sum = 0.0f32;
            for iz in 0..g.nz {
                let v = volume.data[iz * n + iy * g.nx + ix];
                max = max.max(v);
                sum += v;
            }
            *o = alpha * max + (1.0 - alpha) * sum / g.nz as f32;
        }
    });
    Ok(out)
}
