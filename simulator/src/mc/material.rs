//! Interaction data of one Monte Carlo material: linear coefficients on a uniform energy grid, the Rayleigh
//! form factor as a sampling table and the Compton incoherent scattering function.
//!
//! Coefficients come from `data/attenuation/` (photoelectric, incoherent and coherent mu/rho, mu_en/rho),
//! the angular data from `data/scattering/` (per-atom mixture F^2(x) and S(x), x = sin(theta/2)/lambda in
//! 1/Angstrom). A mixture by weight adds the mass coefficients by weight and averages F^2 and S per atom,
//! which is exact in the independent-atom approximation both tables use.

use std::sync::OnceLock;

use crate::attenuation::{self, MaterialData};
use crate::error::PhysicsError;

/// Lowest energy followed, keV; a photon below it is absorbed where it is.
pub const ENERGY_MIN_KEV: f64 = 1.0;
/// Highest energy of the tables, keV.
pub const ENERGY_MAX_KEV: f64 = 60.0;
/// Spacing of the uniform energy grid, keV.
pub(crate) const ENERGY_STEP_KEV: f64 = 0.05;
/// VoxelGrid points.
pub(crate) const ENERGY_POINTS: usize = 1181;
/// hc in keV Angstrom: x = E / HC * sin(theta / 2).
const HC_KEV_ANGSTROM: f64 = 12.398_419_84;
/// Electron rest energy, keV.
const ELECTRON_KEV: f64 = 510.998_95;

/// Index and weight of `energy_kev` on the uniform grid (clamped into it).
#[inline]
pub(crate) fn grid_position(energy_kev: f64) -> (usize, f64) {
    let t = ((energy_kev - ENERGY_MIN_KEV) / ENERGY_STEP_KEV).clamp(0.0, (ENERGY_POINTS - 1) as f64 - 1e-9);
    let i = t as usize;
    (i, t - i as f64)
}

/// Angular scattering data of a material (per-atom averages over its composition).
#[derive(Debug, Clone)]
struct ScatteringTable {
    /// Atoms per gram, for mixing.
    atoms_per_gram: f64,
    /// x grid, 1/Angstrom (starts at 0, ascending).
    x: Vec<f64>,
    /// u = x^2.
    u: Vec<f64>,
    /// F^2 per atom at each x.
    f2: Vec<f64>,
    /// S per atom at each x.
    s: Vec<f64>,
}

const SCATTERING: [(&str, &str); 14] = [
    ("adipose", include_str!("../../../data/scattering/adipose.csv")),
    ("air", include_str!("../../../data/scattering/air.csv")),
    ("aluminium", include_str!("../../../data/scattering/aluminium.csv")),
    ("calcium_oxalate", include_str!("../../../data/scattering/calcium_oxalate.csv")),
    ("carcinoma", include_str!("../../../data/scattering/carcinoma.csv")),
    ("csi", include_str!("../../../data/scattering/csi.csv")),
    ("glandular", include_str!("../../../data/scattering/glandular.csv")),
    ("hydroxyapatite", include_str!("../../../data/scattering/hydroxyapatite.csv")),
    ("lesion", include_str!("../../../data/scattering/lesion.csv")),
    ("pmma", include_str!("../../../data/scattering/pmma.csv")),
    ("polystyrene", include_str!("../../../data/scattering/polystyrene.csv")),
    ("selenium", include_str!("../../../data/scattering/selenium.csv")),
    ("skin", include_str!("../../../data/scattering/skin.csv")),
    ("water", include_str!("../../../data/scattering/water.csv")),
];

fn parse_scattering(name: &'static str, text: &str) -> Result<ScatteringTable, PhysicsError> {
    let err = |line: usize, problem: String| PhysicsError::Table { table: name, line, problem };
    let mut atoms_per_gram = None;
    let (mut x, mut f2, mut s) = (Vec::new(), Vec::new(), Vec::new());
    let mut header = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(c) = line.strip_prefix('#') {
            if let Some(v) = c.trim().strip_prefix("atoms_per_gram=") {
                let v = v.split_whitespace().next().unwrap_or_default();
                atoms_per_gram = Some(v.parse::<f64>().map_err(|e| err(n + 1, format!("atoms_per_gram: {e}")))?);
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if !header {
            header = line.starts_with("x_inv_angstrom,");
            if !header {
                return Err(err(n + 1, format!("expected the header row, found {line:?}")));
            }
            continue;
        }
        let v: Vec<f64> = line
            .split(',')
            .map(|f| f.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| err(n + 1, e.to_string()))?;
        if v.len() != 3 || !v.iter().all(|a| a.is_finite() && *a >= 0.0) {
            return Err(err(n + 1, "expected three finite non-negative numbers".into()));
        }
        if x.last().is_some_and(|&l| v[0] <= l) {
            return Err(err(n + 1, "x must increase".into()));
        }
        x.push(v[0]);
        f2.push(v[1]);
        s.push(v[2]);
    }
    let atoms_per_gram = atoms_per_gram.ok_or_else(|| err(0, "no '# atoms_per_gram=' header".into()))?;
    if x.len() < 2 || x[0] != 0.0 || x[x.len() - 1] < ENERGY_MAX_KEV / HC_KEV_ANGSTROM {
        return Err(err(0, "x must start at 0 and reach E_max / hc".into()));
    }
    let u = x.iter().map(|v| v * v).collect();
    Ok(ScatteringTable { atoms_per_gram, x, u, f2, s })
}

fn scattering(name: &str) -> Result<&'static ScatteringTable, PhysicsError> {
    static PARSED: OnceLock<Result<Vec<ScatteringTable>, PhysicsError>> = OnceLock::new();
    let all = PARSED
        .get_or_init(|| SCATTERING.iter().map(|(n, t)| parse_scattering(n, t)).collect())
        .as_ref()
        .map_err(Clone::clone)?;
    SCATTERING.iter().position(|(n, _)| *n == name).map(|i| &all[i]).ok_or_else(|| {
        PhysicsError::invalid(
            "mc material",
            format!(
                "{name:?} has no scattering table; Monte Carlo materials: {}",
                SCATTERING.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

/// A material the Monte Carlo can transport photons through.
#[derive(Debug, Clone)]
pub struct McMaterial {
    name: String,
    density_g_cm3: f64,
    /// Weight fraction of glandular tissue (1 for glandular, 0 for anything without it).
    glandular_weight_fraction: f64,
    /// Per grid energy, 1/mm: photoelectric, incoherent, coherent, total.
    mu: Vec<[f32; 4]>,
    /// Per grid energy: share of energy deposited here that counts as glandular dose,
    /// `w_g (mu_en/rho)_glandular / (mu_en/rho)_material`.
    glandular_share: Vec<f32>,
    /// Per-atom F^2 and S on the table's x grid.
    x: Vec<f64>,
    u: Vec<f64>,
    f2: Vec<f64>,
    s: Vec<f64>,
    /// Cumulative integral of F^2 over u = x^2 (trapezoids), for sampling.
    f2_cumulative: Vec<f64>,
    /// Largest S (its high-x limit, the mean atomic number per atom).
    s_max: f64,
}

impl McMaterial {
    /// A tabulated material by name (`glandular`, `pmma`, `water`, ...) at its table density.
    pub fn named(name: &str) -> Result<Self, PhysicsError> {
        let data = attenuation::material(name)?;
        Self::mixture(data.name(), &[(data.name(), 1.0)], data.density_g_cm3())
    }

    /// A mixture by weight of tabulated materials at `density_g_cm3`, named `name`. The weights must be
    /// positive and sum to 1.
    pub fn mixture(name: &str, parts: &[(&str, f64)], density_g_cm3: f64) -> Result<Self, PhysicsError> {
        if parts.is_empty() {
            return Err(PhysicsError::invalid("mc material", format!("{name}: a mixture needs at least one part")));
        }
        if !(density_g_cm3.is_finite() && density_g_cm3 > 0.0) {
            return Err(PhysicsError::invalid("mc material", format!("{name}: density must be positive")));
        }
        let total: f64 = parts.iter().map(|p| p.1).sum();
        if parts.iter().any(|p| !(p.1.is_finite() && p.1 > 0.0)) || (total - 1.0).abs() > 1e-6 {
            return Err(PhysicsError::invalid(
                "mc material",
                format!("{name}: weight fractions must be positive and sum to 1, got {total}"),
            ));
        }
        let parts: Vec<(&'static MaterialData, &'static ScatteringTable, f64)> = parts
            .iter()
            .map(|(n, w)| {
                let data = attenuation::material(n)?;
                Ok((data, scattering(data.name())?, *w))
            })
            .collect::<Result<_, PhysicsError>>()?;
        let glandular = attenuation::material("glandular")?;
        let glandular_weight_fraction: f64 = parts.iter().filter(|p| p.0.name() == "glandular").map(|p| p.2).sum();

        let rho_per_mm = density_g_cm3 / 10.0;
        let mut mu = Vec::with_capacity(ENERGY_POINTS);
        let mut glandular_share = Vec::with_capacity(ENERGY_POINTS);
        for k in 0..ENERGY_POINTS {
            let e = ENERGY_MIN_KEV + k as f64 * ENERGY_STEP_KEV;
            let (mut pe, mut inc, mut coh, mut en) = (0.0, 0.0, 0.0, 0.0);
            for (data, _, w) in &parts {
                let c = data.coefficients(e)?;
                pe += w * c.photoelectric_cm2_g;
                inc += w * c.compton_cm2_g;
                coh += w * c.rayleigh_cm2_g;
                en += w * c.energy_absorption_cm2_g;
            }
            let m = [pe, inc, coh, pe + inc + coh].map(|v| (v * rho_per_mm) as f32);
            mu.push(m);
            let share = glandular_weight_fraction * glandular.mu_en_over_rho_cm2_g(e) / en;
            glandular_share.push(share as f32);
        }

        // Per-atom averages of F^2 and S, weighted by each part's atoms: n_i = w_i * atoms_per_gram_i. Every
        // table shares the same x grid (checked).
        let x = parts[0].1.x.clone();
        if parts.iter().any(|p| p.1.x != x) {
            return Err(PhysicsError::invalid(
                "mc material",
                format!("{name}: scattering tables use different x grids"),
            ));
        }
        let atoms: f64 = parts.iter().map(|p| p.2 * p.1.atoms_per_gram).sum();
        let mix = |col: fn(&ScatteringTable) -> &Vec<f64>| -> Vec<f64> {
            (0..x.len())
                .map(|i| parts.iter().map(|p| p.2 * p.1.atoms_per_gram * col(p.1)[i]).sum::<f64>() / atoms)
                .collect()
        };
        let f2 = mix(|t| &t.f2);
        let s = mix(|t| &t.s);
        let u = parts[0].1.u.clone();
        let mut f2_cumulative = vec![0.0; x.len()];
        for i in 1..x.len() {
            f2_cumulative[i] = f2_cumulative[i - 1] + 0.5 * (f2[i - 1] + f2[i]) * (u[i] - u[i - 1]);
        }
        let s_max = s.iter().copied().fold(0.0, f64::max);
        Ok(Self {
            name: name.to_string(),
            density_g_cm3,
            glandular_weight_fraction,
            mu,
            glandular_share,
            x,
            u,
            f2,
            s,
            f2_cumulative,
            s_max,
        })
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Density, g/cm^3.
    pub fn density_g_cm3(&self) -> f64 {
        self.density_g_cm3
    }

    /// Weight fraction of glandular tissue.
    pub fn glandular_weight_fraction(&self) -> f64 {
        self.glandular_weight_fraction
    }

    /// Linear coefficients at grid position `(i, w)`, 1/mm: photoelectric, incoherent, coherent, total.
    #[inline]
    pub(crate) fn mu_at(&self, (i, w): (usize, f64)) -> [f64; 4] {
        let (a, b) = (self.mu[i], self.mu[i + 1]);
        let w = w as f32;
        [0, 1, 2, 3].map(|c| f64::from(a[c] + w * (b[c] - a[c])))
    }

    /// Total linear attenuation coefficient at grid position `(i, w)`, 1/mm.
    #[inline]
    pub(crate) fn mu_total_at(&self, (i, w): (usize, f64)) -> f64 {
        let (a, b) = (self.mu[i][3], self.mu[i + 1][3]);
        f64::from(a + w as f32 * (b - a))
    }

    /// Total linear attenuation coefficient at `energy_kev`, 1/mm.
    pub fn mu_total_per_mm(&self, energy_kev: f64) -> f64 {
        self.mu_total_at(grid_position(energy_kev))
    }

    /// Glandular share of deposited energy at grid position `(i, w)`.
    #[inline]
    pub(crate) fn glandular_share_at(&self, (i, w): (usize, f64)) -> f64 {
        let (a, b) = (self.glandular_share[i], self.glandular_share[i + 1]);
        f64::from(a + w as f32 * (b - a))
    }

    /// Samples cos(theta) of a Rayleigh scatter at `energy_kev`: u = x^2 from F^2(x) up to x_max = E/hc,
    /// then the Thomson factor (1 + cos^2) / 2 by rejection.
    pub(crate) fn sample_rayleigh_cos(&self, energy_kev: f64, mut uniform: impl FnMut() -> f64) -> f64 {
        let x_max = energy_kev / HC_KEV_ANGSTROM;
        let u_max = x_max * x_max;
        let c_max = self.cumulative_at(u_max);
        loop {
            let u = self.invert_cumulative(uniform() * c_max);
            let cos = (1.0 - 2.0 * u / u_max).clamp(-1.0, 1.0);
            if 2.0 * uniform() <= 1.0 + cos * cos {
                return cos;
            }
        }
    }

    /// The cumulative F^2 integral at u (F^2 linear in u within a segment).
    fn cumulative_at(&self, u: f64) -> f64 {
        let k = self.u.partition_point(|&v| v <= u).clamp(1, self.u.len() - 1) - 1;
        let d = u - self.u[k];
        let slope = (self.f2[k + 1] - self.f2[k]) / (self.u[k + 1] - self.u[k]);
        self.f2_cumulative[k] + self.f2[k] * d + 0.5 * slope * d * d
    }

    /// The u at which the cumulative F^2 integral reaches `c`.
    fn invert_cumulative(&self, c: f64) -> f64 {
        let n = self.u.len();
        let k = self.f2_cumulative.partition_point(|&v| v <= c).clamp(1, n - 1) - 1;
        let delta = c - self.f2_cumulative[k];
        let a = self.f2[k];
        let b = (self.f2[k + 1] - self.f2[k]) / (self.u[k + 1] - self.u[k]);
        let d = if (b * delta).abs() < 1e-12 * a * a {
            delta / a
        } else {
            let disc = (a * a + 2.0 * b * delta).max(0.0);
            // Numerically stable root of b/2 d^2 + a d - delta = 0.
            2.0 * delta / (a + disc.sqrt())
        };
        (self.u[k] + d).clamp(0.0, self.u[n - 1])
    }

    /// Incoherent scattering function S(x) per atom (linear in x between table points).
    fn isf(&self, x: f64) -> f64 {
        let n = self.x.len();
        let k = self.x.partition_point(|&v| v <= x).clamp(1, n - 1) - 1;
        let w = ((x - self.x[k]) / (self.x[k + 1] - self.x[k])).clamp(0.0, 1.0);
        self.s[k] + w * (self.s[k + 1] - self.s[k])
    }

    /// Samples a Compton scatter at `energy_kev`: Klein-Nishina (Kahn's / EGS's mixture method), then
    /// rejection with S(x) / S_max. Returns (cos theta, scattered photon energy keV).
    pub(crate) fn sample_compton(&self, energy_kev: f64, mut uniform: impl FnMut() -> f64) -> (f64, f64) {
        let kappa = energy_kev / ELECTRON_KEV;
        let eps0 = 1.0 / (1.0 + 2.0 * kappa);
        let a1 = -eps0.ln();
        let a2 = 0.5 * (1.0 - eps0 * eps0);
        let x_scale = energy_kev / HC_KEV_ANGSTROM;
        loop {
            let eps = if uniform() * (a1 + a2) < a1 {
                (-a1 * uniform()).exp()
            } else {
                (eps0 * eps0 + (1.0 - eps0 * eps0) * uniform()).sqrt()
            };
            let t = (1.0 - eps) / (kappa * eps);
            let sin2 = (t * (2.0 - t)).max(0.0);
            if uniform() > 1.0 - eps * sin2 / (1.0 + eps * eps) {
                continue;
            }
            let cos = (1.0 - t).clamp(-1.0, 1.0);
            let x = x_scale * ((1.0 - cos) * 0.5).sqrt();
            if uniform() * self.s_max <= self.isf(x) {
                return (cos, energy_kev * eps);
            }
        }
    }
}
