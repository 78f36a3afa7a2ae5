//! Property tests of geometry and of label validity.

use proptest::prelude::*;
use tomolab_hal::VoxelGrid;
use tomolab_phantom::{BreastParams, LesionSpec, Outline, Phantom};

fn grid() -> impl Strategy<Value = VoxelGrid> {
    (1usize..40, 1usize..40, 1usize..40, 0.05f64..2.0, -100.0f64..100.0, -100.0f64..100.0, 0.0f64..50.0)
        .prop_map(|(nx, ny, nz, voxel_mm, ox, oy, oz)| VoxelGrid::cubic([nx, ny, nz], voxel_mm, [ox, oy, oz]))
}

proptest! {
    #[test]
    fn index_and_centre_round_trip(g in grid(), fi in 0.0f64..1.0, fj in 0.0f64..1.0, fk in 0.0f64..1.0) {
        let (i, j, k) = ((fi * g.nx as f64) as usize, (fj * g.ny as f64) as usize, (fk * g.nz as f64) as usize);
        let idx = g.index(i, j, k);
        prop_assert!(idx < g.len());
        prop_assert_eq!(g.unindex(idx), [i, j, k]);
        prop_assert_eq!(g.world_to_voxel(g.voxel_centre(i, j, k)), Some([i, j, k]));
    }

    #[test]
    fn points_outside_the_grid_have_no_voxel(g in grid(), d in 0.001f64..10.0, axis in 0usize..3) {
        let (lo, hi) = g.bounds_mm();
        let mut p = g.voxel_centre(0, 0, 0);
        p[axis] = lo[axis] - d;
        prop_assert_eq!(g.world_to_voxel(p), None);
        p[axis] = hi[axis] + d;
        prop_assert_eq!(g.world_to_voxel(p), None);
    }

    #[test]
    fn interior_lies_inside_outer_surface(
        t in 20.0f64..90.0, x in -1.0f64..1.0, y in 0.0f64..1.0, z in 0.0f64..1.0,
    ) {
        let p = BreastParams { thickness_mm: t, ..BreastParams::default() };
        let o = Outline::of(&p);
        let q = [x * o.a_mm, y * o.b_mm, p.support_height_mm + z * t];
        if o.inside_interior(q) {
            prop_assert!(o.inside_outer(q));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Any valid parameter set yields labels only from the material table.
    #[test]
    fn labels_come_from_the_table(
        t in 20.0f64..90.0,
        f in 0.0f64..=1.0,
        width_extra in 20.0f64..80.0,
        nipple_extra in 10.0f64..50.0,
        seed in any::<u64>(),
        spicules in 0u32..20,
        ligaments in any::<bool>(),
        nipple in any::<bool>(),
    ) {
        let p = BreastParams {
            thickness_mm: t,
            chest_wall_width_mm: t + width_extra + 20.0,
            nipple_distance_mm: 0.5 * t + nipple_extra + 10.0,
            glandular_fraction: f,
            voxel_mm: 0.5,
            seed,
            ligaments,
            nipple,
            lesions: if f > 0.05 { vec![LesionSpec::spiculated(4.0, spicules, 2.0)] } else { vec![] },
            ..BreastParams::default()
        };
        let ph = match Phantom::breast(&p) {
            Ok(ph) => ph,
            // A random lesion may find no room in a small, sparse breast; that is a clean error.
            Err(tomolab_phantom::PhantomError::PlacementFailed { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let g = ph.generate().unwrap();
        let c = g.volume.label_counts();
        for (l, &n) in c.iter().enumerate() {
            if n > 0 {
                prop_assert!(ph.materials().contains(l as u8), "label {} not in table", l);
            }
        }
        let measured = g.truth.breast.unwrap().glandular_fraction_measured.unwrap();
        prop_assert!((measured - f).abs() <= 0.01, "fraction {} vs {}", measured, f);
    }
}
