//! The projector pair is matched: <A x, y> = <x, A^T y> to float precision, and the two kernels agree.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tomolab_hal::DetectorMotion;
use tomolab_recon::{KernelPath, ProjectorPair, VoxelGrid, VoxelProjector};

use super::{arc_poses, detector};

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn forward_and_back_are_adjoint(
        sid in 550.0f64..750.0,
        axis in 0.0f64..60.0,
        half_arc in 2.0f64..30.0,
        views in 2usize..9,
        rotating in any::<bool>(),
        general in any::<bool>(),
        pitch in 0.4f64..1.0,
        seed in any::<u64>(),
    ) {
        let det = detector(36, 28, pitch);
        let motion = if rotating { DetectorMotion::RotatesWithTube } else { DetectorMotion::Stationary };
        let poses = arc_poses(sid, axis, det, motion, -half_arc, half_arc, views);
        let vol = VoxelGrid::from_first_centre([30, 22, 7], [pitch * 1.1, pitch * 0.9, 3.0], [-15.0 * pitch, 2.0, 4.0]);
        let path = if general { KernelPath::General } else { KernelPath::Auto };
        let proj = VoxelProjector::new(vol, det, &poses, path).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = random(vol.len(), &mut rng);
        let y = random(views * det.pixel_count(), &mut rng);
        let all: Vec<usize> = (0..views).collect();
        let mut ax = vec![0.0; y.len()];
        proj.forward(&x, &all, &mut ax).unwrap();
        let mut aty = vec![0.0; x.len()];
        proj.back(&y, &all, &mut aty).unwrap();
        let (lhs, rhs) = (dot(&ax, &y), dot(&x, &aty));
        prop_assert!(lhs > 0.0);
        prop_assert!((lhs - rhs).abs() <= 1e-4 * lhs.abs(), "<Ax,y> = {lhs}, <x,A^T y> = {rhs}");
    }
}

/// Fast separable kernel and general kernel give the same forward and back projections on a DBT geometry.
#[test]
fn fast_and_general_kernels_agree() {
    let det = detector(96, 64, 0.5);
    let poses = arc_poses(650.0, 50.0, det, DetectorMotion::Stationary, -25.0, 25.0, 9);
    let vol = VoxelGrid::from_first_centre([90, 60, 12], [0.48, 0.48, 3.0], [-21.4, 1.0, 1.5]);
    let fast = VoxelProjector::new(vol, det, &poses, KernelPath::Fast).unwrap();
    let general = VoxelProjector::new(vol, det, &poses, KernelPath::General).unwrap();
    assert!(fast.is_fast() && !general.is_fast());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let y = random(poses.len() * det.pixel_count(), &mut rng);
    let x = random(vol.len(), &mut rng);
    let all: Vec<usize> = (0..poses.len()).collect();
    let compare = |a: &[f32], b: &[f32], what: &str| {
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let err = a.iter().zip(b).fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(err <= 1e-4 * scale, "{what}: max difference {err} vs scale {scale}");
    };
    let (mut bf, mut bg) = (vec![0.0; vol.len()], vec![0.0; vol.len()]);
    fast.back(&y, &all, &mut bf).unwrap();
    general.back(&y, &all, &mut bg).unwrap();
    compare(&bf, &bg, "backprojection");
    let (mut ff, mut fg) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    fast.forward(&x, &all, &mut ff).unwrap();
    general.forward(&x, &all, &mut fg).unwrap();
    compare(&ff, &fg, "forward projection");
    // A rotating detector cannot use the fast kernel.
    let tilted = arc_poses(650.0, 50.0, det, DetectorMotion::RotatesWithTube, -25.0, 25.0, 9);
    assert!(VoxelProjector::new(vol, det, &tilted, KernelPath::Fast).is_err());
    assert!(!VoxelProjector::new(vol, det, &tilted, KernelPath::Auto).unwrap().is_fast());
}

/// The forward projector approximates line integrals: a uniform slab projects to mu T / cos(theta).
#[test]
fn forward_projection_of_a_slab_is_its_line_integral() {
    let det = detector(120, 80, 0.5);
    let poses = arc_poses(650.0, 50.0, det, DetectorMotion::Stationary, -25.0, 25.0, 3);
    let vol = VoxelGrid::from_first_centre([200, 140, 20], [0.5, 0.5, 2.0], [-49.75, -15.0, 1.0]);
    let proj = VoxelProjector::new(vol, det, &poses, KernelPath::Auto).unwrap();
    let x = vec![0.01f32; vol.len()];
    let mut p = vec![0.0; poses.len() * det.pixel_count()];
    proj.forward(&x, &[0, 1, 2], &mut p).unwrap();
    for (k, pose) in poses.iter().enumerate() {
        // Mean over a 20 x 20 pixel patch (single pixels show the moire of the splatting, about 2%).
        let (mut got, mut expected) = (0.0, 0.0);
        for r in 30..50 {
            for c in 50..70 {
                let pix = pose.pixel_position(&det, c as f64, r as f64);
                let d = (pix - pose.source_mm).normalize();
                expected += 0.01 * 40.0 / d.z.abs();
                got += f64::from(p[k * det.pixel_count() + r * det.cols + c]);
            }
        }
        assert!((got - expected).abs() < 0.005 * expected, "view {k}: {got} vs {expected}");
    }
}
