//! The [`Phantom`] type: a prepared phantom that can be voxelized in memory or streamed slab by slab.

use rayon::prelude::*;

use crate::breast::{self, BINS, BreastParams, BreastScene, Outline};
use crate::error::{PhantomError, Result};
use crate::material::MaterialTable;
use crate::qa::{self, AccreditationParams, BeadParams, QaScene, SlabParams};
use crate::truth::GroundTruth;
use tomolab_hal::VoxelGrid;

use crate::volume::LabelVolume;

#[derive(Debug, Clone)]
enum Scene {
    Breast(Box<BreastScene>),
    Qa(QaScene),
}

/// A phantom ready to be voxelized: grid, material table and ground truth are known, the
/// texture, ligaments and objects are built; voxelization is a pure function of the slice index.
///
/// Preparation does the random draws (texture noise, lesion shapes and positions) from streams
/// keyed by the seed and by what is drawn; voxelization is parallel over z slices and draws
/// nothing. The volume is therefore the same, byte for byte, on any number of threads.
#[derive(Debug, Clone)]
pub struct Phantom {
    scene: Scene,
    materials: MaterialTable,
    truth: GroundTruth,
}

/// A voxelized phantom with its completed ground truth (voxel counts, measured glandular fraction).
#[derive(Debug, Clone)]
pub struct Generated {
    /// The label volume.
    pub volume: LabelVolume,
    /// Ground truth with voxel counts filled in.
    pub truth: GroundTruth,
}

fn add_hist(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

fn add_counts(mut a: [u64; 256], b: [u64; 256]) -> [u64; 256] {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

fn count(slice: &[u8], counts: &mut [u64; 256]) {
    for &l in slice {
        counts[l as usize] += 1;
    }
}

impl Phantom {
    /// Prepares an anthropomorphic compressed breast.
    pub fn breast(params: &BreastParams) -> Result<Phantom> {
        let (scene, materials, truth) = breast::prepare(params)?;
        Ok(Phantom { scene: Scene::Breast(Box::new(scene)), materials, truth })
    }

    /// Prepares a uniform slab.
    pub fn slab(params: &SlabParams) -> Result<Phantom> {
        let (scene, materials, truth) = qa::prepare_slab(params)?;
        Ok(Phantom { scene: Scene::Qa(scene), materials, truth })
    }

    /// Prepares a bead phantom.
    pub fn beads(params: &BeadParams) -> Result<Phantom> {
        let (scene, materials, truth) = qa::prepare_beads(params)?;
        Ok(Phantom { scene: Scene::Qa(scene), materials, truth })
    }

    /// Prepares an accreditation-style phantom.
    pub fn accreditation(params: &AccreditationParams) -> Result<Phantom> {
        let (scene, materials, truth) = qa::prepare_accreditation(params)?;
        Ok(Phantom { scene: Scene::Qa(scene), materials, truth })
    }

    /// The voxel grid.
    pub fn grid(&self) -> VoxelGrid {
        match &self.scene {
            Scene::Breast(s) => s.grid,
            Scene::Qa(s) => s.grid,
        }
    }

    /// The label-to-material table (every label the volume can contain).
    pub fn materials(&self) -> &MaterialTable {
        &self.materials
    }

    /// The ground truth as prepared (voxel counts not yet known).
    pub fn ground_truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// The breast surface, for breast phantoms.
    pub fn outline(&self) -> Option<Outline> {
        match &self.scene {
            Scene::Breast(s) => Some(s.outline),
            Scene::Qa(_) => None,
        }
    }

    /// Voxelizes the whole volume in memory, in parallel over z slices.
    pub fn generate(&self) -> Result<Generated> {
        let grid = self.grid();
        let mut volume = LabelVolume::air(grid)?;
        let n = grid.slice_len();
        let counts = match &self.scene {
            Scene::Breast(s) => {
                let hist = volume
                    .labels
                    .par_chunks_mut(n)
                    .enumerate()
                    .fold(
                        || vec![0u64; BINS],
                        |mut h, (k, slice)| {
                            s.stage1(k, slice, Some(&mut h));
                            h
                        },
                    )
                    .reduce(|| vec![0u64; BINS], add_hist);
                let t = s.threshold(&hist);
                volume
                    .labels
                    .par_chunks_mut(n)
                    .enumerate()
                    .fold(
                        || [0u64; 256],
                        |mut c, (k, slice)| {
                            s.stage2(k, slice, t);
                            count(slice, &mut c);
                            c
                        },
                    )
                    .reduce(|| [0u64; 256], add_counts)
            }
            Scene::Qa(s) => volume
                .labels
                .par_chunks_mut(n)
                .enumerate()
                .fold(
                    || [0u64; 256],
                    |mut c, (k, slice)| {
                        s.fill_slice(k, slice);
                        count(slice, &mut c);
                        c
                    },
                )
                .reduce(|| [0u64; 256], add_counts),
        };
        let mut truth = self.truth.clone();
        truth.record_counts(&counts);
        Ok(Generated { volume, truth })
    }

    /// Voxelizes slab by slab without holding the volume: `sink(first_slice, labels)` receives
    /// `slices_per_slab` z slices at a time (fewer at the top), in order. Each slab is generated
    /// in parallel over its slices. A breast needs one extra histogram pass over all slices first.
    /// Returns the ground truth with voxel counts.
    pub fn stream<F>(&self, slices_per_slab: usize, mut sink: F) -> Result<GroundTruth>
    where
        F: FnMut(usize, &[u8]) -> std::io::Result<()>,
    {
        let grid = self.grid();
        crate::volume::checked_len(&grid)?;
        let n = grid.slice_len();
        let per = slices_per_slab.max(1);
        let threshold = match &self.scene {
            Scene::Breast(s) => {
                let hist = (0..grid.nz)
                    .into_par_iter()
                    .fold(
                        || (vec![0u64; BINS], vec![0u8; n]),
                        |(mut h, mut buf), k| {
                            s.stage1(k, &mut buf, Some(&mut h));
                            (h, buf)
                        },
                    )
                    .map(|(h, _)| h)
                    .reduce(|| vec![0u64; BINS], add_hist);
                s.threshold(&hist)
            }
            Scene::Qa(_) => 0,
        };
        let mut buf = vec![0u8; per * n];
        let mut counts = [0u64; 256];
        let mut k0 = 0;
        while k0 < grid.nz {
            let slices = per.min(grid.nz - k0);
            let slab = &mut buf[..slices * n];
            let c = slab
                .par_chunks_mut(n)
                .enumerate()
                .fold(
                    || [0u64; 256],
                    |mut c, (dk, slice)| {
                        let k = k0 + dk;
                        match &self.scene {
                            Scene::Breast(s) => {
                                s.stage1(k, slice, None);
                                s.stage2(k, slice, threshold);
                            }
                            Scene::Qa(s) => s.fill_slice(k, slice),
                        }
                        count(slice, &mut c);
                        c
                    },
                )
                .reduce(|| [0u64; 256], add_counts);
            counts = add_counts(counts, c);
            sink(k0, slab).map_err(|source| PhantomError::Sink { slice: k0, source })?;
            k0 += slices;
        }
        let mut truth = self.truth.clone();
        truth.record_counts(&counts);
        Ok(truth)
    }
}
