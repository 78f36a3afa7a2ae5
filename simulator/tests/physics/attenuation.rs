//! Attenuation coefficients against NIST.

use tomolab_simulator::material;

/// Parses `material,energy_kev,value,...` rows of a reference CSV.
fn rows(text: &str) -> Vec<(String, f64, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("material,") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ',').collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn mu_of_glandular_and_adipose_within_1_percent_of_nist() {
    // data/reference/nist_mu_check.csv: Hammerstein et al. (Radiology 130:485, 1979) compositions mixed with
    // NIST XAAMDI v1.4 element mu/rho (XCOM) at 20 and 30 keV, plus NIST Table 4 water and air.
    let reference = rows(include_str!("../../../data/reference/nist_mu_check.csv"));
    let mut checked = 0;
    for (name, e, nist) in reference {
        let m = material(&name).unwrap();
        let ours = m.coefficients(e).unwrap().total_cm2_g;
        let diff = ours / nist - 1.0;
        println!(
            "mu/rho {name} {e} keV: ours {ours:.5} NIST {nist} ({:+.3} %); mu = {:.5} /cm",
            100.0 * diff,
            ours * m.density_g_cm3()
        );
        assert!(diff.abs() < 0.01, "{name} at {e} keV: {ours} vs {nist}");
        if name == "glandular" || name == "adipose" {
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "glandular and adipose at 20 and 30 keV");
}

#[test]
fn mu_en_of_water_and_air_within_1_percent_of_nist() {
    // data/reference/nist_mu_en_check.csv: NIST XAAMDI v1.4 Table 4.
    for (name, e, nist) in rows(include_str!("../../../data/reference/nist_mu_en_check.csv")) {
        if name != "water" && name != "air" {
            continue; // ICRU-44 compositions, not tomolab materials
        }
        let ours = material(&name).unwrap().coefficients(e).unwrap().energy_absorption_cm2_g;
        assert!((ours / nist - 1.0).abs() < 0.01, "{name} at {e} keV: {ours} vs {nist}");
    }
}

#[test]
fn interpolation_is_log_log_between_grid_points() {
    let w = material("water").unwrap();
    let (a, b) = (w.mu_over_rho_cm2_g(20.0), w.mu_over_rho_cm2_g(20.25));
    let mid = w.mu_over_rho_cm2_g(20.125);
    let expect = (a.ln() + (20.125f64.ln() - 20f64.ln()) / (20.25f64.ln() - 20f64.ln()) * (b.ln() - a.ln())).exp();
    assert!((mid / expect - 1.0).abs() < 1e-12);
}
