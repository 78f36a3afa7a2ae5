//! The glandular volume fraction measured on the voxels hits the request.

use tomolab_phantom::Phantom;
use tomolab_phantom::material::{ADIPOSE, GLANDULAR, LIGAMENT};

use super::common::coarse_breast;

/// Glandular fraction = glandular / (adipose + glandular + ligament) voxels: the tissue inside the
/// skin, excluding skin, nipple and lesions (the crate's documented definition).
#[test]
fn glandular_fraction_within_one_point_of_request() {
    for (n, f) in [0.1, 0.25, 0.5].into_iter().enumerate() {
        let g = Phantom::breast(&coarse_breast(f, 11 + n as u64)).unwrap().generate().unwrap();
        let c = g.volume.label_counts();
        let tissue = c[ADIPOSE as usize] + c[GLANDULAR as usize] + c[LIGAMENT as usize];
        let measured = c[GLANDULAR as usize] as f64 / tissue as f64;
        println!("requested {f}, measured {measured:.5}, error {:+.4} pp", 100.0 * (measured - f));
        assert!((measured - f).abs() <= 0.01, "requested {f}, measured {measured}");
        let reported = g.truth.breast.as_ref().unwrap().glandular_fraction_measured.unwrap();
        assert_eq!(reported, measured);
        assert!(c[LIGAMENT as usize] > 0, "no Cooper's ligaments");
    }
}

/// Glandular tissue is concentrated toward the centre: the inner half of the breast (by
/// normalized radius) is denser than the outer part.
#[test]
fn glandular_tissue_concentrates_centrally() {
    let p = coarse_breast(0.2, 3);
    let ph = Phantom::breast(&p).unwrap();
    let o = ph.outline().unwrap();
    let v = ph.generate().unwrap().volume;
    let (mut inner, mut outer) = ((0u64, 0u64), (0u64, 0u64));
    for k in 0..v.grid.nz {
        for j in 0..v.grid.ny {
            for i in 0..v.grid.nx {
                let l = v.get(i, j, k);
                if l != ADIPOSE && l != GLANDULAR && l != LIGAMENT {
                    continue;
                }
                let c = v.voxel_centre(i, j, k);
                let r2 = (c[0] / o.a_mm).powi(2) + (c[1] / o.b_mm).powi(2);
                let bucket = if r2 < 0.25 { &mut inner } else { &mut outer };
                bucket.1 += 1;
                if l == GLANDULAR {
                    bucket.0 += 1;
                }
            }
        }
    }
    let fi = inner.0 as f64 / inner.1 as f64;
    let fo = outer.0 as f64 / outer.1 as f64;
    assert!(fi > 1.5 * fo, "inner {fi} vs outer {fo}");
}
