//! QA phantoms: slab, beads, accreditation-style.

use tomolab_phantom::material::{ADIPOSE, GLANDULAR, PMMA};
use tomolab_phantom::{AccreditationParams, BeadParams, Material, ObjectKind, Phantom, SlabMaterial, SlabParams};

#[test]
fn pmma_slab_is_uniform() {
    let p = SlabParams { thickness_mm: 30.0, voxel_mm: 0.5, ..SlabParams::default() };
    let g = Phantom::slab(&p).unwrap().generate().unwrap();
    assert_eq!(g.volume.grid.nz, 60);
    assert!(g.volume.labels.iter().all(|&l| l == PMMA));
    assert_eq!(g.volume.grid.min_corner_mm[2], p.support_height_mm);
}

#[test]
fn breast_equivalent_slab_mixes_evenly() {
    let p = SlabParams {
        thickness_mm: 40.0,
        voxel_mm: 0.25,
        material: SlabMaterial::BreastEquivalent,
        glandular_fraction: 0.3,
        ..SlabParams::default()
    };
    let g = Phantom::slab(&p).unwrap().generate().unwrap();
    let v = &g.volume;
    let c = v.label_counts();
    let f = c[GLANDULAR as usize] as f64 / (c[GLANDULAR as usize] + c[ADIPOSE as usize]) as f64;
    assert!((f - 0.3).abs() < 1e-3, "fraction {f}");
    // Every ray along z sees the same glandular path to within 2 voxels.
    let expect = 0.3 * v.grid.nz as f64;
    for j in (0..v.grid.ny).step_by(37) {
        for i in (0..v.grid.nx).step_by(41) {
            let n = (0..v.grid.nz).filter(|&k| v.get(i, j, k) == GLANDULAR).count() as f64;
            assert!((n - expect).abs() <= 2.0, "column ({i},{j}): {n} vs {expect}");
        }
    }
}

#[test]
fn beads_sit_at_their_heights() {
    let p = BeadParams {
        slab: SlabParams { voxel_mm: 0.1, thickness_mm: 20.0, width_mm: 80.0, depth_mm: 60.0, ..SlabParams::default() },
        bead_diameter_mm: 0.5,
        ..BeadParams::default()
    };
    let ph = Phantom::beads(&p).unwrap();
    let g = ph.generate().unwrap();
    assert_eq!(g.truth.objects.len(), 15);
    let expected_voxels = 4.0 / 3.0 * std::f64::consts::PI * 0.25f64.powi(3) / 0.1f64.powi(3);
    for o in &g.truth.objects {
        assert_eq!(o.kind, ObjectKind::Bead);
        assert_eq!(o.material, Material::Aluminium);
        assert_eq!(g.volume.label_at(o.centre_mm), o.label);
        let n = o.voxel_count.unwrap() as f64;
        assert!((n / expected_voxels - 1.0).abs() < 0.3, "bead voxels {n} vs {expected_voxels}");
        assert!((o.height_above_support_mm - (o.centre_mm[2] - p.slab.support_height_mm)).abs() < 1e-12);
    }
}

#[test]
fn accreditation_objects_all_show() {
    let p = AccreditationParams { voxel_mm: 0.1, ..AccreditationParams::default() };
    let g = Phantom::accreditation(&p).unwrap().generate().unwrap();
    let kinds: Vec<ObjectKind> = g.truth.objects.iter().map(|o| o.kind).collect();
    assert_eq!(kinds.iter().filter(|&&k| k == ObjectKind::Fibre).count(), 6);
    assert_eq!(kinds.iter().filter(|&&k| k == ObjectKind::SpeckGroup).count(), 5);
    assert_eq!(kinds.iter().filter(|&&k| k == ObjectKind::LensMass).count(), 5);
    let mut last = u64::MAX;
    for o in g.truth.objects.iter().filter(|o| o.kind == ObjectKind::Fibre) {
        let n = o.voxel_count.unwrap();
        assert!(n > 0 && n < last, "fibres should shrink with diameter");
        last = n;
    }
    for o in &g.truth.objects {
        assert!(o.voxel_count.unwrap() > 0, "object {} empty", o.id);
    }
}
