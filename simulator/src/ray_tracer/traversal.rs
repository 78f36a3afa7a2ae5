//! Exact voxel traversal (Amanatides-Woo) of one ray through a label volume, per material slot.

use tomolab_hal::Vec3;
use tomolab_hal::VoxelGrid;

use super::MAX_MATERIALS;
use crate::attenuation::{self, MaterialData};
use crate::error::{PhysicsError, check_at_least};

/// A read-only view of a `u8` label volume (the layout of `tomolab_phantom::LabelVolume`).
#[derive(Debug, Clone, Copy)]
pub struct VolumeView<'a> {
    /// The voxel grid.
    pub grid: VoxelGrid,
    /// Labels, index `(k * ny + j) * nx + i`.
    pub labels: &'a [u8],
}

impl<'a> VolumeView<'a> {
    /// Checks sizes and spacing.
    pub fn validate(&self) -> Result<(), PhysicsError> {
        let n = self.grid.nx.checked_mul(self.grid.ny).and_then(|v| v.checked_mul(self.grid.nz));
        if n != Some(self.labels.len()) || self.labels.is_empty() {
            return Err(PhysicsError::invalid("volume.labels", "length must be nx * ny * nz > 0"));
        }
        if !self.grid.is_cubic() {
            return Err(PhysicsError::invalid(
                "volume.voxel_mm",
                format!("the ray tracer needs cubic voxels, got {:?} mm", self.grid.voxel_mm),
            ));
        }
        check_at_least("volume.voxel_mm", self.grid.cubic_voxel_mm(), 0.0, true)?;
        if !self.grid.min_corner_mm.iter().all(|v| v.is_finite()) {
            return Err(PhysicsError::invalid("volume.min_corner_mm", "must be finite"));
        }
        Ok(())
    }

    /// A view of a phantom label volume.
    pub fn of(volume: &'a tomolab_phantom::LabelVolume) -> Self {
        Self { grid: volume.grid, labels: &volume.labels }
    }
}

/// Maps each of the 256 labels to a material slot; slot 0 is air.
#[derive(Debug, Clone)]
pub struct MaterialMap {
    pub(super) slot_of_label: [u8; 256],
    pub(super) materials: Vec<&'static MaterialData>,
}

impl MaterialMap {
    /// Builds the map from `(label, material name)` pairs; labels not listed are air.
    pub fn from_names<'n>(entries: impl IntoIterator<Item = (u8, &'n str)>) -> Result<Self, PhysicsError> {
        let air = attenuation::material("air")?;
        let mut materials = vec![air];
        let mut slot_of_label = [0u8; 256];
        for (label, name) in entries {
            let m = attenuation::material(name)?;
            let slot = match materials.iter().position(|x| x.name() == m.name()) {
                Some(s) => s,
                None => {
                    if materials.len() == MAX_MATERIALS {
                        return Err(PhysicsError::invalid(
                            "materials",
                            format!("at most {MAX_MATERIALS} distinct materials per projector"),
                        ));
                    }
                    materials.push(m);
                    materials.len() - 1
                }
            };
            slot_of_label[label as usize] = slot as u8;
        }
        Ok(Self { slot_of_label, materials })
    }

    /// The map of a phantom material table (labels absent from the table are air).
    pub fn of(table: &tomolab_phantom::MaterialTable) -> Result<Self, PhysicsError> {
        Self::from_names(table.entries.iter().map(|e| (e.label, e.material.name())))
    }

    /// Material of each slot.
    pub fn materials(&self) -> &[&'static MaterialData] {
        &self.materials
    }

    /// Slot of `label`.
    pub fn slot(&self, label: u8) -> usize {
        self.slot_of_label[label as usize] as usize
    }
}

/// Per-material path lengths of one ray, mm, indexed by material slot.
pub type PathLengths = [f64; MAX_MATERIALS];

/// Traces the segment `from -> to` (mm) through the volume, adding each voxel's intersection length to
/// `acc[slot]`. Returns (length inside the volume in mm, number of voxels visited).
pub fn trace(volume: &VolumeView<'_>, slots: &[u8; 256], from: &Vec3, to: &Vec3, acc: &mut PathLengths) -> (f64, u64) {
    let inv_v = 1.0 / volume.grid.cubic_voxel_mm();
    let n = [volume.grid.nx, volume.grid.ny, volume.grid.nz];
    let p0 = [
        (from.x - volume.grid.min_corner_mm[0]) * inv_v,
        (from.y - volume.grid.min_corner_mm[1]) * inv_v,
        (from.z - volume.grid.min_corner_mm[2]) * inv_v,
    ];
    let d = [(to.x - from.x) * inv_v, (to.y - from.y) * inv_v, (to.z - from.z) * inv_v];
    let length_mm = (to - from).norm();
    // Clip t in [0, 1] against the box [0, n] on every axis.
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    for a in 0..3 {
        let hi = n[a] as f64;
        if d[a] == 0.0 {
            if p0[a] < 0.0 || p0[a] > hi {
                return (0.0, 0);
            }
        } else {
            let (ta, tb) = ((0.0 - p0[a]) / d[a], (hi - p0[a]) / d[a]);
            let (lo, up) = if ta < tb { (ta, tb) } else { (tb, ta) };
            t0 = t0.max(lo);
            t1 = t1.min(up);
        }
    }
    if t0 >= t1 {
        return (0.0, 0);
    }
    let mut idx = [0usize; 3];
    let mut step = [0isize; 3];
    let mut t_max = [f64::INFINITY; 3];
    let mut t_delta = [f64::INFINITY; 3];
    for a in 0..3 {
        let pos = p0[a] + d[a] * t0;
        let i = (pos.floor().max(0.0) as usize).min(n[a] - 1);
        idx[a] = i;
        if d[a] > 0.0 {
            step[a] = 1;
            t_max[a] = ((i + 1) as f64 - p0[a]) / d[a];
            t_delta[a] = 1.0 / d[a];
        } else if d[a] < 0.0 {
            step[a] = -1;
            t_max[a] = (i as f64 - p0[a]) / d[a];
            t_delta[a] = -1.0 / d[a];
        }
    }
    let stride = [1isize, volume.grid.nx as isize, (volume.grid.nx * volume.grid.ny) as isize];
    let mut lin = (idx[2] * volume.grid.ny + idx[1]) * volume.grid.nx + idx[0];
    let labels = volume.labels;
    // Run-length accumulation: consecutive voxels of one material form a single segment, so the per-step work
    // is a comparison and no floating-point accumulation (and no store-to-load dependency on `acc`).
    let mut slot = slots[labels[lin] as usize];
    let mut run_start = t0;
    let mut steps = 1u64;
    loop {
        let a = if t_max[0] < t_max[1] {
            if t_max[0] < t_max[2] { 0 } else { 2 }
        } else if t_max[1] < t_max[2] {
            1
        } else {
            2
        };
        let t = t_max[a];
        if t >= t1 {
            break;
        }
        let ni = idx[a] as isize + step[a];
        if ni < 0 || ni >= n[a] as isize {
            break;
        }
        idx[a] = ni as usize;
        lin = (lin as isize + step[a] * stride[a]) as usize;
        t_max[a] += t_delta[a];
        steps += 1;
        let next = slots[labels[lin] as usize];
        if next != slot {
            acc[slot as usize] += (t - run_start) * length_mm;
            slot = next;
            run_start = t;
        }
    }
    acc[slot as usize] += (t1 - run_start) * length_mm;
    ((t1 - t0) * length_mm, steps)
}
