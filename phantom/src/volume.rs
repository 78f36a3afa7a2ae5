//! The voxel grid and the label volume.
//!
//! Voxel `(i, j, k)` is stored at `(k * ny + j) * nx + i`: x fastest, z slowest, so each z slice
//! is one contiguous run of `nx * ny` bytes and a slab of slices can be generated, written or
//! streamed on its own. `origin_mm` is the minimum corner of voxel `(0, 0, 0)`, so the centre of
//! voxel `(i, j, k)` is `origin_mm + ((i + 0.5) v, (j + 0.5) v, (k + 0.5) v)` with `v = voxel_mm`.

use serde::{Deserialize, Serialize};

use crate::error::{PhantomError, Result};

/// The largest volume this crate allocates in one piece (4 Gi voxels = 4 GiB of labels).
pub const MAX_VOXELS: usize = 1 << 32;

/// A regular isotropic voxel grid in the design's coordinates (mm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Voxels along x (along the chest wall).
    pub nx: usize,
    /// Voxels along y (chest wall toward nipple).
    pub ny: usize,
    /// Voxels along z (up toward the source).
    pub nz: usize,
    /// Edge length of a (cubic) voxel in mm.
    pub voxel_mm: f64,
    /// Minimum corner of voxel (0, 0, 0) in mm.
    pub origin_mm: [f64; 3],
}

impl Grid {
    /// A grid that covers the box `[min_mm, max_mm]` with voxels of `voxel_mm`, rounding each
    /// extent up to a whole number of voxels (the box is grown symmetrically).
    pub fn covering(min_mm: [f64; 3], max_mm: [f64; 3], voxel_mm: f64) -> Result<Grid> {
        let mut n = [0usize; 3];
        let mut origin = [0.0; 3];
        for a in 0..3 {
            let extent = max_mm[a] - min_mm[a];
            let count = (extent / voxel_mm - 1e-9).ceil().max(1.0);
            n[a] = count as usize;
            origin[a] = min_mm[a] - 0.5 * (count * voxel_mm - extent);
        }
        let grid = Grid { nx: n[0], ny: n[1], nz: n[2], voxel_mm, origin_mm: origin };
        grid.checked_len()?;
        Ok(grid)
    }

    /// Number of voxels, refusing grids larger than [`MAX_VOXELS`].
    pub fn checked_len(&self) -> Result<usize> {
        let too_large = |reason: String| PhantomError::VolumeTooLarge { nx: self.nx, ny: self.ny, nz: self.nz, reason };
        let len = self
            .nx
            .checked_mul(self.ny)
            .and_then(|s| s.checked_mul(self.nz))
            .ok_or_else(|| too_large("voxel count overflows".into()))?;
        if len > MAX_VOXELS {
            return Err(too_large(format!("more than {MAX_VOXELS} voxels; use a larger voxel_mm")));
        }
        Ok(len)
    }

    /// Number of voxels (`nx * ny * nz`).
    pub fn len(&self) -> usize {
        self.nx * self.ny * self.nz
    }

    /// Whether the grid has no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Voxels in one z slice (`nx * ny`).
    pub fn slice_len(&self) -> usize {
        self.nx * self.ny
    }

    /// Linear index of voxel `(i, j, k)`.
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.ny + j) * self.nx + i
    }

    /// The voxel indices of a linear index (inverse of [`Grid::index`]).
    pub fn unindex(&self, index: usize) -> [usize; 3] {
        let i = index % self.nx;
        let j = (index / self.nx) % self.ny;
        let k = index / (self.nx * self.ny);
        [i, j, k]
    }

    /// Centre of voxel `(i, j, k)` in mm.
    pub fn voxel_centre(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        let v = self.voxel_mm;
        [
            self.origin_mm[0] + (i as f64 + 0.5) * v,
            self.origin_mm[1] + (j as f64 + 0.5) * v,
            self.origin_mm[2] + (k as f64 + 0.5) * v,
        ]
    }

    /// Centre coordinate of voxel `n` along `axis` (0 = x, 1 = y, 2 = z).
    pub fn centre_along(&self, axis: usize, n: usize) -> f64 {
        self.origin_mm[axis] + (n as f64 + 0.5) * self.voxel_mm
    }

    /// The voxel that contains `point_mm`, or `None` outside the grid. Points on a face shared by
    /// two voxels belong to the one with the larger index.
    pub fn world_to_voxel(&self, point_mm: [f64; 3]) -> Option<[usize; 3]> {
        let n = [self.nx, self.ny, self.nz];
        let mut out = [0usize; 3];
        for a in 0..3 {
            let f = (point_mm[a] - self.origin_mm[a]) / self.voxel_mm;
            if !(f >= 0.0 && f < n[a] as f64) {
                return None;
            }
            out[a] = (f.floor() as usize).min(n[a] - 1);
        }
        Some(out)
    }

    /// Minimum and maximum corner of the whole grid in mm.
    pub fn bounds_mm(&self) -> ([f64; 3], [f64; 3]) {
        let v = self.voxel_mm;
        let o = self.origin_mm;
        (o, [o[0] + self.nx as f64 * v, o[1] + self.ny as f64 * v, o[2] + self.nz as f64 * v])
    }

    /// The inclusive range of voxel indices along `axis` whose *centres* lie in `[lo_mm, hi_mm]`;
    /// `None` if there are none.
    pub fn centre_range(&self, axis: usize, lo_mm: f64, hi_mm: f64) -> Option<(usize, usize)> {
        let n = [self.nx, self.ny, self.nz][axis];
        let v = self.voxel_mm;
        let lo = ((lo_mm - self.origin_mm[axis]) / v - 0.5).ceil().max(0.0);
        let hi = ((hi_mm - self.origin_mm[axis]) / v - 0.5).floor();
        if hi < lo || hi < 0.0 || lo >= n as f64 {
            return None;
        }
        Some((lo as usize, (hi as usize).min(n - 1)))
    }

    /// The inclusive range of voxel indices along `axis` whose cells intersect `[lo_mm, hi_mm]`,
    /// clamped to the grid; `None` if the interval misses the grid.
    pub fn index_range(&self, axis: usize, lo_mm: f64, hi_mm: f64) -> Option<(usize, usize)> {
        let n = [self.nx, self.ny, self.nz][axis];
        let lo = ((lo_mm - self.origin_mm[axis]) / self.voxel_mm).floor();
        let hi = ((hi_mm - self.origin_mm[axis]) / self.voxel_mm).floor();
        if hi < 0.0 || lo >= n as f64 || hi < lo {
            return None;
        }
        Some((lo.max(0.0) as usize, (hi as usize).min(n - 1)))
    }
}

/// A u8 label volume: one label per voxel, its meaning given by a
/// [`MaterialTable`](crate::MaterialTable).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelVolume {
    /// The voxel grid.
    pub grid: Grid,
    /// Labels, index `(k * ny + j) * nx + i`.
    pub labels: Vec<u8>,
}

impl LabelVolume {
    /// A volume filled with air, allocated fallibly so a too-large request is an error, not an abort.
    pub fn air(grid: Grid) -> Result<Self> {
        let len = grid.checked_len()?;
        let mut labels = Vec::new();
        labels.try_reserve_exact(len).map_err(|e| PhantomError::VolumeTooLarge {
            nx: grid.nx,
            ny: grid.ny,
            nz: grid.nz,
            reason: format!("cannot allocate {len} bytes: {e}"),
        })?;
        labels.resize(len, 0);
        Ok(Self::from_parts(grid, labels))
    }

    /// Assembles a volume; `labels.len()` must equal `grid.len()`.
    pub fn new(grid: Grid, labels: Vec<u8>) -> Result<Self> {
        if labels.len() != grid.checked_len()? {
            return Err(PhantomError::invalid(
                "labels",
                labels.len(),
                format!("length must be nx * ny * nz = {}", grid.len()),
            ));
        }
        Ok(Self::from_parts(grid, labels))
    }

    fn from_parts(grid: Grid, labels: Vec<u8>) -> Self {
        Self { grid, labels }
    }

    /// The grid of this volume.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// Linear index of voxel `(i, j, k)`.
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        self.grid().index(i, j, k)
    }

    /// Centre of voxel `(i, j, k)` in mm.
    pub fn voxel_centre(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        self.grid().voxel_centre(i, j, k)
    }

    /// The voxel that contains `point_mm`, or `None` outside the volume.
    pub fn world_to_voxel(&self, point_mm: [f64; 3]) -> Option<[usize; 3]> {
        self.grid().world_to_voxel(point_mm)
    }

    /// Label of voxel `(i, j, k)`.
    pub fn get(&self, i: usize, j: usize, k: usize) -> u8 {
        self.labels[self.index(i, j, k)]
    }

    /// Label at a point in mm; air ([`AIR`](crate::material::AIR)) outside the volume.
    pub fn label_at(&self, point_mm: [f64; 3]) -> u8 {
        match self.world_to_voxel(point_mm) {
            Some([i, j, k]) => self.get(i, j, k),
            None => crate::material::AIR,
        }
    }

    /// The contiguous labels of z slice `k`.
    pub fn slice(&self, k: usize) -> &[u8] {
        let n = self.grid.nx * self.grid.ny;
        &self.labels[k * n..(k + 1) * n]
    }

    /// How many voxels carry each label.
    pub fn label_counts(&self) -> [u64; 256] {
        let mut counts = [0u64; 256];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
