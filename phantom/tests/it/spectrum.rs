//! The texture's power-law exponent, measured in projection as the issue asks.

use tomolab_phantom::{BreastParams, Phantom};

use super::common::{dense_projection, fit_beta};

/// Burgess, Jacobson & Judy (Med. Phys. 28:419, 2001) found mammographic power spectra follow
/// `1/f^beta` with beta about 3 at roughly 0.1-1 cycles/mm; we fit that band on the summed
/// projection of dense (glandular + ligament) tissue over a 56 mm square in the uniform-thickness
/// centre of the default breast (voxels coarsened to 0.25 mm to keep the test fast), averaged over
/// two seeds.
#[test]
fn projected_texture_has_power_law_exponent_near_three() {
    let mut betas = Vec::new();
    for seed in 0..2 {
        let p = BreastParams { voxel_mm: 0.25, seed, ..BreastParams::default() };
        let g = Phantom::breast(&p).unwrap().generate().unwrap();
        let v = &g.volume;
        let proj = dense_projection(v);
        let side = (56.0 / v.grid.cubic_voxel_mm()) as usize;
        let [i0, j0, _] = v.world_to_voxel([-28.0, 4.0, v.grid.min_corner_mm[2] + 1.0]).unwrap();
        let beta = fit_beta(&proj, v.grid.nx, (i0, j0, side), v.grid.cubic_voxel_mm(), (0.1, 1.0));
        println!("seed {seed}: beta = {beta:.3}");
        betas.push(beta);
    }
    let mean = betas.iter().sum::<f64>() / betas.len() as f64;
    println!("mean beta = {mean:.3}");
    assert!((2.5..=3.5).contains(&mean), "fitted beta {mean} (per seed {betas:?}) outside 2.5..3.5");
}
