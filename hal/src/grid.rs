//! The voxel grid every volume in tomolab lives on: phantom label volumes, the ray tracer's and the Monte
//! Carlo's views of them, the dose phantoms and the reconstruction.
//!
//! A grid is aligned with the world axes of the design's coordinates (x along the chest wall / tube travel,
//! y chest wall toward nipple, z up toward the source). Voxel `(i, j, k)` is the box
//! `min_corner_mm + ([i, i + 1] dx, [j, j + 1] dy, [k, k + 1] dz)`; its centre is
//! `min_corner_mm + ((i + 0.5) dx, (j + 0.5) dy, (k + 0.5) dz)`. Data on a grid are stored x fastest, z slowest,
//! at `(k * ny + j) * nx + i`, so each z slice is one contiguous run of `nx * ny` values.
//!
//! The stored origin is the minimum corner, the convention of the phantom and the ray tracer (a ray enters the
//! box at the corner). File formats that place the origin at the first voxel's centre (NRRD, MetaImage, DICOM)
//! use [`VoxelGrid::first_centre_mm`] and [`VoxelGrid::from_first_centre`].

use serde::{Deserialize, Serialize};

use crate::geometry::Vec3;

/// A regular voxel grid aligned with the world axes, in mm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VoxelGrid {
    /// Voxels along x.
    pub nx: usize,
    /// Voxels along y.
    pub ny: usize,
    /// Voxels along z (slices).
    pub nz: usize,
    /// Voxel size along x, y and z, mm.
    pub voxel_mm: [f64; 3],
    /// Minimum corner of voxel (0, 0, 0), mm.
    pub min_corner_mm: [f64; 3],
}

impl VoxelGrid {
    /// A grid of cubic voxels of edge `voxel_mm` whose voxel (0, 0, 0) has its minimum corner at `min_corner_mm`.
    pub fn cubic(n: [usize; 3], voxel_mm: f64, min_corner_mm: [f64; 3]) -> Self {
        Self { nx: n[0], ny: n[1], nz: n[2], voxel_mm: [voxel_mm; 3], min_corner_mm }
    }

    /// A grid whose voxel (0, 0, 0) is centred at `first_centre_mm`.
    pub fn from_first_centre(n: [usize; 3], voxel_mm: [f64; 3], first_centre_mm: [f64; 3]) -> Self {
        let min_corner_mm = std::array::from_fn(|a| first_centre_mm[a] - 0.5 * voxel_mm[a]);
        Self { nx: n[0], ny: n[1], nz: n[2], voxel_mm, min_corner_mm }
    }

    /// The cubic grid of edge `voxel_mm` that covers the box `[min_mm, max_mm]`, each extent rounded up to a
    /// whole number of voxels (the box grows symmetrically).
    pub fn covering(min_mm: [f64; 3], max_mm: [f64; 3], voxel_mm: f64) -> Self {
        let mut n = [0usize; 3];
        let mut corner = [0.0; 3];
        for a in 0..3 {
            let extent = max_mm[a] - min_mm[a];
            let count = (extent / voxel_mm - 1e-9).ceil().max(1.0);
            n[a] = count as usize;
            corner[a] = min_mm[a] - 0.5 * (count * voxel_mm - extent);
        }
        Self::cubic(n, voxel_mm, corner)
    }

    /// Voxel counts along x, y and z.
    pub fn shape(&self) -> [usize; 3] {
        [self.nx, self.ny, self.nz]
    }

    /// Number of voxels, or `None` if `nx * ny * nz` overflows.
    pub fn checked_len(&self) -> Option<usize> {
        self.nx.checked_mul(self.ny)?.checked_mul(self.nz)
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

    /// Whether the voxels are cubes (to within 1e-12 relative).
    pub fn is_cubic(&self) -> bool {
        let [dx, dy, dz] = self.voxel_mm;
        (dy - dx).abs() <= 1e-12 * dx && (dz - dx).abs() <= 1e-12 * dx
    }

    /// The edge of a cubic voxel (phantoms and the volumes built from them are cubic; see
    /// [`VoxelGrid::is_cubic`]). For a grid that is not cubic this is the x size.
    pub fn cubic_voxel_mm(&self) -> f64 {
        debug_assert!(self.is_cubic(), "cubic_voxel_mm on a {:?} mm grid", self.voxel_mm);
        self.voxel_mm[0]
    }

    /// Volume of one voxel, mm^3.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.voxel_mm[0] * self.voxel_mm[1] * self.voxel_mm[2]
    }

    /// Linear index of voxel `(i, j, k)`.
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.ny + j) * self.nx + i
    }

    /// The voxel indices of a linear index (inverse of [`VoxelGrid::index`]).
    pub fn unindex(&self, index: usize) -> [usize; 3] {
        let i = index % self.nx;
        let j = (index / self.nx) % self.ny;
        let k = index / (self.nx * self.ny);
        [i, j, k]
    }

    /// Centre of voxel `(i, j, k)`, mm.
    pub fn voxel_centre(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        [self.centre_along(0, i), self.centre_along(1, j), self.centre_along(2, k)]
    }

    /// Centre coordinate of voxel `n` along `axis` (0 = x, 1 = y, 2 = z), mm.
    pub fn centre_along(&self, axis: usize, n: usize) -> f64 {
        self.min_corner_mm[axis] + (n as f64 + 0.5) * self.voxel_mm[axis]
    }

    /// Centre of voxel (0, 0, 0), mm: the origin of the NRRD, MetaImage and DICOM conventions.
    pub fn first_centre_mm(&self) -> [f64; 3] {
        std::array::from_fn(|a| self.min_corner_mm[a] + 0.5 * self.voxel_mm[a])
    }

    /// The point at fractional voxel index `(ix, iy, iz)`, where whole indices are voxel centres, mm.
    pub fn position(&self, ix: f64, iy: f64, iz: f64) -> Vec3 {
        let c = self.first_centre_mm();
        Vec3::new(c[0] + ix * self.voxel_mm[0], c[1] + iy * self.voxel_mm[1], c[2] + iz * self.voxel_mm[2])
    }

    /// Height of the centre of slice `iz`, mm.
    pub fn slice_z_mm(&self, iz: usize) -> f64 {
        self.first_centre_mm()[2] + iz as f64 * self.voxel_mm[2]
    }

    /// The centre of the whole grid, mm.
    pub fn centre(&self) -> Vec3 {
        self.position((self.nx as f64 - 1.0) / 2.0, (self.ny as f64 - 1.0) / 2.0, (self.nz as f64 - 1.0) / 2.0)
    }

    /// Minimum and maximum corner of the whole grid, mm.
    pub fn bounds_mm(&self) -> ([f64; 3], [f64; 3]) {
        let o = self.min_corner_mm;
        let n = self.shape();
        (o, std::array::from_fn(|a| o[a] + n[a] as f64 * self.voxel_mm[a]))
    }

    /// The voxel that contains `point_mm`, or `None` outside the grid. A point on a face shared by two voxels
    /// belongs to the one with the larger index.
    pub fn world_to_voxel(&self, point_mm: [f64; 3]) -> Option<[usize; 3]> {
        let n = self.shape();
        let mut out = [0usize; 3];
        for a in 0..3 {
            let f = (point_mm[a] - self.min_corner_mm[a]) / self.voxel_mm[a];
            if !(f >= 0.0 && f < n[a] as f64) {
                return None;
            }
            out[a] = (f.floor() as usize).min(n[a] - 1);
        }
        Some(out)
    }

    /// The inclusive range of voxel indices along `axis` whose *centres* lie in `[lo_mm, hi_mm]`; `None` if
    /// there are none.
    pub fn centre_range(&self, axis: usize, lo_mm: f64, hi_mm: f64) -> Option<(usize, usize)> {
        let n = self.shape()[axis];
        let v = self.voxel_mm[axis];
        let lo = ((lo_mm - self.min_corner_mm[axis]) / v - 0.5).ceil().max(0.0);
        let hi = ((hi_mm - self.min_corner_mm[axis]) / v - 0.5).floor();
        if hi < lo || hi < 0.0 || lo >= n as f64 {
            return None;
        }
        Some((lo as usize, (hi as usize).min(n - 1)))
    }

    /// The inclusive range of voxel indices along `axis` whose cells intersect `[lo_mm, hi_mm]`, clamped to the
    /// grid; `None` if the interval misses the grid.
    pub fn index_range(&self, axis: usize, lo_mm: f64, hi_mm: f64) -> Option<(usize, usize)> {
        let n = self.shape()[axis];
        let lo = ((lo_mm - self.min_corner_mm[axis]) / self.voxel_mm[axis]).floor();
        let hi = ((hi_mm - self.min_corner_mm[axis]) / self.voxel_mm[axis]).floor();
        if hi < 0.0 || lo >= n as f64 || hi < lo {
            return None;
        }
        Some((lo.max(0.0) as usize, (hi as usize).min(n - 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn covering_grows_the_box_symmetrically_to_whole_voxels() {
        let g = VoxelGrid::covering([-1.0, 0.0, 2.0], [1.05, 0.9, 2.5], 0.5);
        assert_eq!(g.shape(), [5, 2, 1]);
        let (lo, hi) = g.bounds_mm();
        assert!((lo[0] + 1.225).abs() < 1e-12 && (hi[0] - 1.275).abs() < 1e-12);
        assert!((lo[1] + 0.05).abs() < 1e-12 && (hi[1] - 0.95).abs() < 1e-12);
        assert_eq!((lo[2], hi[2]), (2.0, 2.5));
    }

    #[test]
    fn first_centre_and_min_corner_describe_the_same_grid() {
        let g = VoxelGrid::from_first_centre([4, 3, 2], [0.5, 0.25, 1.0], [-1.0, 2.0, 20.5]);
        assert_eq!(g.min_corner_mm, [-1.25, 1.875, 20.0]);
        assert_eq!(g.first_centre_mm(), [-1.0, 2.0, 20.5]);
        assert_eq!(g.voxel_centre(1, 2, 1), [-0.5, 2.5, 21.5]);
        assert_eq!(g.position(1.0, 2.0, 1.0), Vec3::new(-0.5, 2.5, 21.5));
        assert_eq!(g.slice_z_mm(1), 21.5);
        assert_eq!(g.centre(), Vec3::new(-0.25, 2.25, 21.0));
        assert!(!g.is_cubic());
        assert!((g.voxel_volume_mm3() - 0.125).abs() < 1e-15);
    }

    #[test]
    fn ranges_select_centres_and_cells() {
        let g = VoxelGrid::cubic([10, 1, 1], 1.0, [0.0, 0.0, 0.0]);
        assert_eq!(g.centre_range(0, 0.5, 2.5), Some((0, 2)));
        assert_eq!(g.centre_range(0, 0.6, 1.4), None);
        assert_eq!(g.index_range(0, 0.6, 1.4), Some((0, 1)));
        assert_eq!(g.index_range(0, -5.0, 100.0), Some((0, 9)));
        assert_eq!(g.index_range(0, 10.0, 12.0), None);
    }

    proptest! {
        #[test]
        fn index_and_unindex_are_inverse(nx in 1usize..20, ny in 1usize..20, nz in 1usize..20, seed in 0usize..8000) {
            let g = VoxelGrid::cubic([nx, ny, nz], 0.5, [0.0; 3]);
            let idx = seed % g.len();
            let [i, j, k] = g.unindex(idx);
            prop_assert_eq!(g.index(i, j, k), idx);
        }

        #[test]
        fn every_voxel_centre_maps_back_to_its_voxel(
            n in prop::array::uniform3(1usize..12),
            voxel in prop::array::uniform3(0.05f64..3.0),
            corner in prop::array::uniform3(-100.0f64..100.0),
            pick in prop::array::uniform3(0usize..12),
        ) {
            let g = VoxelGrid { nx: n[0], ny: n[1], nz: n[2], voxel_mm: voxel, min_corner_mm: corner };
            let [i, j, k] = [pick[0] % n[0], pick[1] % n[1], pick[2] % n[2]];
            prop_assert_eq!(g.world_to_voxel(g.voxel_centre(i, j, k)), Some([i, j, k]));
            let (lo, hi) = g.bounds_mm();
            for a in 0..3 {
                prop_assert!(lo[a] < g.voxel_centre(i, j, k)[a] && g.voxel_centre(i, j, k)[a] < hi[a]);
            }
        }
    }
}
