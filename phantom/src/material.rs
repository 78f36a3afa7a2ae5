//! Materials and the label scheme.
//!
//! A label volume stores one `u8` per voxel. The [`MaterialTable`] maps each label in use to a
//! [`Material`] whose [`name`](Material::name) is exactly the stem of an attenuation table in
//! `data/attenuation/` (`adipose` -> `data/attenuation/adipose.csv`), plus a role that says what the
//! label stands for. Several labels may share a material (Cooper's ligaments are fibrous tissue
//! attenuating like glandular tissue; every mass is `carcinoma`), so the simulator looks attenuation
//! up by material while ground truth and analysis look structures up by label.
//!
//! # Label scheme
//!
//! | label | role | material |
//! |---|---|---|
//! | 0 | air (outside every object) | air |
//! | 1 | adipose tissue | adipose |
//! | 2 | fibroglandular tissue | glandular |
//! | 3 | skin | skin |
//! | 4 | Cooper's ligament | glandular |
//! | 5 | nipple | skin |
//! | 6..=15 | QA background materials (slab, plates, insert) | pmma, water, polystyrene, ... |
//! | 16..=254 | one label per inserted object (mass, calcification cluster, bead, fibre, speck group) | carcinoma, lesion, hydroxyapatite, calcium_oxalate, aluminium, ... |
//! | 255 | reserved (scratch during generation; never in a finished volume) | - |
//!
//! Fixed labels (0..=15) mean the same thing in every phantom; object labels are handed out in the
//! order the objects appear in the ground truth, starting at [`FIRST_OBJECT_LABEL`].

use serde::{Deserialize, Serialize};

/// Label of air; also what lies outside the volume.
pub const AIR: u8 = 0;
/// Label of adipose tissue.
pub const ADIPOSE: u8 = 1;
/// Label of fibroglandular tissue.
pub const GLANDULAR: u8 = 2;
/// Label of skin.
pub const SKIN: u8 = 3;
/// Label of Cooper's ligaments.
pub const LIGAMENT: u8 = 4;
/// Label of the nipple.
pub const NIPPLE: u8 = 5;
/// Label of a PMMA background (slab, phantom body).
pub const PMMA: u8 = 6;
/// Label of a water background.
pub const WATER: u8 = 7;
/// Label of a polystyrene background.
pub const POLYSTYRENE: u8 = 8;
/// Label of the wax-like (adipose-equivalent) insert of the accreditation-style phantom.
pub const INSERT: u8 = 9;
/// First label handed out to inserted objects (lesions, beads, ...).
pub const FIRST_OBJECT_LABEL: u8 = 16;
/// How many objects one volume can hold.
pub const MAX_OBJECTS: usize = 255 - FIRST_OBJECT_LABEL as usize;

/// A material with an attenuation table in `data/attenuation/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Material {
    /// Dry air.
    Air,
    /// Adipose (fat) tissue.
    Adipose,
    /// Fibroglandular tissue.
    Glandular,
    /// Skin.
    Skin,
    /// Glandular-equivalent lesion tissue at 1.06 g/cm3 (the accreditation-style phantom's lens masses).
    Lesion,
    /// Hydroxyapatite, type II calcifications.
    Hydroxyapatite,
    /// Calcium oxalate, type I calcifications.
    CalciumOxalate,
    /// Infiltrating ductal carcinoma, the material of breast masses (Johns & Yaffe, Phys Med Biol 32:675, 1987).
    Carcinoma,
    /// PMMA (acrylic).
    Pmma,
    /// Water.
    Water,
    /// Aluminium.
    Aluminium,
    /// Polystyrene.
    Polystyrene,
}

impl Material {
    /// Every material, in declaration order.
    pub const ALL: [Material; 12] = [
        Material::Air,
        Material::Adipose,
        Material::Glandular,
        Material::Skin,
        Material::Lesion,
        Material::Hydroxyapatite,
        Material::CalciumOxalate,
        Material::Carcinoma,
        Material::Pmma,
        Material::Water,
        Material::Aluminium,
        Material::Polystyrene,
    ];

    /// The attenuation table name (file stem in `data/attenuation/`).
    pub fn name(self) -> &'static str {
        match self {
            Material::Air => "air",
            Material::Adipose => "adipose",
            Material::Glandular => "glandular",
            Material::Skin => "skin",
            Material::Lesion => "lesion",
            Material::Hydroxyapatite => "hydroxyapatite",
            Material::CalciumOxalate => "calcium_oxalate",
            Material::Carcinoma => "carcinoma",
            Material::Pmma => "pmma",
            Material::Water => "water",
            Material::Aluminium => "aluminium",
            Material::Polystyrene => "polystyrene",
        }
    }

    /// A rough linear attenuation coefficient near 20 keV in 1/mm, for PNG previews only.
    ///
    /// These are round numbers good enough to make a preview look like a mammogram; the
    /// simulator uses the tabulated data, never these.
    pub fn preview_mu_per_mm(self) -> f32 {
        match self {
            Material::Air => 0.0,
            Material::Adipose => 0.045,
            Material::Glandular => 0.080,
            Material::Skin => 0.080,
            Material::Lesion => 0.085,
            Material::Hydroxyapatite => 1.6,
            Material::CalciumOxalate => 0.9,
            Material::Carcinoma => 0.084,
            Material::Pmma => 0.064,
            Material::Water => 0.076,
            Material::Aluminium => 0.93,
            Material::Polystyrene => 0.045,
        }
    }
}

impl std::fmt::Display for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the material table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEntry {
    /// The voxel label.
    pub label: u8,
    /// The attenuation material of the voxels with this label.
    pub material: Material,
    /// What the label stands for: `adipose`, `cooper_ligament`, `object 3 (spiculated_mass)`, ...
    pub role: String,
}

/// The labels a volume may contain, each with its material. Serializes to JSON as
/// `{"entries": [{"label": 0, "material": "air", "role": "air"}, ...]}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaterialTable {
    /// Rows sorted by label, labels unique.
    pub entries: Vec<LabelEntry>,
}

impl MaterialTable {
    /// The table of the fixed breast labels 0..=5.
    pub fn breast() -> Self {
        let mut t = Self::default();
        t.set(AIR, Material::Air, "air");
        t.set(ADIPOSE, Material::Adipose, "adipose");
        t.set(GLANDULAR, Material::Glandular, "fibroglandular");
        t.set(SKIN, Material::Skin, "skin");
        t.set(LIGAMENT, Material::Glandular, "cooper_ligament");
        t.set(NIPPLE, Material::Skin, "nipple");
        t
    }

    /// A table holding only air.
    pub fn air_only() -> Self {
        let mut t = Self::default();
        t.set(AIR, Material::Air, "air");
        t
    }

    /// Sets (or replaces) the row of `label`, keeping rows sorted.
    pub fn set(&mut self, label: u8, material: Material, role: impl Into<String>) {
        let entry = LabelEntry { label, material, role: role.into() };
        match self.entries.binary_search_by_key(&label, |e| e.label) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    /// The material of `label`, if the table has it.
    pub fn material(&self, label: u8) -> Option<Material> {
        self.entries.binary_search_by_key(&label, |e| e.label).ok().map(|i| self.entries[i].material)
    }

    /// Whether `label` is in the table.
    pub fn contains(&self, label: u8) -> bool {
        self.material(label).is_some()
    }

    /// A 256-entry lookup from label to material (air for labels not in the table).
    pub fn lookup(&self) -> [Material; 256] {
        let mut out = [Material::Air; 256];
        for e in &self.entries {
            out[e.label as usize] = e.material;
        }
        out
    }

    /// The distinct materials the table uses, sorted.
    pub fn materials(&self) -> Vec<Material> {
        let mut m: Vec<Material> = self.entries.iter().map(|e| e.material).collect();
        m.sort();
        m.dedup();
        m
    }
}
