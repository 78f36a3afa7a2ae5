//! Iterative reconstruction on the matched projector pair: OS-SART and MLEM.
//!
//! **OS-SART** (Andersen & Kak 1984; ordered subsets after Wang & Jiang 2004): for each subset S of views,
//!
//! ```text
//! x <- max(0, x + lambda * A_S^T[(p_S - A_S x) / A_S 1] / A_S^T 1)
//! ```
//!
//! with the row sums `A_S 1` and column sums `A_S^T 1` computed once per subset. One subset is plain SART
//! (all views at once, i.e. SIRT-like); `subsets = views` is the classic one-view-at-a-time SART.
//!
//! **MLEM** (Shepp & Vardi 1982), applied to line integrals as to emission data:
//! `x <- x / A^T 1 * A^T (p / A x)`. It keeps x non-negative by construction.
//!
//! Both stop after `iterations` full passes, or earlier when the relative update `|dx| / |x|` of a pass
//! falls below `tolerance`.

use std::time::Instant;

use crate::error::{Result, invalid};
use crate::fbp::check_projector;
use crate::geometry::{Projections, Volume};
use crate::projector::{KernelPath, ProjectorPair, VoxelProjector};
use tomolab_hal::VoxelGrid;

/// Settings of OS-SART.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SartOptions {
    /// Full passes over the data.
    pub iterations: usize,
    /// Number of ordered subsets (1 = simultaneous; views = classic SART).
    pub subsets: usize,
    /// Relaxation factor lambda, in (0, 2).
    pub relaxation: f32,
    /// Clamp negative values to zero after every update.
    pub positivity: bool,
    /// Stop when a pass changes x by less than this fraction of |x|.
    pub tolerance: Option<f32>,
    /// Kernel.
    pub path: KernelPath,
}

impl Default for SartOptions {
    fn default() -> Self {
        Self { iterations: 10, subsets: 5, relaxation: 0.8, positivity: true, tolerance: None, path: KernelPath::Auto }
    }
}

/// Settings of MLEM.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlemOptions {
    /// Full passes.
    pub iterations: usize,
    /// Stop when a pass changes x by less than this fraction of |x|.
    pub tolerance: Option<f32>,
    /// Kernel.
    pub path: KernelPath,
}

impl Default for MlemOptions {
    fn default() -> Self {
        Self { iterations: 20, tolerance: None, path: KernelPath::Auto }
    }
}

/// What an iterative run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IterationReport {
    /// Passes performed.
    pub iterations: usize,
    /// Relative update |dx| / |x| of each pass.
    pub relative_updates: Vec<f32>,
    /// Relative residual |p - A x| / |p| after the last pass.
    pub relative_residual: f32,
    /// Time of each pass, s.
    #[serde(default)]
    pub pass_s: Vec<f64>,
}

impl IterationReport {
    /// Books one pass whose squared update norm was `change`; returns whether the tolerance stops the run.
    fn record_pass(&mut self, start: Instant, change: f64, x: &[f32], tolerance: Option<f32>) -> bool {
        self.pass_s.push(start.elapsed().as_secs_f64());
        self.iterations += 1;
        let rel = (change.sqrt() / norm(x).max(f64::MIN_POSITIVE)) as f32;
        self.relative_updates.push(rel);
        tolerance.is_some_and(|t| rel < t)
    }
}

/// Views of subset `s` of `n`: interleaved (0, n_sub, 2 n_sub, ...), which spreads each subset over the arc.
fn subset_views(views: usize, subsets: usize, s: usize) -> Vec<usize> {
    (s..views).step_by(subsets).collect()
}

fn gather(projections: &Projections, views: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(views.len() * projections.pixels());
    for &k in views {
        out.extend_from_slice(projections.view(k));
    }
    out
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
}

fn residual<P: ProjectorPair + ?Sized>(projector: &P, projections: &Projections, x: &[f32]) -> Result<f32> {
    let all: Vec<usize> = (0..projections.views()).collect();
    let mut ax = vec![0.0; projections.data.len()];
    projector.forward(x, &all, &mut ax)?;
    let num: f64 = ax.iter().zip(&projections.data).map(|(&a, &p)| f64::from(a - p).powi(2)).sum::<f64>().sqrt();
    Ok((num / norm(&projections.data).max(f64::MIN_POSITIVE)) as f32)
}

fn check_start(start: Option<&Volume>, volume: &VoxelGrid) -> Result<Vec<f32>> {
    match start {
        Some(v) if v.geometry != *volume => {
            Err(invalid("start", "the starting volume's grid differs from the target grid"))
        }
        Some(v) => Ok(v.data.clone()),
        None => Ok(vec![0.0; volume.len()]),
    }
}

/// OS-SART from `start` (zeros if `None`), on the voxel-driven projector that `options.path` picks.
pub fn sart(
    projections: &Projections,
    volume: &VoxelGrid,
    options: &SartOptions,
    start: Option<&Volume>,
) -> Result<(Volume, IterationReport)> {
    projections.validate()?;
    check_sart(projections, options)?;
    let projector = VoxelProjector::new(*volume, projections.detector, &projections.poses, options.path)?;
    sart_with(projections, &projector, options, start)
}

fn check_sart(projections: &Projections, options: &SartOptions) -> Result<()> {
    if options.iterations == 0 {
        return Err(invalid("options.iterations", "must be at least 1"));
    }
    if options.subsets == 0 || options.subsets > projections.views() {
        return Err(invalid(
            "options.subsets",
            format!("must lie in 1..={}, got {}", projections.views(), options.subsets),
        ));
    }
    if !(options.relaxation > 0.0 && options.relaxation < 2.0) {
        return Err(invalid("options.relaxation", format!("must lie in (0, 2), got {}", options.relaxation)));
    }
    Ok(())
}

/// OS-SART from `start` (zeros if `None`) through any projector, on its volume grid (`options.path` is
/// unused).
pub fn sart_with<P: ProjectorPair + ?Sized>(
    projections: &Projections,
    projector: &P,
    options: &SartOptions,
    start: Option<&Volume>,
) -> Result<(Volume, IterationReport)> {
    projections.validate()?;
    check_projector(projections, projector)?;
    check_sart(projections, options)?;
    let volume = projector.volume();
    let mut x = check_start(start, volume)?;
    let npix = projections.pixels();
    // Per-subset normalisations.
    let mut subsets = Vec::with_capacity(options.subsets);
    for s in 0..options.subsets {
        let views = subset_views(projections.views(), options.subsets, s);
        let ones_vol = vec![1.0f32; volume.len()];
        let mut row_sums = vec![0.0f32; views.len() * npix];
        projector.forward(&ones_vol, &views, &mut row_sums)?;
        let ones_proj = vec![1.0f32; views.len() * npix];
        let mut col_sums = vec![0.0f32; volume.len()];
        projector.back(&ones_proj, &views, &mut col_sums)?;
        let data = gather(projections, &views);
        subsets.push((views, row_sums, col_sums, data));
    }
    let mut report =
        IterationReport { iterations: 0, relative_updates: Vec::new(), relative_residual: 0.0, pass_s: Vec::new() };
    let mut ax = Vec::new();
    let mut update = vec![0.0f32; volume.len()];
    for _ in 0..options.iterations {
        let start = Instant::now();
        let mut change = 0.0f64;
        for (views, row_sums, col_sums, data) in &subsets {
            ax.resize(views.len() * npix, 0.0);
            projector.forward(&x, views, &mut ax)?;
            for ((a, &p), &rs) in ax.iter_mut().zip(data).zip(row_sums) {
                *a = if rs > 1e-6 { (p - *a) / rs } else { 0.0 };
            }
            projector.back(&ax, views, &mut update)?;
            for ((xv, &u), &cs) in x.iter_mut().zip(&update).zip(col_sums) {
                if cs > 1e-6 {
                    let mut new = *xv + options.relaxation * u / cs;
                    if options.positivity && new < 0.0 {
                        new = 0.0;
                    }
                    change += f64::from(new - *xv).powi(2);
                    *xv = new;
                }
            }
        }
        if report.record_pass(start, change, &x, options.tolerance) {
            break;
        }
    }
    report.relative_residual = residual(&projector, projections, &x)?;
    Ok((Volume { geometry: *volume, data: x }, report))
}

/// MLEM from `start` (a uniform volume matching the mean line integral if `None`), on the voxel-driven
/// projector that `options.path` picks.
pub fn mlem(
    projections: &Projections,
    volume: &VoxelGrid,
    options: &MlemOptions,
    start: Option<&Volume>,
) -> Result<(Volume, IterationReport)> {
    projections.validate()?;
    if options.iterations == 0 {
        return Err(invalid("options.iterations", "must be at least 1"));
    }
    let projector = VoxelProjector::new(*volume, projections.detector, &projections.poses, options.path)?;
    mlem_with(projections, &projector, options, start)
}

/// MLEM through any projector, on its volume grid (`options.path` is unused).
pub fn mlem_with<P: ProjectorPair + ?Sized>(
    projections: &Projections,
    projector: &P,
    options: &MlemOptions,
    start: Option<&Volume>,
) -> Result<(Volume, IterationReport)> {
    projections.validate()?;
    check_projector(projections, projector)?;
    if options.iterations == 0 {
        return Err(invalid("options.iterations", "must be at least 1"));
    }
    let volume = projector.volume();
    let all: Vec<usize> = (0..projections.views()).collect();
    let mut x = match start {
        Some(_) => check_start(start, volume)?,
        None => {
            let mean =
                projections.data.iter().map(|&v| f64::from(v.max(0.0))).sum::<f64>() / projections.data.len() as f64;
            let thickness = volume.nz as f64 * volume.voxel_mm[2];
            vec![(mean / thickness).max(1e-6) as f32; volume.len()]
        }
    };
    let mut sens = vec![0.0f32; volume.len()];
    projector.back(&vec![1.0f32; projections.data.len()], &all, &mut sens)?;
    let mut ax = vec![0.0f32; projections.data.len()];
    let mut ratio_bp = vec![0.0f32; volume.len()];
    let mut report =
        IterationReport { iterations: 0, relative_updates: Vec::new(), relative_residual: 0.0, pass_s: Vec::new() };
    for _ in 0..options.iterations {
        let start = Instant::now();
        projector.forward(&x, &all, &mut ax)?;
        for (a, &p) in ax.iter_mut().zip(&projections.data) {
            *a = if *a > 1e-9 { p.max(0.0) / *a } else { 0.0 };
        }
        projector.back(&ax, &all, &mut ratio_bp)?;
        let mut change = 0.0f64;
        for ((xv, &r), &s) in x.iter_mut().zip(&ratio_bp).zip(&sens) {
            let new = if s > 1e-6 { *xv * r / s } else { 0.0 };
            change += f64::from(new - *xv).powi(2);
            *xv = new;
        }
        if report.record_pass(start, change, &x, options.tolerance) {
            break;
        }
    }
    report.relative_residual = residual(&projector, projections, &x)?;
    Ok((Volume { geometry: *volume, data: x }, report))
}
