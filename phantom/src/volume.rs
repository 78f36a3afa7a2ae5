//! The label volume, on a cubic [`VoxelGrid`] (hal's one grid type; its doc gives the index and origin
//! conventions).
//!
//! Voxel `(i, j, k)` is stored at `(k * ny + j) * nx + i`: x fastest, z slowest, so each z slice
//! is one contiguous run of `nx * ny` bytes and a slab of slices can be generated, written or
//! streamed on its own.

use tomolab_hal::VoxelGrid;

use crate::error::{PhantomError, Result};

/// The largest volume this crate allocates in one piece (4 Gi voxels = 4 GiB of labels).
pub const MAX_VOXELS: usize = 1 << 32;

/// The cubic grid of edge `voxel_mm` covering `[min_mm, max_mm]` ([`VoxelGrid::covering`]), refusing grids
/// larger than [`MAX_VOXELS`].
pub fn covering(min_mm: [f64; 3], max_mm: [f64; 3], voxel_mm: f64) -> Result<VoxelGrid> {
    let grid = VoxelGrid::covering(min_mm, max_mm, voxel_mm);
    checked_len(&grid)?;
    Ok(grid)
}

/// Number of voxels of `grid`, refusing grids larger than [`MAX_VOXELS`].
pub fn checked_len(grid: &VoxelGrid) -> Result<usize> {
    let too_large = |reason: String| PhantomError::VolumeTooLarge { nx: grid.nx, ny: grid.ny, nz: grid.nz, reason };
    let len = grid.checked_len().ok_or_else(|| too_large("voxel count overflows".into()))?;
    if len > MAX_VOXELS {
        return Err(too_large(format!("more than {MAX_VOXELS} voxels; use a larger voxel_mm")));
    }
    Ok(len)
}

/// A u8 label volume: one label per voxel, its meaning given by a
/// [`MaterialTable`](crate::MaterialTable).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelVolume {
    /// The voxel grid.
    pub grid: VoxelGrid,
    /// Labels, index `(k * ny + j) * nx + i`.
    pub labels: Vec<u8>,
}

impl LabelVolume {
    /// A volume filled with air, allocated fallibly so a too-large request is an error, not an abort.
    pub fn air(grid: VoxelGrid) -> Result<Self> {
        let len = checked_len(&grid)?;
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
    pub fn new(grid: VoxelGrid, labels: Vec<u8>) -> Result<Self> {
        if labels.len() != checked_len(&grid)? {
            return Err(PhantomError::invalid(
                "labels",
                labels.len(),
                format!("length must be nx * ny * nz = {}", grid.len()),
            ));
        }
        Ok(Self::from_parts(grid, labels))
    }

    fn from_parts(grid: VoxelGrid, labels: Vec<u8>) -> Self {
        Self { grid, labels }
    }

    /// The grid of this volume.
    pub fn grid(&self) -> VoxelGrid {
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
