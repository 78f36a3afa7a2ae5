//! Mass attenuation and energy-absorption coefficients, from the tables in `data/attenuation/`.
//!
//! The tables are compiled into the binary (`include_str!`) and parsed once, on first use. Each holds the
//! photoelectric, Compton, Rayleigh and total mass attenuation coefficients and the mass energy-absorption
//! coefficient on a 0.25 keV grid from 1 to 60 keV, plus two rows at every absorption edge (same energy,
//! below-edge values first). Between grid points the coefficients are interpolated linearly in
//! (ln E, ln mu/rho), segment by segment, so an edge is a jump at exactly its tabulated energy: at the edge
//! energy itself the above-edge value applies.
//!
//! Every table has a [`MaterialId`]; its name is the table file stem (`glandular`, `rhodium`, ...), and
//! chemical symbols and a few common spellings (`Rh`, `Al`, `aluminum`, `a-Se`, `CsI`, `PMMA`, ...) are
//! accepted as aliases when a name is parsed. The HAL's filter materials map to their tables here
//! ([`MaterialId::from`] a [`FilterMaterial`]).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use tomolab_hal::technique::FilterMaterial;

use crate::error::PhysicsError;

/// A material with an attenuation table. Serialized (and displayed) as the table's canonical name; parsed
/// from that name or an alias, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaterialId {
    /// Adipose tissue.
    Adipose,
    /// Dry air.
    Air,
    /// Aluminium.
    Aluminium,
    /// Beryllium (tube window).
    Beryllium,
    /// Calcium oxalate (type I calcifications).
    CalciumOxalate,
    /// Infiltrating ductal carcinoma: the mass material (Johns & Yaffe 1987, see `data/attenuation/carcinoma.csv`).
    Carcinoma,
    /// Caesium iodide (indirect detectors).
    CsI,
    /// Glandular tissue.
    Glandular,
    /// Hydroxyapatite (type II calcifications).
    Hydroxyapatite,
    /// Glandular-equivalent lesion tissue at 1.06 g/cm3 (the lens masses of the accreditation-style phantom).
    Lesion,
    /// Molybdenum.
    Molybdenum,
    /// PMMA (acrylic).
    Pmma,
    /// Polystyrene.
    Polystyrene,
    /// Rhodium.
    Rhodium,
    /// Selenium (a-Se detectors).
    Selenium,
    /// Silver.
    Silver,
    /// Skin.
    Skin,
    /// Tungsten.
    Tungsten,
    /// Water.
    Water,
}

impl MaterialId {
    /// Every material, in the order of the embedded tables.
    pub const ALL: [MaterialId; 19] = [
        MaterialId::Adipose,
        MaterialId::Air,
        MaterialId::Aluminium,
        MaterialId::Beryllium,
        MaterialId::CalciumOxalate,
        MaterialId::Carcinoma,
        MaterialId::CsI,
        MaterialId::Glandular,
        MaterialId::Hydroxyapatite,
        MaterialId::Lesion,
        MaterialId::Molybdenum,
        MaterialId::Pmma,
        MaterialId::Polystyrene,
        MaterialId::Rhodium,
        MaterialId::Selenium,
        MaterialId::Silver,
        MaterialId::Skin,
        MaterialId::Tungsten,
        MaterialId::Water,
    ];

    /// Canonical name (the table's file stem).
    pub fn name(self) -> &'static str {
        TABLES[self as usize].0
    }

    /// The material's attenuation table.
    pub fn data(self) -> Result<&'static MaterialData, PhysicsError> {
        Ok(&tables()?[self as usize])
    }
}

impl From<FilterMaterial> for MaterialId {
    /// The table of a tube filter material.
    fn from(material: FilterMaterial) -> Self {
        match material {
            FilterMaterial::Rh => MaterialId::Rhodium,
            FilterMaterial::Mo => MaterialId::Molybdenum,
            FilterMaterial::Al => MaterialId::Aluminium,
            FilterMaterial::Ag => MaterialId::Silver,
        }
    }
}

impl FromStr for MaterialId {
    type Err = PhysicsError;

    /// A canonical name or alias, case-insensitive; an unknown name is an error that lists the known ones.
    fn from_str(name: &str) -> Result<Self, PhysicsError> {
        let lower = name.trim().to_ascii_lowercase();
        let canonical = ALIASES.iter().find(|(a, _)| *a == lower).map_or(lower.as_str(), |(_, c)| *c);
        MaterialId::ALL.into_iter().find(|m| m.name() == canonical).ok_or_else(|| PhysicsError::UnknownMaterial {
            name: name.to_string(),
            known: known_materials().join(", "),
        })
    }
}

impl fmt::Display for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for MaterialId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for MaterialId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The embedded tables: (canonical name, CSV text).
const TABLES: [(&str, &str); 19] = [
    ("adipose", include_str!("../../data/attenuation/adipose.csv")),
    ("air", include_str!("../../data/attenuation/air.csv")),
    ("aluminium", include_str!("../../data/attenuation/aluminium.csv")),
    ("beryllium", include_str!("../../data/attenuation/beryllium.csv")),
    ("calcium_oxalate", include_str!("../../data/attenuation/calcium_oxalate.csv")),
    ("carcinoma", include_str!("../../data/attenuation/carcinoma.csv")),
    ("csi", include_str!("../../data/attenuation/csi.csv")),
    ("glandular", include_str!("../../data/attenuation/glandular.csv")),
    ("hydroxyapatite", include_str!("../../data/attenuation/hydroxyapatite.csv")),
    ("lesion", include_str!("../../data/attenuation/lesion.csv")),
    ("molybdenum", include_str!("../../data/attenuation/molybdenum.csv")),
    ("pmma", include_str!("../../data/attenuation/pmma.csv")),
    ("polystyrene", include_str!("../../data/attenuation/polystyrene.csv")),
    ("rhodium", include_str!("../../data/attenuation/rhodium.csv")),
    ("selenium", include_str!("../../data/attenuation/selenium.csv")),
    ("silver", include_str!("../../data/attenuation/silver.csv")),
    ("skin", include_str!("../../data/attenuation/skin.csv")),
    ("tungsten", include_str!("../../data/attenuation/tungsten.csv")),
    ("water", include_str!("../../data/attenuation/water.csv")),
];

/// Aliases (lower case) for canonical names.
const ALIASES: [(&str, &str); 23] = [
    ("fat", "adipose"),
    ("fibroglandular", "glandular"),
    ("al", "aluminium"),
    ("aluminum", "aluminium"),
    ("be", "beryllium"),
    ("mo", "molybdenum"),
    ("rh", "rhodium"),
    ("ag", "silver"),
    ("w", "tungsten"),
    ("se", "selenium"),
    ("a-se", "selenium"),
    ("ase", "selenium"),
    ("cs_i", "csi"),
    ("caesium_iodide", "csi"),
    ("cesium_iodide", "csi"),
    ("acrylic", "pmma"),
    ("perspex", "pmma"),
    ("ha", "hydroxyapatite"),
    ("calcification", "hydroxyapatite"),
    ("coo", "calcium_oxalate"),
    ("mass", "carcinoma"),
    ("idc", "carcinoma"),
    ("h2o", "water"),
];

/// Lowest tabulated energy, keV.
pub const MIN_ENERGY_KEV: f64 = 1.0;
/// Highest tabulated energy, keV.
pub const MAX_ENERGY_KEV: f64 = 60.0;

/// All coefficients of one material at one energy, cm^2/g.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MassCoefficients {
    /// Photoelectric absorption.
    pub photoelectric_cm2_g: f64,
    /// Incoherent (Compton) scattering.
    pub compton_cm2_g: f64,
    /// Coherent (Rayleigh) scattering.
    pub rayleigh_cm2_g: f64,
    /// Total mass attenuation coefficient mu/rho (coherent included).
    pub total_cm2_g: f64,
    /// Mass energy-absorption coefficient mu_en/rho.
    pub energy_absorption_cm2_g: f64,
}

/// One material's table.
#[derive(Debug, Clone)]
pub struct MaterialData {
    name: &'static str,
    density_g_cm3: f64,
    energy_kev: Vec<f64>,
    ln_energy: Vec<f64>,
    /// ln of the five columns, in `MassCoefficients` order.
    ln_columns: [Vec<f64>; 5],
}

impl MaterialData {
    /// Canonical name (the table's file stem).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Density, g/cm^3.
    pub fn density_g_cm3(&self) -> f64 {
        self.density_g_cm3
    }

    /// Interpolation segment and weight for `energy_kev` (clamped into the table).
    #[inline]
    fn segment(&self, energy_kev: f64) -> (usize, f64) {
        let e = energy_kev.clamp(MIN_ENERGY_KEV, MAX_ENERGY_KEV);
        let n = self.energy_kev.len();
        // Last row with energy <= e: at an edge energy that is the above-edge row.
        let idx = self.energy_kev.partition_point(|&x| x <= e);
        let i = idx.saturating_sub(1).min(n - 2);
        let (x0, x1) = (self.ln_energy[i], self.ln_energy[i + 1]);
        let w = if x1 > x0 { (e.ln() - x0) / (x1 - x0) } else { 0.0 };
        (i, w)
    }

    #[inline]
    fn column(&self, c: usize, (i, w): (usize, f64)) -> f64 {
        let col = &self.ln_columns[c];
        (col[i] + w * (col[i + 1] - col[i])).exp()
    }

    /// Every coefficient at `energy_kev`; an energy outside 1..=60 keV is an error.
    pub fn coefficients(&self, energy_kev: f64) -> Result<MassCoefficients, PhysicsError> {
        if !(MIN_ENERGY_KEV..=MAX_ENERGY_KEV).contains(&energy_kev) {
            return Err(PhysicsError::EnergyOutOfRange { energy_kev, min: MIN_ENERGY_KEV, max: MAX_ENERGY_KEV });
        }
        let s = self.segment(energy_kev);
        Ok(MassCoefficients {
            photoelectric_cm2_g: self.column(0, s),
            compton_cm2_g: self.column(1, s),
            rayleigh_cm2_g: self.column(2, s),
            total_cm2_g: self.column(3, s),
            energy_absorption_cm2_g: self.column(4, s),
        })
    }

    /// Total mu/rho in cm^2/g; energies outside the table are clamped to its ends (for kernels that have
    /// already checked their energy range).
    #[inline]
    pub fn mu_over_rho_cm2_g(&self, energy_kev: f64) -> f64 {
        self.column(3, self.segment(energy_kev))
    }

    /// mu_en/rho in cm^2/g (clamped like [`Self::mu_over_rho_cm2_g`]).
    #[inline]
    pub fn mu_en_over_rho_cm2_g(&self, energy_kev: f64) -> f64 {
        self.column(4, self.segment(energy_kev))
    }

    /// Linear attenuation coefficient at the table density, 1/mm.
    #[inline]
    pub fn mu_per_mm(&self, energy_kev: f64) -> f64 {
        self.mu_over_rho_cm2_g(energy_kev) * self.density_g_cm3 / 10.0
    }
}

fn parse_table(name: &'static str, text: &str) -> Result<MaterialData, PhysicsError> {
    let err = |line: usize, problem: String| PhysicsError::Table { table: name, line, problem };
    let mut density = None;
    let mut header_seen = false;
    let mut energy = Vec::new();
    let mut cols: [Vec<f64>; 5] = Default::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(v) = comment.trim().strip_prefix("density_g_cm3=") {
                density = Some(v.trim().parse::<f64>().map_err(|e| err(n + 1, format!("density: {e}")))?);
            }
            continue;
        }
        if !header_seen {
            if !line.starts_with("energy_kev,") {
                return Err(err(n + 1, format!("expected the header row, found {line:?}")));
            }
            header_seen = true;
            continue;
        }
        let mut fields = line.split(',');
        let mut next = |what: &str| -> Result<f64, PhysicsError> {
            let f = fields.next().ok_or_else(|| err(n + 1, format!("missing column {what}")))?;
            let v: f64 = f.trim().parse().map_err(|e| err(n + 1, format!("{what}: {e}")))?;
            if !(v.is_finite() && v > 0.0) {
                return Err(err(n + 1, format!("{what} must be positive, got {v}")));
            }
            Ok(v)
        };
        let e = next("energy_kev")?;
        if energy.last().is_some_and(|&last| e < last) {
            return Err(err(n + 1, "energies must not decrease".into()));
        }
        energy.push(e);
        for (c, what) in ["photoelectric", "compton", "rayleigh", "total", "energy_absorption"].iter().enumerate() {
            cols[c].push(next(what)?.ln());
        }
    }
    let density_g_cm3 = density.ok_or_else(|| err(0, "no '# density_g_cm3=' header".into()))?;
    if energy.len() < 2 || energy[0] > MIN_ENERGY_KEV || energy[energy.len() - 1] < MAX_ENERGY_KEV {
        return Err(err(0, format!("must cover {MIN_ENERGY_KEV}..{MAX_ENERGY_KEV} keV")));
    }
    let ln_energy = energy.iter().map(|e| e.ln()).collect();
    Ok(MaterialData { name, density_g_cm3, energy_kev: energy, ln_energy, ln_columns: cols })
}

fn tables() -> Result<&'static [MaterialData], PhysicsError> {
    static PARSED: OnceLock<Result<Vec<MaterialData>, PhysicsError>> = OnceLock::new();
    PARSED
        .get_or_init(|| TABLES.iter().map(|(name, text)| parse_table(name, text)).collect())
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// Canonical names of every material with a table.
pub fn known_materials() -> Vec<&'static str> {
    TABLES.iter().map(|(n, _)| *n).collect()
}

/// The table of a material by name or alias (case-insensitive).
///
/// An unknown name is an error that lists the known ones.
pub fn material(name: &str) -> Result<&'static MaterialData, PhysicsError> {
    name.parse::<MaterialId>()?.data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses() {
        assert_eq!(tables().unwrap().len(), TABLES.len());
    }

    #[test]
    fn material_ids_name_their_tables() {
        for (id, (name, _)) in MaterialId::ALL.into_iter().zip(TABLES) {
            assert_eq!(id.name(), name);
            assert_eq!(id.data().unwrap().name(), name);
            assert_eq!(name.parse::<MaterialId>().unwrap(), id);
        }
        assert_eq!(MaterialId::from(FilterMaterial::Rh), "Rh".parse().unwrap());
        let json = serde_json::to_string(&MaterialId::CalciumOxalate).unwrap();
        assert_eq!(json, "\"calcium_oxalate\"");
        assert_eq!(serde_json::from_str::<MaterialId>("\"PMMA\"").unwrap(), MaterialId::Pmma);
    }

    #[test]
    fn grid_points_are_reproduced_and_edges_jump() {
        let rh = material("Rh").unwrap();
        // Row "23.00,1.006502e+01,...,1.106437e+01,..." of rhodium.csv.
        assert!((rh.mu_over_rho_cm2_g(23.0) / 11.06437 - 1.0).abs() < 1e-9);
        let below = rh.mu_over_rho_cm2_g(23.2207);
        let at = rh.mu_over_rho_cm2_g(23.22071);
        assert!(below < 11.0 && at > 60.0, "{below} {at}");
    }

    #[test]
    fn unknown_material_lists_the_known_ones() {
        let e = material("unobtainium").unwrap_err().to_string();
        assert!(e.contains("unobtainium") && e.contains("glandular") && e.contains("rhodium"), "{e}");
    }

    #[test]
    fn out_of_range_energy_is_an_error() {
        assert!(material("water").unwrap().coefficients(80.0).is_err());
    }
}
