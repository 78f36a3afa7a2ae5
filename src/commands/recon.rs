//! `tomolab recon`: reconstruct an acquisition bundle into slices.
//!
//! Writes into `--out`: `volume.nrrd` (float32, spacing and origin in mm), `slices.tif` (16-bit stack; the
//! map to 1/mm is in each page's description and in `recon.json`), `previews/slice_NNN.png`,
//! `synthetic2d.png`, and `recon.json` (grid, options, timings).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tomolab_recon::fdk::{FdkOptions, default_ct_volume, fdk};
use tomolab_recon::io::{TiffScaling, write_nrrd, write_png, write_tiff_stack};
use tomolab_recon::{
    Crop, DefectRepair, FbpOptions, IterationReport, KernelPath, MlemOptions, Normalisation, PreprocessOptions,
    SartOptions, VolumeGeometry, VolumeOptions, Window, fbp, line_integrals, mlem, sart, synthetic_2d,
    tomosynthesis_volume,
};

/// Reconstruction algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Filtered backprojection for tomosynthesis.
    Fbp,
    /// OS-SART (iterative, matched projector pair).
    Sart,
    /// MLEM (iterative, matched projector pair).
    Mlem,
    /// FDK, for full-circle scans (breast CT).
    Fdk,
}

/// How the bundle's frames are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NormalisationArg {
    /// Raw counts with dark and flood frames in the bundle.
    DarkFlood,
    /// Frames already hold transmissions I/I0.
    Transmission,
    /// Frames already hold line integrals.
    LineIntegrals,
}

/// Backprojection kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelArg {
    /// Fast separable kernel when the detector is parallel to the slices.
    Auto,
    /// Always the general kernel.
    General,
}

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
    /// Height of the breast support above the detector surface, mm.
    #[arg(long, default_value_t = 0.0)]
    pub support_height_mm: f64,
    /// FBP/FDK apodization window: ram-lak, shepp-logan, cosine, hamming, hann.
    #[arg(long, default_value = "hann")]
    pub window: String,
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
    pub normalisation: NormalisationArg,
    /// Skip automatic defective-pixel repair.
    #[arg(long)]
    pub no_defect_repair: bool,
    /// Crop the detector to the pixels whose line integral exceeds this value (plus a 16-pixel margin).
    #[arg(long)]
    pub crop_threshold: Option<f32>,
    /// Backprojection kernel.
    #[arg(long, value_enum, ignore_case = true, default_value = "auto")]
    pub kernel: KernelArg,
    /// Number of PNG slice previews.
    #[arg(long, default_value_t = 5)]
    pub previews: usize,
}

#[derive(Serialize)]
struct Summary<'a> {
    acquisition: String,
    algorithm: Algorithm,
    views: usize,
    detector_cols: usize,
    detector_rows: usize,
    volume: VolumeGeometry,
    tiff_scaling: TiffScaling,
    preprocess_s: f64,
    reconstruct_s: f64,
    iterations: Option<&'a IterationReport>,
}

/// Runs the reconstruction and prints a one-line report.
pub fn run(args: &ReconArgs) -> anyhow::Result<()> {
    let report = execute(args)?;
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, report.as_bytes())?;
    Ok(())
}

/// The arguments `tomolab recon ACQUISITION --out OUT --support-height-mm H` would give: the default FBP.
pub fn default_fbp(
    acquisition: &std::path::Path,
    out: &std::path::Path,
    support_height_mm: f64,
) -> anyhow::Result<ReconArgs> {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ReconArgs,
    }
    let support = support_height_mm.to_string();
    let argv = [
        std::ffi::OsStr::new("recon"),
        acquisition.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--support-height-mm".as_ref(),
        support.as_ref(),
    ];
    Ok(<Wrapper as clap::Parser>::try_parse_from(argv)?.args)
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
    let t0 = Instant::now();
    let acq = tomolab_hal::bundle::load(&args.acquisition)
        .with_context(|| format!("loading acquisition {}", args.acquisition.display()))?;
    if !acq.is_complete() {
        eprintln!("warning: the acquisition is incomplete ({:?}); reconstructing the views it has", acq.meta.status);
    }
    let preprocess = PreprocessOptions {
        normalisation: match args.normalisation {
            NormalisationArg::DarkFlood => Normalisation::DarkFlood,
            NormalisationArg::Transmission => Normalisation::Transmission,
            NormalisationArg::LineIntegrals => Normalisation::LineIntegrals,
        },
        defects: if args.no_defect_repair { DefectRepair::None } else { DefectRepair::Auto },
        crop: args.crop_threshold.map_or(Crop::None, |threshold| Crop::Auto { threshold, margin: 16 }),
        ..PreprocessOptions::default()
    };
    let projections = line_integrals(&acq, &preprocess)?;
    let preprocess_s = t0.elapsed().as_secs_f64();
    let path = match args.kernel {
        KernelArg::Auto => KernelPath::Auto,
        KernelArg::General => KernelPath::General,
    };
    let window: Window = args.window.to_ascii_lowercase().parse()?;
    let volume_options = VolumeOptions {
        voxel_xy_mm: args.voxel_mm,
        slice_mm: args.slice_mm,
        thickness_mm: args.thickness_mm,
        support_height_mm: args.support_height_mm,
    };
    let t1 = Instant::now();
    let mut report = None;
    let volume = match args.algorithm {
        Algorithm::Fdk => {
            let grid = default_ct_volume(&projections, args.voxel_mm)?;
            fdk(&projections, &grid, &FdkOptions { window, cutoff: args.cutoff })?
        }
        algorithm => {
            let grid = tomosynthesis_volume(&acq.meta, &projections, &volume_options)?;
            match algorithm {
                Algorithm::Sart => {
                    let options = SartOptions {
                        iterations: args.iterations,
                        subsets: args.subsets,
                        relaxation: args.relaxation,
                        path,
                        ..SartOptions::default()
                    };
                    let (v, r) = sart(&projections, &grid, &options, None)?;
                    report = Some(r);
                    v
                }
                Algorithm::Mlem => {
                    let options = MlemOptions { iterations: args.iterations, path, ..MlemOptions::default() };
                    let (v, r) = mlem(&projections, &grid, &options, None)?;
                    report = Some(r);
                    v
                }
                _ => {
                    let options = FbpOptions {
                        window,
                        cutoff: args.cutoff,
                        slice_thickness_cutoff: (args.slice_thickness_cutoff > 0.0)
                            .then_some(args.slice_thickness_cutoff),
                        path,
                    };
                    fbp(&projections, &grid, &options)?
                }
            }
        }
    };
    let reconstruct_s = t1.elapsed().as_secs_f64();
    std::fs::create_dir_all(args.out.join("previews"))
        .with_context(|| format!("creating {}", args.out.join("previews").display()))?;
    write_nrrd(&args.out.join("volume.nrrd"), &volume)?;
    let tiff_scaling = write_tiff_stack(&args.out.join("slices.tif"), &volume)?;
    let g = volume.geometry;
    let n = args.previews.min(g.nz);
    for i in 0..n {
        let iz = if n == 1 { g.nz / 2 } else { (i * (g.nz - 1)) / (n - 1) };
        write_png(&args.out.join("previews").join(format!("slice_{iz:03}.png")), volume.slice(iz), g.nx, g.ny)?;
    }
    let synth = synthetic_2d(&volume, 0.5)?;
    write_png(&args.out.join("synthetic2d.png"), &synth, g.nx, g.ny)?;
    let summary = Summary {
        acquisition: args.acquisition.display().to_string(),
        algorithm: args.algorithm,
        views: projections.views(),
        detector_cols: projections.detector.cols,
        detector_rows: projections.detector.rows,
        volume: g,
        tiff_scaling,
        preprocess_s,
        reconstruct_s,
        iterations: report.as_ref(),
    };
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(args.out.join("recon.json"), json + "\n")
        .with_context(|| format!("writing {}", args.out.join("recon.json").display()))?;
    Ok(format!(
        "{:?}: {} views -> {}x{}x{} voxels of {:.3}x{:.3}x{:.3} mm in {:.2} s; wrote {}\n",
        args.algorithm,
        projections.views(),
        g.nx,
        g.ny,
        g.nz,
        g.voxel_mm[0],
        g.voxel_mm[1],
        g.voxel_mm[2],
        reconstruct_s,
        args.out.display()
    ))
}
