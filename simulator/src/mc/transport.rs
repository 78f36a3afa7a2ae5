//! The photon history loop: source sampling, Woodcock tracking in the voxels, surface-to-surface tracking in
//! homogeneous regions, interactions and tallies.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::material::{ENERGY_MIN_KEV, grid_position};
use super::scene::{MAX_MASKS, McScene, Region};
use super::source::McSource;
use super::{MAX_SLOTS, McConfig};
use crate::error::PhysicsError;

/// Step past a boundary so the next point is located on its far side, mm.
const NUDGE_MM: f64 = 1e-7;

/// Sums one batch collects (energies in keV).
#[derive(Debug, Clone)]
pub(crate) struct BatchTally {
    pub(crate) histories: u64,
    pub(crate) by_label: Vec<f64>,
    pub(crate) by_slot: [f64; MAX_SLOTS],
    pub(crate) by_box: Vec<f64>,
    pub(crate) glandular: f64,
    pub(crate) primary_image: Vec<f64>,
    pub(crate) scatter_image: Vec<f64>,
    pub(crate) interactions: u64,
}

impl BatchTally {
    fn new(scene: &McScene<'_>) -> Self {
        let pixels = scene.detector.map_or(0, |d| d.pixels[0] * d.pixels[1]);
        Self {
            histories: 0,
            by_label: vec![0.0; 256],
            by_slot: [0.0; MAX_SLOTS],
            by_box: vec![0.0; scene.scoring_boxes.len()],
            glandular: 0.0,
            primary_image: vec![0.0; pixels],
            scatter_image: vec![0.0; pixels],
            interactions: 0,
        }
    }
}

/// Per-photon cache of the coefficients at its current energy.
struct Coefficients {
    grid: (usize, f64),
    total: [f64; MAX_SLOTS],
    /// Woodcock majorant of each block class.
    majorant: [f64; MAX_MASKS],
}

impl Coefficients {
    fn at(scene: &McScene<'_>, energy_kev: f64) -> Self {
        let grid = grid_position(energy_kev);
        let mut total = [0.0; MAX_SLOTS];
        for (t, m) in total.iter_mut().zip(&scene.materials) {
            *t = m.mu_total_at(grid);
        }
        let mut majorant = [0.0; MAX_MASKS];
        if let Some(v) = &scene.voxels {
            for (m, &mask) in majorant.iter_mut().zip(&v.masks) {
                *m = (0..MAX_SLOTS).filter(|s| mask & (1 << s) != 0).map(|s| total[s]).fold(0.0, f64::max);
            }
        }
        Self { grid, total, majorant }
    }
}

/// Turns `dir` by polar angle `acos(cos)` and azimuth `phi`.
#[inline]
fn rotate(dir: &mut [f64; 3], cos: f64, phi: f64) {
    let sin = (1.0 - cos * cos).max(0.0).sqrt();
    let (sp, cp) = phi.sin_cos();
    let [u, v, w] = *dir;
    let new = if w.abs() > 0.999_999 {
        [sin * cp, sin * sp, cos * w.signum()]
    } else {
        let d = (1.0 - w * w).sqrt();
        [sin * (u * w * cp - v * sp) / d + u * cos, sin * (v * w * cp + u * sp) / d + v * cos, -sin * cp * d + w * cos]
    };
    let n = (new[0] * new[0] + new[1] * new[1] + new[2] * new[2]).sqrt();
    *dir = new.map(|c| c / n);
}

struct Transport<'s, 'a> {
    scene: &'s McScene<'a>,
    source: &'s McSource,
}

impl Transport<'_, '_> {
    fn deposit(
        &self,
        tally: &mut BatchTally,
        pos: &[f64; 3],
        slot: usize,
        label: Option<u8>,
        kev: f64,
        grid: (usize, f64),
    ) {
        tally.by_slot[slot] += kev;
        if let Some(l) = label {
            tally.by_label[l as usize] += kev;
        }
        tally.glandular += kev * self.scene.materials[slot].glandular_share_at(grid);
        for (acc, (_, b)) in tally.by_box.iter_mut().zip(&self.scene.scoring_boxes) {
            if b.contains(pos) {
                *acc += kev;
            }
        }
    }

    fn score_detector(&self, tally: &mut BatchTally, pos: &[f64; 3], dir: &[f64; 3], kev: f64, scattered: bool) {
        let Some(plane) = &self.scene.detector else { return };
        if dir[2] >= 0.0 || pos[2] > plane.z_mm + 1e-3 {
            return;
        }
        let t = (plane.z_mm - pos[2]) / dir[2];
        let (x, y) = (pos[0] + t * dir[0], pos[1] + t * dir[1]);
        let (fx, fy) = ((x - plane.min_xy_mm[0]) / plane.pixel_mm, (y - plane.min_xy_mm[1]) / plane.pixel_mm);
        if fx < 0.0 || fy < 0.0 || fx >= plane.pixels[0] as f64 || fy >= plane.pixels[1] as f64 {
            return;
        }
        let idx = fy as usize * plane.pixels[0] + fx as usize;
        if scattered {
            tally.scatter_image[idx] += kev;
        } else {
            tally.primary_image[idx] += kev;
        }
    }

    /// Follows one photon from the source until it is absorbed or leaves the world.
    fn history(&self, rng: &mut ChaCha8Rng, tally: &mut BatchTally) {
        let scene = self.scene;
        let mut energy = self.source.sample_energy(rng.random());
        let (mut pos, mut dir) = self.source.sample_ray(rng);
        let mut xs = Coefficients::at(scene, energy);
        let mut scattered = false;
        loop {
            // Where the next real or virtual collision happens, and in which slot (label) it would be.
            let (slot, label, distance) = match scene.locate(&pos) {
                Region::Outside => {
                    self.score_detector(tally, &pos, &dir, energy, scattered);
                    return;
                }
                Region::Voxels => {
                    let Some(v) = &scene.voxels else { return };
                    let (block, bounds) = v.block_at(&pos);
                    let majorant = xs.majorant[v.block_mask[block] as usize];
                    let exit = bounds.exit_distance(&pos, &dir);
                    let s = -(1.0 - rng.random::<f64>()).ln() / majorant;
                    if s >= exit {
                        advance(&mut pos, &dir, exit + NUDGE_MM);
                        continue;
                    }
                    advance(&mut pos, &dir, s);
                    let label = v.label_at(&pos);
                    let slot = v.slot_of_label[label as usize] as usize;
                    // Woodcock: a real collision with probability mu / majorant.
                    if rng.random::<f64>() * majorant >= xs.total[slot] {
                        continue;
                    }
                    (slot, Some(label), 0.0)
                }
                Region::Solid(i) => {
                    let b = &scene.boxes[i];
                    (b.slot as usize, None, b.bounds.exit_distance(&pos, &dir))
                }
                Region::World => (scene.world_slot as usize, None, scene.world_exit_distance(&pos, &dir)),
            };
            if label.is_none() {
                let s = -(1.0 - rng.random::<f64>()).ln() / xs.total[slot];
                if s >= distance {
                    advance(&mut pos, &dir, distance + NUDGE_MM);
                    continue;
                }
                advance(&mut pos, &dir, s);
            }
            tally.interactions += 1;
            let material = &scene.materials[slot];
            let [photo, incoherent, _, total] = material.mu_at(xs.grid);
            let r = rng.random::<f64>() * total;
            if r < photo {
                self.deposit(tally, &pos, slot, label, energy, xs.grid);
                return;
            }
            scattered = true;
            let phi = std::f64::consts::TAU * rng.random::<f64>();
            if r < photo + incoherent {
                let (cos, e_out) = material.sample_compton(energy, || rng.random());
                self.deposit(tally, &pos, slot, label, energy - e_out, xs.grid);
                rotate(&mut dir, cos, phi);
                if e_out < ENERGY_MIN_KEV {
                    self.deposit(tally, &pos, slot, label, e_out, xs.grid);
                    return;
                }
                energy = e_out;
                xs = Coefficients::at(scene, energy);
            } else {
                let cos = material.sample_rayleigh_cos(energy, || rng.random());
                rotate(&mut dir, cos, phi);
            }
        }
    }
}

#[inline]
fn advance(pos: &mut [f64; 3], dir: &[f64; 3], s: f64) {
    for a in 0..3 {
        pos[a] += s * dir[a];
    }
}

/// Runs `config.histories` photons in `config.batches` independent batches (one ChaCha8 stream each, keyed by
/// the seed and the batch index), in parallel; the batch tallies are returned in batch order.
pub(crate) fn run_batches(
    scene: &McScene<'_>,
    source: &McSource,
    config: &McConfig,
) -> Result<Vec<BatchTally>, PhysicsError> {
    config.validate()?;
    source.validate(scene)?;
    let transport = Transport { scene, source };
    let batches = config.batches as u64;
    Ok((0..batches)
        .into_par_iter()
        .map(|b| {
            let n = config.histories / batches + u64::from(b < config.histories % batches);
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(b + (config.stream_offset << 32));
            let mut tally = BatchTally::new(scene);
            for _ in 0..n {
                transport.history(&mut rng, &mut tally);
            }
            tally.histories = n;
            tally
        })
        .collect())
}
