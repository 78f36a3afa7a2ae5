//! The polyenergetic ray-driven projector.
//!
//! # Traversal
//!
//! Each ray, from a (sub-)focal spot to a point of a detector pixel, is clipped to the volume's bounding box
//! and walked voxel by voxel with the Amanatides-Woo incremental algorithm (the incremental form of
//! Siddon's exact method): at every step the ray leaves the current voxel through the nearest of its three
//! next faces, and the length of the segment inside the voxel is added to that voxel's material slot. The
//! segments are exact intersections of a straight line with the voxel grid, so path lengths are exact up to
//! floating-point rounding (about 1e-12 mm per segment); no sampling step is involved. Per ray the
//! accumulator is a fixed `[f64; MAX_MATERIALS]` on the stack: tracing allocates nothing.
//!
//! # Polyenergetic Beer-Lambert
//!
//! The spectrum is cut into energy groups (by default the 0.5 keV bins of the tables). For each group `g`
//! the projector precomputes the photon fluence per mAs at 1000 mm, each material's linear attenuation
//! coefficient at the group's detected-energy-weighted mean energy, and the detector's response. A pixel's
//! expected absorbed energy is then
//!
//! ```text
//! E_abs = mAs * (1000 mm / d)^2 * A_pix * cos(theta) * sum_g N_g * R_g(cos theta) * exp(-sum_m mu_gm L_m)
//! ```
//!
//! with `d` the focal-spot-to-pixel distance, `theta` the angle of incidence on the detector, `L_m` the path
//! length through material `m` and `R_g` the mean energy absorbed in the conversion layer per incident photon.
//!
//! # Detector energy response (approximation)
//!
//! The conversion layer (a-Se or CsI, thickness `t`) is energy-integrating. A photon of energy `E` incident at
//! angle `theta` interacts with probability `1 - exp(-mu(E) t / cos theta)` and deposits on average
//! `E * mu_en(E) / mu(E)`: the `mu_en/mu` factor removes the energy carried away by escaping fluorescence
//! and scattered photons as if they all escaped (NIST's definition of `mu_en`). Re-absorption of K
//! fluorescence and of scatter inside the layer, and the layer's own depth-dependent gain, are neglected;
//! for a-Se at mammographic energies this overestimates escape slightly (K fluorescence of Se at 11.2 keV is
//! partly re-absorbed in 200 um). `R_g` is averaged over the 0.01 keV sub-samples of the group, so the Se K
//! edge (12.66 keV) and Cs/I K edges are resolved, and tabulated against `cos theta` (interpolated linearly).
//!
//! The second moment `sum N_g R2_g ...` with `R2_g` the mean squared deposited energy is accumulated too: it
//! gives each pixel's effective quantum energy (`E2 / E1`), which the detector model uses for quantum noise.

use rayon::prelude::*;
use tomolab_hal::{DetectorGeometry, DetectorMaterial, Vec3, ViewPose};

use crate::attenuation::{self, MaterialData};
use crate::error::{SimError, check_at_least};
use crate::spectrum::{SUB_SAMPLES, Spectrum, TABLE_DISTANCE_MM};

/// Most distinct materials one projector handles (slot 0 is always air).
pub const MAX_MATERIALS: usize = 16;

/// Entries of the detector-response table over `cos theta`.
const COS_TABLE: usize = 65;
/// Smallest angle cosine the response table covers (theta up to about 72.5 deg).
const COS_MIN: f64 = 0.3;

/// A read-only view of a `u8` label volume (the layout of `tomolab_phantom::LabelVolume`).
#[derive(Debug, Clone, Copy)]
pub struct VolumeView<'a> {
    /// Voxels along x.
    pub nx: usize,
    /// Voxels along y.
    pub ny: usize,
    /// Voxels along z.
    pub nz: usize,
    /// Edge of a cubic voxel, mm.
    pub voxel_mm: f64,
    /// Minimum corner of voxel (0, 0, 0), mm.
    pub origin_mm: [f64; 3],
    /// Labels, index `(k * ny + j) * nx + i`.
    pub labels: &'a [u8],
}

impl<'a> VolumeView<'a> {
    /// Checks sizes and spacing.
    pub fn validate(&self) -> Result<(), SimError> {
        let n = self.nx.checked_mul(self.ny).and_then(|v| v.checked_mul(self.nz));
        if n != Some(self.labels.len()) || self.labels.is_empty() {
            return Err(SimError::invalid("volume.labels", "length must be nx * ny * nz > 0"));
        }
        check_at_least("volume.voxel_mm", self.voxel_mm, 0.0, true)?;
        if !self.origin_mm.iter().all(|v| v.is_finite()) {
            return Err(SimError::invalid("volume.origin_mm", "must be finite"));
        }
        Ok(())
    }

    /// A view of a phantom label volume.
    pub fn of(volume: &'a tomolab_phantom::LabelVolume) -> Self {
        Self {
            nx: volume.nx,
            ny: volume.ny,
            nz: volume.nz,
            voxel_mm: volume.voxel_mm,
            origin_mm: volume.origin_mm,
            labels: &volume.labels,
        }
    }
}

/// Maps each of the 256 labels to a material slot; slot 0 is air.
#[derive(Debug, Clone)]
pub struct MaterialMap {
    slot_of_label: [u8; 256],
    materials: Vec<&'static MaterialData>,
}

impl MaterialMap {
    /// Builds the map from `(label, material name)` pairs; labels not listed are air.
    pub fn from_names<'n>(entries: impl IntoIterator<Item = (u8, &'n str)>) -> Result<Self, SimError> {
        let air = attenuation::material("air")?;
        let mut materials = vec![air];
        let mut slot_of_label = [0u8; 256];
        for (label, name) in entries {
            let m = attenuation::material(name)?;
            let slot = match materials.iter().position(|x| x.name() == m.name()) {
                Some(s) => s,
                None => {
                    if materials.len() == MAX_MATERIALS {
                        return Err(SimError::invalid(
                            "materials",
                            format!("at most {MAX_MATERIALS} distinct materials per projector"),
                        ));
                    }
                    materials.push(m);
                    materials.len() - 1
                }
            };
            slot_of_label[label as usize] = slot as u8;
        }
        Ok(Self { slot_of_label, materials })
    }

    /// The map of a phantom material table (labels absent from the table are air).
    pub fn of(table: &tomolab_phantom::MaterialTable) -> Result<Self, SimError> {
        Self::from_names(table.entries.iter().map(|e| (e.label, e.material.name())))
    }

    /// Material of each slot.
    pub fn materials(&self) -> &[&'static MaterialData] {
        &self.materials
    }

    /// Slot of `label`.
    pub fn slot(&self, label: u8) -> usize {
        self.slot_of_label[label as usize] as usize
    }
}

/// Per-material path lengths of one ray, mm, indexed by material slot.
pub type PathLengths = [f64; MAX_MATERIALS];

/// Traces the segment `from -> to` (mm) through the volume, adding each voxel's intersection length to
/// `acc[slot]`. Returns (length inside the volume in mm, number of voxels visited).
pub fn trace(volume: &VolumeView<'_>, slots: &[u8; 256], from: &Vec3, to: &Vec3, acc: &mut PathLengths) -> (f64, u64) {
    let inv_v = 1.0 / volume.voxel_mm;
    let n = [volume.nx, volume.ny, volume.nz];
    let p0 = [
        (from.x - volume.origin_mm[0]) * inv_v,
        (from.y - volume.origin_mm[1]) * inv_v,
        (from.z - volume.origin_mm[2]) * inv_v,
    ];
    let d = [(to.x - from.x) * inv_v, (to.y - from.y) * inv_v, (to.z - from.z) * inv_v];
    let length_mm = (to - from).norm();
    // Clip t in [0, 1] against the box [0, n] on every axis.
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    for a in 0..3 {
        let hi = n[a] as f64;
        if d[a] == 0.0 {
            if p0[a] < 0.0 || p0[a] > hi {
                return (0.0, 0);
            }
        } else {
            let (ta, tb) = ((0.0 - p0[a]) / d[a], (hi - p0[a]) / d[a]);
            let (lo, up) = if ta < tb { (ta, tb) } else { (tb, ta) };
            t0 = t0.max(lo);
            t1 = t1.min(up);
        }
    }
    if t0 >= t1 {
        return (0.0, 0);
    }
    let mut idx = [0usize; 3];
    let mut step = [0isize; 3];
    let mut t_max = [f64::INFINITY; 3];
    let mut t_delta = [f64::INFINITY; 3];
    for a in 0..3 {
        let pos = p0[a] + d[a] * t0;
        let i = (pos.floor().max(0.0) as usize).min(n[a] - 1);
        idx[a] = i;
        if d[a] > 0.0 {
            step[a] = 1;
            t_max[a] = ((i + 1) as f64 - p0[a]) / d[a];
            t_delta[a] = 1.0 / d[a];
        } else if d[a] < 0.0 {
            step[a] = -1;
            t_max[a] = (i as f64 - p0[a]) / d[a];
            t_delta[a] = -1.0 / d[a];
        }
    }
    let stride = [1isize, volume.nx as isize, (volume.nx * volume.ny) as isize];
    let mut lin = (idx[2] * volume.ny + idx[1]) * volume.nx + idx[0];
    let labels = volume.labels;
    // Run-length accumulation: consecutive voxels of one material form a single segment, so the per-step work
    // is a comparison and no floating-point accumulation (and no store-to-load dependency on `acc`).
    let mut slot = slots[labels[lin] as usize];
    let mut run_start = t0;
    let mut steps = 1u64;
    loop {
        let a = if t_max[0] < t_max[1] {
            if t_max[0] < t_max[2] { 0 } else { 2 }
        } else if t_max[1] < t_max[2] {
            1
        } else {
            2
        };
        let t = t_max[a];
        if t >= t1 {
            break;
        }
        let ni = idx[a] as isize + step[a];
        if ni < 0 || ni >= n[a] as isize {
            break;
        }
        idx[a] = ni as usize;
        lin = (lin as isize + step[a] * stride[a]) as usize;
        t_max[a] += t_delta[a];
        steps += 1;
        let next = slots[labels[lin] as usize];
        if next != slot {
            acc[slot as usize] += (t - run_start) * length_mm;
            slot = next;
            run_start = t;
        }
    }
    acc[slot as usize] += (t1 - run_start) * length_mm;
    ((t1 - t0) * length_mm, steps)
}

/// How finely the projector samples the source and the pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectorConfig {
    /// Rays per pixel along each axis, spread uniformly over the pixel (the pixel aperture); 1 = centre ray.
    pub rays_per_pixel_axis: usize,
    /// Focal-spot size (side of a uniform square spot in the x-y plane), mm; 0 = point source.
    pub focal_spot_mm: f64,
    /// Source points per focal-spot axis (used when `focal_spot_mm > 0`).
    pub focal_spot_samples: usize,
    /// Energy groups per 0.5 keV spectrum bin (1, 2, 5, 10, 25 or 50).
    pub groups_per_bin: usize,
    /// Count the air between the focal spot and the detector outside the volume.
    pub air_outside_volume: bool,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            rays_per_pixel_axis: 1,
            focal_spot_mm: 0.0,
            focal_spot_samples: 1,
            groups_per_bin: 1,
            air_outside_volume: true,
        }
    }
}

/// Work done by one projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceStats {
    /// Rays traced.
    pub rays: u64,
    /// Voxels visited, summed over rays.
    pub voxel_steps: u64,
}

/// The expected (noise-free) primary image of one view.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectedImage {
    /// Pixels along u.
    pub cols: usize,
    /// Pixels along v.
    pub rows: usize,
    /// Pixel pitch along u, mm.
    pub pitch_u_mm: f64,
    /// Pixel pitch along v, mm.
    pub pitch_v_mm: f64,
    /// Expected energy absorbed in each pixel's conversion layer, keV (row-major).
    pub energy_kev: Vec<f64>,
    /// Expected sum of squared deposited energies, keV^2 (compound-Poisson variance of `energy_kev`).
    pub energy_sq_kev2: Vec<f64>,
    /// Mean path length through non-air material along the pixel's rays, mm (used by the scatter model).
    pub tissue_path_mm: Vec<f64>,
    /// Work done.
    pub stats: TraceStats,
}

impl ProjectedImage {
    /// Effective energy per detected quantum of pixel `i`, keV (`E2 / E1`).
    pub fn quantum_energy_kev(&self, i: usize) -> f64 {
        if self.energy_kev[i] > 0.0 { self.energy_sq_kev2[i] / self.energy_kev[i] } else { 0.0 }
    }
}

/// Energy groups of a spectrum with material coefficients and the detector response.
#[derive(Debug, Clone)]
struct EnergyGroups {
    /// Mean energy of each group (detected-energy weighted), keV.
    energy_kev: Vec<f64>,
    /// `mu[g * MAX_MATERIALS + m]`, 1/mm.
    mu: Vec<f64>,
    /// `resp[c * groups + g]`: photons/mm^2/mAs at 1000 mm x mean deposited energy per incident photon, for
    /// the c-th cosine of the table.
    resp: Vec<f64>,
    /// Same with squared deposited energy.
    resp_sq: Vec<f64>,
}

fn detector_material(material: DetectorMaterial) -> Result<&'static MaterialData, SimError> {
    attenuation::material(match material {
        DetectorMaterial::ASe => "selenium",
        DetectorMaterial::CsI => "csi",
    })
}

impl EnergyGroups {
    fn new(
        spectrum: &Spectrum,
        detector: &DetectorGeometry,
        materials: &[&'static MaterialData],
        groups_per_bin: usize,
    ) -> Result<Self, SimError> {
        if groups_per_bin == 0 || SUB_SAMPLES % groups_per_bin != 0 {
            return Err(SimError::invalid("groups_per_bin", format!("must divide {SUB_SAMPLES}")));
        }
        let det = detector_material(detector.material)?;
        let t_mm = check_at_least("detector.layer_thickness_mm", detector.layer_thickness_mm, 0.0, true)?;
        let per_group = SUB_SAMPLES / groups_per_bin;
        let samples: Vec<(f64, f64)> = spectrum.at_distance(TABLE_DISTANCE_MM)?.samples().collect();
        let cos_at = |c: usize| COS_MIN + (1.0 - COS_MIN) * c as f64 / (COS_TABLE - 1) as f64;
        let mut energy_kev = Vec::new();
        let mut mu = Vec::new();
        let mut resp_g: Vec<[f64; COS_TABLE]> = Vec::new();
        let mut resp_sq_g: Vec<[f64; COS_TABLE]> = Vec::new();
        let mut total = 0.0;
        for group in samples.chunks_exact(per_group) {
            let mut r = [0.0; COS_TABLE];
            let mut r2 = [0.0; COS_TABLE];
            let (mut w_sum, mut we_sum) = (0.0, 0.0);
            for &(e, n) in group {
                let mu_det = det.mu_per_mm(e);
                let deposit = e * det.mu_en_over_rho_cm2_g(e) / det.mu_over_rho_cm2_g(e);
                for c in 0..COS_TABLE {
                    let p = 1.0 - (-mu_det * t_mm / cos_at(c)).exp();
                    r[c] += n * p * deposit;
                    r2[c] += n * p * deposit * deposit;
                }
                let w = n * (1.0 - (-mu_det * t_mm).exp()) * deposit;
                w_sum += w;
                we_sum += w * e;
            }
            if w_sum <= 0.0 {
                continue;
            }
            let e_mean = we_sum / w_sum;
            total += w_sum;
            energy_kev.push(e_mean);
            let mut row = [0.0; MAX_MATERIALS];
            for (slot, m) in materials.iter().enumerate() {
                row[slot] = m.mu_per_mm(e_mean);
            }
            mu.extend_from_slice(&row);
            resp_g.push(r);
            resp_sq_g.push(r2);
        }
        // Drop groups that carry a negligible share of the detected energy (soft photons stopped by the
        // filter): they change no pixel by more than 1e-9 relative.
        let keep: Vec<usize> = (0..energy_kev.len()).filter(|&g| resp_g[g][COS_TABLE - 1] > 1e-9 * total).collect();
        let groups = keep.len();
        let mut out = Self {
            energy_kev: keep.iter().map(|&g| energy_kev[g]).collect(),
            mu: keep.iter().flat_map(|&g| mu[g * MAX_MATERIALS..(g + 1) * MAX_MATERIALS].iter().copied()).collect(),
            resp: vec![0.0; COS_TABLE * groups],
            resp_sq: vec![0.0; COS_TABLE * groups],
        };
        for (k, &g) in keep.iter().enumerate() {
            for c in 0..COS_TABLE {
                out.resp[c * groups + k] = resp_g[g][c];
                out.resp_sq[c * groups + k] = resp_sq_g[g][c];
            }
        }
        Ok(out)
    }

    fn len(&self) -> usize {
        self.energy_kev.len()
    }

    /// (sum_g R_g T_g, sum_g R2_g T_g) at incidence cosine `cos` for path lengths `paths` over `n_mat` slots.
    #[inline]
    fn detect(&self, paths: &PathLengths, n_mat: usize, cos: f64) -> (f64, f64) {
        let groups = self.len();
        let x = ((cos - COS_MIN) / (1.0 - COS_MIN) * (COS_TABLE - 1) as f64).clamp(0.0, (COS_TABLE - 1) as f64);
        let c0 = (x.floor() as usize).min(COS_TABLE - 2);
        let w = x - c0 as f64;
        let (r0, r1) = (&self.resp[c0 * groups..(c0 + 1) * groups], &self.resp[(c0 + 1) * groups..(c0 + 2) * groups]);
        let (q0, q1) =
            (&self.resp_sq[c0 * groups..(c0 + 1) * groups], &self.resp_sq[(c0 + 1) * groups..(c0 + 2) * groups]);
        let (mut e1, mut e2) = (0.0, 0.0);
        for g in 0..groups {
            let mu = &self.mu[g * MAX_MATERIALS..g * MAX_MATERIALS + n_mat];
            let line: f64 = mu.iter().zip(paths).map(|(m, l)| m * l).sum();
            let t = (-line).exp();
            e1 += (r0[g] + w * (r1[g] - r0[g])) * t;
            e2 += (q0[g] + w * (q1[g] - q0[g])) * t;
        }
        (e1, e2)
    }
}

/// A polyenergetic projector for one phantom, spectrum and detector.
#[derive(Debug, Clone)]
pub struct Projector<'a> {
    volume: VolumeView<'a>,
    map: MaterialMap,
    detector: DetectorGeometry,
    groups: EnergyGroups,
    config: ProjectorConfig,
}

impl<'a> Projector<'a> {
    /// Prepares a projector: checks the inputs and tabulates coefficients and the detector response.
    pub fn new(
        volume: VolumeView<'a>,
        map: MaterialMap,
        spectrum: &Spectrum,
        detector: &DetectorGeometry,
        config: ProjectorConfig,
    ) -> Result<Self, SimError> {
        volume.validate()?;
        detector.validate().map_err(|e| SimError::invalid(e.field, e.problem))?;
        if config.rays_per_pixel_axis == 0 {
            return Err(SimError::invalid("rays_per_pixel_axis", "must be at least 1"));
        }
        if config.focal_spot_samples == 0 {
            return Err(SimError::invalid("focal_spot_samples", "must be at least 1"));
        }
        check_at_least("focal_spot_mm", config.focal_spot_mm, 0.0, false)?;
        let groups = EnergyGroups::new(spectrum, detector, map.materials(), config.groups_per_bin)?;
        Ok(Self { volume, map, detector: *detector, groups, config })
    }

    /// Number of energy groups actually used per ray.
    pub fn energy_groups(&self) -> usize {
        self.groups.len()
    }

    /// Path lengths (mm per material slot) along the ray from `from` to `to`, plus the length inside the
    /// volume and the voxels visited.
    pub fn path_lengths(&self, from: &Vec3, to: &Vec3) -> (PathLengths, f64, u64) {
        let mut acc = [0.0; MAX_MATERIALS];
        let (inside, steps) = trace(&self.volume, &self.map.slot_of_label, from, to, &mut acc);
        (acc, inside, steps)
    }

    /// Focal-spot sample offsets (mm).
    fn spot_offsets(&self) -> Vec<Vec3> {
        let n = if self.config.focal_spot_mm > 0.0 { self.config.focal_spot_samples } else { 1 };
        let f = self.config.focal_spot_mm;
        let mut out = Vec::with_capacity(n * n);
        for j in 0..n {
            for i in 0..n {
                let ox = ((i as f64 + 0.5) / n as f64 - 0.5) * f;
                let oy = ((j as f64 + 0.5) / n as f64 - 0.5) * f;
                out.push(Vec3::new(ox, oy, 0.0));
            }
        }
        out
    }

    /// The expected primary image for `mas` mAs, averaged over `sub_poses` (one pose for a static exposure,
    /// several along the arc for continuous tube motion) and over the focal spot and pixel-aperture samples.
    ///
    /// Rows are traced in parallel; the result does not depend on the number of threads.
    pub fn project(&self, sub_poses: &[ViewPose], mas: f64) -> Result<ProjectedImage, SimError> {
        if sub_poses.is_empty() {
            return Err(SimError::invalid("sub_poses", "need at least one pose"));
        }
        check_at_least("mas", mas, 0.0, false)?;
        let det = &self.detector;
        let (cols, rows) = (det.cols, det.rows);
        let spots = self.spot_offsets();
        let k = self.config.rays_per_pixel_axis;
        let sub: Vec<f64> = (0..k).map(|i| (i as f64 + 0.5) / k as f64 - 0.5).collect();
        let samples = (sub_poses.len() * spots.len() * k * k) as f64;
        let pixel_area = det.pitch_u_mm * det.pitch_v_mm;
        let n_mat = self.map.materials.len();
        let mut energy_kev = vec![0.0; cols * rows];
        let mut energy_sq_kev2 = vec![0.0; cols * rows];
        let mut tissue_path_mm = vec![0.0; cols * rows];
        let stats: Vec<TraceStats> = energy_kev
            .par_chunks_mut(cols)
            .zip(energy_sq_kev2.par_chunks_mut(cols))
            .zip(tissue_path_mm.par_chunks_mut(cols))
            .enumerate()
            .map(|(row, ((e1_row, e2_row), path_row))| {
                let mut st = TraceStats::default();
                let pixels = e1_row.iter_mut().zip(e2_row.iter_mut()).zip(path_row.iter_mut());
                for (col, ((e1_px, e2_px), path_px)) in pixels.enumerate() {
                    let (mut e1, mut e2, mut tissue) = (0.0, 0.0, 0.0);
                    for pose in sub_poses {
                        let normal = pose.detector_normal();
                        for spot in &spots {
                            let src = pose.source_mm + spot;
                            for &dv in &sub {
                                for &du in &sub {
                                    let px = pose.pixel_position(det, col as f64 + du, row as f64 + dv);
                                    let mut acc = [0.0; MAX_MATERIALS];
                                    let (inside, steps) =
                                        trace(&self.volume, &self.map.slot_of_label, &src, &px, &mut acc);
                                    tissue += acc[1..n_mat].iter().sum::<f64>();
                                    let dir = px - src;
                                    let dist = dir.norm();
                                    if self.config.air_outside_volume {
                                        acc[0] += (dist - inside).max(0.0);
                                    }
                                    let cos = (dir.dot(&normal) / dist).abs();
                                    let (r1, r2) = self.groups.detect(&acc, n_mat, cos);
                                    let geo = (TABLE_DISTANCE_MM / dist).powi(2) * cos;
                                    e1 += r1 * geo;
                                    e2 += r2 * geo;
                                    st.rays += 1;
                                    st.voxel_steps += steps;
                                }
                            }
                        }
                    }
                    *e1_px = e1 * mas * pixel_area / samples;
                    *e2_px = e2 * mas * pixel_area / samples;
                    *path_px = tissue / samples;
                }
                st
            })
            .collect();
        let stats = stats.iter().fold(TraceStats::default(), |a, s| TraceStats {
            rays: a.rays + s.rays,
            voxel_steps: a.voxel_steps + s.voxel_steps,
        });
        Ok(ProjectedImage {
            cols,
            rows,
            pitch_u_mm: det.pitch_u_mm,
            pitch_v_mm: det.pitch_v_mm,
            energy_kev,
            energy_sq_kev2,
            tissue_path_mm,
            stats,
        })
    }
}

/// Poses sampling the arc swept while the tube fires: `samples` sub-poses at the centres of equal
/// sub-intervals of `[centre_deg - sweep_deg / 2, centre_deg + sweep_deg / 2]` (continuous-motion blur).
pub fn motion_sub_poses(
    arc: &tomolab_hal::ArcGeometry,
    centre_deg: f64,
    sweep_deg: f64,
    samples: usize,
) -> Result<Vec<ViewPose>, SimError> {
    check_at_least("sweep_deg", sweep_deg, 0.0, false)?;
    if samples == 0 {
        return Err(SimError::invalid("samples", "must be at least 1"));
    }
    Ok((0..samples).map(|i| arc.pose_at(centre_deg + ((i as f64 + 0.5) / samples as f64 - 0.5) * sweep_deg)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion};

    #[test]
    fn motion_sub_poses_sample_the_swept_arc_symmetrically() {
        let detector = DetectorGeometry {
            cols: 4,
            rows: 4,
            pitch_u_mm: 0.1,
            pitch_v_mm: 0.1,
            material: DetectorMaterial::ASe,
            layer_thickness_mm: 0.2,
        };
        let arc = ArcGeometry {
            source_to_detector_mm: 650.0,
            rotation_axis_height_mm: 50.0,
            detector,
            detector_motion: DetectorMotion::Stationary,
        };
        let poses = motion_sub_poses(&arc, 10.0, 0.2, 4).unwrap();
        let centre = arc.pose_at(10.0).source_mm;
        let mean = poses.iter().fold(Vec3::zeros(), |a, p| a + p.source_mm) / 4.0;
        assert!((mean - centre).norm() < 1e-3, "{mean} vs {centre}");
        assert!((poses[0].source_mm - arc.pose_at(9.925).source_mm).norm() < 1e-9);
        assert!(motion_sub_poses(&arc, 0.0, 0.1, 0).is_err());
    }

    #[test]
    fn rays_missing_the_volume_see_nothing() {
        let labels = [1u8; 8];
        let vol = VolumeView { nx: 2, ny: 2, nz: 2, voxel_mm: 1.0, origin_mm: [0.0, 0.0, 0.0], labels: &labels };
        let mut slots = [0u8; 256];
        slots[1] = 1;
        let mut acc = [0.0; MAX_MATERIALS];
        let (inside, steps) = trace(&vol, &slots, &Vec3::new(5.0, 5.0, 5.0), &Vec3::new(5.0, 6.0, -5.0), &mut acc);
        assert_eq!((inside, steps), (0.0, 0));
        assert!(acc.iter().all(|&v| v == 0.0));
    }
}
