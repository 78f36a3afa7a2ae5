//! Ground truth agrees with the voxels.

use tomolab_phantom::material::{ADIPOSE, GLANDULAR, LIGAMENT, NIPPLE, SKIN};
use tomolab_phantom::{BreastParams, CalcMaterial, LesionSpec, Material, ObjectKind, Phantom};

fn lesion_breast(voxel_mm: f64) -> BreastParams {
    BreastParams {
        thickness_mm: 40.0,
        chest_wall_width_mm: 120.0,
        nipple_distance_mm: 80.0,
        voxel_mm,
        seed: 5,
        glandular_fraction: 0.3,
        lesions: vec![
            LesionSpec::spiculated(10.0, 16, 6.0).at([5.0, 30.0, 40.0]),
            LesionSpec::spiculated(5.0, 8, 4.0),
            LesionSpec::mass([4.0, 3.0, 2.5]),
            LesionSpec::mass([3.0, 3.0, 3.0]).at([-20.0, 20.0, 35.0]),
            LesionSpec::calcifications(12, 0.1, 0.5, 8.0, CalcMaterial::Hydroxyapatite),
            LesionSpec::calcifications(6, 0.2, 0.3, 4.0, CalcMaterial::CalciumOxalate).at([20.0, 45.0, 42.0]),
        ],
        ..BreastParams::default()
    }
}

#[test]
fn every_lesion_is_inside_the_breast_and_its_bbox() {
    let params = lesion_breast(0.2);
    let ph = Phantom::breast(&params).unwrap();
    let outline = ph.outline().unwrap();
    let g = ph.generate().unwrap();
    let v = &g.volume;
    assert_eq!(g.truth.objects.len(), params.lesions.len());
    // Voxel extents per label, gathered once.
    let mut lo = [[usize::MAX; 3]; 256];
    let mut hi = [[0usize; 3]; 256];
    for k in 0..v.grid.nz {
        for j in 0..v.grid.ny {
            for i in 0..v.grid.nx {
                let l = v.get(i, j, k) as usize;
                for (a, n) in [i, j, k].into_iter().enumerate() {
                    lo[l][a] = lo[l][a].min(n);
                    hi[l][a] = hi[l][a].max(n);
                }
            }
        }
    }
    for o in &g.truth.objects {
        let l = o.label as usize;
        assert!(o.voxel_count.unwrap() > 0, "object {} has no voxels", o.id);
        assert!(outline.inside_interior(o.centre_mm), "object {} centre outside the breast", o.id);
        let b = o.bbox_voxels.unwrap();
        assert!(
            b.contains(lo[l]) && b.contains(hi[l]),
            "object {} voxels {:?}..{:?} outside bbox {b:?}",
            o.id,
            lo[l],
            hi[l]
        );
        for c in o.bbox_mm.min.iter().zip(&o.bbox_mm.max) {
            assert!(c.0 <= c.1);
        }
        assert!(o.bbox_mm.contains(o.centre_mm));
        // Every bbox corner lies inside the skin, so the whole lesion does.
        for x in [o.bbox_mm.min[0], o.bbox_mm.max[0]] {
            for y in [o.bbox_mm.min[1], o.bbox_mm.max[1]] {
                for z in [o.bbox_mm.min[2], o.bbox_mm.max[2]] {
                    assert!(outline.inside_interior([x, y, z]), "object {} bbox corner outside", o.id);
                }
            }
        }
        assert_eq!(ph.materials().material(o.label), Some(o.material));
        let expected = match o.kind {
            ObjectKind::SpiculatedMass | ObjectKind::Mass => Material::Carcinoma,
            ObjectKind::CalcificationCluster => o.material,
            _ => unreachable!(),
        };
        assert_eq!(o.material, expected);
    }
    // Every voxel of every lesion lies inside the skin.
    for k in 0..v.grid.nz {
        for j in 0..v.grid.ny {
            for i in 0..v.grid.nx {
                if v.get(i, j, k) >= 16 {
                    assert!(outline.inside_interior(v.voxel_centre(i, j, k)));
                }
            }
        }
    }
    // The random masses sit in glandular tissue: the centre's texture was glandular, so most of
    // the voxels around the lesion are glandular rather than adipose.
    let c = v.label_counts();
    for l in [ADIPOSE, GLANDULAR, LIGAMENT, SKIN, NIPPLE] {
        assert!(c[l as usize] > 0, "label {l} missing");
    }
    assert_eq!(c[255], 0);
}

#[test]
fn every_calcification_shows_at_coarse_voxels() {
    // At 0.5 mm voxels a 0.1 mm calcification covers no voxel centre; it still gets its voxel.
    let g = Phantom::breast(&lesion_breast(0.5)).unwrap().generate().unwrap();
    for o in &g.truth.objects {
        assert!(o.voxel_count.unwrap() > 0, "object {} ({:?}) vanished", o.id, o.kind);
    }
}

#[test]
fn ground_truth_json_round_trips() {
    let ph = Phantom::breast(&lesion_breast(0.5)).unwrap();
    let text = serde_json::to_string(ph.ground_truth()).unwrap();
    let back: tomolab_phantom::GroundTruth = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, ph.ground_truth());
    let table = serde_json::to_string(ph.materials()).unwrap();
    assert!(table.contains("\"calcium_oxalate\"") && table.contains("\"cooper_ligament\""));
}
