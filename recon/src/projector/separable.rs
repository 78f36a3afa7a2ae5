//! The fast path: the voxel-driven model when every detector is parallel to the slices (u along x, v
//! along y). Slice z then maps onto view k by `col = a + b ix`, `row = c + d iy`, so bilinear
//! interpolation separates into a blend of two detector rows and gather-free runs along the row (see the
//! module above).

use rayon::prelude::*;
use tomolab_hal::{DetectorGeometry, ViewPose};

use super::{ProjectorPair, ViewWeight, check_weighted, is_axis_aligned, validate_setup, voxel_back, voxel_forward};
use crate::error::{Result, invalid};
use crate::geometry::ViewMatrix;
use tomolab_hal::VoxelGrid;

/// The separable voxel-driven projector (every detector parallel to the slices).
#[derive(Debug, Clone)]
pub struct SeparableProjector {
    volume: VoxelGrid,
    detector: DetectorGeometry,
    poses: Vec<ViewPose>,
    matrices: Vec<ViewMatrix>,
    /// 0, 1, 2, ... (nx values): offsets inside a run as f32, so the run loops vectorise.
    ramp: Vec<f32>,
}

impl SeparableProjector {
    /// A projector; refused when some detector is not parallel to the slices with u along x, v along y.
    pub fn new(volume: VoxelGrid, detector: DetectorGeometry, poses: &[ViewPose]) -> Result<Self> {
        let matrices = validate_setup(&volume, &detector, poses)?;
        if !poses.iter().all(is_axis_aligned) {
            return Err(invalid(
                "path",
                "the fast kernel needs every detector parallel to the slices (u along x, v along y)",
            ));
        }
        let ramp = (0..volume.nx).map(|k| k as f32).collect();
        Ok(Self { volume, detector, poses: poses.to_vec(), matrices, ramp })
    }

    /// Per-view, per-slice tables of the fast kernel.
    fn fast_tables(&self, k: usize, iz: usize, weight: ViewWeight) -> FastTables {
        let g = &self.volume;
        let m = &self.matrices[k].m;
        let z = g.slice_z_mm(iz);
        let [ox, oy, _] = g.first_centre_mm();
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
                            let Some((j0, fy)) = t.detector_row(iy, rows) else { continue };
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
                let Some((j0, fy)) = t.detector_row(iy, rows) else { continue };
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
}

impl ProjectorPair for SeparableProjector {
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
        voxel_forward(self, x, views, out, |k, image| self.forward_view_fast(x, k, image))
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
        let slice_len = self.volume.slice_len();
        for (slab, slab_out) in out.chunks_mut(SLAB * slice_len).enumerate() {
            self.back_slab_fast(proj, views, weights, slab * SLAB, slab_out);
        }
        Ok(())
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

impl FastTables {
    /// The detector row pair voxel row `iy` falls between: the lower row (-1 to `rows - 1`, so a voxel half a
    /// pixel off either edge still reaches the edge row) and the upper row's weight; `None` off the detector.
    #[inline]
    fn detector_row(&self, iy: usize, rows: usize) -> Option<(i64, f32)> {
        let row = self.a_v + self.b_v * iy as f64;
        let j0f = row.floor();
        let j0 = j0f as i64;
        (-1..rows as i64).contains(&j0).then_some((j0, (row - j0f) as f32))
    }
}
