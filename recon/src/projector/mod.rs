//! The matched projector pair: forward projection `A` and its exact transpose, backprojection `A^T`.
//!
//! Algorithms see a projector only through the [`ProjectorPair`] trait (as astra's algorithms take a
//! projector and RTK's iterative filters a forward/back pair), so a new projector plugs into FBP, SART,
//! MLEM and FDK by implementing it. The voxel-driven model below has two implementations,
//! [`SeparableProjector`] (the fast path) and [`GeneralProjector`]; [`VoxelProjector`] picks one by
//! [`KernelPath`].
//!
//! # The model
//!
//! The volume is a stack of z-slices. For one view, each slice is mapped onto the detector through the
//! focal spot, and each voxel is spread onto the detector with bilinear weights at its projected centre
//! ("voxel-driven splatting"). Scaled correctly, that approximates the line integral:
//!
//! ```text
//! (A x)[k, pixel] = r_k(pixel) * sum_voxels x[v] * c_k(v) * bilinear(pixel; proj_k(v))
//! c_k(v)          = dz * dx * dy * |det d(col,row)/d(x,y)|      (projected voxel area, in pixels)
//! r_k(pixel)      = |ray| / |ray_z|                              (path length per unit height)
//! ```
//!
//! Since `sum_v bilinear(pixel; proj(v)) ~ 1 / (projected voxel area)`, a uniform slab of thickness T
//! projects to `mu T / cos(theta)`, the true line integral. `A^T` uses the same weights and the same
//! bilinear taps read instead of written, so `<A x, y> = <x, A^T y>` holds to rounding (checked by a proptest).
//!
//! # Two kernels
//!
//! - **Fast path** ([`SeparableProjector`]). When every view's detector is parallel to the slices with u
//!   along x and v along y (the stationary DBT detector), slice z maps onto view k by a pure
//!   magnification and shift:
//!   `col = a + b ix`, `row = c + d iy`. Bilinear interpolation is then separable: per voxel row, two
//!   detector rows are blended into a padded row buffer (a contiguous, vectorised loop); along the row the
//!   voxels split into runs whose left tap is `ix + const` and whose fraction is linear in `ix`, so the
//!   second pass is also a contiguous, gather-free loop. Slices are swept in slabs of four, row by row
//!   with every view and slice of the slab inside, so each view's current detector rows stay in cache
//!   while neighbouring slices reuse them; blocks of rows run in parallel.
//! - **General path** ([`GeneralProjector`]). Any pose (tilted or rotating detectors): a homogeneous 3x4
//!   projection per voxel, computed incrementally along x, with the per-voxel Jacobian for the matched
//!   weight.
//!
//! Both produce the same numbers (up to rounding) when the fast path applies; a test checks it.
//!
//! The model drives along z, so it suits geometries whose rays are steep relative to the slices (DBT).
//! For near-horizontal rays (full-circle CT) `r_k` is clamped (cos >= 0.05); use [`crate::fdk::fdk`] there.

mod general;
mod separable;

pub use general::GeneralProjector;
pub use separable::SeparableProjector;

use rayon::prelude::*;
use tomolab_hal::{DetectorGeometry, ViewPose};

use crate::error::{Result, invalid};
use crate::geometry::{ViewMatrix, validate_pose};
use tomolab_hal::VoxelGrid;

/// Which backprojection/projection kernel to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum KernelPath {
    /// The fast separable kernel when the geometry allows it, else the general one.
    #[default]
    Auto,
    /// Always the general kernel.
    General,
    /// The fast kernel; refused when some detector is not parallel to the slices.
    Fast,
}

/// Smallest |cos| between a ray and the z axis used in the path-length weight.
const MIN_COS_Z: f64 = 0.05;

/// How each view's contribution is weighted in [`ProjectorPair::backproject_weighted`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ViewWeight {
    /// A constant per view.
    Constant(f32),
    /// The matched model weight `c_k(v)` (projected voxel area) times a scale.
    Matched(f32),
    /// `scale * (w_ref / w)^2`: the FDK distance weight (`w` grows with distance from the source).
    Distance {
        /// Overall scale.
        scale: f32,
        /// `w` of the reference point (the isocentre).
        w_ref: f64,
    },
}

/// A matched forward/back projector pair for one volume grid, one detector and a set of poses.
///
/// Images are row-major `rows` x `cols`, one per entry of `views` (indices into [`Self::poses`]); volumes
/// are in [`VoxelGrid`]'s order. Implementations must be `Sync`: the algorithms call them from rayon.
pub trait ProjectorPair: Sync {
    /// The volume grid.
    fn volume(&self) -> &VoxelGrid;
    /// The detector grid.
    fn detector(&self) -> &DetectorGeometry;
    /// One pose per view.
    fn poses(&self) -> &[ViewPose];

    /// Forward projection `A x` of the listed views into `out` (overwritten; `views.len()` images).
    fn forward(&self, x: &[f32], views: &[usize], out: &mut [f32]) -> Result<()>;

    /// Backprojection `A^T y` of the listed views into `out` (overwritten); exactly the transpose of
    /// [`Self::forward`].
    fn back(&self, y: &[f32], views: &[usize], out: &mut [f32]) -> Result<()>;

    /// Adds to `out` the backprojection of `proj` (one image per entry of `views`), each view's value at a
    /// voxel's projection weighted by `weights[i]` (FBP and FDK; no path-length weight is applied).
    fn backproject_weighted(
        &self,
        proj: &[f32],
        views: &[usize],
        weights: &[ViewWeight],
        out: &mut [f32],
    ) -> Result<()>;

    /// Number of views.
    fn views(&self) -> usize {
        self.poses().len()
    }

    /// Checks the lengths of a volume and of a stack of `views.len()` images, and the view indices.
    fn check_sizes(&self, volume_len: usize, proj_len: usize, views: &[usize]) -> Result<()> {
        let (volume, npix) = (self.volume().len(), self.detector().pixel_count());
        if volume_len != volume {
            return Err(invalid("volume", format!("{volume_len} values, expected {volume}")));
        }
        if proj_len != views.len() * npix {
            return Err(invalid(
                "projections",
                format!("{proj_len} values, expected {} views x {npix} pixels", views.len()),
            ));
        }
        if let Some(&k) = views.iter().find(|&&k| k >= self.views()) {
            return Err(invalid("views", format!("view index {k} out of range (have {})", self.views())));
        }
        Ok(())
    }
}

impl<P: ProjectorPair + ?Sized> ProjectorPair for &P {
    fn volume(&self) -> &VoxelGrid {
        (**self).volume()
    }
    fn detector(&self) -> &DetectorGeometry {
        (**self).detector()
    }
    fn poses(&self) -> &[ViewPose] {
        (**self).poses()
    }
    fn forward(&self, x: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        (**self).forward(x, views, out)
    }
    fn back(&self, y: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        (**self).back(y, views, out)
    }
    fn backproject_weighted(
        &self,
        proj: &[f32],
        views: &[usize],
        weights: &[ViewWeight],
        out: &mut [f32],
    ) -> Result<()> {
        (**self).backproject_weighted(proj, views, weights, out)
    }
}

/// The voxel-driven projector with the kernel [`KernelPath`] picks.
#[derive(Debug, Clone)]
pub enum VoxelProjector {
    /// The separable fast path.
    Separable(SeparableProjector),
    /// The general path.
    General(GeneralProjector),
}

impl VoxelProjector {
    /// A projector; `path` picks the kernel (`Fast` is refused when the geometry does not allow it).
    pub fn new(volume: VoxelGrid, detector: DetectorGeometry, poses: &[ViewPose], path: KernelPath) -> Result<Self> {
        let aligned = poses.iter().all(is_axis_aligned);
        let fast = match path {
            KernelPath::Auto => aligned,
            KernelPath::General => false,
            KernelPath::Fast if aligned => true,
            KernelPath::Fast => {
                validate_setup(&volume, &detector, poses)?;
                return Err(invalid(
                    "path",
                    "the fast kernel needs every detector parallel to the slices (u along x, v along y)",
                ));
            }
        };
        Ok(if fast {
            Self::Separable(SeparableProjector::new(volume, detector, poses)?)
        } else {
            Self::General(GeneralProjector::new(volume, detector, poses)?)
        })
    }

    /// Whether the fast separable kernel is in use.
    pub fn is_fast(&self) -> bool {
        matches!(self, Self::Separable(_))
    }

    fn inner(&self) -> &dyn ProjectorPair {
        match self {
            Self::Separable(p) => p,
            Self::General(p) => p,
        }
    }
}

impl ProjectorPair for VoxelProjector {
    fn volume(&self) -> &VoxelGrid {
        self.inner().volume()
    }
    fn detector(&self) -> &DetectorGeometry {
        self.inner().detector()
    }
    fn poses(&self) -> &[ViewPose] {
        self.inner().poses()
    }
    fn forward(&self, x: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        self.inner().forward(x, views, out)
    }
    fn back(&self, y: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        self.inner().back(y, views, out)
    }
    fn backproject_weighted(
        &self,
        proj: &[f32],
        views: &[usize],
        weights: &[ViewWeight],
        out: &mut [f32],
    ) -> Result<()> {
        self.inner().backproject_weighted(proj, views, weights, out)
    }
}

/// Whether `pose`'s detector is parallel to the slices with u along x and v along y.
fn is_axis_aligned(pose: &ViewPose) -> bool {
    let (u, v) = (pose.u_step_mm, pose.v_step_mm);
    let tol = 1e-9;
    u.y.abs() <= tol * u.norm()
        && u.z.abs() <= tol * u.norm()
        && v.x.abs() <= tol * v.norm()
        && v.z.abs() <= tol * v.norm()
}

/// Checks a projector's grid, detector and poses (every voxel strictly between the source plane and the
/// detector side) and returns each view's projective map.
fn validate_setup(volume: &VoxelGrid, detector: &DetectorGeometry, poses: &[ViewPose]) -> Result<Vec<ViewMatrix>> {
    crate::geometry::validate_grid(volume)?;
    detector.validate().map_err(|e| invalid(e.field, e.problem))?;
    if poses.is_empty() {
        return Err(invalid("views", "at least one view is required"));
    }
    for (k, pose) in poses.iter().enumerate() {
        validate_pose(pose).map_err(|p| invalid(format!("views[{k}].pose"), p))?;
        let m = ViewMatrix::new(pose, detector);
        let g = volume;
        for (ix, iy, iz) in [(0, 0, 0), (g.nx - 1, g.ny - 1, g.nz - 1), (0, g.ny - 1, g.nz - 1), (g.nx - 1, 0, 0)] {
            let (_, _, w) = m.project(&g.position(ix as f64, iy as f64, iz as f64));
            if w <= 1e-6 {
                return Err(invalid(format!("views[{k}].pose.source_mm"), "the volume reaches the focal spot's plane"));
            }
        }
    }
    Ok(poses.iter().map(|p| ViewMatrix::new(p, detector)).collect())
}

/// The voxel-driven `A x`: per listed view (in parallel), `raw(k, image)` accumulates the unweighted model
/// into a zeroed image, then the path-length weights are applied.
fn voxel_forward<P: ProjectorPair + ?Sized>(
    p: &P,
    x: &[f32],
    views: &[usize],
    out: &mut [f32],
    raw: impl Fn(usize, &mut [f32]) + Sync,
) -> Result<()> {
    p.check_sizes(x.len(), out.len(), views)?;
    let (detector, poses) = (p.detector(), p.poses());
    out.par_chunks_mut(detector.pixel_count()).zip(views.par_iter()).for_each(|(image, &k)| {
        image.fill(0.0);
        raw(k, image);
        apply_ray_weights(&poses[k], detector, image);
    });
    Ok(())
}

/// The voxel-driven `A^T y`: path-length weights, then the matched backprojection.
fn voxel_back<P: ProjectorPair + ?Sized>(p: &P, y: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
    p.check_sizes(out.len(), y.len(), views)?;
    let (detector, poses) = (p.detector(), p.poses());
    let mut weighted = y.to_vec();
    weighted.par_chunks_mut(detector.pixel_count()).zip(views.par_iter()).for_each(|(image, &k)| {
        apply_ray_weights(&poses[k], detector, image);
    });
    out.fill(0.0);
    let weights = vec![ViewWeight::Matched(1.0); views.len()];
    p.backproject_weighted(&weighted, views, &weights, out)
}

/// Checks the arguments of [`ProjectorPair::backproject_weighted`].
fn check_weighted<P: ProjectorPair + ?Sized>(
    p: &P,
    proj: &[f32],
    views: &[usize],
    weights: &[ViewWeight],
    out: &[f32],
) -> Result<()> {
    p.check_sizes(out.len(), proj.len(), views)?;
    if weights.len() != views.len() {
        return Err(invalid("weights", format!("{} weights for {} views", weights.len(), views.len())));
    }
    Ok(())
}

/// Bilinear interpolation of `image` at fractional (col, row); pixels outside the detector count as zero.
#[inline]
pub(crate) fn bilinear_sample(image: &[f32], cols: usize, rows: usize, col: f64, row: f64) -> f32 {
    let (i0f, j0f) = (col.floor(), row.floor());
    let (fx, fy) = ((col - i0f) as f32, (row - j0f) as f32);
    let (i0, j0) = (i0f as i64, j0f as i64);
    let (ci, ri) = (cols as i64, rows as i64);
    if i0 >= 0 && i0 < ci - 1 && j0 >= 0 && j0 < ri - 1 {
        let o = j0 as usize * cols + i0 as usize;
        let (a, b, c, d) = (image[o], image[o + 1], image[o + cols], image[o + cols + 1]);
        let top = a + fx * (b - a);
        let bottom = c + fx * (d - c);
        return top + fy * (bottom - top);
    }
    if !(i0 >= -1 && i0 < ci && j0 >= -1 && j0 < ri) {
        return 0.0;
    }
    let mut s = 0.0;
    for (dj, wy) in [(0, 1.0 - fy), (1, fy)] {
        let j = j0 + dj;
        if j < 0 || j >= ri {
            continue;
        }
        for (di, wx) in [(0, 1.0 - fx), (1, fx)] {
            let i = i0 + di;
            if i < 0 || i >= ci {
                continue;
            }
            s += wx * wy * image[j as usize * cols + i as usize];
        }
    }
    s
}

/// The transpose of [`bilinear_sample`]: adds `value` to the four neighbours of (col, row).
#[inline]
pub(crate) fn bilinear_splat(image: &mut [f32], cols: usize, rows: usize, col: f64, row: f64, value: f32) {
    let (i0f, j0f) = (col.floor(), row.floor());
    let (fx, fy) = ((col - i0f) as f32, (row - j0f) as f32);
    let (i0, j0) = (i0f as i64, j0f as i64);
    let (ci, ri) = (cols as i64, rows as i64);
    if !(i0 >= -1 && i0 < ci && j0 >= -1 && j0 < ri) {
        return;
    }
    for (dj, wy) in [(0, 1.0 - fy), (1, fy)] {
        let j = j0 + dj;
        if j < 0 || j >= ri {
            continue;
        }
        for (di, wx) in [(0, 1.0 - fx), (1, fx)] {
            let i = i0 + di;
            if i < 0 || i >= ci {
                continue;
            }
            image[j as usize * cols + i as usize] += wx * wy * value;
        }
    }
}

/// Multiplies each pixel by the ray's path length per unit height, `|ray| / |ray_z|` (cos clamped at 0.05).
pub(crate) fn apply_ray_weights(pose: &ViewPose, detector: &DetectorGeometry, image: &mut [f32]) {
    for_each_ray_cos(pose, detector, image, |v, cos| *v /= cos as f32);
}

/// Calls `f(pixel, |cos|)` for every pixel, where cos is between the ray and the z axis (clamped at 0.05).
pub(crate) fn for_each_ray_cos(
    pose: &ViewPose,
    detector: &DetectorGeometry,
    image: &mut [f32],
    mut f: impl FnMut(&mut f32, f64),
) {
    let cols = detector.cols;
    for (r, row) in image.chunks_mut(cols).enumerate() {
        let start = pose.pixel_position(detector, 0.0, r as f64) - pose.source_mm;
        let step = pose.u_step_mm;
        for (c, v) in row.iter_mut().enumerate() {
            let d = start + step * c as f64;
            let cos = (d.z.abs() / d.norm()).max(MIN_COS_Z);
            f(v, cos);
        }
    }
}
