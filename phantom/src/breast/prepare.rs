//! From parameters to a scene: the voxel grid, the coarse texture field, the lesions (placed and
//! rasterized), the quantized field, the ligaments and the ground truth.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::ligaments::Ligaments;
use super::{BINS, BreastParams, BreastScene, Outline};
use crate::error::{PhantomError, Result};
use crate::lesion::{LesionSpec, Placement, parts_bbox, translate};
use crate::material::{FIRST_OBJECT_LABEL, MaterialTable};
use crate::rng::{Purpose, stream};
use crate::shapes::{Aabb, Rasterized};
use crate::texture::{CoarseField, fft_friendly, power_law_field};
use crate::truth::{BoxVoxels, BreastTruth, COORDINATES, GroundTruth, PhantomKind, TruthObject, box_mm};
use tomolab_hal::VoxelGrid;

/// Prepares a breast: validates, builds outline, texture, ligaments and lesions.
pub(crate) fn prepare(p: &BreastParams) -> Result<(BreastScene, MaterialTable, GroundTruth)> {
    p.validate()?;
    let outline = Outline::of(p);
    let (lo, hi) = outline.bbox();
    let grid = voxel_grid(p, lo, hi)?;
    let (mut field, coarse_threshold) = texture_field(p, &outline, lo, hi);
    let placement = Site { outline: &outline, field: &field, coarse_threshold, lo, hi };
    let (materials, objects, lesions) = insert_lesions(p, &placement, &grid)?;
    let xlut = quantize(&mut field, &grid);
    let ligaments = p.ligaments.then(|| Ligaments::new(p, lo, hi));
    let truth = breast_truth(p, &outline, grid, objects);
    let scene =
        BreastScene { grid, outline, field, xlut, ligaments, lesions, glandular_fraction: p.glandular_fraction };
    Ok((scene, materials, truth))
}

/// The voxel grid: the outline's bounding box, centred on x = 0, starting at the chest wall and the support.
fn voxel_grid(p: &BreastParams, lo: [f64; 3], hi: [f64; 3]) -> Result<VoxelGrid> {
    let v = p.voxel_mm;
    let nx = ((hi[0] - lo[0]) / v - 1e-9).ceil() as usize;
    let ny = ((hi[1] - lo[1]) / v - 1e-9).ceil() as usize;
    let nz = ((hi[2] - lo[2]) / v - 1e-9).ceil() as usize;
    let grid = VoxelGrid::cubic([nx, ny, nz], v, [-0.5 * nx as f64 * v, 0.0, p.support_height_mm]);
    crate::volume::checked_len(&grid)?;
    Ok(grid)
}

/// The coarse texture grid (independent of the voxel size) with the bias added, and a rough
/// threshold from its nodes inside the breast that places random lesions in glandular tissue.
fn texture_field(p: &BreastParams, outline: &Outline, lo: [f64; 3], hi: [f64; 3]) -> (CoarseField, f32) {
    let g = p.texture_grid_mm;
    let margin = 2.0 * g;
    let cmin = [lo[0] - margin, lo[1] - margin, lo[2] - margin];
    let cn: [usize; 3] =
        std::array::from_fn(|a| fft_friendly(((hi[a] - lo[a] + 2.0 * margin) / g).ceil() as usize + 1 + 8));
    let mut data = power_law_field(cn, g, p.texture_beta, p.seed);
    let bias = |q: [f64; 3]| -> f32 {
        let x = q[0] / outline.a_mm;
        let y = (q[1] - 0.25 * outline.b_mm) / (0.9 * outline.b_mm);
        let z = (q[2] - outline.zc_mm) / outline.r_mm;
        (-p.central_bias * (x * x + y * y + 0.5 * z * z)) as f32
    };
    let mut field = CoarseField { n: cn, spacing_mm: g, origin_mm: cmin, data: Vec::new() };
    let plane = cn[0] * cn[1];
    let node = |i: usize, j: usize, k: usize| [cmin[0] + i as f64 * g, cmin[1] + j as f64 * g, cmin[2] + k as f64 * g];
    // Add the bias, and collect the values at nodes inside the breast, plane by plane in parallel,
    // in plane order.
    let mut inside: Vec<f32> = data
        .par_chunks_mut(plane)
        .enumerate()
        .map(|(k, pl)| {
            let mut inside = Vec::new();
            for j in 0..cn[1] {
                for i in 0..cn[0] {
                    let q = node(i, j, k);
                    let v = &mut pl[j * cn[0] + i];
                    *v += bias(q);
                    if outline.inside_interior(q) {
                        inside.push(*v);
                    }
                }
            }
            inside
        })
        .flatten_iter()
        .collect();
    field.data = data;
    let coarse_threshold = if inside.is_empty() {
        f32::INFINITY
    } else {
        let q = (((1.0 - p.glandular_fraction) * inside.len() as f64) as usize).min(inside.len() - 1);
        *inside.select_nth_unstable_by(q, f32::total_cmp).1
    };
    (field, coarse_threshold)
}

/// What lesion placement needs to know about the breast.
struct Site<'a> {
    outline: &'a Outline,
    /// The biased texture before quantization.
    field: &'a CoarseField,
    coarse_threshold: f32,
    lo: [f64; 3],
    hi: [f64; 3],
}

/// Places and rasterizes every lesion; returns the material table with their labels, their truth
/// records and their rasterizations.
fn insert_lesions(
    p: &BreastParams,
    at: &Site<'_>,
    grid: &VoxelGrid,
) -> Result<(MaterialTable, Vec<TruthObject>, Vec<Rasterized>)> {
    let mut materials = MaterialTable::breast();
    let mut objects = Vec::new();
    let mut lesions: Vec<Rasterized> = Vec::new();
    for (index, spec) in p.lesions.iter().enumerate() {
        let kind = spec.kind.object_kind();
        let mut rng = stream(p.seed, Purpose::Lesion, index as u64);
        let (mut parts, mut size) = spec.kind.build(&mut rng);
        let local = parts_bbox(&parts);
        let placed: Vec<Aabb> = lesions.iter().map(|l| l.bbox).collect();
        let centre = lesion_centre(index, spec, &local, at, &placed, &mut rng)?;
        translate(&mut parts, &mut size, centre);
        let label = FIRST_OBJECT_LABEL + index as u8;
        let material = spec.kind.material();
        materials.set(label, material, format!("object {index} ({})", kind.name()));
        let r = Rasterized::new(label, parts, grid);
        let bbox = box_mm(&r.bbox);
        objects.push(TruthObject {
            id: index,
            kind,
            label,
            material,
            centre_mm: centre,
            height_above_support_mm: centre[2] - p.support_height_mm,
            size,
            bbox_voxels: BoxVoxels::of(grid, &bbox),
            bbox_mm: bbox,
            voxel_count: None,
        });
        lesions.push(r);
    }
    Ok((materials, objects, lesions))
}

/// The centre of lesion `index` (local bounding box `local`): the requested one, checked to keep
/// the lesion inside the skin, or a random spot in the tissue `spec.placement` names (the biased
/// texture above the threshold for glandular, below it for fat, at the centre and around it) clear of the
/// lesions `placed`.
fn lesion_centre(
    index: usize,
    spec: &LesionSpec,
    local: &Aabb,
    at: &Site<'_>,
    placed: &[Aabb],
    rng: &mut ChaCha8Rng,
) -> Result<[f64; 3]> {
    let kind = spec.kind.object_kind();
    let outline = at.outline;
    let fits = |c: [f64; 3]| local.translate(c).corners().iter().all(|&q| outline.inside_interior(q));
    // The lesion is embedded in the tissue asked for: its centre and the six points at `reach` from it along
    // the axes (the lesion's smallest half-extent, at most 5 mm) all lie in it.
    let reach = (0..3).map(|a| 0.5 * (local.max[a] - local.min[a])).fold(5.0, f64::min);
    let want_glandular = spec.placement == Placement::Glandular;
    let embedded = |c: [f64; 3]| {
        (0..7).all(|p| {
            let mut q = c;
            if p > 0 {
                q[(p - 1) / 2] += if p % 2 == 0 { reach } else { -reach };
            }
            (at.field.sample(q) >= at.coarse_threshold) == want_glandular
        })
    };
    let Some(c) = spec.centre_mm else {
        let attempts = 20_000;
        for _ in 0..attempts {
            let c = [
                rng.random_range(at.lo[0]..at.hi[0]),
                rng.random_range(at.lo[1]..outline.b_mm),
                rng.random_range(at.lo[2]..at.hi[2]),
            ];
            if fits(c) && embedded(c) && !placed.iter().any(|b| b.intersects(&local.translate(c))) {
                return Ok(c);
            }
        }
        return Err(PhantomError::PlacementFailed {
            index,
            kind: kind.name(),
            tissue: spec.placement.name(),
            attempts,
        });
    };
    if c.iter().any(|v| !v.is_finite()) {
        return Err(PhantomError::invalid(format!("lesions[{index}].centre_mm"), format!("{c:?}"), "must be finite"));
    }
    if !outline.inside_interior(c) {
        return Err(PhantomError::LesionOutsideBreast {
            index,
            kind: kind.name(),
            centre_mm: c,
            reason: "the centre is not inside the skin".into(),
        });
    }
    if !fits(c) {
        return Err(PhantomError::LesionOutsideBreast {
            index,
            kind: kind.name(),
            centre_mm: c,
            reason: format!(
                "its bounding box (half-size {:.1} x {:.1} x {:.1} mm) reaches outside the skin",
                0.5 * (local.max[0] - local.min[0]),
                0.5 * (local.max[1] - local.min[1]),
                0.5 * (local.max[2] - local.min[2])
            ),
        });
    }
    Ok(c)
}

/// Scales the field to quantization units [0, BINS - 1]; returns, per voxel column, the lower
/// coarse node along x and the interpolation weight.
fn quantize(field: &mut CoarseField, grid: &VoxelGrid) -> Vec<(u32, f32)> {
    let (vmin, vmax) = field.min_max();
    let qscale = if vmax > vmin { (BINS as f32 - 1.0) / (vmax - vmin) } else { 0.0 };
    for v in &mut field.data {
        *v = ((*v - vmin) * qscale).clamp(0.0, BINS as f32 - 1.0);
    }
    (0..grid.nx)
        .map(|i| {
            let (i0, t) = field.locate(0, grid.centre_along(0, i));
            (i0 as u32, t)
        })
        .collect()
}

/// The ground truth of the breast before voxelization (label counts and measured fraction come later).
fn breast_truth(p: &BreastParams, outline: &Outline, grid: VoxelGrid, objects: Vec<TruthObject>) -> GroundTruth {
    GroundTruth {
        phantom: PhantomKind::Breast,
        seed: p.seed,
        coordinates: COORDINATES.into(),
        grid,
        support_height_mm: p.support_height_mm,
        thickness_mm: p.thickness_mm,
        breast: Some(BreastTruth {
            chest_wall_width_mm: p.chest_wall_width_mm,
            nipple_distance_mm: p.nipple_distance_mm,
            edge_radius_mm: outline.r_mm,
            skin_mm: p.skin_mm,
            glandular_fraction_requested: p.glandular_fraction,
            glandular_fraction_measured: None,
            nipple_tip_mm: outline.nipple_mm.map(|n| [0.0, outline.b_mm + n[1], outline.zc_mm]),
        }),
        objects,
        label_counts: None,
    }
}
