//! `tomolab dose`: mean glandular dose per view of a preset's sweep on a phantom or on Dance's model breast
//! (Monte Carlo and formalism side by side), or the AAPM TG-195 Case 3 benchmark.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use tomolab::dose_report::{ViewDose, ViewDosePerMas, plot};
use tomolab_hal::technique::Technique;
use tomolab_hal::{FocalSpot, Kilovolts, MilliampereSeconds, Milliamperes, PresetName, ScanPreset};
use tomolab_phantom::MaterialTable;
use tomolab_simulator::dose::{
    Formalism, PhantomDose, PhantomDoseConfig, StandardBreast, ViewBeam, standard_view_dose,
};
use tomolab_simulator::mc::{McConfig, tg195};
use tomolab_simulator::{FilterLayer, MaterialId};

/// Arguments of `tomolab dose`.
#[derive(Debug, clap::Args)]
pub struct DoseArgs {
    /// Run a published benchmark instead: `tg195-case3` (AAPM TG-195 Case 3, all four beam/geometry cases).
    #[arg(long, value_name = "NAME")]
    benchmark: Option<String>,
    /// A phantom directory written by `tomolab phantom` (phantom.mhd + materials.json). Without it, Dance's
    /// homogeneous model breast of `--thickness-mm` and `--glandularity` is used.
    #[arg(long, value_name = "DIR")]
    phantom: Option<PathBuf>,
    /// Scanner preset: its arc, view angles and beam.
    #[arg(long, default_value = "wide-angle")]
    preset: PresetName,
    /// Tube voltage, kV (default: the preset's).
    #[arg(long)]
    kvp: Option<f64>,
    /// mAs per view (doses scale linearly).
    #[arg(long, default_value_t = 1.0)]
    mas_per_view: f64,
    /// Model breast thickness, mm.
    #[arg(long, default_value_t = 50.0)]
    thickness_mm: f64,
    /// Model breast glandular weight fraction (0..1).
    #[arg(long, default_value_t = 0.5)]
    glandularity: f64,
    /// Photons per view (for the benchmark: per case).
    #[arg(long)]
    histories: Option<u64>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the dose-against-angle plot here (SVG).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct DoseOutput {
    preset: PresetName,
    object: String,
    views: Vec<ViewDose>,
    total_mgd_mgy: f64,
    total_std_error_mgy: f64,
    formalism_total_mgd_mgy: f64,
}

/// Runs the command.
pub fn run(args: &DoseArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.benchmark {
        anyhow::ensure!(name == "tg195-case3", "unknown --benchmark {name:?}; known: tg195-case3");
        return benchmark(args);
    }
    anyhow::ensure!(args.mas_per_view.is_finite() && args.mas_per_view > 0.0, "--mas-per-view must be positive");
    let preset = ScanPreset::builtin(args.preset);
    anyhow::ensure!(
        args.preset != PresetName::BreastCt,
        "--preset breast-ct: the tube circles a pendant breast, passing below it; `tomolab dose` covers projection \
         geometries (mammography and tomosynthesis), where the compressed breast lies between the focal spot and \
         the detector"
    );
    let technique = technique(args, &preset)?;
    let fixed = vec![FilterLayer::new(MaterialId::Beryllium, 1.0)?, FilterLayer::new(MaterialId::Pmma, 2.5)?];
    let formalism = Formalism { arc: preset.geometry, fixed_layers: fixed.clone(), support_height_mm: 20.0 };
    let mas = args.mas_per_view;
    let angles = preset.sampling.angles_deg();
    let simulated = match &args.phantom {
        Some(dir) => phantom_views(args, dir, &preset, &technique, &fixed)?,
        None => model_breast_views(args, &preset, &technique, &fixed)?,
    };
    let views: Vec<ViewDose> = angles
        .iter()
        .zip(simulated.per_view)
        .enumerate()
        .map(|(k, (&angle, (hvl, kerma, mgd)))| {
            let per_mas = ViewDosePerMas {
                hvl_mm_al: hvl,
                incident_kerma_ugy_per_mas: kerma,
                mgd_per_mas: mgd,
                booked_mgd_per_mas: formalism
                    .view(&technique, simulated.thickness_mm, simulated.glandularity, angle)
                    .map_or(f64::NAN, |f| f.mgd_per_mas),
            };
            ViewDose::new((k, angle, technique.kvp.get()), &technique, mas, &per_mas)
        })
        .collect();
    let out = DoseOutput {
        preset: args.preset,
        object: simulated.object,
        total_mgd_mgy: views.iter().map(|v| v.mgd_mgy).sum(),
        total_std_error_mgy: views.iter().map(|v| v.mgd_std_error_mgy.powi(2)).sum::<f64>().sqrt(),
        formalism_total_mgd_mgy: views.iter().map(|v| v.booked_mgd_mgy).sum(),
        views,
    };
    if let Some(path) = &args.plot {
        plot(&out.views, path)?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &out)?;
        writeln!(stdout)?;
        return Ok(());
    }
    print_table(&mut stdout, args, &out, &technique)
}

/// The technique of every view: the preset's beam at `--kvp` and `--mas-per-view`.
fn technique(args: &DoseArgs, preset: &ScanPreset) -> anyhow::Result<Technique> {
    let kvp = args.kvp.unwrap_or(preset.beam.kvp);
    Ok(Technique {
        kvp: Kilovolts::new(kvp).context("--kvp")?,
        tube_current: Milliamperes::new(100.0)?,
        mas_per_view: MilliampereSeconds::new(args.mas_per_view).context("--mas-per-view")?,
        target: preset.beam.target,
        filter: preset.beam.filter,
        focal_spot: FocalSpot::Large,
    })
}

/// The Monte Carlo side of the report: what was irradiated, and per view (HVL, incident kerma per mAs, MGD
/// per mAs).
struct SimulatedViews {
    object: String,
    thickness_mm: f64,
    glandularity: f64,
    per_view: Vec<(f64, f64, tomolab_simulator::mc::Estimate)>,
}

/// Every view of the sweep on the voxel phantom in `dir`.
fn phantom_views(
    args: &DoseArgs,
    dir: &std::path::Path,
    preset: &ScanPreset,
    technique: &Technique,
    fixed: &[FilterLayer],
) -> anyhow::Result<SimulatedViews> {
    let volume = tomolab_phantom::io::read_metaimage(&dir.join("phantom.mhd")).context("reading phantom.mhd")?;
    let text = std::fs::read_to_string(dir.join("materials.json")).context("reading materials.json")?;
    let materials: MaterialTable = serde_json::from_str(&text).context("materials.json")?;
    let phantom = PhantomDose { volume: &volume, materials: &materials, arc: &preset.geometry, fixed_layers: fixed };
    let thickness = phantom.top_mm() - volume.grid.min_corner_mm[2];
    let histories = args.histories.unwrap_or(DEFAULT_HISTORIES);
    let config = PhantomDoseConfig { histories_per_view: histories, batches: 16, seed: args.seed };
    let angles = preset.sampling.angles_deg();
    let requests: Vec<_> = angles.iter().enumerate().map(|(k, &a)| (k as u64, a, *technique)).collect();
    let doses = phantom.views(&requests, &config)?;
    let per_view = doses.iter().map(|d| (d.hvl_mm_al, d.incident_kerma_ugy_per_mas, d.mgd_per_mas)).collect();
    let glandularity = phantom.glandularity()?;
    let object = format!("phantom {} ({thickness:.1} mm, glandularity {glandularity:.3})", dir.display());
    Ok(SimulatedViews { object, thickness_mm: thickness, glandularity, per_view })
}

/// Every view of the sweep on Dance's model breast of `--thickness-mm` and `--glandularity`.
fn model_breast_views(
    args: &DoseArgs,
    preset: &ScanPreset,
    technique: &Technique,
    fixed: &[FilterLayer],
) -> anyhow::Result<SimulatedViews> {
    let breast = StandardBreast::new(args.thickness_mm, args.glandularity);
    let histories = args.histories.unwrap_or(DEFAULT_HISTORIES);
    let mut per_view = Vec::new();
    for (k, &angle) in preset.sampling.angles_deg().iter().enumerate() {
        let beam = ViewBeam::of_technique(&preset.geometry, angle, technique, fixed, breast.top_mm())?;
        let config = McConfig { histories, batches: 16, seed: args.seed, stream_offset: k as u64 };
        let d = standard_view_dose(&breast, &beam, &config)?;
        per_view.push((d.hvl_mm_al, d.incident_kerma_ugy_per_mas, d.mgd_per_mas));
    }
    let object = format!("Dance model breast {} mm, glandularity {}", args.thickness_mm, args.glandularity);
    Ok(SimulatedViews { object, thickness_mm: args.thickness_mm, glandularity: args.glandularity, per_view })
}

/// Photons per view when `--histories` is not given.
const DEFAULT_HISTORIES: u64 = 200_000;

/// The human-readable report.
fn print_table(out_w: &mut impl Write, args: &DoseArgs, out: &DoseOutput, technique: &Technique) -> anyhow::Result<()> {
    let (kvp, mas) = (technique.kvp.get(), args.mas_per_view);
    writeln!(
        out_w,
        "{} on {}, {:?}/{:?} {kvp} kV, {mas} mAs per view",
        args.preset.as_str(),
        out.object,
        technique.target,
        technique.filter.material
    )?;
    writeln!(
        out_w,
        "{:>5} {:>8} {:>8} {:>10} {:>16} {:>12}",
        "view", "angle", "HVL", "K (mGy)", "MGD MC (mGy)", "formalism"
    )?;
    for v in &out.views {
        writeln!(
            out_w,
            "{:>5} {:>8.2} {:>8.3} {:>10.4} {:>9.4} +- {:<6.4} {:>9.4}",
            v.view,
            v.angle_deg,
            v.hvl_mm_al,
            v.incident_air_kerma_mgy,
            v.mgd_mgy,
            v.mgd_std_error_mgy,
            v.booked_mgd_mgy
        )?;
    }
    writeln!(
        out_w,
        "total: {:.4} +- {:.4} mGy (Monte Carlo), {:.4} mGy (formalism)",
        out.total_mgd_mgy, out.total_std_error_mgy, out.formalism_total_mgd_mgy
    )?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct BenchmarkCase {
    beam: tg195::Beam,
    mode: tg195::Mode,
    histories: u64,
    photons_per_second: f64,
    rows: Vec<tg195::ComparisonRow>,
}

fn benchmark(args: &DoseArgs) -> anyhow::Result<()> {
    let histories = args.histories.unwrap_or(100_000_000);
    let phantom = tg195::Phantom::new(0.5)?;
    let mut cases = Vec::new();
    let mut stdout = std::io::stdout().lock();
    for beam in [tg195::Beam::Mono16_8, tg195::Beam::MoMo30] {
        for mode in [tg195::Mode::Radiography, tg195::Mode::Tomosynthesis] {
            let started = std::time::Instant::now();
            let config = McConfig { histories, batches: 64, seed: args.seed, stream_offset: 0 };
            let rows = tg195::compare(&phantom, mode, beam, &config)?;
            let rate = histories as f64 / started.elapsed().as_secs_f64();
            if !args.json {
                writeln!(stdout, "TG-195 Case 3, {beam:?}, {mode:?}: {histories} photons, {rate:.3e} photons/s")?;
                writeln!(
                    stdout,
                    "  {:<10} {:>18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
                    "volume", "ours (eV)", "EGSnrc", "Geant4", "MCNP", "PENELOPE", "mean", "diff"
                )?;
                for r in &rows {
                    let c = r.reference.codes_ev;
                    writeln!(
                        stdout,
                        "  {:<10} {:>10.3} +- {:<5.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>+7.2}%",
                        r.volume,
                        r.ours_ev.mean,
                        r.ours_ev.std_error,
                        c[0],
                        c[1],
                        c[2],
                        c[3],
                        r.reference.mean_ev,
                        r.difference_pct
                    )?;
                }
            }
            cases.push(BenchmarkCase { beam, mode, histories, photons_per_second: rate, rows });
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &cases)?;
        writeln!(stdout)?;
    }
    Ok(())
}
