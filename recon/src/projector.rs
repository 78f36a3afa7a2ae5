//! The matched projector pair: forward projection `A` and its exact transpose, backprojection `A^T`.
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
//! - **Fast path.** When every view's detector is parallel to the slices with u along x and v along y (the
//!   stationary DBT detector), slice z maps onto view k by a pure magnification and shift:
//!   `col = a + b ix`, `row = c + d iy`. Bilinear interpolation is then separable: per voxel row, two
//!   detector rows are blended into a padded row buffer (a contiguous, vectorised loop); along the row the
//!   voxels split into runs whose left tap is `ix + const` and whose fraction is linear in `ix`, so the
//!   second pass is also a contiguous, gather-free loop. Slices are swept in slabs of four, row by row
//!   with every view and slice of the slab inside, so each view's current detector rows stay in cache
//!   while neighbouring slices reuse them; blocks of rows run in parallel.
//! - **General path.** Any pose (tilted or rotating detectors): a homogeneous 3x4 projection per voxel,
//!   computed incrementally along x, with the per-voxel Jacobian for the matched weight.
//!
//! Both produce the same numbers (up to rounding) when the fast path applies; a test checks it.
//!
//! The model drives along z, so it suits geometries whose rays are steep relative to the slices (DBT).
//! For near-horizontal rays (full-circle CT) `r_k` is clamped (cos >= 0.05); use [`crate::fdk::fdk`] there.

use rayon::prelude::*;
use tomolab_hal::{DetectorGeometry, ViewPose};

use crate::error::{Result, invalid};
use crate::geometry::{ViewMatrix, VolumeGeometry, validate_pose};

/// Which backprojection/projection kernel to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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

/// How each view's contribution is weighted in a raw backprojection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ViewWeight {
    /// A constant per view.
    Constant(f32),
    /// The matched model weight `c_k(v)` times a scale.
    Matched(f32),
    /// `scale * (w_ref / w)^2`: the FDK distance weight (`w` grows with distance from the source).
    Distance {
        /// Overall scale.
        scale: f32,
        /// `w` of the reference point (the isocentre).
        w_ref: f64,
    },
}

/// A projector for one volume grid, one detector and a set of poses.
#[derive(Debug, Clone)]
pub struct Projector {
    volume: VolumeGeometry,
    detector: DetectorGeometry,
    poses: Vec<ViewPose>,
    matrices: Vec<ViewMatrix>,
    fast: bool,
    /// 0, 1, 2, ... (nx values): offsets inside a run as f32, so the run loops vectorise.
    ramp: Vec<f32>,
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

impl Projector {
    /// A projector; `path` picks the kernel (`Fast` is refused when the geometry does not allow it).
    pub fn new(
        volume: VolumeGeometry,
        detector: DetectorGeometry,
        poses: &[ViewPose],
        path: KernelPath,
    ) -> Result<Self> {
        volume.validate()?;
        detector.validate().map_err(|e| invalid(e.field, e.problem))?;
        if poses.is_empty() {
            return Err(invalid("views", "at least one view is required"));
        }
        for (k, pose) in poses.iter().enumerate() {
            validate_pose(pose).map_err(|p| invalid(format!("views[{k}].pose"), p))?;
            // Every voxel must lie strictly between the source plane and the detector side.
            let m = ViewMatrix::new(pose, &detector);
            let g = &volume;
            for (ix, iy, iz) in [(0, 0, 0), (g.nx - 1, g.ny - 1, g.nz - 1), (0, g.ny - 1, g.nz - 1), (g.nx - 1, 0, 0)] {
                let (_, _, w) = m.project(&g.position(ix as f64, iy as f64, iz as f64));
                if w <= 1e-6 {
                    return Err(invalid(
                        format!("views[{k}].pose.source_mm"),
                        "the volume reaches the focal spot's plane",
                    ));
                }
            }
        }
        let aligned = poses.iter().all(is_axis_aligned);
        let fast = match path {
            KernelPath::Auto => aligned,
            KernelPath::General => false,
            KernelPath::Fast if aligned => true,
            KernelPath::Fast => {
                return Err(invalid(
                    "path",
                    "the fast kernel needs every detector parallel to the slices (u along x, v along y)",
                ));
            }
        };
        let matrices = poses.iter().map(|p| ViewMatrix::new(p, &detector)).collect();
        let ramp = (0..volume.nx).map(|k| k as f32).collect();
        Ok(Self { volume, detector, poses: poses.to_vec(), matrices, fast, ramp })
    }

    /// Whether the fast separable kernel is in use.
    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// Number of views.
    pub fn views(&self) -> usize {
        self.poses.len()
    }

    /// The volume grid.
    pub fn volume(&self) -> &VolumeGeometry {
        &self.volume
    }

    /// The detector grid.
    pub fn detector(&self) -> &DetectorGeometry {
        &self.detector
    }

    /// The poses.
    pub fn poses(&self) -> &[ViewPose] {
        &self.poses
    }

    fn check_sizes(&self, volume_len: usize, proj_len: usize, views: &[usize]) -> Result<()> {
        if volume_len != self.volume.len() {
            return Err(invalid("volume", format!("{volume_len} values, expected {}", self.volume.len())));
        }
        if proj_len != views.len() * self.detector.pixel_count() {
            return Err(invalid(
                "projections",
                format!("{proj_len} values, expected {} views x {} pixels", views.len(), self.detector.pixel_count()),
            ));
        }
        if let Some(&k) = views.iter().find(|&&k| k >= self.views()) {
            return Err(invalid("views", format!("view index {k} out of range (have {})", self.views())));
        }
        Ok(())
    }

    /// Forward projection `A x` of the views listed in `views` into `out` (overwritten; `views.len()` images).
    pub fn forward(&self, x: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        self.check_sizes(x.len(), out.len(), views)?;
        let npix = self.detector.pixel_count();
        out.par_chunks_mut(npix).zip(views.par_iter()).for_each(|(image, &k)| {
            image.fill(0.0);
            if self.fast {
                self.forward_view_fast(x, k, image);
            } else {
                self.forward_view_general(x, k, image);
            }
            apply_ray_weights(&self.poses[k], &self.detector, image);
        });
        Ok(())
    }

    /// Backprojection `A^T y` of the listed views into `out` (overwritten).
    pub fn back(&self, y: &[f32], views: &[usize], out: &mut [f32]) -> Result<()> {
        self.check_sizes(out.len(), y.len(), views)?;
        let npix = self.detector.pixel_count();
        let mut weighted = y.to_vec();
        weighted.par_chunks_mut(npix).zip(views.par_iter()).for_each(|(image, &k)| {
            apply_ray_weights(&self.poses[k], &self.detector, image);
        });
        out.fill(0.0);
        let weights = vec![ViewWeight::Matched(1.0); views.len()];
        self.backproject_raw(&weighted, views, &weights, out);
        Ok(())
    }

    /// Accumulates a weighted backprojection of `proj` (one image per entry of `views`) into `out`.
    pub(crate) fn backproject_raw(&self, proj: &[f32], views: &[usize], weights: &[ViewWeight], out: &mut [f32]) {
        let slice_len = self.volume.slice_len();
        if self.fast {
            for (slab, slab_out) in out.chunks_mut(SLAB * slice_len).enumerate() {
                self.back_slab_fast(proj, views, weights, slab * SLAB, slab_out);
            }
        } else {
            out.par_chunks_mut(slice_len).enumerate().for_each(|(iz, slice)| {
                self.back_slice_general(proj, views, weights, iz, slice);
            });
        }
    }

    /// Per-view, per-slice tables of the fast kernel.
    fn fast_tables(&self, k: usize, iz: usize, weight: ViewWeight) -> FastTables {
        let g = &self.volume;
        let m = &self.matrices[k].m;
        let z = g.slice_z_mm(iz);
        let (ox, oy) = (g.origin_mm[0], g.origin_mm[1]);
        let (dx, dy, dz) = (g.voxel_mm[0], g.voxel_mm[1], g.voxel_mm[2]);
        let w = m[2][2] * z + m[2][3] + m[2][0] * ox + m[2][1] * oy;
        let a_u = (m[0][0] * ox + m[0][1] * oy + m[0][2] * z + m[0][3]) / w;
        let b_u = m[0][0] * dx / w;
        let a_v = (m[1][0] * ox + m[1][1] * oy + m[1][2] * z + m[1][3]) / w;
        let b_v = m[1][1] * dy / w;
        let c = match weight {
            ViewWeight::Constant(s) => f64::from(s),
            ViewWeight::Matched(s) => f64::from(s) * dz * (b_u * b_v).abs(),
            ViewWeight::Distance { scale, w_ref } => f64::from(scale) * (w_ref / w).powi(2),
        };
        let cols = self.detector.cols as i64;
        let mut t = FastTables {
            runs: Vec::new(),
            c: c as f32,
            df: (b_u - 1.0) as f32,
            cmin: usize::MAX,
            cmax_excl: 0,
            a_v,
            b_v,
        };
        // Runs of voxels whose left tap is `ix + const`; inside a run the fraction is linear in ix.
        let mut current: Option<Run> = None;
        for ix in 0..g.nx {
            let col = a_u + b_u * ix as f64;
            let i0f = col.floor();
            let i0 = i0f as i64;
            if !(i0f.is_finite() && (-1..cols).contains(&i0)) {
                if let Some(run) = current.take() {
                    t.runs.push(run);
                }
                continue;
            }
            let base = (i0 + 1) as usize;
            t.cmin = t.cmin.min(i0.max(0) as usize);
            t.cmax_excl = t.cmax_excl.max((i0 + 1).min(cols - 1) as usize + 1);
            match &mut current {
                Some(run) if run.base + (ix - run.start) == base => run.end = ix + 1,
                _ => {
                    if let Some(run) = current.take() {
                        t.runs.push(run);
                    }
                    current = Some(Run { start: ix, end: ix + 1, base, f0: (col - i0f) as f32 });
                }
            }
        }
        if let Some(run) = current.take() {
            t.runs.push(run);
        }
        if t.runs.is_empty() {
            t.cmin = 0;
        }
        t
    }

    /// The fast backprojection of up to [`SLAB`] slices from `z0`: detector rows are shared by neighbouring
    /// slices, so a slab is swept row by row (in parallel over blocks of rows) with every view and slice
    /// inside, keeping each view's current detector rows in cache.
    fn back_slab_fast(&self, proj: &[f32], views: &[usize], weights: &[ViewWeight], z0: usize, slab_out: &mut [f32]) {
        let g = &self.volume;
        let (cols, rows) = (self.detector.cols, self.detector.rows);
        let npix = cols * rows;
        let slice_len = g.slice_len();
        let ns = slab_out.len() / slice_len;
        let nv = views.len();
        // tables[s * nv + i]: slice z0 + s, view views[i].
        let tables: Vec<FastTables> = (0..ns * nv)
            .into_par_iter()
            .map(|j| self.fast_tables(views[j % nv], z0 + j / nv, weights[j % nv]))
            .collect();
        let n_tasks = g.ny.div_ceil(ROWS_PER_TASK);
        let mut tasks: Vec<Vec<&mut [f32]>> = (0..n_tasks).map(|_| Vec::with_capacity(ns)).collect();
        for slice in slab_out.chunks_mut(slice_len) {
            for (task, chunk) in tasks.iter_mut().zip(slice.chunks_mut(ROWS_PER_TASK * g.nx)) {
                task.push(chunk);
            }
        }
        tasks.into_par_iter().enumerate().for_each_init(
            || vec![0.0f32; cols + 3],
            |rowbuf, (task, mut chunks)| {
                let rows_here = chunks.first().map_or(0, |c| c.len() / g.nx);
                for local in 0..rows_here {
                    let iy = task * ROWS_PER_TASK + local;
                    for (i, image) in proj.chunks_exact(npix).take(nv).enumerate() {
                        for (s, chunk) in chunks.iter_mut().enumerate() {
                            let t = &tables[s * nv + i];
                            if t.runs.is_empty() {
                                continue;
                            }
                            let row = t.a_v + t.b_v * iy as f64;
                            let j0f = row.floor();
                            let j0 = j0f as i64;
                            if !(-1..rows as i64).contains(&j0) {
                                continue;
                            }
                            let fy = (row - j0f) as f32;
                            let (c0, c1) = (t.cmin, t.cmax_excl);
                            let dst = &mut rowbuf[c0 + 1..c1 + 1];
                            if j0 < 0 {
                                dst.iter_mut().zip(&image[c0..c1]).for_each(|(d, &b)| *d = fy * b);
                            } else if j0 as usize == rows - 1 {
                                let r0 = &image[(rows - 1) * cols + c0..(rows - 1) * cols + c1];
                                dst.iter_mut().zip(r0).for_each(|(d, &a)| *d = (1.0 - fy) * a);
                            } else {
                                let j = j0 as usize;
                                let r0 = &image[j * cols + c0..j * cols + c1];
                                let r1 = &image[(j + 1) * cols + c0..(j + 1) * cols + c1];
                                dst.iter_mut().zip(r0.iter().zip(r1)).for_each(|(d, (&a, &b))| *d = a + fy * (b - a));
                            }
                            let acc = &mut chunk[local * g.nx..(local + 1) * g.nx];
                            let (c, df) = (t.c, t.df);
                            for run in &t.runs {
                                let n = run.end - run.start;
                                let b0 = &rowbuf[run.base..run.base + n];
                                let b1 = &rowbuf[run.base + 1..run.base + 1 + n];
                                let (cf0, cdf) = (c * run.f0, c * df);
                                for ((a, (&p, &q)), &k) in
                                    acc[run.start..run.end].iter_mut().zip(b0.iter().zip(b1)).zip(&self.ramp[..n])
                                {
                                    let wb = cf0 + cdf * k;
                                    *a += c * p + wb * (q - p);
                                }
                            }
                        }
                    }
                }
            },
        );
    }

    fn forward_view_fast(&self, x: &[f32], k: usize, image: &mut [f32]) {
        let g = &self.volume;
        let (cols, rows) = (self.detector.cols, self.detector.rows);
        let mut tmp = vec![0.0f32; cols + 3];
        for iz in 0..g.nz {
            let t = self.fast_tables(k, iz, ViewWeight::Matched(1.0));
            if t.runs.is_empty() {
                continue;
            }
            let (c0, c1) = (t.cmin, t.cmax_excl);
            for iy in 0..g.ny {
                let row = t.a_v + t.b_v * iy as f64;
                let j0f = row.floor();
                let j0 = j0f as i64;
                if !(-1..rows as i64).contains(&j0) {
                    continue;
                }
                let fy = (row - j0f) as f32;
                let xrow = &x[(iz * g.ny + iy) * g.nx..(iz * g.ny + iy + 1) * g.nx];
                tmp.fill(0.0);
                let (c, df) = (t.c, t.df);
                for run in &t.runs {
                    let n = run.end - run.start;
                    let xs = &xrow[run.start..run.end];
                    let (cf0, cdf) = (c * run.f0, c * df);
                    for ((d, &v), &k) in tmp[run.base..run.base + n].iter_mut().zip(xs).zip(&self.ramp[..n]) {
                        let wb = cf0 + cdf * k;
                        *d += (c - wb) * v;
                    }
                    for ((d, &v), &k) in tmp[run.base + 1..run.base + 1 + n].iter_mut().zip(xs).zip(&self.ramp[..n]) {
                        let wb = cf0 + cdf * k;
                        *d += wb * v;
                    }
                }
                let src = &tmp[c0 + 1..c1 + 1];
                if j0 >= 0 {
                    let j = j0 as usize;
                    let r0 = &mut image[j * cols + c0..j * cols + c1];
                    r0.iter_mut().zip(src).for_each(|(d, &s)| *d += (1.0 - fy) * s);
                }
                if j0 < rows as i64 - 1 {
                    let j = (j0 + 1) as usize;
                    let r1 = &mut image[j * cols + c0..j * cols + c1];
                    r1.iter_mut().zip(src).for_each(|(d, &s)| *d += fy * s);
                }
            }
        }
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

/// Slices processed together by the fast backprojector (they share detector rows in cache).
const SLAB: usize = 4;
/// Volume rows per parallel task of the fast backprojector.
const ROWS_PER_TASK: usize = 8;

/// A run of voxels `start..end` whose left detector tap (in the padded row buffer) is `base + (ix - start)`;
/// the bilinear fraction is `f0 + df * (ix - start)`.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    base: usize,
    f0: f32,
}

/// Tables of the fast kernel for one view and slice: `col = a_u + b_u ix` and `row = a_v + b_v iy`.
#[derive(Debug)]
struct FastTables {
    runs: Vec<Run>,
    /// Weight of this view and slice.
    c: f32,
    /// Increment of the fraction per voxel inside a run (`b_u - 1`).
    df: f32,
    cmin: usize,
    cmax_excl: usize,
    a_v: f64,
    b_v: f64,
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
