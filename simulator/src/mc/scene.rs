//! What photons travel through: a world box of one material (air), an optional voxel label volume, and
//! homogeneous boxes (paddle, support, a body); plus where deposits are scored and the detector plane.

use crate::error::PhysicsError;
use crate::ray_tracer::VolumeView;

use super::material::McMaterial;

/// An axis-aligned box, mm.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Aabb {
    /// Minimum corner.
    pub min_mm: [f64; 3],
    /// Maximum corner.
    pub max_mm: [f64; 3],
}

impl Aabb {
    /// A box from its corners; each max must exceed its min.
    pub fn new(min_mm: [f64; 3], max_mm: [f64; 3]) -> Result<Self, PhysicsError> {
        if !(0..3).all(|a| min_mm[a].is_finite() && max_mm[a].is_finite() && max_mm[a] > min_mm[a]) {
            return Err(PhysicsError::invalid(
                "box",
                format!("needs finite corners with max > min: {min_mm:?} {max_mm:?}"),
            ));
        }
        Ok(Self { min_mm, max_mm })
    }

    /// A box from its centre and full extents.
    pub fn centred(centre_mm: [f64; 3], size_mm: [f64; 3]) -> Result<Self, PhysicsError> {
        Self::new(
            [0, 1, 2].map(|a| centre_mm[a] - size_mm[a] / 2.0),
            [0, 1, 2].map(|a| centre_mm[a] + size_mm[a] / 2.0),
        )
    }

    /// Whether `p` lies inside (boundaries included).
    #[inline]
    pub fn contains(&self, p: &[f64; 3]) -> bool {
        (0..3).all(|a| p[a] >= self.min_mm[a] && p[a] <= self.max_mm[a])
    }

    /// Volume, mm^3.
    pub fn volume_mm3(&self) -> f64 {
        (0..3).map(|a| self.max_mm[a] - self.min_mm[a]).product()
    }

    fn overlaps(&self, o: &Aabb) -> bool {
        (0..3).all(|a| self.min_mm[a] < o.max_mm[a] && o.min_mm[a] < self.max_mm[a])
    }

    fn encloses(&self, o: &Aabb) -> bool {
        (0..3).all(|a| self.min_mm[a] <= o.min_mm[a] && o.max_mm[a] <= self.max_mm[a])
    }

    /// Distance along `dir` from `p` (inside) to where the ray leaves the box.
    #[inline]
    pub(crate) fn exit_distance(&self, p: &[f64; 3], dir: &[f64; 3]) -> f64 {
        let mut t = f64::INFINITY;
        for a in 0..3 {
            if dir[a] > 0.0 {
                t = t.min((self.max_mm[a] - p[a]) / dir[a]);
            } else if dir[a] < 0.0 {
                t = t.min((self.min_mm[a] - p[a]) / dir[a]);
            }
        }
        t.max(0.0)
    }

    /// Distance along `dir` from `p` (outside) to where the ray enters the box, if it does.
    #[inline]
    pub(crate) fn entry_distance(&self, p: &[f64; 3], dir: &[f64; 3]) -> Option<f64> {
        let (mut t0, mut t1) = (0.0f64, f64::INFINITY);
        for a in 0..3 {
            if dir[a] == 0.0 {
                if p[a] < self.min_mm[a] || p[a] > self.max_mm[a] {
                    return None;
                }
                continue;
            }
            let inv = 1.0 / dir[a];
            let (mut ta, mut tb) = ((self.min_mm[a] - p[a]) * inv, (self.max_mm[a] - p[a]) * inv);
            if ta > tb {
                std::mem::swap(&mut ta, &mut tb);
            }
            t0 = t0.max(ta);
            t1 = t1.min(tb);
        }
        (t0 <= t1).then_some(t0)
    }
}

/// A voxel label volume in the scene, with the material slot of each label.
#[derive(Debug, Clone)]
pub(crate) struct VoxelRegion<'a> {
    pub(crate) view: VolumeView<'a>,
    pub(crate) bounds: Aabb,
    pub(crate) slot_of_label: [u8; 256],
    /// Blocks of `BLOCK` voxels per side, each with the index of its slot mask in `masks`: the Woodcock
    /// majorant is taken per block, so a few dense voxels (calcifications) or a lot of air do not slow
    /// tracking everywhere else.
    pub(crate) blocks: [usize; 3],
    pub(crate) block_mask: Vec<u8>,
    /// Distinct sets of slots (bit s = slot s) found in blocks.
    pub(crate) masks: Vec<u16>,
}

/// Voxels per block side for the piecewise-constant majorant.
pub(crate) const BLOCK: usize = 8;
/// Most distinct slot sets; beyond that, blocks share the union of all slots.
pub(crate) const MAX_MASKS: usize = 32;

impl VoxelRegion<'_> {
    /// Index of the block holding `p` and its bounds.
    #[inline]
    pub(crate) fn block_at(&self, p: &[f64; 3]) -> (usize, Aabb) {
        let v = &self.view;
        let edge = v.grid.cubic_voxel_mm() * BLOCK as f64;
        let b = [0, 1, 2].map(|a| {
            (((p[a] - v.grid.min_corner_mm[a]) / edge) as isize).clamp(0, self.blocks[a] as isize - 1) as usize
        });
        let min_mm = [0, 1, 2].map(|a| v.grid.min_corner_mm[a] + b[a] as f64 * edge);
        let max_mm = [0, 1, 2].map(|a| (min_mm[a] + edge).min(self.bounds.max_mm[a]));
        ((b[2] * self.blocks[1] + b[1]) * self.blocks[0] + b[0], Aabb { min_mm, max_mm })
    }

    /// Label of the voxel holding `p` (clamped to the volume, for points on its faces).
    #[inline]
    pub(crate) fn label_at(&self, p: &[f64; 3]) -> u8 {
        let v = &self.view;
        let inv = 1.0 / v.grid.cubic_voxel_mm();
        let idx =
            |a: usize, n: usize| (((p[a] - v.grid.min_corner_mm[a]) * inv) as isize).clamp(0, n as isize - 1) as usize;
        let (i, j, k) = (idx(0, v.grid.nx), idx(1, v.grid.ny), idx(2, v.grid.nz));
        v.labels[(k * v.grid.ny + j) * v.grid.nx + i]
    }
}

/// The slot set of every block, as indices into a list of distinct sets.
fn block_masks(view: &VolumeView<'_>, slot_of_label: &[u8; 256]) -> ([usize; 3], Vec<u8>, Vec<u16>) {
    let n = [view.grid.nx, view.grid.ny, view.grid.nz];
    let blocks = n.map(|v| v.div_ceil(BLOCK));
    let mut raw = vec![0u16; blocks[0] * blocks[1] * blocks[2]];
    for k in 0..view.grid.nz {
        for j in 0..view.grid.ny {
            let row = &view.labels[(k * view.grid.ny + j) * view.grid.nx..][..view.grid.nx];
            let base = ((k / BLOCK) * blocks[1] + j / BLOCK) * blocks[0];
            for (i, &l) in row.iter().enumerate() {
                raw[base + i / BLOCK] |= 1 << slot_of_label[l as usize];
            }
        }
    }
    let mut masks: Vec<u16> = Vec::new();
    for &m in &raw {
        if !masks.contains(&m) {
            masks.push(m);
        }
    }
    if masks.len() > MAX_MASKS {
        let union = masks.iter().fold(0, |a, &m| a | m);
        return (blocks, vec![0; raw.len()], vec![union]);
    }
    let index = raw.iter().map(|m| masks.iter().position(|x| x == m).unwrap_or(0) as u8).collect();
    (blocks, index, masks)
}

/// A homogeneous box.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SolidBox {
    pub(crate) bounds: Aabb,
    pub(crate) slot: u8,
}

/// A plane of constant z that absorbs and scores every photon crossing it downward (the detector).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoringPlane {
    /// Height of the plane, mm; it is the world's floor.
    pub z_mm: f64,
    /// Minimum x and y of the scored area, mm.
    pub min_xy_mm: [f64; 2],
    /// Pixels along x and y.
    pub pixels: [usize; 2],
    /// Pixel pitch, mm.
    pub pixel_mm: f64,
}

/// Everything a photon can meet. Regions must not overlap; the world encloses them all.
#[derive(Debug, Clone)]
pub struct McScene<'a> {
    pub(crate) materials: Vec<McMaterial>,
    pub(crate) world: Aabb,
    pub(crate) world_slot: u8,
    pub(crate) voxels: Option<VoxelRegion<'a>>,
    pub(crate) boxes: Vec<SolidBox>,
    pub(crate) scoring_boxes: Vec<(String, Aabb)>,
    pub(crate) detector: Option<ScoringPlane>,
}

impl<'a> McScene<'a> {
    /// A world box filled with `material` (normally air).
    pub fn new(world: Aabb, material: McMaterial) -> Self {
        Self {
            materials: vec![material],
            world,
            world_slot: 0,
            voxels: None,
            boxes: Vec::new(),
            scoring_boxes: Vec::new(),
            detector: None,
        }
    }

    fn slot_of(&mut self, material: McMaterial) -> Result<u8, PhysicsError> {
        if let Some(i) = self.materials.iter().position(|m| m.name() == material.name()) {
            return Ok(i as u8);
        }
        if self.materials.len() == super::MAX_SLOTS {
            return Err(PhysicsError::invalid("mc scene", format!("at most {} materials", super::MAX_SLOTS)));
        }
        self.materials.push(material);
        Ok((self.materials.len() - 1) as u8)
    }

    fn check_placement(&self, b: &Aabb, what: &str) -> Result<(), PhysicsError> {
        if !self.world.encloses(b) {
            return Err(PhysicsError::invalid(
                "mc scene",
                format!("{what} {b:?} is not inside the world {:?}", self.world),
            ));
        }
        let clash = self.voxels.as_ref().is_some_and(|v| v.bounds.overlaps(b))
            || self.boxes.iter().any(|o| o.bounds.overlaps(b));
        if clash {
            return Err(PhysicsError::invalid("mc scene", format!("{what} {b:?} overlaps another region")));
        }
        Ok(())
    }

    /// Adds the voxel volume; `materials` gives each label present its material (every label that occurs
    /// must be listed).
    pub fn with_voxels(mut self, view: VolumeView<'a>, materials: &[(u8, McMaterial)]) -> Result<Self, PhysicsError> {
        view.validate()?;
        if self.voxels.is_some() {
            return Err(PhysicsError::invalid("mc scene", "only one voxel volume"));
        }
        let max = [0, 1, 2].map(|a| {
            view.grid.min_corner_mm[a]
                + [view.grid.nx, view.grid.ny, view.grid.nz][a] as f64 * view.grid.cubic_voxel_mm()
        });
        let bounds = Aabb::new(view.grid.min_corner_mm, max)?;
        self.check_placement(&bounds, "voxel volume")?;
        let mut counts = [0u64; 256];
        for &l in view.labels {
            counts[l as usize] += 1;
        }
        let mut slot_of_label = [u8::MAX; 256];
        for (label, m) in materials {
            slot_of_label[*label as usize] = self.slot_of(m.clone())?;
        }
        if let Some(label) = (0..256).find(|&l| counts[l] > 0 && slot_of_label[l] == u8::MAX) {
            return Err(PhysicsError::invalid(
                "mc scene",
                format!("label {label} occurs in the volume but has no material"),
            ));
        }
        let (blocks, block_mask, masks) = block_masks(&view, &slot_of_label);
        self.voxels = Some(VoxelRegion { view, bounds, slot_of_label, blocks, block_mask, masks });
        Ok(self)
    }

    /// Adds a homogeneous box.
    pub fn with_box(mut self, bounds: Aabb, material: McMaterial) -> Result<Self, PhysicsError> {
        self.check_placement(&bounds, "box")?;
        let slot = self.slot_of(material)?;
        self.boxes.push(SolidBox { bounds, slot });
        Ok(self)
    }

    /// Scores the energy deposited inside `bounds` under `name` (boxes may overlap anything).
    pub fn with_scoring_box(mut self, name: &str, bounds: Aabb) -> Self {
        self.scoring_boxes.push((name.to_string(), bounds));
        self
    }

    /// Makes the world's floor a detector plane at `plane.z_mm` that scores primary and scattered photons.
    pub fn with_detector(mut self, plane: ScoringPlane) -> Result<Self, PhysicsError> {
        if !(plane.pixel_mm.is_finite() && plane.pixel_mm > 0.0 && plane.pixels[0] > 0 && plane.pixels[1] > 0) {
            return Err(PhysicsError::invalid("mc detector", "needs a positive pitch and pixel counts"));
        }
        if !(plane.z_mm >= self.world.min_mm[2] && plane.z_mm < self.world.max_mm[2]) {
            return Err(PhysicsError::invalid("mc detector", "plane must lie within the world's height"));
        }
        let regions_above = self.voxels.iter().map(|v| v.bounds).chain(self.boxes.iter().map(|b| b.bounds));
        if regions_above.into_iter().any(|b| b.min_mm[2] < plane.z_mm) {
            return Err(PhysicsError::invalid("mc detector", "every region must lie above the detector plane"));
        }
        self.world.min_mm[2] = plane.z_mm;
        self.detector = Some(plane);
        Ok(self)
    }

    /// Bounds of the voxel volume, if there is one.
    pub fn voxel_bounds(&self) -> Option<Aabb> {
        self.voxels.as_ref().map(|v| v.bounds)
    }

    /// Materials, by slot.
    pub fn materials(&self) -> &[McMaterial] {
        &self.materials
    }

    /// Mass of the voxels carrying `label`, g.
    pub fn label_mass_g(&self, label: u8) -> f64 {
        let Some(v) = &self.voxels else { return 0.0 };
        let slot = v.slot_of_label[label as usize];
        if slot == u8::MAX {
            return 0.0;
        }
        let count = v.view.labels.iter().filter(|&&l| l == label).count() as f64;
        count * v.view.grid.cubic_voxel_mm().powi(3) * 1e-3 * self.materials[slot as usize].density_g_cm3()
    }

    /// Mass of glandular tissue in the voxel volume (each voxel's mass x its glandular weight fraction), g.
    pub fn glandular_mass_g(&self) -> f64 {
        let Some(v) = &self.voxels else { return 0.0 };
        let mut counts = [0u64; 256];
        for &l in v.view.labels {
            counts[l as usize] += 1;
        }
        let voxel_cm3 = v.view.grid.cubic_voxel_mm().powi(3) * 1e-3;
        (0..256)
            .filter(|&l| counts[l] > 0)
            .map(|l| {
                let m = &self.materials[v.slot_of_label[l] as usize];
                counts[l] as f64 * voxel_cm3 * m.density_g_cm3() * m.glandular_weight_fraction()
            })
            .sum()
    }
}

/// Where a point is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Region {
    Voxels,
    Solid(usize),
    World,
    Outside,
}

impl McScene<'_> {
    #[inline]
    pub(crate) fn locate(&self, p: &[f64; 3]) -> Region {
        if self.voxels.as_ref().is_some_and(|v| v.bounds.contains(p)) {
            return Region::Voxels;
        }
        if let Some(i) = self.boxes.iter().position(|b| b.bounds.contains(p)) {
            return Region::Solid(i);
        }
        if self.world.contains(p) { Region::World } else { Region::Outside }
    }

    /// From a point in the world's own material: the distance to the nearest region or the world's edge.
    #[inline]
    pub(crate) fn world_exit_distance(&self, p: &[f64; 3], dir: &[f64; 3]) -> f64 {
        let mut t = self.world.exit_distance(p, dir);
        let regions = self.voxels.iter().map(|v| &v.bounds).chain(self.boxes.iter().map(|b| &b.bounds));
        for b in regions {
            if let Some(e) = b.entry_distance(p, dir) {
                t = t.min(e);
            }
        }
        t
    }
}
