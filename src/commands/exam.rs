//! `tomolab exam`: the main job. A simulated DBT exam of a breast phantom, saved as an acquisition bundle with
//! previews, ground truth and a summary.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tomolab::exam::{ExamConfig, Resolution, prepare_exam, prepare_protocol, write_outputs};
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
    #[arg(long, value_enum, ignore_case = true)]
    resolution: Option<Resolution>,
    /// Output directory: new or empty (or see --overwrite and --resume). Each view is streamed into
    /// OUT/acquisition as it arrives, so an interrupted exam leaves a partial bundle.
    #[arg(long, required_unless_present = "print_config")]
    out: Option<PathBuf>,
    /// Replace what an earlier exam left in --out (removes only tomolab's own files).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Keep the partial bundle an interrupted exam left in --out and run only the offline steps (dose report,
    /// previews, summary, reconstruction). Needs the same configuration and seed. Views are never re-exposed:
    /// the dose was delivered and the breast released, so the sweep cannot be continued.
    #[arg(long)]
    resume: bool,
    /// Run even if the estimated memory or run time exceeds the limits (8 GiB, 2 hours).
    #[arg(long)]
    force: bool,
    /// Print every key of the configuration as TOML (unset optional keys and the other technique mode as
    /// commented lines) and exit.
    #[arg(long)]
    print_config: bool,
    /// No progress bar and no text summary.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Match the dose of an earlier exam (its output directory or bundle): a manual exam with that exam's kV,
    /// target and filter, and the mAs per view that makes the dose model book the same total mean glandular
    /// dose (pre-shot included). For DBT against 2D at equal dose: `tomolab exam --out dbt`, then
    /// `tomolab exam --preset mammography --match-dose dbt --out mg`, then `tomolab metrics --exam dbt
    /// --mammogram mg`.
    #[arg(long, value_name = "DIR")]
    match_dose: Option<PathBuf>,
    /// Skip the reconstruction (by default the exam is reconstructed with FBP into OUT/recon).
    #[arg(long)]
    no_recon: bool,
    /// Drive a device over the firmware bridge instead of the built-in simulator:
    /// `serial:PATH,modbus:ADDR,frames:ADDR` (for example a `tomolab device serve` started with the same
    /// config and seed, or real hardware).
    #[arg(long, value_name = "SPEC")]
    device: Option<tomolab_firmware_bridge::host::backend::Endpoints>,
    /// Also export the exam as DICOM into OUT/dicom (as `tomolab dicom export`, with its default identifiers).
    #[arg(long)]
    dicom: bool,
    /// After the DICOM export, C-ECHO and C-STORE it to AET@HOST:PORT (implies --dicom).
    #[arg(long, value_name = "AET@HOST:PORT")]
    send: Option<String>,
}

/// Slice previews the exam's reconstruction writes.
const RECON_PREVIEWS: usize = 5;

/// The processed image of a 2D exam (one view), in OUT beside the raw bundle (`acquisition/`).
const PROCESSED_2D: &str = "mammogram.png";

/// What `tomolab exam` leaves in OUT: everything else there is someone else's and is never touched.
const OWN_ENTRIES: [&str; 10] = [
    "acquisition",
    "ground_truth.json",
    "summary.json",
    "previews",
    "recon",
    "dose.json",
    "dose.svg",
    "exam.toml",
    PROCESSED_2D,
    "dicom",
];

/// Removes tomolab's files from `dir` (and the sub-directories it made, if they are then empty).
fn remove_own(dir: &Path) -> anyhow::Result<()> {
    let ours_in = |sub: &str, name: &str| match sub {
        "acquisition" => {
            tomolab_hal::journal::FILES.contains(&name)
                || ["acquisition.json", "frames.npy", "dark.npy", "flood.npy"].contains(&name)
                || name.ends_with(".tmp")
        }
        "previews" => name.starts_with("view_") && name.ends_with(".png"),
        "dicom" => name.ends_with(".dcm") || name == "ground_truth_patient.json",
        "recon" => ["volume.nrrd", "slices.tif", "recon.json", "synthetic2d.png", "previews"].contains(&name),
        _ => false,
    };
    for entry in OWN_ENTRIES {
        let path = dir.join(entry);
        if path.is_dir() {
            for f in std::fs::read_dir(&path)? {
                let f = f?;
                let name = f.file_name().to_string_lossy().into_owned();
                if ours_in(entry, &name) {
                    if f.path().is_dir() {
                        for g in std::fs::read_dir(f.path())? {
                            let g = g?;
                            if g.file_name().to_string_lossy().starts_with("slice_") {
                                std::fs::remove_file(g.path())?;
                            }
                        }
                        let _ = std::fs::remove_dir(f.path());
                    } else {
                        std::fs::remove_file(f.path()).with_context(|| format!("removing {}", f.path().display()))?;
                    }
                }
            }
            let _ = std::fs::remove_dir(&path);
        } else if path.is_file() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Whether OUT is usable; removes an earlier exam's files on --overwrite. Returns true for a resume.
fn prepare_out(dir: &Path, overwrite: bool, resume: bool) -> anyhow::Result<bool> {
    let usage = |msg: String| anyhow::Error::new(super::UsageError(msg));
    if !dir.exists() {
        if resume {
            return Err(usage(format!("{}: nothing to resume (the directory does not exist)", dir.display())));
        }
        return Ok(false);
    }
    if !dir.is_dir() {
        return Err(usage(format!("{} is not a directory", dir.display())));
    }
    let names: Vec<String> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let acq = dir.join("acquisition");
    let complete = acq.join(tomolab_hal::bundle::METADATA_FILE).exists();
    let partial = tomolab_hal::journal::is_partial(&acq);
    let ours = names.iter().any(|n| OWN_ENTRIES.contains(&n.as_str()));
    if resume {
        if !partial {
            return Err(usage(format!(
                "{}: nothing to resume: it holds no interrupted exam (no acquisition/{} without acquisition.json)",
                dir.display(),
                tomolab_hal::journal::JOURNAL_FILE
            )));
        }
        return Ok(true);
    }
    if names.is_empty() {
        return Ok(false);
    }
    if !ours {
        return Err(usage(format!(
            "{} is not empty and holds no tomolab exam; refusing to write into it (choose another --out)",
            dir.display()
        )));
    }
    if overwrite {
        remove_own(dir)?;
        return Ok(false);
    }
    if partial {
        let views = tomolab_hal::journal::views_recorded(&acq).unwrap_or(0);
        return Err(usage(format!(
            "{} holds only the leftovers of an interrupted exam ({views} views recorded, no complete bundle); \
             rerun with --resume to keep them (offline steps only) or --overwrite to discard them",
            dir.display()
        )));
    }
    if complete {
        return Err(usage(format!(
            "{} already holds an exam; choose another --out or pass --overwrite to replace it",
            dir.display()
        )));
    }
    Err(usage(format!(
        "{} holds files of an earlier exam but no acquisition; pass --overwrite to replace them",
        dir.display()
    )))
}

/// Runs the exam; the exit code says how it ended (see [`super::exit`]).
pub fn run(args: &ExamArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            ExamConfig::parse_toml(&text, args.preset, args.resolution)
                .map_err(anyhow::Error::new)
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
    config.validate()?;
    if let Some(reference) = &args.match_dose {
        let (technique, mgd) = tomolab::exam::dose_match::reference_dose(reference)?;
        let mas = tomolab::exam::dose_match::match_dose(&mut config, &technique, mgd)?;
        if !args.quiet && !args.json {
            eprintln!("matching {mgd:.3} mGy of {}: {} kV, {mas:.2} mAs per view", reference.display(), technique.kvp);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.print_config {
        writeln!(out, "{}", tomolab::exam::printed_config(&config)?)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let dir = args.out.as_ref().context("--out is required")?;
    let effective = toml::to_string_pretty(&config)?;
    let resume = prepare_out(dir, args.overwrite, args.resume)?;
    if resume {
        // Offline steps only: no acquisition, so no estimate to check.
        return resume_exam(args, &config, &effective, dir);
    }
    let estimate = config.estimate();
    if !args.force
        && let Err(why) = estimate.check()
    {
        eprintln!("error: refused before any exposure: {why}");
        return Ok(std::process::ExitCode::from(super::exit::REFUSED));
    }
    let acq_dir = dir.join("acquisition");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("exam.toml"), &effective).context("writing exam.toml")?;
    let mut journal = tomolab_hal::journal::JournalWriter::create(&acq_dir, &effective)?;
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
    let result = (|| -> anyhow::Result<_> {
        Ok(match &args.device {
            None => {
                let local = prepare_exam(&config, Some(Box::new(move |_| ticker.inc(1))))?;
                let clock = local.unit.clock();
                local.protocol.run_observed(&mut local.unit.devices(), &clock, Some(&mut journal)).map_err(refused)?
            }
            Some(endpoints) => {
                use tomolab_firmware_bridge::host::backend::{MotionConfig, connect};
                // The plan, the AEC calibration and the dose model come from the local model of the same config;
                // no simulated unit is built.
                let protocol = prepare_protocol(&config)?;
                let (mut devices, _heartbeat) = connect(endpoints, Default::default(), MotionConfig::default())
                    .with_context(|| format!("connecting to the device at {endpoints:?}"))?;
                let clock = tomolab_hal::SystemClock::default();
                protocol.run_observed(&mut devices, &clock, Some(&mut journal)).map_err(refused)?
            }
        })
    })();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            // Nothing was acquired (the plan was refused or the set-up failed): leave no leftovers behind.
            drop(journal);
            let _ = tomolab_hal::journal::remove(&acq_dir);
            let _ = std::fs::remove_dir(&acq_dir);
            let _ = std::fs::remove_file(dir.join("exam.toml"));
            return Err(e);
        }
    };
    bar.set_message("saving");
    write_outputs(&outcome, dir)?;
    journal.finish()?;
    finish(args, &config, dir, &outcome, &bar, started)
}

/// A plan the sequencer refused before touching any device is a refusal (exit 3), not a failure.
fn refused(e: anyhow::Error) -> anyhow::Error {
    if e.chain().any(|c| c.is::<tomolab_hal::sequencer::PlanError>()) {
        anyhow::Error::new(super::Refused(format!("{e:#}")))
    } else {
        e
    }
}

/// `--resume`: the partial bundle an interrupted exam left is kept as it is (marked incomplete) and only the
/// offline steps run. Refused when the configuration differs from the interrupted exam's.
fn resume_exam(
    args: &ExamArgs,
    config: &ExamConfig,
    effective: &str,
    dir: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let acq_dir = dir.join("acquisition");
    let label = tomolab_hal::journal::label(&acq_dir)?;
    if label != effective {
        let key = first_difference(&label, effective);
        return Err(anyhow::Error::new(super::UsageError(format!(
            "cannot resume {}: the interrupted exam ran with another configuration or seed (first difference: \
             {key}); rerun with the same --config/--seed/--preset/--resolution, or --overwrite",
            dir.display()
        ))));
    }
    let acquisition = tomolab_hal::bundle::load(&acq_dir)
        .with_context(|| format!("cannot resume: the partial bundle in {} does not load", acq_dir.display()))?;
    let started = std::time::Instant::now();
    let protocol = prepare_protocol(config)?;
    let exam_time_s = acquisition.meta.views.last().map_or(0.0, |v| v.time_since_start.as_secs_f64());
    let outcome = protocol.summarise(acquisition, exam_time_s, None)?;
    write_outputs(&outcome, dir)?;
    tomolab_hal::journal::remove(&acq_dir)?;
    eprintln!(
        "warning: resumed an interrupted exam: kept its {} views (marked incomplete); views are never re-exposed",
        outcome.acquisition.frames.len()
    );
    finish(args, config, dir, &outcome, &indicatif::ProgressBar::hidden(), started)
}

fn first_difference(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .find(|(x, y)| x != y)
        .map_or_else(|| "line count".to_owned(), |(x, y)| format!("`{x}` then, `{y}` now"))
}

fn finish(
    args: &ExamArgs,
    config: &ExamConfig,
    dir: &Path,
    outcome: &tomolab::exam::ExamOutcome,
    bar: &indicatif::ProgressBar,
    started: std::time::Instant,
) -> anyhow::Result<std::process::ExitCode> {
    let mut out = std::io::stdout().lock();
    let planned =
        config.geometry.views.unwrap_or_else(|| tomolab_hal::ScanPreset::builtin(config.preset).sampling.views);
    let recon = if planned == 1 && outcome.acquisition.frames.len() == 1 {
        // A 2D exam: no reconstruction; the processed image beside the raw bundle.
        let path = dir.join(PROCESSED_2D);
        tomolab::exam::write_processed_2d(&outcome.acquisition, &path)?;
        Some(format!("none (a 2D exam); processed image {}\n", path.display()))
    } else if args.no_recon || outcome.acquisition.frames.len() < 2 {
        None
    } else {
        bar.set_message("reconstructing");
        // In memory, from the acquisition just made; the same as `tomolab recon` on the saved bundle.
        let acq = &outcome.acquisition;
        let recon = tomolab_recon::reconstruct(acq, &config.recon).context("reconstructing the exam")?;
        let (out, bundle) = (dir.join("recon"), dir.join("acquisition"));
        Some(super::recon::write_and_report(&out, &recon, &acq.meta, &bundle, RECON_PREVIEWS)?)
    };
    if args.dicom || args.send.is_some() {
        bar.set_message("DICOM export");
        let dicom_dir = dir.join("dicom");
        let options = super::dicom::IdentityArgs::default().options();
        tomolab_dicom::export_exam(dir, &dicom_dir, &options).context("exporting the exam to DICOM")?;
        if let Some(to) = &args.send {
            super::dicom::send(&dicom_dir, to, "TOMOLAB", 30.0)?;
        }
    }
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
                "technique: {:?}/{:?} {} kV, {:.2} mAs/view x {} views = {:.1} mAs",
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
    if s.status != tomolab_hal::ExamStatus::Complete {
        eprintln!("exam {}", status_text(&s.status));
    }
    Ok(std::process::ExitCode::from(match s.status {
        tomolab_hal::ExamStatus::Complete => 0,
        tomolab_hal::ExamStatus::Refused { .. } => super::exit::REFUSED,
        tomolab_hal::ExamStatus::Aborted { .. } => super::exit::ABORTED,
    }))
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
