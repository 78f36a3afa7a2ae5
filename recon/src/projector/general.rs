//! The general path: the voxel-driven model for any pose (tilted or rotating detectors), a homogeneous
//! 3x4 projection per voxel computed incrementally along x, with the per-voxel Jacobian for the matched
//! weight.

use rayon::prelude::*;
use tomolab_hal::{DetectorGeometry, ViewPose};

use super::{
    ProjectorPair, ViewWeight, bilinear_sample, bilinear_splat, check_weighted, validate_setup, voxel_back,
    voxel_forward,
};
use crate::error::Result;
use crate::geometry::ViewMatrix;
use tomolab_hal::VoxelGrid;

/// The voxel-driven projector for any pose.
#[derive(Debug, Clone)]
pub struct GeneralProjector {
    volume: VoxelGrid,
    detector: DetectorGeometry,
    poses: Vec<ViewPose>,
    matrices: Vec<ViewMatrix>,
}

impl GeneralProjector {
    /// A projector for any poses (every voxel must lie between the focal spot's plane and the detector).
    pub fn new(volume: VoxelGrid, detector: DetectorGeometry, poses: &[ViewPose]) -> Result<Self> {
        let matrices = validate_setup(&volume, &detector, poses)?;
        Ok(Self { volume, detector, poses: poses.to_vec(), matrices })
    }

    /// Visits every voxel of slice `iz`, row `iy` for view `k`: calls `f(ix, col, row, weight)`.
    #[inline]
    fn general_row(&self, k: usize, iy: usize, iz: usize, weight: ViewWeight, mut f: impl FnMut(usize, f64, f64, f32)) {
        let g = &self.volume;
        let m = &self.matrices[k].m;
        let p = g.position(0.0, iy as f64, iz as f64);
        let e = |r: &[f64; 4]| r[0] * p.x + r[1] * p.y + r[2] * p.z + r[3];
        let (mut u, mut v, mut w) = (e(&m[0]), e(&m[1]), e(&m[2]));
        let (du, dv, dw) = (m[0][0] * g.voxel_mm[0], m[1][0] * g.voxel_mm[0], m[2][0] * g.voxel_mm[0]);
        let area = g.voxel_mm[0] * g.voxel_mm[1] * g.voxel_mm[2];
        for ix in 0..g.nx {
            let inv_w = 1.0 / w;
            let col = u * inv_w;
            let row = v * inv_w;
            let c = match weight {
                ViewWeight::Constant(s) => f64::from(s),
                ViewWeight::Matched(s) => {
                    let jxx = (m[0][0] - col * m[2][0]) * inv_w;
                    let jxy = (m[0][1] - col * m[2][1]) * inv_w;
                    let jyx = (m[1][0] - row * m[2][0]) * inv_w;
                    let jyy = (m[1][1] - row * m[2][1]) * inv_w;
                    f64::from(s) * area * (jxx * jyy - jxy * jyx).abs()
                }
                ViewWeight::Distance { scale, w_ref } => f64::from(scale) * (w_ref * inv_w).powi(2),
            };
            f(ix, col, row, c as f32);
            u += du;
            v += dv;
            w += dw;
        }
    }

    fn back_slice_general(&self, proj: &[f32], views: &[usize], weights: &[ViewWeight], iz: usize, slice: &mut [f32]) {
        let g = &self.volume;
        let det = &self.detector;
        let npix = det.pixel_count();
        for iy in 0..g.ny {
            let acc = &mut slice[iy * g.nx..(iy + 1) * g.nx];
            for (i, (&k, &weight)) in views.iter().zip(weights).enumerate() {
                let image = &proj[i * npix..(i + 1) * npix];
                self.general_row(k, iy, iz, weight, |ix, col, row, c| {
                    acc[ix] += c * bilinear_sample(image, det.cols, det.rows, col, row);
                });
            }
        }
    }

    fn forward_view_general(&self, x: &[f32], k: usize, image: &mut [f32]) {
        let g = &self.volume;
        let det = &self.detector;
        for iz in 0..g.nz {
            for iy in 0..g.ny {
                let xrow = &x[(iz * g.ny + iy) * g.nx..(iz * g.ny + iy + 1) * g.nx];
                self.general_row(k, iy, iz, ViewWeight::Matched(1.0), |ix, col, row, c| {
                    bilinear_splat(image, det.cols, det.rows, col, row, c * xrow[ix]);
                });
            }
        }
    }
}

impl ProjectorPair for GeneralProjector {
    fn volume(&self) -> &VoxelGrid {
        &self.volume
    }
    fn detector(&self) -> &DetectorGeometry {
        &self.detector
    }
    fn poses(&self) -> &[ViewPose] {
        &self.poses
    }
    fn forward(&self, x: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        voxel_forward(self, x, views, out, |k, image| self.forward_view_general(x, k, image))
    }
    fn back(&self, y: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        voxel_back(self, y, views, out)
    }
    fn backproject_weighted(
        &self,
        proj: &[f32],
        views: &[usize],
        weights: &[ViewWeight],
        out: &mut [f32],
    ) -> Result<()> {
        check_weighted(self, proj, views, weights, out)?;
        out.par_chunks_mut(self.volume.slice_len()).enumerate().for_each(|(iz, slice)| {
            self.back_slice_general(proj, views, weights, iz, slice);
        });
        Ok(())
    }
}
