//! The technique table: kV and filter by compressed thickness and estimated glandularity, as clinical AECs
//! choose the beam (the rows and their sources are in `data/aec/technique_table.csv`).
//!
//! A row covers thicknesses up to `thickness_max_mm` (rows ascending) and glandular fractions from
//! `glandular_min`; the last matching row of the first thickness band that holds the thickness applies. Its
//! kV is an offset from the preset's nominal kV, so the nominal kV is the table's value at the reference
//! breast (the band holding 50 mm, fatty to average glandularity, offset 0): a narrow-angle exam of the
//! default breast runs at the preset's 30 kV, a step-and-shoot one at 29 kV. K-edge filtered beams (Rh, Mo,
//! Ag) step by `kvp_offset_kedge`, aluminium-filtered ones, whose beam is broad and hardened by kV alone, by
//! `kvp_offset_al`. `hard_filter` rows switch a tungsten/rhodium beam to tungsten/silver (the Ag K edge at
//! 25.5 keV passes the harder photons a thick breast needs); other beams keep their filter.

use serde::{Deserialize, Serialize};

use crate::technique::{Filter, FilterMaterial, Target};

/// One cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TechniqueRow {
    /// Upper end of the thickness band, mm (inclusive).
    pub thickness_max_mm: f64,
    /// Lowest estimated glandular fraction of the row (0..1).
    pub glandular_min: f64,
    /// kV above the preset's nominal kV for K-edge filtered beams.
    pub kvp_offset_kedge: f64,
    /// kV above the preset's nominal kV for aluminium-filtered beams.
    pub kvp_offset_al: f64,
    /// Whether a W/Rh beam switches to W/Ag.
    pub hard_filter: bool,
}

/// The beam a table chose.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BeamChoice {
    /// Anode.
    pub target: Target,
    /// Added filter.
    pub filter: Filter,
    /// Tube voltage, kV.
    pub kvp: f64,
}

/// kV and filter by thickness and glandularity; see the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TechniqueTable {
    /// The cells, sorted by `thickness_max_mm` then `glandular_min`.
    pub rows: Vec<TechniqueRow>,
    /// The filter of `hard_filter` rows for a W/Rh beam.
    pub hard_filter: Filter,
    /// Lowest and highest kV the table may choose (the spectrum tables' range).
    pub kvp_range: (f64, f64),
}

impl TechniqueTable {
    /// The row for `thickness_mm` and `glandular`: the first band holding the thickness (the last band for
    /// anything thicker), then the row with the highest `glandular_min` not above `glandular`.
    pub fn row(&self, thickness_mm: f64, glandular: f64) -> Option<&TechniqueRow> {
        let band = self
            .rows
            .iter()
            .find(|r| thickness_mm <= r.thickness_max_mm)
            .or_else(|| self.rows.last())?
            .thickness_max_mm;
        let in_band = self.rows.iter().filter(|r| r.thickness_max_mm == band);
        in_band.clone().rfind(|r| r.glandular_min <= glandular).or_else(|| in_band.clone().next())
    }

    /// The beam for a breast of `thickness_mm` and estimated `glandular` fraction on a unit whose nominal
    /// beam is `nominal`; `None` when the table is empty.
    pub fn choose(&self, nominal: &BeamChoice, thickness_mm: f64, glandular: f64) -> Option<BeamChoice> {
        let row = self.row(thickness_mm, glandular)?;
        let offset =
            if nominal.filter.material == FilterMaterial::Al { row.kvp_offset_al } else { row.kvp_offset_kedge };
        let (lo, hi) = self.kvp_range;
        let filter = if row.hard_filter && nominal.target == Target::W && nominal.filter.material == FilterMaterial::Rh
        {
            self.hard_filter
        } else {
            nominal.filter
        };
        Some(BeamChoice { target: nominal.target, filter, kvp: (nominal.kvp + offset).clamp(lo, hi) })
    }

    /// Every beam the table can choose for `nominal`, without repeats.
    pub fn beams(&self, nominal: &BeamChoice) -> Vec<BeamChoice> {
        let mut out: Vec<BeamChoice> = Vec::new();
        for r in &self.rows {
            if let Some(b) = self.choose(nominal, r.thickness_max_mm, r.glandular_min)
                && !out.contains(&b)
            {
                out.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TechniqueTable {
        let row = |t, g, k, a, h| TechniqueRow {
            thickness_max_mm: t,
            glandular_min: g,
            kvp_offset_kedge: k,
            kvp_offset_al: a,
            hard_filter: h,
        };
        TechniqueTable {
            rows: vec![
                row(35.0, 0.0, -2.0, -3.0, false),
                row(55.0, 0.0, 0.0, 0.0, false),
                row(55.0, 0.5, 1.0, 2.0, false),
                row(999.0, 0.0, 3.0, 6.0, true),
            ],
            hard_filter: Filter { material: FilterMaterial::Ag, thickness_mm: 0.05 },
            kvp_range: (20.0, 49.0),
        }
    }

    const W_RH: BeamChoice = BeamChoice {
        target: Target::W,
        filter: Filter { material: FilterMaterial::Rh, thickness_mm: 0.05 },
        kvp: 28.0,
    };

    #[test]
    fn the_nominal_kv_is_the_reference_breast_s_and_bands_follow_thickness_and_density() {
        let t = table();
        assert_eq!(t.choose(&W_RH, 50.0, 0.2).unwrap(), W_RH);
        assert_eq!(t.choose(&W_RH, 50.0, 0.6).unwrap().kvp, 29.0);
        assert_eq!(t.choose(&W_RH, 20.0, 0.9).unwrap().kvp, 26.0);
        let thick = t.choose(&W_RH, 80.0, 0.5).unwrap();
        assert_eq!((thick.kvp, thick.filter.material), (31.0, FilterMaterial::Ag));
        // Beyond the last band: the last band.
        assert_eq!(t.choose(&W_RH, 2000.0, 0.0).unwrap().kvp, 31.0);
        // W/Al steps by its own column and keeps its filter; kV stays within the range.
        let al = BeamChoice { filter: Filter { material: FilterMaterial::Al, thickness_mm: 0.7 }, kvp: 30.0, ..W_RH };
        let b = t.choose(&al, 80.0, 0.5).unwrap();
        assert_eq!((b.kvp, b.filter.material), (36.0, FilterMaterial::Al));
        let high = BeamChoice { kvp: 47.0, ..al };
        assert_eq!(t.choose(&high, 80.0, 0.5).unwrap().kvp, 49.0);
        assert_eq!(t.beams(&W_RH).len(), 4);
    }
}
