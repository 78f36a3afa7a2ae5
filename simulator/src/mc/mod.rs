//! Monte Carlo photon transport for dose and scatter.
//!
//! # Design
//!
//! - **Scene** ([`McScene`]): a world box of air, at most one voxel label volume (the phantom) and any number
//!   of homogeneous boxes (paddle, breast support, a body), which must not overlap. The world's floor can be
//!   a detector plane ([`ScoringPlane`]) that absorbs photons and scores them as primary or scattered.
//! - **Tracking**: Woodcock (delta) tracking inside the voxel volume against the majorant of the materials it
//!   holds; ordinary free-path sampling with surface crossing in the homogeneous regions and the air.
//! - **Physics** ([`McMaterial`]): photoelectric absorption (energy deposited locally; fluorescence of the
//!   light elements of tissue is below 4 keV and deposited on the spot), Compton scattering from
//!   Klein-Nishina with the incoherent scattering function S(x), Rayleigh scattering from the form factor
//!   F^2(x) and the Thomson factor. The recoil electron's energy is deposited locally. Photons below 1 keV
//!   are absorbed.
//! - **Source** ([`McSource`]): an isotropic point focal spot collimated to a rectangle, energies from a
//!   [`crate::Spectrum`] (then photons per mAs are known) or from explicit lines.
//! - **Tallies**: energy deposited per label, per material, inside named scoring boxes, and the glandular
//!   share of it: each deposit of energy `E` in a material with glandular weight fraction `w_g` adds
//!   `E w_g (mu_en/rho)_g / (mu_en/rho)_material` at the photon's energy (1 for pure glandular tissue), so
//!   homogeneous mixtures and voxelised glandular tissue use one rule.
//! - **Statistics and determinism**: the histories are split into a fixed number of batches, each with its
//!   own ChaCha8 stream keyed by (seed, batch); batches run in parallel and are reduced in batch order, so a
//!   result depends on the seed and the batch count, never on the thread count. Every estimate carries the
//!   standard error of the mean from the spread of the batch means.
//!
//! [`tg195`] builds the AAPM TG-195 Case 3 benchmark in this machinery.

mod material;
mod scene;
mod source;
pub mod tg195;
mod transport;

pub use material::{ENERGY_MAX_KEV, ENERGY_MIN_KEV, McMaterial};
pub use scene::{Aabb, McScene, ScoringPlane};
pub use source::{FieldRect, McSource};

use crate::error::PhysicsError;
use transport::BatchTally;

/// Most distinct materials in one scene.
pub const MAX_SLOTS: usize = 16;

/// How many histories to run and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct McConfig {
    /// Photons started at the source.
    pub histories: u64,
    /// Independent batches (at least 2: their spread gives the uncertainty).
    pub batches: u32,
    /// Seed of every batch's stream.
    pub seed: u64,
    /// Offsets the stream numbers, so separate runs with one seed (views of an exam) are independent.
    pub stream_offset: u64,
}

impl Default for McConfig {
    fn default() -> Self {
        Self { histories: 1_000_000, batches: 64, seed: 1, stream_offset: 0 }
    }
}

impl McConfig {
    /// Checks the counts.
    pub fn validate(&self) -> Result<(), PhysicsError> {
        if self.batches < 2 || u64::from(self.batches) > self.histories {
            return Err(PhysicsError::invalid(
                "mc",
                format!(
                    "needs at least 2 batches and no more batches than histories (got {} batches, {} histories)",
                    self.batches, self.histories
                ),
            ));
        }
        if self.stream_offset >= 1 << 31 {
            return Err(PhysicsError::invalid("mc", "stream_offset must be below 2^31"));
        }
        Ok(())
    }
}

/// A Monte Carlo estimate: the mean per history and its standard error, both in the estimate's unit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Mean.
    pub mean: f64,
    /// Standard error of the mean (one sigma), from the batch means.
    pub std_error: f64,
}

impl Estimate {
    /// Standard error relative to the mean (infinite for a zero mean).
    pub fn relative_error(&self) -> f64 {
        if self.mean == 0.0 { f64::INFINITY } else { self.std_error / self.mean.abs() }
    }

    /// Both numbers times `k`.
    pub fn scaled(&self, k: f64) -> Self {
        Self { mean: self.mean * k, std_error: self.std_error * k.abs() }
    }

    /// From per-batch (sum, histories) pairs: the pooled mean and the batch-means standard error.
    fn from_sums(sums: impl Iterator<Item = (f64, u64)> + Clone) -> Self {
        let (total, n): (f64, u64) = sums.clone().fold((0.0, 0), |(s, n), (x, k)| (s + x, n + k));
        let mean = if n > 0 { total / n as f64 } else { 0.0 };
        let b = sums.clone().filter(|(_, k)| *k > 0).count() as f64;
        let var: f64 = sums.filter(|(_, k)| *k > 0).map(|(x, k)| (x / k as f64 - mean).powi(2)).sum::<f64>();
        let std_error = if b > 1.0 { (var / (b * (b - 1.0))).sqrt() } else { f64::INFINITY };
        Self { mean, std_error }
    }
}

/// An energy tally by name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NamedEstimate {
    /// Label number, material or scoring-box name.
    pub name: String,
    /// Energy deposited per history, keV.
    pub kev_per_history: Estimate,
}

/// Photons reaching the detector plane, energy per history per pixel (keV), primary and scattered apart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectorImages {
    /// The plane.
    pub plane: ScoringPlane,
    /// Photons that never interacted.
    pub primary: Vec<f64>,
    /// Photons that scattered at least once (Compton or Rayleigh).
    pub scatter: Vec<f64>,
}

impl DetectorImages {
    /// Scatter-to-primary ratio over the pixel rectangle `[x0, x1) x [y0, y1)` (pixel indices).
    pub fn spr(&self, x: std::ops::Range<usize>, y: std::ops::Range<usize>) -> f64 {
        let nx = self.plane.pixels[0];
        let (mut s, mut p) = (0.0, 0.0);
        for j in y {
            for i in x.clone() {
                s += self.scatter[j * nx + i];
                p += self.primary[j * nx + i];
            }
        }
        s / p
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct McResult {
    /// Histories run.
    pub histories: u64,
    /// Batches.
    pub batches: u32,
    /// Energy deposited in each voxel label that received any, keV per history.
    pub by_label: Vec<(u8, Estimate)>,
    /// Energy deposited in each material of the scene, keV per history.
    pub by_material: Vec<NamedEstimate>,
    /// Energy deposited inside each scoring box, keV per history.
    pub by_box: Vec<NamedEstimate>,
    /// Glandular share of the deposited energy, keV per history.
    pub glandular_kev: Estimate,
    /// Real interactions per history.
    pub interactions_per_history: f64,
    /// Detector images, if the scene has a detector plane.
    pub detector: Option<DetectorImages>,
}

impl McResult {
    fn from_batches(scene: &McScene<'_>, batches: &[BatchTally]) -> Self {
        let est = |f: &dyn Fn(&BatchTally) -> f64| Estimate::from_sums(batches.iter().map(|b| (f(b), b.histories)));
        let histories: u64 = batches.iter().map(|b| b.histories).sum();
        let by_label = (0..256)
            .filter(|&l| batches.iter().any(|b| b.by_label[l] > 0.0))
            .map(|l| (l as u8, est(&|b| b.by_label[l])))
            .collect();
        let by_material = scene
            .materials
            .iter()
            .enumerate()
            .map(|(s, m)| NamedEstimate { name: m.name().to_string(), kev_per_history: est(&|b| b.by_slot[s]) })
            .collect();
        let by_box = scene
            .scoring_boxes
            .iter()
            .enumerate()
            .map(|(i, (name, _))| NamedEstimate { name: name.clone(), kev_per_history: est(&|b| b.by_box[i]) })
            .collect();
        let n = histories.max(1) as f64;
        let detector = scene.detector.map(|plane| {
            let sum = |f: &dyn Fn(&BatchTally) -> &Vec<f64>| -> Vec<f64> {
                let mut out = vec![0.0; plane.pixels[0] * plane.pixels[1]];
                for b in batches {
                    out.iter_mut().zip(f(b)).for_each(|(o, v)| *o += v);
                }
                out.iter_mut().for_each(|o| *o /= n);
                out
            };
            DetectorImages { plane, primary: sum(&|b| &b.primary_image), scatter: sum(&|b| &b.scatter_image) }
        });
        Self {
            histories,
            batches: batches.len() as u32,
            by_label,
            by_material,
            by_box,
            glandular_kev: est(&|b| b.glandular),
            interactions_per_history: batches.iter().map(|b| b.interactions).sum::<u64>() as f64 / n,
            detector,
        }
    }

    /// The estimate for a label (zero if nothing was deposited there).
    pub fn label(&self, label: u8) -> Estimate {
        self.by_label.iter().find(|(l, _)| *l == label).map_or(Estimate { mean: 0.0, std_error: 0.0 }, |x| x.1)
    }

    /// The estimate for a scoring box by name.
    pub fn scoring_box(&self, name: &str) -> Option<Estimate> {
        self.by_box.iter().find(|b| b.name == name).map(|b| b.kev_per_history)
    }
}

/// Runs the transport.
pub fn run(scene: &McScene<'_>, source: &McSource, config: &McConfig) -> Result<McResult, PhysicsError> {
    let batches = transport::run_batches(scene, source, config)?;
    Ok(McResult::from_batches(scene, &batches))
}
