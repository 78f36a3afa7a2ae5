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
    /// List the reference scanner presets and their geometry.
    Presets(commands::presets::PresetsArgs),
    /// Show each view's angle and pose for a preset.
    Plan(commands::plan::PlanArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A closed pipe (`tomolab plan | head`) is a normal way for a reader to stop.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Presets(args) => commands::presets::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
    }
}
