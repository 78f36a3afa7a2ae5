//! Filtered backprojection for tomosynthesis.
//!
//! 1. Cosine weighting: each line integral is multiplied by the cosine between its ray and the z axis, so a
//!    uniform slab gives the same value `mu T` in every view.
//! 2. Row filtering along u (the tube-travel direction) with
//!    `H(f) = W(f / f_c) * S(f) * max(Phi * R(f), 1 / T)`, where
//!    - `R` is the exact discrete ramp (the DFT of the Ram-Lak kernel, Kak & Slaney eq. 61) at the pixel
//!      pitch scaled to the isocentre plane, so frequencies are object frequencies;
//!    - `Phi = N * (angular step)` is the effective angular range of the backprojection sum (the ramp of an
//!      angular average of N views, each standing for one step of the arc);
//!    - `1 / T` (T = slab thickness of the reconstruction) is the floor for the lowest frequencies, which a
//!      limited-angle scan cannot place in depth: a large uniform object is spread evenly over the slab, so
//!      its slices come out at its true attenuation when it fills the compressed thickness (the breast does);
//!    - `W` is the spectral apodization window (Hann by default) with cutoff `f_c` (a fraction of Nyquist);
//!    - `S` is the slice-thickness filter: a Hann taper along u with its own cutoff. High u-frequencies
//!      are the ones that separate depths most sharply (depth resolution ~ 1 / (2 f tan(arc/2))), so a
//!      lower cutoff gives thicker, smoother slices; the default (2 x Nyquist) is mild.
//! 3. Backprojection: the average of the filtered views over every voxel ([`crate::projector`] kernels).
//!
//! The result is in 1/mm. Filtering runs in parallel over detector rows with one FFT plan per length;
//! the only per-row allocation is avoided by per-thread scratch buffers.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

use crate::error::{Result, invalid};
use crate::geometry::{Projections, Volume, central_view};
use crate::projector::{KernelPath, ProjectorPair, ViewWeight, VoxelProjector, for_each_ray_cos};
use tomolab_hal::VoxelGrid;

/// Spectral apodization windows (functions of f / f_c, zero beyond 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Window {
    /// No apodization (the bare ramp up to the cutoff).
    #[serde(alias = "none")]
    #[cfg_attr(feature = "clap", value(alias = "none"))]
    RamLak,
    /// sinc(x / 2).
    SheppLogan,
    /// cos(pi x / 2).
    Cosine,
    /// 0.54 + 0.46 cos(pi x).
    Hamming,
    /// 0.5 + 0.5 cos(pi x).
    #[default]
    Hann,
}

impl Window {
    /// The window's value at `x = f / f_c` (x >= 0).
    pub fn value(self, x: f64) -> f64 {
        if x > 1.0 {
            return 0.0;
        }
        let pi = std::f64::consts::PI;
        match self {
            Self::RamLak => 1.0,
            Self::SheppLogan => {
                if x == 0.0 {
                    1.0
                } else {
                    (pi * x / 2.0).sin() / (pi * x / 2.0)
                }
            }
            Self::Cosine => (pi * x / 2.0).cos(),
            Self::Hamming => 0.54 + 0.46 * (pi * x).cos(),
            Self::Hann => 0.5 + 0.5 * (pi * x).cos(),
        }
    }
}

impl std::str::FromStr for Window {
    type Err = crate::error::ReconError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ram-lak" | "none" => Self::RamLak,
            "shepp-logan" => Self::SheppLogan,
            "cosine" => Self::Cosine,
            "hamming" => Self::Hamming,
            "hann" => Self::Hann,
            other => {
                return Err(invalid(
                    "window",
                    format!("`{other}` unknown; use ram-lak, shepp-logan, cosine, hamming or hann"),
                ));
            }
        })
    }
}

/// FBP settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FbpOptions {
    /// Spectral apodization window.
    pub window: Window,
    /// Window cutoff as a fraction of the Nyquist frequency (0 < cutoff; default 1).
    pub cutoff: f64,
    /// Slice-thickness filter cutoff as a fraction of Nyquist (a Hann taper along u); `None` disables it.
    pub slice_thickness_cutoff: Option<f64>,
    /// Backprojection kernel.
    pub path: KernelPath,
}

impl Default for FbpOptions {
    fn default() -> Self {
        Self { window: Window::Hann, cutoff: 1.0, slice_thickness_cutoff: Some(2.0), path: KernelPath::Auto }
    }
}

/// Per-thread FFT buffers: input, spectrum, forward scratch, inverse scratch.
type Scratch = (Vec<f32>, Vec<Complex<f32>>, Vec<Complex<f32>>, Vec<Complex<f32>>);

/// A row filter in the frequency domain, ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct RowFilter {
    /// Padded FFT length.
    len: usize,
    /// Transfer function for bins 0..=len/2, already divided by `len` (the inverse FFT is unnormalised).
    gain: Vec<f32>,
}

impl RowFilter {
    /// Ramp filter for rows of `cols` pixels at spacing `tau_mm` (object units), scaled by `ramp_scale`,
    /// apodized by `window` (cutoff `cutoff` x Nyquist), times an optional Hann taper `st_cutoff` x Nyquist,
    /// with an optional floor (applied to the unapodized ramp).
    pub(crate) fn ramp(
        cols: usize,
        tau_mm: f64,
        ramp_scale: f64,
        window: Window,
        cutoff: f64,
        st_cutoff: Option<f64>,
        floor: Option<f64>,
    ) -> Self {
        let len = (2 * cols).next_power_of_two().max(8);
        // Spatial Ram-Lak kernel, wrapped: h[0] = 1/(4 tau^2), h[odd n] = -1/(pi^2 n^2 tau^2).
        let mut kernel = vec![0.0f64; len];
        let pi2 = std::f64::consts::PI.powi(2);
        kernel[0] = 1.0 / (4.0 * tau_mm * tau_mm);
        for n in (1..len / 2).step_by(2) {
            let v = -1.0 / (pi2 * (n * n) as f64 * tau_mm * tau_mm);
            kernel[n] = v;
            kernel[len - n] = v;
        }
        let nyquist = 0.5 / tau_mm;
        // Real DFT of the symmetric kernel (its spectrum is real).
        let mut spectrum = vec![Complex::new(0.0f64, 0.0); len / 2 + 1];
        if RealFftPlanner::<f64>::new().plan_fft_forward(len).process(&mut kernel, &mut spectrum).is_err() {
            spectrum.iter_mut().for_each(|c| *c = Complex::new(0.0, 0.0));
        }
        let mut gain = Vec::with_capacity(len / 2 + 1);
        for (k, bin) in spectrum.iter().enumerate() {
            let re = bin.re;
            let ramp = re * tau_mm * ramp_scale;
            let f = k as f64 / (len as f64 * tau_mm);
            let base = floor.map_or(ramp, |fl| ramp.max(fl));
            let w = window.value(f / (cutoff * nyquist));
            let st = st_cutoff.map_or(1.0, |c| Window::Hann.value(f / (c * nyquist)));
            gain.push((base * w * st / len as f64) as f32);
        }
        Self { len, gain }
    }

    /// Filters every row (length `cols`) of `data` in place, in parallel.
    pub(crate) fn apply(&self, data: &mut [f32], cols: usize) {
        let mut planner = RealFftPlanner::<f32>::new();
        let forward: Arc<dyn realfft::RealToComplex<f32>> = planner.plan_fft_forward(self.len);
        let inverse: Arc<dyn realfft::ComplexToReal<f32>> = planner.plan_fft_inverse(self.len);
        data.par_chunks_mut(cols).for_each_init(
            || {
                (
                    forward.make_input_vec(),
                    forward.make_output_vec(),
                    forward.make_scratch_vec(),
                    inverse.make_scratch_vec(),
                )
            },
            |(buf, spec, fscratch, iscratch): &mut Scratch, row| {
                buf[..cols].copy_from_slice(row);
                buf[cols..].fill(0.0);
                // Lengths match the plan, so these cannot fail.
                if forward.process_with_scratch(buf, spec, fscratch).is_err() {
                    return;
                }
                for (s, &g) in spec.iter_mut().zip(&self.gain) {
                    *s *= g;
                }
                if let Some(first) = spec.first_mut() {
                    first.im = 0.0;
                }
                if let Some(last) = spec.last_mut() {
                    last.im = 0.0;
                }
                if inverse.process_with_scratch(spec, buf, iscratch).is_err() {
                    return;
                }
                row.copy_from_slice(&buf[..cols]);
            },
        );
    }
}

/// Angles (rad) of each source around `centre`, measured in the plane of u and the normal of `reference`'s
/// detector, unwrapped to increase continuously.
pub(crate) fn source_angles(projections: &Projections, centre: &tomolab_hal::Vec3, reference: usize) -> Vec<f64> {
    let pose = &projections.poses[reference];
    let n = pose.detector_normal();
    let u = pose.u_step_mm.normalize();
    let mut out: Vec<f64> = projections
        .poses
        .iter()
        .map(|p| {
            let d = p.source_mm - centre;
            d.dot(&u).atan2(d.dot(&n))
        })
        .collect();
    for i in 1..out.len() {
        while out[i] - out[i - 1] > std::f64::consts::PI {
            out[i] -= 2.0 * std::f64::consts::PI;
        }
        while out[i] - out[i - 1] < -std::f64::consts::PI {
            out[i] += 2.0 * std::f64::consts::PI;
        }
    }
    out
}

/// Reconstructs `volume` from line integrals by tomosynthesis FBP, on the voxel-driven projector that
/// `options.path` picks.
pub fn fbp(projections: &Projections, volume: &VoxelGrid, options: &FbpOptions) -> Result<Volume> {
    projections.validate()?;
    crate::geometry::validate_grid(volume)?;
    check_options(projections, options)?;
    let projector = VoxelProjector::new(*volume, projections.detector, &projections.poses, options.path)?;
    fbp_with(projections, &projector, options)
}

/// Tomosynthesis FBP backprojecting through any projector (on its volume grid; `options.path` is unused).
pub fn fbp_with<P: ProjectorPair + ?Sized>(
    projections: &Projections,
    projector: &P,
    options: &FbpOptions,
) -> Result<Volume> {
    projections.validate()?;
    check_projector(projections, projector)?;
    check_options(projections, options)?;
    let volume = projector.volume();
    let centre = volume.centre();
    let k0 = central_view(&projections.poses).unwrap_or(0);
    let pose = &projections.poses[k0];
    let n = pose.detector_normal();
    let h_source = n.dot(&(pose.source_mm - pose.detector_centre_mm));
    let h_iso = n.dot(&(centre - pose.detector_centre_mm));
    let magnification = h_source / (h_source - h_iso);
    let tau = projections.detector.pitch_u_mm / magnification;
    let angles = source_angles(projections, &centre, k0);
    let nviews = angles.len();
    let (amin, amax) = angles.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let phi = nviews as f64 * (amax - amin) / (nviews as f64 - 1.0);
    if phi.is_nan() || phi <= 1e-6 {
        return Err(invalid("views", "all sources lie at the same angle: FBP needs an arc"));
    }
    let thickness = volume.nz as f64 * volume.voxel_mm[2];
    let filter = RowFilter::ramp(
        projections.detector.cols,
        tau,
        phi,
        options.window,
        options.cutoff,
        options.slice_thickness_cutoff,
        Some(1.0 / thickness),
    );
    let npix = projections.pixels();
    let mut filtered = projections.data.clone();
    filtered.par_chunks_mut(npix).zip(projections.poses.par_iter()).for_each(|(image, pose)| {
        for_each_ray_cos(pose, &projections.detector, image, |v, cos| *v *= cos as f32);
    });
    filter.apply(&mut filtered, projections.detector.cols);
    let views: Vec<usize> = (0..nviews).collect();
    let weights = vec![ViewWeight::Constant(1.0 / nviews as f32); nviews];
    let mut out = Volume::zeros(*volume);
    projector.backproject_weighted(&filtered, &views, &weights, &mut out.data)?;
    Ok(out)
}

/// Checks FBP's options against the projections.
fn check_options(projections: &Projections, options: &FbpOptions) -> Result<()> {
    if projections.views() < 2 {
        return Err(invalid("views", "FBP needs at least two views (use synthetic 2D for a single view)"));
    }
    if !(options.cutoff.is_finite() && options.cutoff > 0.0) {
        return Err(invalid("options.cutoff", format!("must be positive, got {}", options.cutoff)));
    }
    if let Some(c) = options.slice_thickness_cutoff {
        if !(c.is_finite() && c > 0.0) {
            return Err(invalid("options.slice_thickness_cutoff", format!("must be positive, got {c}")));
        }
    }
    Ok(())
}

/// Checks that `projector` was made for these projections' detector and views.
pub(crate) fn check_projector<P: ProjectorPair + ?Sized>(projections: &Projections, projector: &P) -> Result<()> {
    if *projector.detector() != projections.detector {
        return Err(invalid("projector", "its detector differs from the projections' detector"));
    }
    if projector.poses() != projections.poses.as_slice() {
        return Err(invalid("projector", "its poses differ from the projections' poses"));
    }
    Ok(())
}
