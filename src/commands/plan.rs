//! `tomolab plan`: the views of a preset with their poses.

use std::io::Write;

use serde::Serialize;
use tomolab_hal::{PresetName, ScanPreset, ViewPose};

/// Arguments of `tomolab plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Preset name (see `tomolab presets`).
    #[arg(long, default_value = "wide-angle")]
    preset: PresetName,
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct PlannedView {
    index: usize,
    angle_deg: f64,
    pose: ViewPose,
}

#[derive(Serialize)]
struct PlanOutput<'a> {
    preset: &'a ScanPreset,
    source_to_detector_mm: f64,
    rotation_axis_height_mm: f64,
    views: Vec<PlannedView>,
}

/// Prints the plan of a preset.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let preset = ScanPreset::builtin(args.preset);
    let views: Vec<PlannedView> = preset
        .sampling
        .angles_deg()
        .into_iter()
        .enumerate()
        .map(|(index, angle_deg)| PlannedView { index, angle_deg, pose: preset.geometry.pose_at(angle_deg) })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let plan = PlanOutput {
            preset: &preset,
            source_to_detector_mm: preset.geometry.source_to_detector_mm,
            rotation_axis_height_mm: preset.geometry.rotation_axis_height_mm,
            views,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?;
        return Ok(());
    }
    writeln!(out, "{}: {}", preset.name, preset.description)?;
    writeln!(out, "{:>4} {:>9}  {:>28}  {:>24}", "view", "angle deg", "focal spot (x, y, z) mm", "detector centre mm")?;
    for v in &views {
        let (s, d) = (v.pose.source_mm, v.pose.detector_centre_mm);
        writeln!(
            out,
            "{:>4} {:>9.3}  ({:>8.2}, {:>6.2}, {:>7.2})  ({:>6.2}, {:>6.2}, {:>6.2})",
            v.index, v.angle_deg, s.x, s.y, s.z, d.x, d.y, d.z
        )?;
    }
    Ok(())
}
