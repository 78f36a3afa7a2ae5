//! `tomolab spectrum`: a filtered tube spectrum and its figures of merit.

use std::io::Write;

use anyhow::Context;
use tomolab_hal::Target;
use tomolab_simulator::{FilterLayer, PhysicsError, Spectrum};

/// Arguments of `tomolab spectrum`.
#[derive(Debug, clap::Args)]
pub struct SpectrumArgs {
    /// Anode material: W, Mo or Rh.
    #[arg(long)]
    target: String,
    /// Tube voltage, kV (an integer from 20 to 49).
    #[arg(long)]
    kvp: f64,
    /// A layer in the beam as MATERIAL:THICKNESS_MM (e.g. Rh:0.05, Be:1, pmma:2, air:650); repeatable.
    #[arg(long = "filter", value_name = "MATERIAL:MM")]
    filters: Vec<String>,
    /// Distance from the focal spot at which fluence and kerma are given, mm.
    #[arg(long, default_value_t = 1000.0)]
    distance_mm: f64,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also print the spectrum, bin by bin (0.5 keV bins).
    #[arg(long)]
    table: bool,
}

fn parse_target(text: &str) -> anyhow::Result<Target> {
    match text.to_ascii_lowercase().as_str() {
        "w" | "tungsten" => Ok(Target::W),
        "mo" | "molybdenum" => Ok(Target::Mo),
        "rh" | "rhodium" => Ok(Target::Rh),
        _ => anyhow::bail!("unknown --target {text:?}; known targets: W, Mo, Rh"),
    }
}

/// Computes and prints the spectrum's figures.
pub fn run(args: &SpectrumArgs) -> anyhow::Result<()> {
    let target = parse_target(&args.target)?;
    let filters = args
        .filters
        .iter()
        .map(|f| f.parse::<FilterLayer>().with_context(|| "--filter".to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spectrum = Spectrum::new(target, args.kvp, &filters, args.distance_mm).map_err(|e| {
        let flag = if matches!(e, PhysicsError::KvpOutOfRange { .. }) { "--kvp" } else { "--distance-mm" };
        anyhow::Error::new(e).context(flag)
    })?;
    let summary = spectrum.summary()?;
    let bins = spectrum.bins();
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        if args.table {
            value["bins"] = serde_json::to_value(&bins)?;
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let stack = if filters.is_empty() {
        "no filtration".to_string()
    } else {
        filters.iter().map(|f| format!("{} mm {}", f.thickness_mm, f.material)).collect::<Vec<_>>().join(" + ")
    };
    writeln!(out, "{target:?} target, {} kV, {stack}, at {} mm", summary.kvp, summary.distance_mm)?;
    writeln!(out, "fluence       {:.4e} photons/mm^2/mAs", summary.fluence_per_mm2_per_mas)?;
    writeln!(out, "air kerma     {:.3} uGy/mAs", summary.air_kerma_ugy_per_mas)?;
    writeln!(out, "mean energy   {:.2} keV", summary.mean_energy_kev)?;
    writeln!(out, "HVL1          {:.4} mm Al", summary.hvl1_mm_al)?;
    writeln!(out, "HVL2          {:.4} mm Al", summary.hvl2_mm_al)?;
    if args.table {
        writeln!(out)?;
        writeln!(out, "{:>12} {:>14} {:>22}", "bin (keV)", "mean E (keV)", "photons/mm^2/mAs")?;
        for b in &bins {
            writeln!(
                out,
                "{:>12} {:>14.3} {:>22.6e}",
                format!("{:.1}-{:.1}", b.energy_lo_kev, b.energy_lo_kev + 0.5),
                b.mean_energy_kev,
                b.fluence_per_mm2_per_mas
            )?;
        }
    }
    Ok(())
}
