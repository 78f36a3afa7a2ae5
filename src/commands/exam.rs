//! `tomolab exam`: the main job. A simulated DBT exam of a breast phantom, saved as an acquisition bundle with
//! previews, ground truth and a summary.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use tomolab::exam::{ExamConfig, Resolution, prepare_exam, run_exam, run_prepared, write_outputs};
use tomolab_hal::PresetName;

/// Arguments of `tomolab exam`.
#[derive(Debug, clap::Args)]
pub struct ExamArgs {
    /// Scanner preset (overrides the config file).
    #[arg(long)]
    preset: Option<PresetName>,
    /// Seed of every random draw (overrides the config file).
    #[arg(long)]
    seed: Option<u64>,
    /// Exam configuration (TOML); any subset of the keys in `tomolab exam --print-config`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Simulation fidelity: `fast` (binned detector, 0.25 mm phantom) or `clinical` (native pixels, 0.1 mm).
    #[arg(long, value_parser = parse_resolution)]
    resolution: Option<Resolution>,
    /// Output directory (must not already hold an exam).
    #[arg(long, required_unless_present = "print_config")]
    out: Option<PathBuf>,
    /// Print the full default configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// No progress bar and no text summary.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Skip the reconstruction (by default the exam is reconstructed with FBP into OUT/recon).
    #[arg(long)]
    no_recon: bool,
    /// Drive a device over the firmware bridge instead of the built-in simulator:
    /// `serial:PATH,modbus:ADDR,frames:ADDR` (for example a `tomolab device serve` started with the same
    /// config and seed, or real hardware).
    #[arg(long, value_name = "SPEC")]
    device: Option<tomolab_firmware_bridge::bridge::Endpoints>,
}

fn parse_resolution(s: &str) -> Result<Resolution, String> {
    match s {
        "fast" => Ok(Resolution::Fast),
        "clinical" => Ok(Resolution::Clinical),
        other => Err(format!("`{other}` is not a resolution; use fast or clinical")),
    }
}

/// Runs the exam.
pub fn run(args: &ExamArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            ExamConfig::from_toml(&text, args.preset, args.resolution)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => ExamConfig::defaults(
            args.preset.unwrap_or(PresetName::WideAngle),
            args.resolution.unwrap_or(Resolution::Fast),
        ),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let mut out = std::io::stdout().lock();
    if args.print_config {
        writeln!(out, "{}", toml::to_string_pretty(&config)?)?;
        return Ok(());
    }
    let dir = args.out.as_ref().context("--out is required")?;
    if dir.join("acquisition").exists() {
        anyhow::bail!("{} already holds an exam; choose another --out", dir.display());
    }
    let frames = config.geometry.views.unwrap_or_else(|| tomolab_hal::ScanPreset::builtin(config.preset).sampling.views)
        as u64
        + 2;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(frames);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg:>12} [{bar:30}] {pos}/{len} frames, {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message("acquiring");
        bar
    };
    let ticker = bar.clone();
    let started = std::time::Instant::now();
    let outcome = match &args.device {
        None => run_exam(&config, Some(Box::new(move |_| ticker.inc(1))))?,
        Some(endpoints) => {
            use tomolab_firmware_bridge::bridge::{MotionConfig, connect};
            // The plan, the AEC calibration and the dose model come from the local model of the same config.
            let local = prepare_exam(&config, None)?;
            let (mut devices, _heartbeat) = connect(endpoints, Default::default(), MotionConfig::default())
                .with_context(|| format!("connecting to the device at {endpoints:?}"))?;
            let clock = tomolab_hal::SystemClock::default();
            run_prepared(
                &config,
                local.plan,
                local.aec,
                &local.dose,
                local.truth,
                local.detector,
                &mut devices,
                &clock,
            )?
        }
    };
    bar.set_message("saving");
    write_outputs(&outcome, dir)?;
    let recon = if args.no_recon || outcome.acquisition.frames.is_empty() {
        None
    } else {
        bar.set_message("reconstructing");
        let recon_args =
            super::recon::default_fbp(&dir.join("acquisition"), &dir.join("recon"), config.phantom.support_height_mm)?;
        Some(super::recon::execute(&recon_args).context("reconstructing the exam")?)
    };
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let s = &outcome.summary;
    if args.json {
        let mut value = serde_json::to_value(s)?;
        value["wall_time_s"] = serde_json::json!(wall);
        value["out"] = serde_json::json!(dir);
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else if !args.quiet {
        writeln!(out, "exam: {} ({:?}), seed {}, {}", s.preset, s.resolution, s.seed, status_text(&s.status))?;
        if let Some(t) = &s.technique {
            writeln!(
                out,
                "technique: {:?}/{:?} {:.0} kV, {:.2} mAs/view x {} views = {:.1} mAs",
                t.target,
                t.filter.material,
                t.kvp.get(),
                t.mas_per_view.get(),
                s.views,
                s.total_mas
            )?;
        }
        if let Some(a) = &s.aec {
            writeln!(
                out,
                "AEC: estimated glandular fraction {:.2}, breast covers {:.0}% of the detector",
                a.glandular_fraction,
                100.0 * a.breast_area_fraction
            )?;
        }
        match (s.mgd_mgy, s.mgd_std_error_mgy) {
            (Some(m), Some(e)) => writeln!(
                out,
                "dose: mean glandular dose {m:.3} +- {e:.3} mGy (Monte Carlo on the phantom); {:.3} mGy booked by the formalism",
                s.estimated_mgd
            )?,
            _ => writeln!(out, "dose: {:.3} mGy booked by the formalism (no Monte Carlo report)", s.estimated_mgd)?,
        }
        if let Some(line) = &recon {
            write!(out, "recon: {line}")?;
        }
        writeln!(out, "time: {:.1} s on the unit's clock, {wall:.1} s wall", s.exam_time_s)?;
        writeln!(out, "wrote {}", dir.display())?;
    }
    Ok(())
}

fn status_text(status: &tomolab_hal::ExamStatus) -> String {
    match status {
        tomolab_hal::ExamStatus::Complete => "complete".into(),
        tomolab_hal::ExamStatus::Refused { reason } => format!("REFUSED: {reason}"),
        tomolab_hal::ExamStatus::Aborted { reason, views_acquired } => {
            format!("ABORTED after {views_acquired} views: {reason}")
        }
    }
}
