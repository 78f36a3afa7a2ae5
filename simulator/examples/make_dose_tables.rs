//! Computes the t factor table of `data/dose/` with the Monte Carlo on the Dance model breast, and the derived
//! W/Al s factor against thickness (the published tables could not be obtained). Run from the workspace root:
//! `cargo run --release -p tomolab-simulator --example make_dose_tables`
use std::fmt::Write as _;

use tomolab_hal::Target;
use tomolab_simulator::FilterLayer;
use tomolab_simulator::dose::formalism::ConversionTables;
use tomolab_simulator::dose::standard::reference_arc;
use tomolab_simulator::dose::{StandardBreast, ViewBeam, standard_view_dose};
use tomolab_simulator::mc::McConfig;

const THICKNESSES: [f64; 10] = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0];
const ANGLES: [f64; 7] = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0];

fn layers(filter: &str, mm: f64) -> Result<Vec<FilterLayer>, Box<dyn std::error::Error>> {
    Ok(vec![FilterLayer::named("Be", 1.0)?, FilterLayer::named(filter, mm)?, FilterLayer::named("pmma", 2.5)?])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arc = reference_arc();
    let version = env!("CARGO_PKG_VERSION");
    let header = |what: &str| {
        format!(
            "# {what}\n# Computed by the tomolab-simulator {version} Monte Carlo (TG-195 Case 3 within 0.5 % on the whole breast) on the Dance\n\
             # model breast (semi-cylinder, radius 80 mm, 5 mm adipose layer, central region of the given glandular weight fraction;\n\
             # simulator::dose::standard), beams through 1 mm Be and a 2.5 mm PMMA paddle, wide-angle arc (SID 650 mm, axis 50 mm).\n\
             # Command: cargo run --release -p tomolab-simulator --example make_dose_tables\n"
        )
    };
    // t: MGD per mAs at angle theta relative to 0 deg, same tube output, W/Rh 28 kV, 50 % glandular.
    let mut t_csv = header(
        "t factors: MGD per mAs at projection angle theta relative to 0 deg (Dance 2011 definition), W/Rh 28 kV, G = 0.5.",
    );
    t_csv.push_str("thickness_mm,angle_deg,t\n");
    for &t in &THICKNESSES {
        let b = StandardBreast::new(t, 0.5);
        let config = McConfig { histories: 1_000_000, batches: 16, seed: 12, stream_offset: 0 };
        let dose = |angle: f64| -> Result<f64, Box<dyn std::error::Error>> {
            let beam = ViewBeam::new(&arc, angle, Target::W, 28.0, &layers("Rh", 0.05)?, b.top_mm())?;
            Ok(standard_view_dose(&b, &beam, &config)?.mgd_per_mas.mean)
        };
        let zero = dose(0.0)?;
        for &a in &ANGLES {
            let ratio = if a == 0.0 { 1.0 } else { dose(a)? / zero };
            writeln!(t_csv, "{t},{a},{ratio:.4}")?;
        }
        eprintln!("t: {t} mm done");
    }
    std::fs::write("data/dose/mc_t_factors.csv", t_csv)?;

    // s for W/Al 0.7 mm at 30 kV against thickness (Dance 2009 tabulates the W/Al factor against thickness),
    // relative to W/Rh 50 um at 28 kV on the same model breast (50 %): s = 1.042 [MC/g](W/Al) / [MC/g](W/Rh).
    // The ratio cancels the Monte Carlo's own normalisation against the published g.
    let tables = ConversionTables::embedded()?;
    let mut s_csv = header(
        "s factor of W/Al (0.7 mm Al, 30 kV) against breast thickness, 50 % glandular, relative to the published W/Rh s = 1.042:
         # s(W/Al) = 1.042 [MGD/(K g)](W/Al 0.7 mm, 30 kV) / [MGD/(K g)](W/Rh 50 um, 28 kV), g from dance_g_factors.csv.",
    );
    s_csv.push_str("thickness_mm,s\n");
    for &t in &THICKNESSES {
        let b = StandardBreast::new(t, 0.5);
        let config = McConfig { histories: 4_000_000, batches: 32, seed: 13, stream_offset: 0 };
        let over_g = |target: Target, filter: &str, mm: f64, kvp: f64| -> Result<f64, Box<dyn std::error::Error>> {
            let beam = ViewBeam::new(&arc, 0.0, target, kvp, &layers(filter, mm)?, b.top_mm())?;
            let d = standard_view_dose(&b, &beam, &config)?;
            Ok(d.mgd_per_kerma.mean / tables.g(t, beam.hvl_mm_al)?)
        };
        let s_w_al = 1.042 * over_g(Target::W, "Al", 0.7, 30.0)? / over_g(Target::W, "Rh", 0.05, 28.0)?;
        writeln!(s_csv, "{t},{s_w_al:.3}")?;
        eprintln!("s(W/Al): {t} mm done");
    }
    std::fs::write("data/dose/mc_s_w_al.csv", s_csv)?;
    Ok(())
}
