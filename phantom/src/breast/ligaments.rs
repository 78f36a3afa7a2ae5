//! Cooper's ligaments: sheets on the faces of a jittered Voronoi tessellation (see the module docs of
//! [`super`]), with the candidate seeds of every 2 mm block precomputed so a voxel tests only a few.

use rand::Rng;
use rayon::prelude::*;

use super::BreastParams;
use crate::material::{ADIPOSE, LIGAMENT};
use crate::rng::{Purpose, stream};
use tomolab_hal::VoxelGrid;

/// Edge of a candidate block in mm.
const BLOCK_MM: f64 = 2.0;

/// Voronoi-sheet Cooper's ligaments with per-block candidate seeds.
#[derive(Debug, Clone)]
pub(super) struct Ligaments {
    half_thickness_mm: f64,
    /// Ligaments lie outside this normalized radius (see [`BreastParams::ligament_inner_radius`]).
    pub(super) inner_radius: f64,
    seeds: Vec<[f64; 3]>,
    block_mm: f64,
    block_origin: [f64; 3],
    nblocks: [usize; 3],
    offsets: Vec<u32>,
    candidates: Vec<u32>,
    /// Per block: the largest distance between two of its candidate seeds, or 0 if no
    /// compartment face passes through the block.
    max_sep: Vec<f32>,
}

/// Compartment seeds jittered about a cubic lattice that covers the breast with a 2.5-cell margin.
struct SeedLattice {
    cell_mm: f64,
    ncell: [usize; 3],
    origin_mm: [f64; 3],
    /// Seed of cell (i, j, k) at `(k * ncell[1] + j) * ncell[0] + i`.
    seeds: Vec<[f64; 3]>,
}

impl SeedLattice {
    fn new(p: &BreastParams, lo: [f64; 3], hi: [f64; 3]) -> SeedLattice {
        let cell = p.ligament_spacing_mm;
        let mut rng = stream(p.seed, Purpose::Ligaments, 0);
        let ncell: [usize; 3] = std::array::from_fn(|a| ((hi[a] - lo[a]) / cell).ceil() as usize + 5);
        let cell_origin: [f64; 3] = std::array::from_fn(|a| lo[a] - 2.5 * cell);
        let mut seeds = Vec::with_capacity(ncell[0] * ncell[1] * ncell[2]);
        for k in 0..ncell[2] {
            for j in 0..ncell[1] {
                for i in 0..ncell[0] {
                    let idx = [i, j, k];
                    let mut s = [0.0; 3];
                    for a in 0..3 {
                        s[a] = cell_origin[a] + (idx[a] as f64 + 0.5 + rng.random_range(-0.3..0.3)) * cell;
                    }
                    seeds.push(s);
                }
            }
        }
        SeedLattice { cell_mm: cell, ncell, origin_mm: cell_origin, seeds }
    }

    /// Seeds of the 5^3 cells around the one holding `c`, with the squared nearest and farthest
    /// distance of each to the block `[bmin, bmax]`, into `near`.
    fn near_block(&self, c: [f64; 3], bmin: [f64; 3], bmax: [f64; 3], near: &mut Vec<(usize, f64, f64)>) {
        let ncell = self.ncell;
        let ccell: [i64; 3] = std::array::from_fn(|a| ((c[a] - self.origin_mm[a]) / self.cell_mm).floor() as i64);
        near.clear();
        for dk in -2..=2i64 {
            for dj in -2..=2i64 {
                for di in -2..=2i64 {
                    let ci = [ccell[0] + di, ccell[1] + dj, ccell[2] + dk];
                    if (0..3).any(|a| ci[a] < 0 || ci[a] >= ncell[a] as i64) {
                        continue;
                    }
                    let si = (ci[2] as usize * ncell[1] + ci[1] as usize) * ncell[0] + ci[0] as usize;
                    let s = self.seeds[si];
                    let (mut dmin, mut dmax) = (0.0, 0.0);
                    for a in 0..3 {
                        let gap = (bmin[a] - s[a]).max(s[a] - bmax[a]).max(0.0);
                        let far = (s[a] - bmin[a]).abs().max((s[a] - bmax[a]).abs());
                        dmin += gap * gap;
                        dmax += far * far;
                    }
                    near.push((si, dmin, dmax));
                }
            }
        }
    }
}

/// Candidate seeds of one block (appended to `candidates`) and its `max_sep` entry.
fn block_candidates(
    seeds: &[[f64; 3]],
    near: &[(usize, f64, f64)],
    c: [f64; 3],
    half: f64,
    half_diag: f64,
    candidates: &mut Vec<u32>,
) -> f32 {
    // The two nearest seeds of any point of the block are among those whose
    // nearest distance to the block is at most the second-smallest farthest one.
    let (mut m1, mut m2) = (f64::INFINITY, f64::INFINITY);
    for n in near {
        if n.2 < m1 {
            m2 = m1;
            m1 = n.2;
        } else if n.2 < m2 {
            m2 = n.2;
        }
    }
    let first = candidates.len();
    candidates.extend(near.iter().filter(|n| n.1 <= m2).map(|n| n.0 as u32));
    let mine = &candidates[first..];
    let mut sep = 0.0f64;
    let mut near_face = false;
    for (n, &c1) in mine.iter().enumerate() {
        for &c2 in &mine[n + 1..] {
            let (s1, s2) = (seeds[c1 as usize], seeds[c2 as usize]);
            let d: [f64; 3] = std::array::from_fn(|a| s2[a] - s1[a]);
            let len = (0..3).map(|a| d[a] * d[a]).sum::<f64>().sqrt();
            sep = sep.max(len);
            // Distance from the block centre to the bisector plane of s1, s2.
            let off = (0..3).map(|a| (c[a] - 0.5 * (s1[a] + s2[a])) * d[a]).sum::<f64>().abs() / len;
            near_face |= off <= half + half_diag;
        }
    }
    // 0 marks a block no sheet passes through.
    if near_face { sep as f32 + 1e-3 } else { 0.0 }
}

impl Ligaments {
    /// The ligaments of `p` over the box `[lo, hi]` (mm).
    pub(super) fn new(p: &BreastParams, lo: [f64; 3], hi: [f64; 3]) -> Ligaments {
        let lattice = SeedLattice::new(p, lo, hi);
        let block = BLOCK_MM;
        let half = 0.5 * p.ligament_thickness_mm;
        let half_diag = 0.5 * block * 3f64.sqrt();
        let nblocks: [usize; 3] = std::array::from_fn(|a| ((hi[a] - lo[a]) / block).ceil() as usize + 1);
        // Per z layer of blocks, in parallel: (per-block candidate counts, candidates, max_sep).
        let layers: Vec<(Vec<u32>, Vec<u32>, Vec<f32>)> = (0..nblocks[2])
            .into_par_iter()
            .map(|bk| {
                let mut counts = Vec::new();
                let mut candidates = Vec::new();
                let mut max_sep = Vec::new();
                let mut near: Vec<(usize, f64, f64)> = Vec::new();
                for bj in 0..nblocks[1] {
                    for bi in 0..nblocks[0] {
                        let bidx = [bi, bj, bk];
                        let bmin: [f64; 3] = std::array::from_fn(|a| lo[a] + bidx[a] as f64 * block);
                        let bmax: [f64; 3] = std::array::from_fn(|a| bmin[a] + block);
                        let c: [f64; 3] = std::array::from_fn(|a| 0.5 * (bmin[a] + bmax[a]));
                        lattice.near_block(c, bmin, bmax, &mut near);
                        let before = candidates.len();
                        max_sep.push(block_candidates(&lattice.seeds, &near, c, half, half_diag, &mut candidates));
                        counts.push((candidates.len() - before) as u32);
                    }
                }
                (counts, candidates, max_sep)
            })
            .collect();
        let mut offsets = vec![0u32];
        let mut candidates = Vec::new();
        let mut max_sep = Vec::new();
        for (counts, cands, seps) in layers {
            for n in counts {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last + n);
            }
            candidates.extend(cands);
            max_sep.extend(seps);
        }
        Ligaments {
            half_thickness_mm: half,
            inner_radius: p.ligament_inner_radius,
            seeds: lattice.seeds,
            block_mm: block,
            block_origin: lo,
            nblocks,
            offsets,
            candidates,
            max_sep,
        }
    }

    /// Turns the adipose voxels of row (j, k) between `first` and `last` that lie on a
    /// compartment face into ligament. Works block segment by block segment: within one 2 mm
    /// block the candidate seeds are fixed, so each voxel costs a few multiply-adds per candidate.
    pub(super) fn mark_row(
        &self,
        grid: &VoxelGrid,
        j: usize,
        k: usize,
        row: &mut [u8],
        span: (usize, usize),
        scratch: &mut RowScratch,
    ) {
        let y = grid.centre_along(1, j);
        let z = grid.centre_along(2, k);
        let by = ((y - self.block_origin[1]) / self.block_mm).floor();
        let bz = ((z - self.block_origin[2]) / self.block_mm).floor();
        if by < 0.0 || bz < 0.0 || by >= self.nblocks[1] as f64 || bz >= self.nblocks[2] as f64 {
            return;
        }
        let (by, bz) = (by as usize, bz as usize);
        let v = grid.cubic_voxel_mm();
        let ox = grid.min_corner_mm[0];
        let (first, last) = span;
        let mut i = first;
        while i <= last {
            let x = ox + (i as f64 + 0.5) * v;
            let bxf = ((x - self.block_origin[0]) / self.block_mm).floor();
            // The last voxel of this block along x.
            let x_end = self.block_origin[0] + (bxf + 1.0) * self.block_mm;
            let i_end = (((x_end - ox) / v - 0.5).ceil() as usize).saturating_sub(1).clamp(i, last);
            if bxf < 0.0 || bxf >= self.nblocks[0] as f64 {
                i = i_end + 1;
                continue;
            }
            let bi = (bz * self.nblocks[1] + by) * self.nblocks[0] + bxf as usize;
            if self.max_sep[bi] == 0.0 {
                i = i_end + 1;
                continue;
            }
            let cands = &self.candidates[self.offsets[bi] as usize..self.offsets[bi + 1] as usize];
            let n = cands.len();
            scratch.sx.clear();
            scratch.e.clear();
            scratch.sep2h.clear();
            for &c in cands {
                let s = self.seeds[c as usize];
                scratch.sx.push(s[0]);
                scratch.e.push((y - s[1]).powi(2) + (z - s[2]).powi(2));
            }
            for &c1 in cands {
                for &c2 in cands {
                    let (s1, s2) = (self.seeds[c1 as usize], self.seeds[c2 as usize]);
                    let sep = (0..3).map(|a| (s1[a] - s2[a]).powi(2)).sum::<f64>().sqrt();
                    scratch.sep2h.push(2.0 * self.half_thickness_mm * sep);
                }
            }
            for (ii, l) in row.iter_mut().enumerate().take(i_end + 1).skip(i) {
                if *l != ADIPOSE {
                    continue;
                }
                let x = ox + (ii as f64 + 0.5) * v;
                scratch.d.clear();
                scratch.d.extend(scratch.sx.iter().zip(&scratch.e).map(|(&sx, &e)| (x - sx) * (x - sx) + e));
                let (m, dm) = scratch
                    .d
                    .iter()
                    .enumerate()
                    .fold((0, f64::INFINITY), |b, (c, &d)| if d < b.1 { (c, d) } else { b });
                let on = (0..n).any(|c| c != m && scratch.d[c] - dm <= scratch.sep2h[m * n + c]);
                if on {
                    *l = LIGAMENT;
                }
            }
            i = i_end + 1;
        }
    }
}

/// Per-thread scratch of [`Ligaments::mark_row`].
#[derive(Debug, Default)]
pub(super) struct RowScratch {
    sx: Vec<f64>,
    e: Vec<f64>,
    d: Vec<f64>,
    sep2h: Vec<f64>,
}
