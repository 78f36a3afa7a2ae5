//! `tomolab attenuation`: mass and linear attenuation coefficients of a material.

use std::io::Write;

use anyhow::Context;

/// Arguments of `tomolab attenuation`.
#[derive(Debug, clap::Args)]
pub struct AttenuationArgs {
    /// Material name (glandular, adipose, skin, lesion, hydroxyapatite, calcium_oxalate, pmma, air, water,
    /// aluminium, rhodium, molybdenum, silver, beryllium, selenium, csi, tungsten, polystyrene) or symbol.
    #[arg(long)]
    material: String,
    /// Photon energy, keV (1 to 60).
    #[arg(long)]
    energy_kev: f64,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Looks the coefficients up and prints them.
pub fn run(args: &AttenuationArgs) -> anyhow::Result<()> {
    let m = tomolab_simulator::material(&args.material).context("--material")?;
    let c = m.coefficients(args.energy_kev).context("--energy-kev")?;
    let rho = m.density_g_cm3();
    let mu_per_cm = c.total_cm2_g * rho;
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "material": m.name(),
            "energy_kev": args.energy_kev,
            "density_g_cm3": rho,
            "mass_coefficients_cm2_g": c,
            "mu_per_cm": mu_per_cm,
            "mu_per_mm": mu_per_cm / 10.0,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    writeln!(out, "{} at {} keV (density {} g/cm^3)", m.name(), args.energy_kev, rho)?;
    writeln!(out, "mu/rho        {:.6} cm^2/g", c.total_cm2_g)?;
    writeln!(out, "  photoelectric {:.6} cm^2/g", c.photoelectric_cm2_g)?;
    writeln!(out, "  compton       {:.6} cm^2/g", c.compton_cm2_g)?;
    writeln!(out, "  rayleigh      {:.6} cm^2/g", c.rayleigh_cm2_g)?;
    writeln!(out, "mu_en/rho     {:.6} cm^2/g", c.energy_absorption_cm2_g)?;
    writeln!(out, "mu            {:.6} 1/cm ({:.6} 1/mm)", mu_per_cm, mu_per_cm / 10.0)?;
    Ok(())
}
