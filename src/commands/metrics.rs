//! `tomolab metrics`: image-quality figures of a reconstructed volume (NRRD from `tomolab recon`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;
use tomolab_recon::io::read_nrrd;
use tomolab_recon::metrics::{Asf, Mtf, artifact_spread, disc_values, edge_mtf, rmse, sdnr, ssim};

/// Arguments of `tomolab metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Reconstructed volume (`volume.nrrd`).
    pub volume: PathBuf,
    /// Ground-truth attenuation volume on the same grid (NRRD): prints RMSE and SSIM.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Bead position and radius `X,Y,R` (mm): prints the ASF, its FWHM and the in-focus depth.
    #[arg(long, value_delimiter = ',')]
    pub bead: Option<Vec<f64>>,
    /// Lesion `X,Y,Z,R` (mm): prints the SDNR against the ring 1.5R..2.5R in the slice nearest Z.
    #[arg(long, value_delimiter = ',')]
    pub lesion: Option<Vec<f64>>,
    /// Edge region `Z,X0,Y0,X1,Y1` (mm): prints the in-plane MTF from a straight edge in that rectangle.
    #[arg(long, value_delimiter = ',')]
    pub edge: Option<Vec<f64>>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Default)]
struct Report {
    rmse_per_mm: Option<f64>,
    ssim: Option<f64>,
    asf: Option<Asf>,
    sdnr: Option<f64>,
    mtf: Option<Mtf>,
}

/// Computes and prints the requested metrics.
pub fn run(args: &MetricsArgs) -> anyhow::Result<()> {
    let volume = read_nrrd(&args.volume).with_context(|| format!("reading {}", args.volume.display()))?;
    let g = volume.geometry;
    let origin = g.first_centre_mm();
    let slice_at = |z: f64| -> anyhow::Result<usize> {
        let iz = ((z - origin[2]) / g.voxel_mm[2]).round();
        if !(0.0..g.nz as f64).contains(&iz) {
            bail!("z = {z} mm is outside the volume ({} .. {} mm)", g.slice_z_mm(0), g.slice_z_mm(g.nz - 1));
        }
        Ok(iz as usize)
    };
    for (name, values, n) in [("--bead", &args.bead, 3), ("--lesion", &args.lesion, 4), ("--edge", &args.edge, 5)] {
        if let Some(v) = values {
            if v.len() != n {
                bail!("{name} takes {n} comma-separated numbers, got {}", v.len());
            }
        }
    }
    let mut report = Report::default();
    if let Some(path) = &args.truth {
        let truth = read_nrrd(path).with_context(|| format!("reading {}", path.display()))?;
        report.rmse_per_mm = Some(rmse(&volume, &truth)?);
        report.ssim = Some(ssim(&volume, &truth)?);
    }
    if let Some(b) = &args.bead {
        report.asf = Some(artifact_spread(&volume, b[0], b[1], b[2])?);
    }
    if let Some(l) = &args.lesion {
        let iz = slice_at(l[2])?;
        let signal = disc_values(&volume, iz, l[0], l[1], 0.0, l[3]);
        let background = disc_values(&volume, iz, l[0], l[1], 1.5 * l[3], 2.5 * l[3]);
        report.sdnr = Some(sdnr(&signal, &background)?);
    }
    if let Some(e) = &args.edge {
        let iz = slice_at(e[0])?;
        let to_index = |v: f64, axis: usize, n: usize| -> usize {
            (((v - origin[axis]) / g.voxel_mm[axis]).round().max(0.0) as usize).min(n - 1)
        };
        let (x0, x1) = (to_index(e[1].min(e[3]), 0, g.nx), to_index(e[1].max(e[3]), 0, g.nx));
        let (y0, y1) = (to_index(e[2].min(e[4]), 1, g.ny), to_index(e[2].max(e[4]), 1, g.ny));
        let (cols, rows) = (x1 - x0 + 1, y1 - y0 + 1);
        let slice = volume.slice(iz);
        let roi: Vec<f32> = (y0..=y1).flat_map(|y| slice[y * g.nx + x0..=y * g.nx + x1].iter().copied()).collect();
        report.mtf = Some(edge_mtf(&roi, cols, rows, g.voxel_mm[0])?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("volume: {}x{}x{} voxels of {:?} mm", g.nx, g.ny, g.nz, g.voxel_mm);
    if let (Some(r), Some(s)) = (report.rmse_per_mm, report.ssim) {
        println!("RMSE {r:.5} /mm, SSIM {s:.4}");
    }
    if let Some(a) = &report.asf {
        let fwhm = a.fwhm_mm.map_or("not reached inside the volume".into(), |f| format!("{f:.2} mm"));
        println!("bead: in focus at z = {:.2} mm (slice {}), ASF FWHM {fwhm}", a.peak_z_mm, a.peak_slice);
    }
    if let Some(s) = report.sdnr {
        println!("lesion SDNR {s:.2}");
    }
    if let Some(m) = &report.mtf {
        let mtf50 = m.mtf50.map_or("beyond Nyquist".into(), |f| format!("{f:.2} cycles/mm"));
        println!("edge MTF50 {mtf50}");
    }
    Ok(())
}
