//! QA phantoms: a uniform slab, a bead phantom and an accreditation-style phantom.
//!
//! Each is a box of background material lying on the breast support (x centred on 0, chest-wall
//! face at y = 0, bottom at `support_height_mm`), with objects inserted at known positions. Each
//! object gets its own label, so the ground truth and the voxels can be checked against each
//! other exactly as for the breast.
//!
//! The breast-equivalent slab mixes adipose and glandular voxels at the requested glandular
//! fraction with a deterministic low-discrepancy pattern (a rank-1 lattice with the R3
//! generalized golden ratios): along any line of voxels the glandular share converges to the
//! fraction as fast as possible, so projections of the slab are uniform to within a voxel's
//! worth of path while each label stays a pure material of the attenuation tables.
//!
//! The accreditation-style phantom follows the layout idea of the ACR mammography accreditation
//! phantom (a PMMA block with a wax insert holding 6 fibres, 5 speck groups and 5 masses of
//! graded size, read as a 4 x 4 grid). Sizes default to the published ACR phantom values
//! (fibre diameters 1.56, 1.12, 0.89, 0.75, 0.54, 0.40 mm; speck diameters 0.54, 0.40, 0.32,
//! 0.24, 0.16 mm; mass thicknesses 2.00, 1.00, 0.75, 0.50, 0.25 mm); the materials are the nearest
//! ones in our attenuation tables (nylon fibres -> polystyrene, alumina specks -> hydroxyapatite,
//! wax insert -> adipose), and the mass diameters are our choice. It is "-style": not a model of
//! any vendor's phantom.

use serde::{Deserialize, Serialize};

use crate::error::{PhantomError, Result, check_range};
use crate::material::{
    ADIPOSE, AIR, FIRST_OBJECT_LABEL, GLANDULAR, INSERT, MAX_OBJECTS, Material, MaterialTable, PMMA, POLYSTYRENE, WATER,
};
use crate::shapes::{Aabb, Rasterized, Shape, normalize};
use crate::truth::{BoxVoxels, COORDINATES, GroundTruth, ObjectKind, ObjectSize, PhantomKind, TruthObject, box_mm};
use tomolab_hal::VoxelGrid;

/// Background material of a slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum SlabMaterial {
    /// PMMA (acrylic).
    #[default]
    Pmma,
    /// Water.
    Water,
    /// Polystyrene.
    Polystyrene,
    /// Adipose tissue.
    Adipose,
    /// Glandular tissue.
    Glandular,
    /// Adipose and glandular voxels mixed at `glandular_fraction` (see the module docs).
    BreastEquivalent,
}

/// Parameters of a uniform slab (also the body of the bead phantom).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlabParams {
    /// Thickness in mm (0 < t <= 200).
    pub thickness_mm: f64,
    /// Extent along x (chest wall) in mm.
    pub width_mm: f64,
    /// Extent along y (chest wall to front) in mm.
    pub depth_mm: f64,
    /// Material.
    pub material: SlabMaterial,
    /// Glandular fraction of a breast-equivalent slab (0-1).
    pub glandular_fraction: f64,
    /// Height of the slab's bottom above the detector in mm.
    pub support_height_mm: f64,
    /// Voxel edge in mm (0.05-2).
    pub voxel_mm: f64,
}

impl Default for SlabParams {
    fn default() -> Self {
        Self {
            thickness_mm: 45.0,
            width_mm: 200.0,
            depth_mm: 150.0,
            material: SlabMaterial::Pmma,
            glandular_fraction: 0.5,
            support_height_mm: 20.0,
            voxel_mm: 0.1,
        }
    }
}

impl SlabParams {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.thickness_mm <= 0.0 {
            return Err(PhantomError::invalid("thickness_mm", self.thickness_mm, "must be positive"));
        }
        check_range("thickness_mm", self.thickness_mm, 0.0, 200.0, "mm")?;
        check_range("width_mm", self.width_mm, 1.0, 400.0, "mm")?;
        check_range("depth_mm", self.depth_mm, 1.0, 400.0, "mm")?;
        check_range("glandular_fraction", self.glandular_fraction, 0.0, 1.0, "")?;
        check_range("support_height_mm", self.support_height_mm, 0.0, 500.0, "mm")?;
        check_range("voxel_mm", self.voxel_mm, 0.05, 2.0, "mm")?;
        Ok(())
    }

    fn grid(&self) -> Result<VoxelGrid> {
        let v = self.voxel_mm;
        let n = |e: f64| ((e / v - 1e-9).ceil() as usize).max(1);
        let (nx, ny, nz) = (n(self.width_mm), n(self.depth_mm), n(self.thickness_mm));
        let grid = VoxelGrid::cubic([nx, ny, nz], v, [-0.5 * nx as f64 * v, 0.0, self.support_height_mm]);
        crate::volume::checked_len(&grid)?;
        Ok(grid)
    }

    fn body(&self) -> Aabb {
        Aabb {
            min: [-0.5 * self.width_mm, 0.0, self.support_height_mm],
            max: [0.5 * self.width_mm, self.depth_mm, self.support_height_mm + self.thickness_mm],
        }
    }

    fn layer(&self, table: &mut MaterialTable) -> Layer {
        let (fill, label, material) = match self.material {
            SlabMaterial::Pmma => (Fill::Solid(PMMA), PMMA, Material::Pmma),
            SlabMaterial::Water => (Fill::Solid(WATER), WATER, Material::Water),
            SlabMaterial::Polystyrene => (Fill::Solid(POLYSTYRENE), POLYSTYRENE, Material::Polystyrene),
            SlabMaterial::Adipose => (Fill::Solid(ADIPOSE), ADIPOSE, Material::Adipose),
            SlabMaterial::Glandular => (Fill::Solid(GLANDULAR), GLANDULAR, Material::Glandular),
            SlabMaterial::BreastEquivalent => {
                table.set(ADIPOSE, Material::Adipose, "breast-equivalent slab (adipose part)");
                table.set(GLANDULAR, Material::Glandular, "breast-equivalent slab (glandular part)");
                return Layer { bbox: self.body(), fill: Fill::Mixture(self.glandular_fraction) };
            }
        };
        table.set(label, material, "slab");
        Layer { bbox: self.body(), fill }
    }
}

/// Parameters of the bead phantom: small high-contrast spheres at known heights in a slab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BeadParams {
    /// The background slab.
    pub slab: SlabParams,
    /// Bead diameter in mm (0.05-5).
    pub bead_diameter_mm: f64,
    /// Bead material.
    pub bead_material: Material,
    /// Heights of the bead centres above the slab bottom in mm; empty = five heights evenly
    /// spaced through the slab.
    pub heights_mm: Vec<f64>,
    /// Beads per height, spread along x 30 mm apart; each height is its own row along y.
    pub beads_per_height: usize,
}

impl Default for BeadParams {
    fn default() -> Self {
        Self {
            slab: SlabParams::default(),
            bead_diameter_mm: 1.0,
            bead_material: Material::Aluminium,
            heights_mm: Vec::new(),
            beads_per_height: 3,
        }
    }
}

/// Parameters of the accreditation-style phantom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccreditationParams {
    /// Total PMMA body thickness in mm.
    pub thickness_mm: f64,
    /// Body extent along x in mm.
    pub width_mm: f64,
    /// Body extent along y in mm.
    pub depth_mm: f64,
    /// Thickness of the wax-like insert (centred at mid-height) in mm.
    pub insert_thickness_mm: f64,
    /// Fibre diameters in mm (each 10 mm long, at 45 degrees in the xy plane).
    pub fibre_diameters_mm: Vec<f64>,
    /// Speck diameters in mm, one group of six per entry.
    pub speck_diameters_mm: Vec<f64>,
    /// Mass (dome) heights in mm.
    pub mass_thicknesses_mm: Vec<f64>,
    /// Mass base diameters in mm, one per mass.
    pub mass_diameters_mm: Vec<f64>,
    /// Height of the body's bottom above the detector in mm.
    pub support_height_mm: f64,
    /// Voxel edge in mm.
    pub voxel_mm: f64,
}

impl Default for AccreditationParams {
    fn default() -> Self {
        Self {
            thickness_mm: 45.0,
            width_mm: 110.0,
            depth_mm: 100.0,
            insert_thickness_mm: 7.0,
            fibre_diameters_mm: vec![1.56, 1.12, 0.89, 0.75, 0.54, 0.40],
            speck_diameters_mm: vec![0.54, 0.40, 0.32, 0.24, 0.16],
            mass_thicknesses_mm: vec![2.00, 1.00, 0.75, 0.50, 0.25],
            mass_diameters_mm: vec![10.0, 8.0, 6.0, 5.0, 4.0],
            support_height_mm: 20.0,
            voxel_mm: 0.1,
        }
    }
}

/// How a background layer is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fill {
    Solid(u8),
    /// Adipose/glandular low-discrepancy mixture at this glandular fraction.
    Mixture(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer {
    bbox: Aabb,
    fill: Fill,
}

/// A QA phantom ready to be voxelized.
#[derive(Debug, Clone)]
pub(crate) struct QaScene {
    pub grid: VoxelGrid,
    layers: Vec<Layer>,
    objects: Vec<Rasterized>,
}

const R3: [f64; 3] = [0.819_172_513_396_164_4, 0.671_043_606_703_789_2, 0.549_700_477_901_970_4];

impl QaScene {
    /// Fills z slice `k` completely.
    pub fn fill_slice(&self, k: usize, out: &mut [u8]) {
        let g = &self.grid;
        out.fill(AIR);
        let z = g.centre_along(2, k);
        for layer in &self.layers {
            let b = &layer.bbox;
            if z < b.min[2] || z > b.max[2] {
                continue;
            }
            let (Some((i0, i1)), Some((j0, j1))) =
                (g.centre_range(0, b.min[0], b.max[0]), g.centre_range(1, b.min[1], b.max[1]))
            else {
                continue;
            };
            for j in j0..=j1 {
                let row = &mut out[j * g.nx + i0..=j * g.nx + i1];
                match layer.fill {
                    Fill::Solid(l) => row.fill(l),
                    Fill::Mixture(f) => {
                        let base = 0.5 + j as f64 * R3[1] + k as f64 * R3[2];
                        for (n, v) in row.iter_mut().enumerate() {
                            let u = (base + (i0 + n) as f64 * R3[0]).fract();
                            *v = if u < f { GLANDULAR } else { ADIPOSE };
                        }
                    }
                }
            }
        }
        for o in &self.objects {
            o.rasterize_slice(g, k, out, |v| v != AIR);
        }
    }
}

struct Builder {
    grid: VoxelGrid,
    support_mm: f64,
    table: MaterialTable,
    objects: Vec<Rasterized>,
    truth: Vec<TruthObject>,
}

impl Builder {
    fn add(
        &mut self,
        kind: ObjectKind,
        material: Material,
        centre: [f64; 3],
        parts: Vec<Shape>,
        size: ObjectSize,
    ) -> Result<()> {
        let id = self.objects.len();
        if id >= MAX_OBJECTS {
            return Err(PhantomError::TooManyObjects { count: id + 1, max: MAX_OBJECTS });
        }
        let label = FIRST_OBJECT_LABEL + id as u8;
        self.table.set(label, material, format!("object {id} ({})", kind.name()));
        let r = Rasterized::new(label, parts, &self.grid);
        let bbox = box_mm(&r.bbox);
        self.truth.push(TruthObject {
            id,
            kind,
            label,
            material,
            centre_mm: centre,
            height_above_support_mm: centre[2] - self.support_mm,
            size,
            bbox_voxels: BoxVoxels::of(&self.grid, &bbox),
            bbox_mm: bbox,
            voxel_count: None,
        });
        self.objects.push(r);
        Ok(())
    }

    fn finish(self, kind: PhantomKind, layers: Vec<Layer>, thickness_mm: f64) -> (QaScene, MaterialTable, GroundTruth) {
        let truth = GroundTruth {
            phantom: kind,
            seed: 0,
            coordinates: COORDINATES.into(),
            grid: self.grid,
            support_height_mm: self.support_mm,
            thickness_mm,
            breast: None,
            objects: self.truth,
            label_counts: None,
        };
        (QaScene { grid: self.grid, layers, objects: self.objects }, self.table, truth)
    }
}

pub(crate) fn prepare_slab(p: &SlabParams) -> Result<(QaScene, MaterialTable, GroundTruth)> {
    p.validate()?;
    let grid = p.grid()?;
    let mut table = MaterialTable::air_only();
    let layer = p.layer(&mut table);
    let b = Builder { grid, support_mm: p.support_height_mm, table, objects: Vec::new(), truth: Vec::new() };
    Ok(b.finish(PhantomKind::Slab, vec![layer], p.thickness_mm))
}

pub(crate) fn prepare_beads(p: &BeadParams) -> Result<(QaScene, MaterialTable, GroundTruth)> {
    p.slab.validate()?;
    check_range("bead_diameter_mm", p.bead_diameter_mm, 0.05, 5.0, "mm")?;
    let t = p.slab.thickness_mm;
    let r = 0.5 * p.bead_diameter_mm;
    let heights: Vec<f64> = if p.heights_mm.is_empty() {
        (0..5).map(|n| t * (n as f64 + 0.5) / 5.0).collect()
    } else {
        p.heights_mm.clone()
    };
    for (n, &h) in heights.iter().enumerate() {
        check_range(&format!("heights_mm[{n}]"), h, r, t - r, "mm above the slab bottom (bead inside the slab)")?;
    }
    if p.beads_per_height == 0 || heights.len() * p.beads_per_height > MAX_OBJECTS {
        return Err(PhantomError::invalid(
            "beads_per_height",
            p.beads_per_height,
            format!("must be at least 1, with heights x beads at most {MAX_OBJECTS}"),
        ));
    }
    let x_span = 30.0 * (p.beads_per_height - 1) as f64;
    if x_span + 2.0 * r > p.slab.width_mm - 10.0 {
        return Err(PhantomError::invalid(
            "beads_per_height",
            p.beads_per_height,
            "the row of beads (30 mm apart) does not fit the slab width",
        ));
    }
    let rows = heights.len();
    let margin = 10.0f64.min(0.25 * p.slab.depth_mm);
    let dy = if rows > 1 { (p.slab.depth_mm - 2.0 * margin) / (rows - 1) as f64 } else { 0.0 };
    if rows > 1 && dy < 2.0 * r + 1.0 {
        return Err(PhantomError::invalid("heights_mm", rows, "too many rows of beads for the slab depth"));
    }
    let grid = p.slab.grid()?;
    let mut table = MaterialTable::air_only();
    let layer = p.slab.layer(&mut table);
    let mut b = Builder { grid, support_mm: p.slab.support_height_mm, table, objects: Vec::new(), truth: Vec::new() };
    for (n, &h) in heights.iter().enumerate() {
        let y = if rows > 1 { margin + n as f64 * dy } else { 0.5 * p.slab.depth_mm };
        for m in 0..p.beads_per_height {
            let c = [-0.5 * x_span + 30.0 * m as f64, y, p.slab.support_height_mm + h];
            b.add(
                ObjectKind::Bead,
                p.bead_material,
                c,
                vec![Shape::sphere(c, r)],
                ObjectSize::Sphere { diameter_mm: p.bead_diameter_mm },
            )?;
        }
    }
    Ok(b.finish(PhantomKind::Beads, vec![layer], t))
}

impl AccreditationParams {
    /// The PMMA body the insert sits in.
    fn body(&self) -> SlabParams {
        SlabParams {
            thickness_mm: self.thickness_mm,
            width_mm: self.width_mm,
            depth_mm: self.depth_mm,
            material: SlabMaterial::Pmma,
            glandular_fraction: 0.0,
            support_height_mm: self.support_height_mm,
            voxel_mm: self.voxel_mm,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let p = self;
        let slab = p.body();
        slab.validate()?;
        check_range("width_mm", p.width_mm, 90.0, 400.0, "mm (the insert is 80 mm wide)")?;
        check_range("depth_mm", p.depth_mm, 70.0, 400.0, "mm (the insert is 60 mm deep)")?;
        check_range(
            "insert_thickness_mm",
            p.insert_thickness_mm,
            3.0,
            p.thickness_mm - 2.0,
            "mm (and 2 mm thinner than the body)",
        )?;
        let count = p.fibre_diameters_mm.len() + p.speck_diameters_mm.len() + p.mass_thicknesses_mm.len();
        if count > 16 {
            return Err(PhantomError::invalid(
                "fibre_diameters_mm + speck_diameters_mm + mass_thicknesses_mm",
                count,
                "at most 16 objects fit the 4 x 4 layout",
            ));
        }
        if p.mass_diameters_mm.len() != p.mass_thicknesses_mm.len() {
            return Err(PhantomError::invalid(
                "mass_diameters_mm",
                p.mass_diameters_mm.len(),
                "needs one diameter per entry of mass_thicknesses_mm",
            ));
        }
        for (n, d) in p.fibre_diameters_mm.iter().enumerate() {
            check_range(&format!("fibre_diameters_mm[{n}]"), *d, 0.05, 3.0, "mm")?;
        }
        for (n, d) in p.speck_diameters_mm.iter().enumerate() {
            check_range(&format!("speck_diameters_mm[{n}]"), *d, 0.05, 1.5, "mm")?;
        }
        for (n, (t, d)) in p.mass_thicknesses_mm.iter().zip(&p.mass_diameters_mm).enumerate() {
            check_range(
                &format!("mass_thicknesses_mm[{n}]"),
                *t,
                0.05,
                0.5 * p.insert_thickness_mm,
                "mm (at most half the insert)",
            )?;
            check_range(&format!("mass_diameters_mm[{n}]"), *d, 1.0, 12.0, "mm")?;
        }
        Ok(())
    }
}

/// Prepares the accreditation-style phantom: PMMA body, wax insert and the 4 x 4 objects.
pub(crate) fn prepare_accreditation(p: &AccreditationParams) -> Result<(QaScene, MaterialTable, GroundTruth)> {
    p.validate()?;
    let slab = p.body();
    let grid = slab.grid()?;
    let mut table = MaterialTable::air_only();
    let body = slab.layer(&mut table);
    table.set(INSERT, Material::Adipose, "wax-equivalent insert");
    let zm = p.support_height_mm + 0.5 * p.thickness_mm;
    let yc = 0.5 * p.depth_mm;
    let insert = Layer {
        bbox: Aabb {
            min: [-40.0, yc - 30.0, zm - 0.5 * p.insert_thickness_mm],
            max: [40.0, yc + 30.0, zm + 0.5 * p.insert_thickness_mm],
        },
        fill: Fill::Solid(INSERT),
    };
    let mut b = Builder { grid, support_mm: p.support_height_mm, table, objects: Vec::new(), truth: Vec::new() };
    let slot = |n: usize| [-27.0 + 18.0 * (n % 4) as f64, yc - 21.0 + 14.0 * (n / 4) as f64, zm];
    let mut n = 0;
    for &d in &p.fibre_diameters_mm {
        let c = slot(n);
        let dir = normalize([1.0, 1.0, 0.0]);
        let h = 5.0 - 0.5 * d;
        let (a, e) = ([c[0] - h * dir[0], c[1] - h * dir[1], c[2]], [c[0] + h * dir[0], c[1] + h * dir[1], c[2]]);
        let shape = Shape::Tapered { a, b: e, ra: 0.5 * d, rb: 0.5 * d };
        b.add(
            ObjectKind::Fibre,
            Material::Polystyrene,
            c,
            vec![shape],
            ObjectSize::Fibre { diameter_mm: d, length_mm: 10.0, direction: dir },
        )?;
        n += 1;
    }
    for &d in &p.speck_diameters_mm {
        let c = slot(n);
        let mut centres = vec![c];
        for m in 0..5 {
            let phi = std::f64::consts::TAU * m as f64 / 5.0;
            centres.push([c[0] + 2.0 * phi.cos(), c[1] + 2.0 * phi.sin(), c[2]]);
        }
        let parts = centres.iter().map(|&q| Shape::sphere(q, 0.5 * d)).collect();
        b.add(
            ObjectKind::SpeckGroup,
            Material::Hydroxyapatite,
            c,
            parts,
            ObjectSize::Specks { speck_diameter_mm: d, centres_mm: centres },
        )?;
        n += 1;
    }
    for (&t, &d) in p.mass_thicknesses_mm.iter().zip(&p.mass_diameters_mm) {
        let c = slot(n);
        let shape = Shape::Ellipsoid {
            centre: c,
            axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            semi: [0.5 * d, 0.5 * d, t],
            z_min: c[2],
        };
        b.add(
            ObjectKind::LensMass,
            Material::Lesion,
            c,
            vec![shape],
            ObjectSize::Lens { diameter_mm: d, thickness_mm: t },
        )?;
        n += 1;
    }
    Ok(b.finish(PhantomKind::Accreditation, vec![body, insert], p.thickness_mm))
}
