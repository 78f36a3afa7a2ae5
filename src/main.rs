//! `tomolab`: the command-line front end. Each subcommand is a thin layer over the library crates.

mod commands;

use clap::{Parser, Subcommand};

/// Digital breast tomosynthesis in software: plan, simulate, acquire and reconstruct.
#[derive(Debug, Parser)]
#[command(name = "tomolab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a simulated DBT exam (default: wide-angle, 50 mm breast with a mass and calcifications, AEC).
    Exam(commands::exam::ExamArgs),
    /// List the reference scanner presets and their geometry.
    Presets(commands::presets::PresetsArgs),
    /// Show each view's angle and pose for a preset.
    Plan(commands::plan::PlanArgs),
    /// A filtered tube spectrum: fluence, air kerma, mean energy, HVLs (and the spectrum with --table).
    Spectrum(commands::spectrum::SpectrumArgs),
    /// Mass and linear attenuation coefficients of a material at an energy.
    Attenuation(commands::attenuation::AttenuationArgs),
    /// The AEC's choice (kV, filter, mAs), dose and density estimate over a grid of breasts.
    AecTable(commands::aec_table::AecTableArgs),
    /// Mean glandular dose per view (Monte Carlo and formalism), or `--benchmark tg195-case3`.
    Dose(commands::dose::DoseArgs),
    /// Serve a virtual device over the firmware bridge's protocols.
    Device(commands::device::DeviceArgs),
    /// Reconstruct an acquisition bundle into slices (FBP, SART, MLEM or FDK).
    Recon(commands::recon::ReconArgs),
    /// Image-quality metrics of a reconstructed volume (ASF, MTF, SDNR, RMSE, SSIM).
    Metrics(commands::metrics::MetricsArgs),
    /// DICOM: export an exam (Breast Tomosynthesis Image, projections, 2D) and send it to a PACS (C-STORE).
    Dicom(commands::dicom::DicomArgs),
    /// Generate a breast or QA phantom: label volume, material table, ground truth, previews.
    Phantom(commands::phantom::PhantomArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        // A closed pipe (`tomolab plan | head`) is a normal way for a reader to stop.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            std::process::ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes joined with ": ", skipping a cause whose text the message before it already ends
/// with (many library errors print their source inline and also expose it as `source()`).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The documented exit code of an error (see `commands::exit`).
fn exit_code(e: &anyhow::Error) -> u8 {
    use commands::exit;
    if e.chain().any(|c| c.is::<commands::Refused>()) {
        exit::REFUSED
    } else if e.chain().any(|c| c.is::<commands::UsageError>() || c.is::<tomolab::exam::ConfigError>()) {
        exit::USAGE
    } else {
        exit::FAILED
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let ok = |r: anyhow::Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
    match cli.command {
        Command::Exam(args) => commands::exam::run(&args),
        Command::Presets(args) => ok(commands::presets::run(&args)),
        Command::Plan(args) => ok(commands::plan::run(&args)),
        Command::Spectrum(args) => ok(commands::spectrum::run(&args)),
        Command::Attenuation(args) => ok(commands::attenuation::run(&args)),
        Command::Device(args) => ok(commands::device::run(&args)),
        Command::AecTable(args) => ok(commands::aec_table::run(&args)),
        Command::Dose(args) => ok(commands::dose::run(&args)),
        Command::Recon(args) => ok(commands::recon::run(&args)),
        Command::Metrics(args) => ok(commands::metrics::run(&args)),
        Command::Phantom(args) => ok(commands::phantom::run(&args)),
        Command::Dicom(args) => ok(commands::dicom::run(&args)),
    }
}
