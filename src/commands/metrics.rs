//! `tomolab metrics`: image-quality figures of a reconstructed volume (NRRD from `tomolab recon`), and the
//! mass SDNR of a DBT exam and a 2D exam from their ground truth (`--exam`, `--mammogram`; see
//! [`super::mass_sdnr`]).

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;
use tomolab_recon::Volume;
use tomolab_recon::io::read_nrrd;

use super::mass_sdnr::{self, MassSdnr};
use tomolab_recon::metrics::{Asf, Mtf, artifact_spread, disc_values, edge_mtf, rmse, sdnr, ssim};

/// Arguments of `tomolab metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Reconstructed volume (`volume.nrrd`); with `--exam` it defaults to the exam's `recon/volume.nrrd`.
    #[arg(required_unless_present_any = ["exam", "mammogram"])]
    pub volume: Option<PathBuf>,
    /// A DBT exam's output directory (`tomolab exam --out`): prints every mass's SDNR in the slice nearest its
    /// true depth (from `ground_truth.json`) and the height where its contrast peaks.
    #[arg(long)]
    pub exam: Option<PathBuf>,
    /// A 2D exam's output directory (`tomolab exam --preset mammography`): prints every mass's SDNR in the
    /// mammogram, and the two exams' delivered doses (run it with `--match-dose` on the DBT exam for equal dose).
    #[arg(long)]
    pub mammogram: Option<PathBuf>,
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
    #[serde(skip)]
    shape: Option<String>,
    rmse_per_mm: Option<f64>,
    ssim: Option<f64>,
    asf: Option<Asf>,
    sdnr: Option<f64>,
    mtf: Option<Mtf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    masses: Vec<MassSdnr>,
    dbt_mgd: Option<f64>,
    mammogram_mgd: Option<f64>,
}

/// The masses of the exam(s) and their SDNR in the volume and the 2D image; the exams' doses into `report`.
fn mass_report(args: &MetricsArgs, volume: Option<&Volume>, report: &mut Report) -> anyhow::Result<()> {
    let truth_dir = match (&args.exam, &args.mammogram) {
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Ok(()),
    };
    let truth = mass_sdnr::read_truth(truth_dir)?;
    let mg = match &args.mammogram {
        Some(dir) => {
            if args.exam.is_some() && mass_sdnr::read_truth(dir)?.objects != truth.objects {
                bail!("--exam and --mammogram were made from different phantoms (their ground truths differ)");
            }
            report.mammogram_mgd = Some(mass_sdnr::delivered_mgd(dir)?);
            let bundle = dir.join("acquisition");
            Some(tomolab_hal::bundle::load(&bundle).with_context(|| format!("loading {}", bundle.display()))?)
        }
        None => None,
    };
    if let Some(dir) = &args.exam {
        report.dbt_mgd = Some(mass_sdnr::delivered_mgd(dir)?);
    }
    for (o, r) in mass_sdnr::masses(&truth) {
        report.masses.push(MassSdnr {
            id: o.id,
            kind: o.kind,
            centre_mm: o.centre_mm,
            core_radius_mm: r,
            dbt: volume.map(|v| mass_sdnr::in_volume(v, o.centre_mm, r)).transpose()?,
            mammogram: mg.as_ref().map(|a| mass_sdnr::in_projection(a, o.centre_mm, r)).transpose()?,
        });
    }
    if report.masses.is_empty() {
        bail!("{}: the ground truth holds no mass", truth_dir.join("ground_truth.json").display());
    }
    Ok(())
}

/// Computes and prints the requested metrics.
pub fn run(args: &MetricsArgs) -> anyhow::Result<()> {
    let path = match (&args.volume, &args.exam) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(exam)) => Some(exam.join("recon").join("volume.nrrd")),
        (None, None) => None,
    };
    let volume = path.map(|p| read_nrrd(&p).with_context(|| format!("reading {}", p.display()))).transpose()?;
    let mut report = Report::default();
    mass_report(args, volume.as_ref(), &mut report)?;
    match &volume {
        Some(v) => volume_metrics(args, v, &mut report)?,
        None if args.truth.is_some() || args.bead.is_some() || args.lesion.is_some() || args.edge.is_some() => {
            bail!("--truth, --bead, --lesion and --edge need a volume (VOLUME or --exam)")
        }
        None => {}
    }
    print_report(args, &report)
}

/// The volume's own metrics (`--truth`, `--bead`, `--lesion`, `--edge`) into `report`.
fn volume_metrics(args: &MetricsArgs, volume: &Volume, report: &mut Report) -> anyhow::Result<()> {
    let g = volume.geometry;
    let origin = g.first_centre_mm();
    report.shape = Some(format!("{}x{}x{} voxels of {:?} mm", g.nx, g.ny, g.nz, g.voxel_mm));
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
    if let Some(path) = &args.truth {
        let truth = read_nrrd(path).with_context(|| format!("reading {}", path.display()))?;
        report.rmse_per_mm = Some(rmse(volume, &truth)?);
        report.ssim = Some(ssim(volume, &truth)?);
    }
    if let Some(b) = &args.bead {
        report.asf = Some(artifact_spread(volume, b[0], b[1], b[2])?);
    }
    if let Some(l) = &args.lesion {
        let iz = slice_at(l[2])?;
        let signal = disc_values(volume, iz, l[0], l[1], 0.0, l[3]);
        let background = disc_values(volume, iz, l[0], l[1], 1.5 * l[3], 2.5 * l[3]);
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
    Ok(())
}

/// Prints `report` as text or JSON.
fn print_report(args: &MetricsArgs, report: &Report) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    if let Some(shape) = &report.shape {
        println!("volume: {shape}");
    }
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
    for (name, mgd) in [("DBT", report.dbt_mgd), ("2D", report.mammogram_mgd)] {
        if let Some(d) = mgd {
            println!("{name} exam: {d:.3} mGy delivered (booked mean glandular dose)");
        }
    }
    for m in &report.masses {
        let c = m.centre_mm;
        print!("mass {} at ({:.1}, {:.1}, {:.1}) mm, core radius {:.1} mm:", m.id, c[0], c[1], c[2], m.core_radius_mm);
        if let Some(d) = &m.dbt {
            print!(
                " DBT SDNR {:.2} (slice {} at z {:.1} mm; contrast peaks at z {:.1} mm)",
                d.sdnr, d.slice, d.slice_z_mm, d.peak_contrast_z_mm
            );
        }
        if let Some(s) = m.mammogram {
            print!(" 2D SDNR {s:.2}");
        }
        println!();
    }
    Ok(())
}
