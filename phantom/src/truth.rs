//! Ground truth: what was put where, in the design's coordinates, agreeing with the voxels.

use serde::{Deserialize, Serialize};

use crate::material::Material;
use crate::shapes::Aabb;
use tomolab_hal::VoxelGrid;

/// Which generator made a phantom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhantomKind {
    /// Anthropomorphic compressed breast.
    Breast,
    /// Uniform slab.
    Slab,
    /// Bead phantom.
    Beads,
    /// Accreditation-style phantom.
    Accreditation,
}

impl std::fmt::Display for PhantomKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PhantomKind::Breast => "breast",
            PhantomKind::Slab => "slab",
            PhantomKind::Beads => "beads",
            PhantomKind::Accreditation => "accreditation",
        })
    }
}

/// What kind of object a ground-truth entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A spiculated mass (lobulated core with spicules).
    SpiculatedMass,
    /// A smooth spherical or ellipsoidal mass.
    Mass,
    /// A cluster of microcalcifications.
    CalcificationCluster,
    /// A bead of a bead phantom.
    Bead,
    /// A fibre of an accreditation-style phantom.
    Fibre,
    /// A group of specks of an accreditation-style phantom.
    SpeckGroup,
    /// A lens-shaped (dome) mass of an accreditation-style phantom.
    LensMass,
}

impl ObjectKind {
    /// The snake_case name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::SpiculatedMass => "spiculated_mass",
            ObjectKind::Mass => "mass",
            ObjectKind::CalcificationCluster => "calcification_cluster",
            ObjectKind::Bead => "bead",
            ObjectKind::Fibre => "fibre",
            ObjectKind::SpeckGroup => "speck_group",
            ObjectKind::LensMass => "lens_mass",
        }
    }
}

/// One microcalcification of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calcification {
    /// Centre in mm.
    pub centre_mm: [f64; 3],
    /// Largest diameter in mm.
    pub diameter_mm: f64,
}

/// The size description of an object, by shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum ObjectSize {
    /// Spiculated mass: core diameter, number of spicules and their nominal length beyond the core.
    Spiculated {
        /// Nominal core diameter in mm.
        diameter_mm: f64,
        /// Number of spicules.
        spicule_count: u32,
        /// Nominal (longest) spicule length beyond the core surface in mm.
        spicule_length_mm: f64,
    },
    /// Ellipsoid with the given semi-axes (along its own, possibly rotated, axes).
    Ellipsoid {
        /// Semi-axes in mm.
        semi_axes_mm: [f64; 3],
        /// The ellipsoid's axes as unit vectors, one per semi-axis.
        axes: [[f64; 3]; 3],
    },
    /// Calcification cluster: every calcification with its centre and size.
    Cluster {
        /// Diameter of the sphere the calcifications were scattered in, in mm.
        spread_mm: f64,
        /// The calcifications.
        calcifications: Vec<Calcification>,
    },
    /// Sphere.
    Sphere {
        /// Diameter in mm.
        diameter_mm: f64,
    },
    /// A straight fibre (cylinder).
    Fibre {
        /// Diameter in mm.
        diameter_mm: f64,
        /// Length in mm.
        length_mm: f64,
        /// Unit direction.
        direction: [f64; 3],
    },
    /// A group of spherical specks.
    Specks {
        /// Diameter of each speck in mm.
        speck_diameter_mm: f64,
        /// Centre of each speck in mm.
        centres_mm: Vec<[f64; 3]>,
    },
    /// A dome: half an oblate spheroid standing on its flat face; the object's `centre_mm` is
    /// the centre of the flat base.
    Lens {
        /// Diameter of the base in mm.
        diameter_mm: f64,
        /// Height in mm.
        thickness_mm: f64,
    },
}

/// An axis-aligned box in mm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxMm {
    /// Minimum corner.
    pub min: [f64; 3],
    /// Maximum corner.
    pub max: [f64; 3],
}

impl BoxMm {
    /// Whether the point lies in the box (faces included).
    pub fn contains(&self, p: [f64; 3]) -> bool {
        (0..3).all(|a| p[a] >= self.min[a] && p[a] <= self.max[a])
    }
}

/// An inclusive box of voxel indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxVoxels {
    /// Smallest (i, j, k).
    pub min: [usize; 3],
    /// Largest (i, j, k), inclusive.
    pub max: [usize; 3],
}

impl BoxVoxels {
    /// Whether voxel (i, j, k) lies in the box.
    pub fn contains(&self, v: [usize; 3]) -> bool {
        (0..3).all(|a| v[a] >= self.min[a] && v[a] <= self.max[a])
    }

    /// The voxels of `grid` whose cells intersect `b`, or `None` if `b` misses the grid.
    pub fn of(grid: &VoxelGrid, b: &BoxMm) -> Option<BoxVoxels> {
        let x = grid.index_range(0, b.min[0], b.max[0])?;
        let y = grid.index_range(1, b.min[1], b.max[1])?;
        let z = grid.index_range(2, b.min[2], b.max[2])?;
        Some(BoxVoxels { min: [x.0, y.0, z.0], max: [x.1, y.1, z.1] })
    }
}

/// One inserted object: lesion, calcification cluster, bead, fibre, speck group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthObject {
    /// Position in the object list (0-based).
    pub id: usize,
    /// What it is.
    pub kind: ObjectKind,
    /// The voxel label it carries (unique to this object).
    pub label: u8,
    /// Its material.
    pub material: Material,
    /// Centre in mm (design coordinates).
    pub centre_mm: [f64; 3],
    /// Height of the centre above the breast support (or slab bottom) in mm.
    pub height_above_support_mm: f64,
    /// Size, by shape.
    pub size: ObjectSize,
    /// Bounding box in mm: every voxel centre carrying the label lies inside, except that a
    /// part smaller than a voxel is given the voxel containing its centre.
    pub bbox_mm: BoxMm,
    /// The voxels whose cells meet `bbox_mm`: every voxel carrying the label lies inside.
    pub bbox_voxels: Option<BoxVoxels>,
    /// How many voxels carry the label, once generated.
    pub voxel_count: Option<u64>,
}

/// Breast geometry and composition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreastTruth {
    /// Chest-wall width at mid-thickness in mm.
    pub chest_wall_width_mm: f64,
    /// Chest wall to the front of the breast (nipple base) at mid-thickness in mm.
    pub nipple_distance_mm: f64,
    /// Radius of the rounded edge where the breast leaves the paddle (half the thickness) in mm.
    pub edge_radius_mm: f64,
    /// Skin thickness in mm.
    pub skin_mm: f64,
    /// Requested glandular volume fraction.
    pub glandular_fraction_requested: f64,
    /// Measured on the voxels: glandular / (adipose + glandular + ligament), i.e. tissue inside the
    /// skin excluding skin, nipple and inserted objects. Set once generated.
    pub glandular_fraction_measured: Option<f64>,
    /// Tip of the nipple in mm, if there is one.
    pub nipple_tip_mm: Option<[f64; 3]>,
}

/// Everything known about a phantom: its kind, grid, placement and objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The generator.
    pub phantom: PhantomKind,
    /// The seed of every random draw.
    pub seed: u64,
    /// A reminder of the coordinate system.
    pub coordinates: String,
    /// The voxel grid.
    pub grid: VoxelGrid,
    /// Height of the breast support (bottom of the object) above the detector in mm.
    pub support_height_mm: f64,
    /// Thickness of the object (compressed breast or slab) in mm.
    pub thickness_mm: f64,
    /// Breast-specific truth.
    pub breast: Option<BreastTruth>,
    /// Inserted objects, in label order.
    pub objects: Vec<TruthObject>,
    /// Voxel count per label (index = label), once generated.
    pub label_counts: Option<Vec<u64>>,
}

/// The coordinate-system reminder written into every ground truth.
pub const COORDINATES: &str = "right-handed, mm; origin at the middle of the detector's chest-wall edge on the \
     detector surface; x along the chest wall (tube travel), y from chest wall toward nipple, z up toward the \
     source; voxel (i,j,k) centre = min_corner_mm + ((i+0.5)dx, (j+0.5)dy, (k+0.5)dz), index (k*ny+j)*nx+i";

impl GroundTruth {
    /// Fills in voxel counts (and the measured glandular fraction) from per-label counts.
    pub fn record_counts(&mut self, counts: &[u64; 256]) {
        for o in &mut self.objects {
            o.voxel_count = Some(counts[o.label as usize]);
        }
        if let Some(b) = &mut self.breast {
            use crate::material::{ADIPOSE, GLANDULAR, LIGAMENT};
            let tissue = counts[ADIPOSE as usize] + counts[GLANDULAR as usize] + counts[LIGAMENT as usize];
            b.glandular_fraction_measured = (tissue > 0).then(|| counts[GLANDULAR as usize] as f64 / tissue as f64);
        }
        self.label_counts = Some(counts.to_vec());
    }
}

pub(crate) fn box_mm(b: &Aabb) -> BoxMm {
    BoxMm { min: b.min, max: b.max }
}
