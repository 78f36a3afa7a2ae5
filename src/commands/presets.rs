//! `tomolab presets`: the built-in scanner presets.

use std::io::Write;

use tomolab_hal::ScanPreset;
use tomolab_hal::presets::Motion;

/// Arguments of `tomolab presets`.
#[derive(Debug, clap::Args)]
pub struct PresetsArgs {
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints every preset.
pub fn run(args: &PresetsArgs) -> anyhow::Result<()> {
    let presets = ScanPreset::all();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&presets)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<15} {:>12} {:>5} {:>7} {:>8} {:>17} {:>12}  motion",
        "preset", "arc (deg)", "views", "SID mm", "axis mm", "detector", "beam"
    )?;
    for p in &presets {
        let d = &p.geometry.detector;
        let motion = match p.motion {
            Motion::Continuous { exposure_arc_deg, .. } => format!("continuous ({exposure_arc_deg} deg/view)"),
            Motion::StepAndShoot => "step-and-shoot".into(),
            Motion::Static => "static".into(),
        };
        writeln!(
            out,
            "{:<15} {:>12} {:>5} {:>7} {:>8} {:>17} {:>12}  {motion}",
            p.name.as_str(),
            format!("{}..{}", p.sampling.start_deg, p.sampling.end_deg),
            p.sampling.views,
            p.geometry.source_to_detector_mm,
            p.geometry.rotation_axis_height_mm,
            format!("{}x{} @{}um", d.cols, d.rows, d.pitch_u_mm * 1000.0),
            format!("{:?}/{:?} {}kV", p.beam.target, p.beam.filter.material, p.beam.kvp),
        )?;
    }
    Ok(())
}
