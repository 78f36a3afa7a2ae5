//! The polyenergetic ray tracer (`RayTracer`): `traversal` walks each ray through the voxels, `response`
//! holds the energy groups and the detector response, this file samples sources and pixels.
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

mod response;
mod traversal;

use rayon::prelude::*;
use tomolab_hal::{DetectorGeometry, Vec3, ViewPose};

use crate::error::{PhysicsError, check_at_least};
use crate::spectrum::{Spectrum, TABLE_DISTANCE_MM};
use response::EnergyGroups;
pub use traversal::{MaterialMap, PathLengths, VolumeView, trace};

/// Most distinct materials one projector handles (slot 0 is always air).
pub const MAX_MATERIALS: usize = 16;

/// Entries of the detector-response table over `cos theta`.
const COS_TABLE: usize = 65;
/// Smallest angle cosine the response table covers (theta up to about 72.5 deg).
const COS_MIN: f64 = 0.3;

/// How finely the projector samples the source and the pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RayTracerConfig {
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

impl Default for RayTracerConfig {
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

/// A polyenergetic projector for one phantom, spectrum and detector.
#[derive(Debug, Clone)]
pub struct RayTracer<'a> {
    volume: VolumeView<'a>,
    map: MaterialMap,
    detector: DetectorGeometry,
    groups: EnergyGroups,
    config: RayTracerConfig,
}

impl<'a> RayTracer<'a> {
    /// Prepares a projector: checks the inputs and tabulates coefficients and the detector response.
    pub fn new(
        volume: VolumeView<'a>,
        map: MaterialMap,
        spectrum: &Spectrum,
        detector: &DetectorGeometry,
        config: RayTracerConfig,
    ) -> Result<Self, PhysicsError> {
        volume.validate()?;
        detector.validate().map_err(|e| PhysicsError::invalid(e.field, e.problem))?;
        if config.rays_per_pixel_axis == 0 {
            return Err(PhysicsError::invalid("rays_per_pixel_axis", "must be at least 1"));
        }
        if config.focal_spot_samples == 0 {
            return Err(PhysicsError::invalid("focal_spot_samples", "must be at least 1"));
        }
        check_at_least("focal_spot_mm", config.focal_spot_mm, 0.0, false)?;
        let groups = EnergyGroups::new(spectrum, detector, map.materials(), config.groups_per_bin)?;
        Ok(Self { volume, map, detector: *detector, groups, config })
    }

    /// Number of energy groups actually used per ray.
    pub fn energy_groups(&self) -> usize {
        self.groups.len()
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
    pub fn project(&self, sub_poses: &[ViewPose], mas: f64) -> Result<ProjectedImage, PhysicsError> {
        if sub_poses.is_empty() {
            return Err(PhysicsError::invalid("sub_poses", "need at least one pose"));
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
) -> Result<Vec<ViewPose>, PhysicsError> {
    check_at_least("sweep_deg", sweep_deg, 0.0, false)?;
    if samples == 0 {
        return Err(PhysicsError::invalid("samples", "must be at least 1"));
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
        let vol = VolumeView { grid: tomolab_hal::VoxelGrid::cubic([2, 2, 2], 1.0, [0.0, 0.0, 0.0]), labels: &labels };
        let mut slots = [0u8; 256];
        slots[1] = 1;
        let mut acc = [0.0; MAX_MATERIALS];
        let (inside, steps) = trace(&vol, &slots, &Vec3::new(5.0, 5.0, 5.0), &Vec3::new(5.0, 6.0, -5.0), &mut acc);
        assert_eq!((inside, steps), (0.0, 0));
        assert!(acc.iter().all(|&v| v == 0.0));
    }
}
