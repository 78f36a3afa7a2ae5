//! Lesions: spiculated masses, smooth masses and microcalcification clusters.
//!
//! A lesion is built around the origin from its own random stream (seed, lesion index), then
//! moved to its centre, so the same lesion looks the same wherever it is placed and whatever else
//! the breast contains.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::error::{PhantomError, Result, check_range};
use crate::material::Material;
use crate::shapes::{Aabb, Shape, add, basis, norm, normalize, scale};
use crate::truth::{Calcification, ObjectKind, ObjectSize};

/// Material of a calcification cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CalcMaterial {
    /// Hydroxyapatite (type II, the common malignant-associated kind).
    #[default]
    Hydroxyapatite,
    /// Calcium oxalate (type I).
    CalciumOxalate,
}

impl From<CalcMaterial> for Material {
    fn from(m: CalcMaterial) -> Material {
        match m {
            CalcMaterial::Hydroxyapatite => Material::Hydroxyapatite,
            CalcMaterial::CalciumOxalate => Material::CalciumOxalate,
        }
    }
}

/// What to insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LesionKind {
    /// A lobulated core of `diameter_mm` (3-20 mm; screen-detected invasive cancers are mostly 5-20 mm,
    /// the T1 stage of AJCC being <= 20 mm) with `spicule_count` (0-64) tapered spicules reaching up to
    /// `spicule_length_mm` (0-30 mm) beyond the core.
    SpiculatedMass {
        /// Core diameter in mm.
        diameter_mm: f64,
        /// Number of spicules.
        spicule_count: u32,
        /// Longest spicule length beyond the core, in mm; each spicule draws 60-100 % of it.
        spicule_length_mm: f64,
    },
    /// A smooth ellipsoid (a sphere if the semi-axes are equal), 0.5-25 mm semi-axes, randomly oriented.
    Mass {
        /// Semi-axes in mm.
        semi_axes_mm: [f64; 3],
    },
    /// `count` (1-200) calcifications of 0.1-0.5 mm scattered uniformly in a sphere of
    /// `spread_mm` (0.5-40 mm) diameter.
    ///
    /// Published cluster statistics to choose from: the ACR BI-RADS Atlas (5th ed., 2013) calls
    /// calcifications *grouped* from about 5 within 1 cm up to a larger number within 2 cm, and
    /// suspicious (fine pleomorphic, fine linear) calcifications are individually under 0.5 mm;
    /// [`LesionSpec::grouped_calcifications`] builds such a cluster.
    CalcificationCluster {
        /// Number of calcifications.
        count: u32,
        /// Smallest diameter in mm.
        min_diameter_mm: f64,
        /// Largest diameter in mm.
        max_diameter_mm: f64,
        /// Diameter of the cluster in mm.
        spread_mm: f64,
        /// Material.
        #[serde(default)]
        material: CalcMaterial,
    },
}

/// Which tissue a randomly placed lesion is put in.
///
/// Most breast cancers arise in the fibroglandular tissue (the terminal duct-lobular units), so that is the
/// default; `fat` places the lesion in adipose tissue, where it is easiest to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The lesion's centre lies in fibroglandular tissue.
    #[default]
    Glandular,
    /// The lesion's centre lies in adipose tissue.
    Fat,
}

impl Placement {
    /// The name used in JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Glandular => "glandular",
            Placement::Fat => "fat",
        }
    }
}

/// A lesion and where to put it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionSpec {
    /// What to insert.
    pub kind: LesionKind,
    /// Centre in mm (design coordinates); `None` draws a random position in the tissue `placement` names.
    #[serde(default)]
    pub centre_mm: Option<[f64; 3]>,
    /// The tissue a random position is drawn in (ignored when `centre_mm` is given).
    #[serde(default)]
    pub placement: Placement,
}

impl LesionSpec {
    /// A spiculated mass at a random position in glandular tissue.
    pub fn spiculated(diameter_mm: f64, spicule_count: u32, spicule_length_mm: f64) -> Self {
        Self {
            kind: LesionKind::SpiculatedMass { diameter_mm, spicule_count, spicule_length_mm },
            centre_mm: None,
            placement: Placement::default(),
        }
    }

    /// A smooth mass at a random position in glandular tissue.
    pub fn mass(semi_axes_mm: [f64; 3]) -> Self {
        Self { kind: LesionKind::Mass { semi_axes_mm }, centre_mm: None, placement: Placement::default() }
    }

    /// A calcification cluster at a random position in glandular tissue.
    pub fn calcifications(
        count: u32,
        min_diameter_mm: f64,
        max_diameter_mm: f64,
        spread_mm: f64,
        material: CalcMaterial,
    ) -> Self {
        Self {
            kind: LesionKind::CalcificationCluster { count, min_diameter_mm, max_diameter_mm, spread_mm, material },
            centre_mm: None,
            placement: Placement::default(),
        }
    }

    /// A BI-RADS *grouped* cluster (ACR BI-RADS Atlas, 5th ed., 2013): `count` (at least 5 for the
    /// descriptor) hydroxyapatite specks of 0.1-0.5 mm within `spread_mm` (10 mm for the smallest group,
    /// up to 20 mm), at a random position in glandular tissue.
    pub fn grouped_calcifications(count: u32, spread_mm: f64) -> Self {
        Self::calcifications(count, 0.1, 0.5, spread_mm, CalcMaterial::Hydroxyapatite)
    }

    /// The same lesion centred at `centre_mm`.
    pub fn at(mut self, centre_mm: [f64; 3]) -> Self {
        self.centre_mm = Some(centre_mm);
        self
    }

    /// The same lesion, placed at random in the tissue `placement` names.
    pub fn in_tissue(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }
}

impl LesionKind {
    /// The ground-truth kind.
    pub fn object_kind(&self) -> ObjectKind {
        match self {
            LesionKind::SpiculatedMass { .. } => ObjectKind::SpiculatedMass,
            LesionKind::Mass { .. } => ObjectKind::Mass,
            LesionKind::CalcificationCluster { .. } => ObjectKind::CalcificationCluster,
        }
    }

    /// The voxel material.
    pub fn material(&self) -> Material {
        match self {
            LesionKind::SpiculatedMass { .. } | LesionKind::Mass { .. } => Material::Carcinoma,
            LesionKind::CalcificationCluster { material, .. } => (*material).into(),
        }
    }

    /// Checks the parameters; errors name the field as `lesions[index].field`.
    pub fn validate(&self, index: usize) -> Result<()> {
        let f = |name: &str| format!("lesions[{index}].{name}");
        match self {
            LesionKind::SpiculatedMass { diameter_mm, spicule_count, spicule_length_mm } => {
                check_range(&f("diameter_mm"), *diameter_mm, 3.0, 20.0, "mm")?;
                if *spicule_count > 64 {
                    return Err(PhantomError::invalid(f("spicule_count"), spicule_count, "must be at most 64"));
                }
                check_range(&f("spicule_length_mm"), *spicule_length_mm, 0.0, 30.0, "mm")?;
            }
            LesionKind::Mass { semi_axes_mm } => {
                for (a, s) in semi_axes_mm.iter().enumerate() {
                    check_range(&f(&format!("semi_axes_mm[{a}]")), *s, 0.5, 25.0, "mm")?;
                }
            }
            LesionKind::CalcificationCluster { count, min_diameter_mm, max_diameter_mm, spread_mm, .. } => {
                if *count == 0 || *count > 200 {
                    return Err(PhantomError::invalid(f("count"), count, "must be within 1..=200"));
                }
                check_range(&f("min_diameter_mm"), *min_diameter_mm, 0.1, 0.5, "mm")?;
                check_range(
                    &f("max_diameter_mm"),
                    *max_diameter_mm,
                    *min_diameter_mm,
                    0.5,
                    "mm (and >= min_diameter_mm)",
                )?;
                check_range(&f("spread_mm"), *spread_mm, 0.5, 40.0, "mm")?;
            }
        }
        Ok(())
    }

    /// Builds the lesion's parts around the origin and its size record. Call `validate` first.
    pub(crate) fn build(&self, rng: &mut ChaCha8Rng) -> (Vec<Shape>, ObjectSize) {
        match *self {
            LesionKind::SpiculatedMass { diameter_mm, spicule_count, spicule_length_mm } => {
                let r = 0.5 * diameter_mm;
                let bumps = (0..8)
                    .map(|_| (random_dir(rng), rng.random_range(-0.12..0.2), rng.random_range(0.35..0.6)))
                    .collect();
                let mut parts = vec![Shape::Lobulated { centre: [0.0; 3], radius: r, bumps }];
                let base_r = (0.12 * r).clamp(0.2, 0.6);
                for _ in 0..spicule_count {
                    let d = random_dir(rng);
                    let len = spicule_length_mm * rng.random_range(0.6..=1.0);
                    let (u, v) = basis(d);
                    let bend = 0.15 * len;
                    let lateral =
                        add(scale(u, bend * rng.random_range(-1.0..1.0)), scale(v, bend * rng.random_range(-1.0..1.0)));
                    let tip = add(scale(d, r + len), lateral);
                    parts.push(Shape::Tapered { a: scale(d, 0.6 * r), b: tip, ra: base_r, rb: 0.05 });
                }
                (parts, ObjectSize::Spiculated { diameter_mm, spicule_count, spicule_length_mm })
            }
            LesionKind::Mass { semi_axes_mm } => {
                let w = random_dir(rng);
                let (u0, v0) = basis(w);
                let psi: f64 = rng.random_range(0.0..std::f64::consts::TAU);
                let (s, c) = psi.sin_cos();
                let u = add(scale(u0, c), scale(v0, s));
                let v = add(scale(u0, -s), scale(v0, c));
                let axes = [u, v, w];
                let shape = Shape::Ellipsoid { centre: [0.0; 3], axes, semi: semi_axes_mm, z_min: f64::NEG_INFINITY };
                (vec![shape], ObjectSize::Ellipsoid { semi_axes_mm, axes })
            }
            LesionKind::CalcificationCluster { count, min_diameter_mm, max_diameter_mm, spread_mm, .. } => {
                let mut parts = Vec::with_capacity(count as usize);
                let mut calcs = Vec::with_capacity(count as usize);
                let r = 0.5 * spread_mm;
                for _ in 0..count {
                    let p = loop {
                        let p = [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)];
                        if norm(p) <= 1.0 {
                            break scale(p, r);
                        }
                    };
                    let d = if max_diameter_mm > min_diameter_mm {
                        rng.random_range(min_diameter_mm..=max_diameter_mm)
                    } else {
                        min_diameter_mm
                    };
                    // Irregular: an ellipsoid whose longest axis is the drawn diameter.
                    let w = random_dir(rng);
                    let (u, v) = basis(w);
                    let semi = [0.5 * d * rng.random_range(0.6..=1.0), 0.5 * d * rng.random_range(0.6..=1.0), 0.5 * d];
                    parts.push(Shape::Ellipsoid { centre: p, axes: [u, v, w], semi, z_min: f64::NEG_INFINITY });
                    calcs.push(Calcification { centre_mm: p, diameter_mm: d });
                }
                (parts, ObjectSize::Cluster { spread_mm, calcifications: calcs })
            }
        }
    }
}

fn random_dir(rng: &mut ChaCha8Rng) -> [f64; 3] {
    loop {
        let v: [f64; 3] = [rng.sample(StandardNormal), rng.sample(StandardNormal), rng.sample(StandardNormal)];
        if norm(v) > 1e-6 {
            return normalize(v);
        }
    }
}

/// Moves parts (and size records holding absolute positions) by `d`.
pub(crate) fn translate(parts: &mut [Shape], size: &mut ObjectSize, d: [f64; 3]) {
    for p in parts.iter_mut() {
        match p {
            Shape::Ellipsoid { centre, .. } | Shape::Lobulated { centre, .. } => *centre = add(*centre, d),
            Shape::Tapered { a, b, .. } => {
                *a = add(*a, d);
                *b = add(*b, d);
            }
        }
    }
    match size {
        ObjectSize::Cluster { calcifications, .. } => {
            for c in calcifications {
                c.centre_mm = add(c.centre_mm, d);
            }
        }
        ObjectSize::Specks { centres_mm, .. } => {
            for c in centres_mm {
                *c = add(*c, d);
            }
        }
        _ => {}
    }
}

/// Union of the parts' boxes.
pub(crate) fn parts_bbox(parts: &[Shape]) -> Aabb {
    parts.iter().map(Shape::bbox).reduce(Aabb::union).unwrap_or(Aabb { min: [0.0; 3], max: [0.0; 3] })
}
