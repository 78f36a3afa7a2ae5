//! `tomolab recon`: reconstruct an acquisition bundle into slices.
//!
//! Writes into `--out`: `volume.nrrd` (float32, spacing and origin in mm), `slices.tif` (16-bit stack; the
//! map to 1/mm is in each page's description and in `recon.json`), `previews/slice_NNN.png`,
//! `synthetic2d.png`, and `recon.json` (grid, options, timings).

use std::path::{Path, PathBuf};

use anyhow::Context;
use tomolab_hal::AcquisitionMeta;
use tomolab_recon::io::writers::{standard_writers, write_all};
use tomolab_recon::{Algorithm, KernelPath, Normalisation, ReconConfig, Reconstruction, Window, reconstruct};

/// Arguments of `tomolab recon`.
#[derive(Debug, clap::Args)]
pub struct ReconArgs {
    /// Acquisition bundle directory (acquisition.json + frames.npy ...).
    pub acquisition: PathBuf,
    /// Reconstruction algorithm.
    #[arg(long, value_enum, ignore_case = true, default_value = "fbp")]
    pub algorithm: Algorithm,
    /// Output directory: created if missing; an existing one must be empty or hold an earlier reconstruction
    /// (its recon.json), which is replaced.
    #[arg(long)]
    pub out: PathBuf,
    /// In-plane voxel size, mm (default: detector pitch at the mid-breast plane).
    #[arg(long)]
    pub voxel_mm: Option<f64>,
    /// Slice spacing, mm.
    #[arg(long, default_value_t = 1.0)]
    pub slice_mm: f64,
    /// Slab thickness, mm (default: the compressed thickness recorded in the acquisition).
    #[arg(long)]
    pub thickness_mm: Option<f64>,
    /// Height of the breast support above the detector surface, mm (default: the height recorded in the
    /// acquisition, `support_height_mm`; 0 for bundles that predate that field).
    #[arg(long)]
    pub support_height_mm: Option<f64>,
    /// FBP/FDK apodization window.
    #[arg(long, value_enum, ignore_case = true, default_value = "hann")]
    pub window: Window,
    /// Window cutoff, fraction of Nyquist.
    #[arg(long, default_value_t = 1.0)]
    pub cutoff: f64,
    /// Slice-thickness filter cutoff, fraction of Nyquist (0 disables it).
    #[arg(long, default_value_t = 2.0)]
    pub slice_thickness_cutoff: f64,
    /// Iterations (SART, MLEM).
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Ordered subsets (SART).
    #[arg(long, default_value_t = 5)]
    pub subsets: usize,
    /// Relaxation (SART).
    #[arg(long, default_value_t = 0.8)]
    pub relaxation: f32,
    /// How frames are normalised.
    #[arg(long, value_enum, ignore_case = true, default_value = "dark-flood")]
    pub normalisation: Normalisation,
    /// Skip automatic defective-pixel repair.
    #[arg(long)]
    pub no_defect_repair: bool,
    /// Do not correct the 0 deg flood for each view's inverse-square and obliquity change of the open field.
    #[arg(long)]
    pub no_flood_geometry: bool,
    /// Crop the detector to the pixels whose line integral exceeds this value (plus a 16-pixel margin).
    #[arg(long)]
    pub crop_threshold: Option<f32>,
    /// Backprojection kernel (`fast` is refused when a detector is not parallel to the slices).
    #[arg(long, value_enum, ignore_case = true, default_value = "auto")]
    pub kernel: KernelPath,
    /// Number of PNG slice previews.
    #[arg(long, default_value_t = 5)]
    pub previews: usize,
}

impl ReconArgs {
    /// The reconstruction settings these arguments ask for, for an acquisition whose breast support is
    /// `recorded_support_mm` above the detector (if the bundle says).
    pub fn config(&self, recorded_support_mm: Option<f64>) -> ReconConfig {
        ReconConfig {
            algorithm: self.algorithm,
            normalisation: self.normalisation,
            defect_repair: !self.no_defect_repair,
            flood_geometry: !self.no_flood_geometry,
            crop_threshold: self.crop_threshold,
            voxel_mm: self.voxel_mm,
            slice_mm: self.slice_mm,
            thickness_mm: self.thickness_mm,
            support_height_mm: self.support_height_mm.or(recorded_support_mm).unwrap_or(0.0),
            window: self.window,
            cutoff: self.cutoff,
            // As before: any value that is not positive disables it.
            slice_thickness_cutoff: if self.slice_thickness_cutoff > 0.0 { self.slice_thickness_cutoff } else { 0.0 },
            iterations: self.iterations,
            subsets: self.subsets,
            relaxation: self.relaxation,
            kernel: self.kernel,
            ..ReconConfig::default()
        }
    }
}

/// Runs the reconstruction and prints a one-line report.
pub fn run(args: &ReconArgs) -> anyhow::Result<()> {
    let report = execute(args)?;
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, report.as_bytes())?;
    Ok(())
}

/// Refuses an `--out` that exists, is not empty and holds no earlier reconstruction (`recon.json`).
fn check_out(out: &std::path::Path) -> anyhow::Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(anyhow::Error::new(super::UsageError(format!("--out {} is not a directory", out.display()))));
    }
    let empty = std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?.next().is_none();
    if empty || out.join("recon.json").is_file() {
        return Ok(());
    }
    Err(anyhow::Error::new(super::UsageError(format!(
        "--out {} is not empty and holds no earlier reconstruction (no recon.json); refusing to overwrite it",
        out.display()
    ))))
}

/// Runs the reconstruction, writes its outputs and returns the one-line report.
pub fn execute(args: &ReconArgs) -> anyhow::Result<String> {
    check_out(&args.out)?;
    let acq = tomolab_hal::bundle::load(&args.acquisition)
        .with_context(|| format!("loading acquisition {}", args.acquisition.display()))?;
    if !acq.is_complete() {
        eprintln!("warning: the acquisition is incomplete ({:?}); reconstructing the views it has", acq.meta.status);
    }
    let recon = reconstruct(&acq, &args.config(acq.meta.support_height_mm))?;
    write_and_report(&args.out, &recon, &acq.meta, &args.acquisition, args.previews)
}

/// Writes a reconstruction of the bundle in `acquisition` with the standard writers (`previews` slice
/// previews) into `out`; returns the one-line report.
pub fn write_and_report(
    out: &Path,
    recon: &Reconstruction,
    meta: &AcquisitionMeta,
    acquisition: &Path,
    previews: usize,
) -> anyhow::Result<String> {
    let source = acquisition.display().to_string();
    write_all(out, recon, meta, &standard_writers(&source, previews))?;
    let g = recon.geometry();
    Ok(format!(
        "{:?}: {} views -> {}x{}x{} voxels of {:.3}x{:.3}x{:.3} mm in {:.2} s; wrote {}\n",
        recon.algorithm(),
        recon.report.views,
        g.nx,
        g.ny,
        g.nz,
        g.voxel_mm[0],
        g.voxel_mm[1],
        g.voxel_mm[2],
        recon.report.reconstruct_s,
        out.display()
    ))
}
