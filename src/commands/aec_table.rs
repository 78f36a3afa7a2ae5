//! `tomolab aec-table`: the AEC's chosen beam and mAs, the booked dose and the density estimate against the
//! truth over a grid of breasts (each a real simulated exam; see `tomolab::exam::aec_survey`).

use std::io::Write;

use tomolab::exam::aec_survey::aec_case;
use tomolab_hal::PresetName;

/// Arguments of `tomolab aec-table`.
#[derive(Debug, clap::Args)]
pub struct AecTableArgs {
    /// Scanner preset.
    #[arg(long, default_value = "wide-angle")]
    preset: PresetName,
    /// Compressed thicknesses, mm (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0])]
    thickness_mm: Vec<f64>,
    /// Glandular fractions (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [0.05, 0.2, 0.5, 0.8])]
    glandularity: Vec<f64>,
    /// Phantom seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs one exam per breast and prints the table.
pub fn run(args: &AecTableArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{:>5} {:>5} {:>6} {:>6} {:>6}  {:<10} {:>4} {:>9} {:>9} {:>6}  outcome",
            "t mm", "g", "est", "err", "raw", "beam", "kV", "mAs/view", "mAs", "MGD"
        )?;
    }
    let mut cases = Vec::new();
    for &t in &args.thickness_mm {
        for &g in &args.glandularity {
            let c = aec_case(args.preset, t, g, args.seed)?;
            if !args.json {
                let est = c.estimated_glandular.map_or("-".into(), |e| format!("{e:.3}"));
                let err = c.estimated_glandular.map_or("-".into(), |e| format!("{:+.3}", e - g));
                let raw = c.raw_glandular.map_or("-".into(), |e| format!("{e:.3}"));
                let (beam, kv) = c.beam.map_or(("-".into(), "-".into()), |(tg, f, mm, kv)| {
                    (format!("{tg:?}/{f:?}{}", (mm * 1000.0).round()), format!("{kv}"))
                });
                let mas = c.mas_per_view.map_or("-".into(), |m| format!("{m:.2}"));
                writeln!(
                    out,
                    "{t:>5} {g:>5} {est:>6} {err:>6} {raw:>6}  {beam:<10} {kv:>4} {mas:>9} {:>9.1} {:>6.3}  {}",
                    c.total_mas, c.booked_mgd, c.outcome
                )?;
            }
            cases.push(c);
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&cases)?)?;
    }
    Ok(())
}
