//! `tomolab exam --print-config`: every key the configuration accepts. Keys that are set print as TOML; an
//! optional key left unset (a geometry override, a fault) and the keys of the other technique mode print as
//! commented lines with the value in effect or an example, so every key appears and uncommenting one gives a
//! valid `exam.toml`.

use tomolab_hal::ScanPreset;
use tomolab_simulator::device::FaultPlan;

use super::{ExamConfig, GeometryOverrides, Resolution, TechniqueConfig};

/// The configuration as TOML, with every unset optional key and the other technique mode commented out.
pub fn printed_config(config: &ExamConfig) -> Result<String, toml::ser::Error> {
    let mut text = toml::to_string_pretty(config)?;
    insert_after_header(&mut text, "geometry", &geometry_comments(config));
    insert_after_header(&mut text, "faults", &fault_comments(&config.faults));
    insert_after_header(&mut text, "technique", &technique_comments(config)?);
    Ok(text)
}

/// `lines` placed right after the `[section]` header (or as a new section at the end if there is none).
fn insert_after_header(text: &mut String, section: &str, lines: &str) {
    if lines.is_empty() {
        return;
    }
    let header = format!("[{section}]\n");
    match text.find(&format!("\n{header}")).map(|i| i + 1).or_else(|| text.starts_with(&header).then_some(0)) {
        Some(at) => text.insert_str(at + header.len(), lines),
        None => {
            text.push('\n');
            text.push_str(&header);
            text.push_str(lines);
        }
    }
}

fn geometry_comments(config: &ExamConfig) -> String {
    let preset = ScanPreset::builtin(config.preset);
    let g: &GeometryOverrides = &config.geometry;
    let native = preset.geometry.detector.pitch_u_mm;
    let pitch = match config.resolution {
        Resolution::Fast => native * 4.0,
        Resolution::Clinical => native,
    };
    let unset = [
        ("source_to_detector_mm", g.source_to_detector_mm.is_none(), toml_f64(preset.geometry.source_to_detector_mm)),
        (
            "rotation_axis_height_mm",
            g.rotation_axis_height_mm.is_none(),
            toml_f64(preset.geometry.rotation_axis_height_mm),
        ),
        ("arc_start_deg", g.arc_start_deg.is_none(), toml_f64(preset.sampling.start_deg)),
        ("arc_end_deg", g.arc_end_deg.is_none(), toml_f64(preset.sampling.end_deg)),
        ("views", g.views.is_none(), preset.sampling.views.to_string()),
        ("detector_pitch_mm", g.detector_pitch_mm.is_none(), toml_f64(pitch)),
    ];
    commented("unset: the preset's value (shown) applies; uncomment to override", &unset)
}

fn fault_comments(f: &FaultPlan) -> String {
    let unset = [
        ("tube_arc_at", f.tube_arc_at.is_none()),
        ("kv_drop_at", f.kv_drop_at.is_none()),
        ("dropped_frame_at", f.dropped_frame_at.is_none()),
        ("motor_stall_at", f.motor_stall_at.is_none()),
        ("force_drift_at", f.force_drift_at.is_none()),
        ("emergency_stop_at", f.emergency_stop_at.is_none()),
        ("switch_release_at", f.switch_release_at.is_none()),
    ]
    .map(|(k, u)| (k, u, "0".to_owned()));
    commented("unset: no fault; uncomment to inject one at that exposure index (0 is the first exposure)", &unset)
}

/// The keys of the mode not chosen, as an example to uncomment in place of the chosen one.
fn technique_comments(config: &ExamConfig) -> Result<String, toml::ser::Error> {
    let beam = ScanPreset::builtin(config.preset).beam;
    let other = match config.technique {
        TechniqueConfig::Aec { .. } => TechniqueConfig::Manual {
            target: beam.target,
            filter: beam.filter.material,
            filter_mm: beam.filter.thickness_mm,
            kvp: beam.kvp,
            mas_per_view: 2.0,
        },
        TechniqueConfig::Manual { .. } => match ExamConfig::defaults(config.preset, config.resolution).technique {
            aec @ TechniqueConfig::Aec { .. } => aec,
            manual => manual,
        },
    };
    let table = toml::to_string(&other)?;
    let mut out = String::from("# or, replacing the keys above (a [technique] table is taken whole):\n");
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

fn commented(note: &str, keys: &[(&str, bool, String)]) -> String {
    let lines: Vec<String> =
        keys.iter().filter(|(_, unset, _)| *unset).map(|(k, _, v)| format!("# {k} = {v}\n")).collect();
    if lines.is_empty() { String::new() } else { format!("# {note}\n{}", lines.concat()) }
}

/// A float as TOML writes it (always with a decimal point).
fn toml_f64(v: f64) -> String {
    toml::Value::Float(v).to_string()
}
