//! The reconstruction as one library call: [`reconstruct`] turns an [`Acquisition`] and a [`ReconConfig`]
//! into a [`Reconstruction`], whatever the algorithm.
//!
//! `ReconConfig` holds every knob of `tomolab recon` (and is the `[recon]` section of `exam.toml`): serde
//! with unknown keys rejected, and a [`Default`] that is the exam's FBP. [`ReconConfig::validate`] names
//! the field at fault (`recon.slice_mm`, ...). The steps are the ones the CLI ran: preprocess (dark/flood,
//! defect repair, guarded log, optional crop), choose the grid (the tomosynthesis slab from the poses and
//! the compressed thickness, or the CT cube around the isocentre for FDK), run the algorithm on the
//! voxel-driven projector, then the optional synthetic 2D. Output files are the writers' business
//! ([`crate::io::writers`]).

use std::time::Instant;

use tomolab_hal::Acquisition;

use crate::error::{Result, invalid};
use crate::fbp::{FbpOptions, Window, fbp};
use crate::fdk::{FdkOptions, default_ct_volume, fdk};
use crate::geometry::{Projections, Volume, VolumeOptions};
use crate::iterative::{IterationReport, MlemOptions, SartOptions, mlem, sart};
use crate::preprocess::{Crop, DefectRepair, Normalisation, PreprocessOptions, line_integrals};
use crate::projector::KernelPath;
use crate::synth::synthetic_2d;
use tomolab_hal::VoxelGrid;

/// Reconstruction algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Filtered backprojection for tomosynthesis.
    #[default]
    Fbp,
    /// OS-SART (iterative, matched projector pair).
    Sart,
    /// MLEM (iterative, matched projector pair).
    Mlem,
    /// FDK, for full-circle scans (breast CT).
    Fdk,
}

/// Every setting of a reconstruction. The default is the FBP `tomolab exam` runs (with the breast support
/// at the detector cover; the exam sets `support_height_mm` from its phantom).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconConfig {
    /// Reconstruction algorithm.
    pub algorithm: Algorithm,
    /// How the frames are normalised.
    pub normalisation: Normalisation,
    /// Repair defective pixels found in the flood (and dark) frames.
    pub defect_repair: bool,
    /// Correct the flood, taken at 0 deg, for each view's inverse-square and obliquity change of the open
    /// field ([`PreprocessOptions::flood_geometry`]).
    pub flood_geometry: bool,
    /// Crop the detector to the pixels whose line integral exceeds this value, plus `crop_margin`.
    pub crop_threshold: Option<f32>,
    /// Margin of the automatic crop, pixels.
    pub crop_margin: usize,
    /// In-plane voxel size, mm (default: the detector pitch at the mid-breast plane; FDK: at the isocentre).
    pub voxel_mm: Option<f64>,
    /// Slice spacing, mm.
    pub slice_mm: f64,
    /// Slab thickness, mm (default: the compressed thickness recorded in the acquisition).
    pub thickness_mm: Option<f64>,
    /// Height of the breast support above the detector surface, mm.
    pub support_height_mm: f64,
    /// FBP/FDK apodization window.
    pub window: Window,
    /// Window cutoff, fraction of Nyquist.
    pub cutoff: f64,
    /// FBP slice-thickness filter cutoff, fraction of Nyquist (0 disables it).
    pub slice_thickness_cutoff: f64,
    /// Iterations (SART, MLEM).
    pub iterations: usize,
    /// Ordered subsets (SART).
    pub subsets: usize,
    /// Relaxation (SART), in (0, 2).
    pub relaxation: f32,
    /// Backprojection kernel.
    pub kernel: KernelPath,
    /// Compute the synthetic 2D image.
    pub synthetic_2d: bool,
    /// Weight of the maximum in the synthetic 2D (`alpha max + (1 - alpha) mean`), in [0, 1].
    pub synthetic_2d_alpha: f32,
}

impl Default for ReconConfig {
    fn default() -> Self {
        let fbp = FbpOptions::default();
        let sart = SartOptions::default();
        Self {
            algorithm: Algorithm::Fbp,
            normalisation: Normalisation::DarkFlood,
            defect_repair: true,
            flood_geometry: true,
            crop_threshold: None,
            crop_margin: 16,
            voxel_mm: None,
            slice_mm: 1.0,
            thickness_mm: None,
            support_height_mm: 0.0,
            window: fbp.window,
            cutoff: fbp.cutoff,
            slice_thickness_cutoff: fbp.slice_thickness_cutoff.unwrap_or(0.0),
            iterations: sart.iterations,
            subsets: sart.subsets,
            relaxation: sart.relaxation,
            kernel: KernelPath::Auto,
            synthetic_2d: true,
            synthetic_2d_alpha: 0.5,
        }
    }
}

/// A positive, finite value, or the error naming `field`.
fn positive(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(field, format!("must be positive and finite, got {v}"))) }
}

impl ReconConfig {
    /// Checks every setting the chosen algorithm uses; the error names the field (`recon.<field>`).
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.crop_threshold {
            if !t.is_finite() {
                return Err(invalid("recon.crop_threshold", format!("must be finite, got {t}")));
            }
        }
        if let Some(v) = self.voxel_mm {
            positive("recon.voxel_mm", v)?;
        }
        if self.algorithm != Algorithm::Fdk {
            // The tomosynthesis slab (FDK's grid is the CT cube around the isocentre).
            positive("recon.slice_mm", self.slice_mm)?;
            if let Some(t) = self.thickness_mm {
                positive("recon.thickness_mm", t)?;
            }
            if !self.support_height_mm.is_finite() {
                return Err(invalid("recon.support_height_mm", "must be finite"));
            }
        }
        if matches!(self.algorithm, Algorithm::Fbp | Algorithm::Fdk) {
            positive("recon.cutoff", self.cutoff)?;
        }
        if !(self.slice_thickness_cutoff.is_finite() && self.slice_thickness_cutoff >= 0.0) {
            return Err(invalid(
                "recon.slice_thickness_cutoff",
                format!("must be 0 (off) or positive, got {}", self.slice_thickness_cutoff),
            ));
        }
        if matches!(self.algorithm, Algorithm::Sart | Algorithm::Mlem) && self.iterations == 0 {
            return Err(invalid("recon.iterations", "must be at least 1"));
        }
        if self.algorithm == Algorithm::Sart {
            if self.subsets == 0 {
                return Err(invalid("recon.subsets", "must be at least 1"));
            }
            if !(self.relaxation > 0.0 && self.relaxation < 2.0) {
                return Err(invalid("recon.relaxation", format!("must lie in (0, 2), got {}", self.relaxation)));
            }
        }
        if !(0.0..=1.0).contains(&self.synthetic_2d_alpha) {
            return Err(invalid(
                "recon.synthetic_2d_alpha",
                format!("must lie in [0, 1], got {}", self.synthetic_2d_alpha),
            ));
        }
        Ok(())
    }

    /// The preprocessing these settings ask for.
    pub fn preprocess_options(&self) -> PreprocessOptions {
        PreprocessOptions {
            normalisation: self.normalisation,
            defects: if self.defect_repair { DefectRepair::Auto } else { DefectRepair::None },
            flood_geometry: self.flood_geometry,
            crop: self
                .crop_threshold
                .map_or(Crop::None, |threshold| Crop::Auto { threshold, margin: self.crop_margin }),
            ..PreprocessOptions::default()
        }
    }

    /// The tomosynthesis grid settings.
    pub fn volume_options(&self) -> VolumeOptions {
        VolumeOptions {
            voxel_xy_mm: self.voxel_mm,
            slice_mm: self.slice_mm,
            thickness_mm: self.thickness_mm,
            support_height_mm: self.support_height_mm,
        }
    }

    /// The FBP settings.
    pub fn fbp_options(&self) -> FbpOptions {
        FbpOptions {
            window: self.window,
            cutoff: self.cutoff,
            slice_thickness_cutoff: (self.slice_thickness_cutoff > 0.0).then_some(self.slice_thickness_cutoff),
            path: self.kernel,
        }
    }

    /// The OS-SART settings.
    pub fn sart_options(&self) -> SartOptions {
        SartOptions {
            iterations: self.iterations,
            subsets: self.subsets,
            relaxation: self.relaxation,
            path: self.kernel,
            ..SartOptions::default()
        }
    }

    /// The MLEM settings.
    pub fn mlem_options(&self) -> MlemOptions {
        MlemOptions { iterations: self.iterations, path: self.kernel, ..MlemOptions::default() }
    }

    /// The FDK settings.
    pub fn fdk_options(&self) -> FdkOptions {
        FdkOptions { window: self.window, cutoff: self.cutoff }
    }
}

/// What a reconstruction did: its settings, the preprocessed data's size and the timings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReconReport {
    /// The settings used.
    pub config: ReconConfig,
    /// Views reconstructed.
    pub views: usize,
    /// Detector columns after preprocessing (and crop).
    pub detector_cols: usize,
    /// Detector rows after preprocessing (and crop).
    pub detector_rows: usize,
    /// Preprocessing time, s.
    pub preprocess_s: f64,
    /// Reconstruction time (grid and algorithm), s.
    pub reconstruct_s: f64,
    /// Iterative algorithms: passes, updates, residual and the time of each pass.
    pub iterations: Option<IterationReport>,
}

/// A reconstruction: the volume on its grid, what was done, and the optional synthetic 2D.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// Attenuation, 1/mm, with its grid.
    pub volume: Volume,
    /// Settings, sizes and timings.
    pub report: ReconReport,
    /// Synthetic 2D image (`ny` rows of `nx`), when asked for.
    pub synthetic_2d: Option<Vec<f32>>,
}

impl Reconstruction {
    /// The volume grid.
    pub fn geometry(&self) -> &VoxelGrid {
        &self.volume.geometry
    }

    /// The algorithm that ran.
    pub fn algorithm(&self) -> Algorithm {
        self.report.config.algorithm
    }
}

/// Reconstructs an acquisition (complete or partial: the views it has) with `config`.
pub fn reconstruct(acq: &Acquisition, config: &ReconConfig) -> Result<Reconstruction> {
    config.validate()?;
    let t0 = Instant::now();
    let projections = line_integrals(acq, &config.preprocess_options())?;
    let preprocess_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (volume, iterations) = run_algorithm(acq, &projections, config)?;
    let reconstruct_s = t1.elapsed().as_secs_f64();
    let synthetic_2d = if config.synthetic_2d { Some(synthetic_2d(&volume, config.synthetic_2d_alpha)?) } else { None };
    let report = ReconReport {
        config: *config,
        views: projections.views(),
        detector_cols: projections.detector.cols,
        detector_rows: projections.detector.rows,
        preprocess_s,
        reconstruct_s,
        iterations,
    };
    Ok(Reconstruction { volume, report, synthetic_2d })
}

/// Chooses the grid and runs the algorithm.
fn run_algorithm(
    acq: &Acquisition,
    projections: &Projections,
    config: &ReconConfig,
) -> Result<(Volume, Option<IterationReport>)> {
    if config.algorithm == Algorithm::Fdk {
        let grid = default_ct_volume(projections, config.voxel_mm)?;
        return Ok((fdk(projections, &grid, &config.fdk_options())?, None));
    }
    let grid = crate::tomosynthesis_volume(&acq.meta, projections, &config.volume_options())?;
    Ok(match config.algorithm {
        Algorithm::Sart => {
            let (v, r) = sart(projections, &grid, &config.sart_options(), None)?;
            (v, Some(r))
        }
        Algorithm::Mlem => {
            let (v, r) = mlem(projections, &grid, &config.mlem_options(), None)?;
            (v, Some(r))
        }
        Algorithm::Fbp | Algorithm::Fdk => (fbp(projections, &grid, &config.fbp_options())?, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_field(e: crate::ReconError) -> String {
        match e {
            crate::ReconError::Invalid { field, .. } => field,
            other => panic!("not an Invalid error: {other}"),
        }
    }

    #[test]
    fn default_is_the_exam_fbp() {
        let c = ReconConfig::default();
        assert_eq!(c.algorithm, Algorithm::Fbp);
        assert_eq!(c.fbp_options(), FbpOptions::default());
        assert_eq!(c.volume_options(), VolumeOptions::default());
        assert_eq!(c.preprocess_options(), PreprocessOptions::default());
        assert!(c.synthetic_2d && c.synthetic_2d_alpha == 0.5);
        c.validate().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = toml::from_str::<ReconConfig>("algorithm = \"sart\"\nslice_thickness = 2.0\n").unwrap_err();
        assert!(err.to_string().contains("slice_thickness"), "{err}");
        let ok: ReconConfig = toml::from_str("algorithm = \"mlem\"\nkernel = \"general\"\nwindow = \"cosine\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((ok.algorithm, ok.kernel, ok.window), (Algorithm::Mlem, KernelPath::General, Window::Cosine));
        assert_eq!(ok.slice_mm, 1.0, "missing keys take their defaults");
        // The default prints as TOML (as in `tomolab exam --print-config`) and reads back unchanged.
        let text = toml::to_string(&ReconConfig::default()).unwrap();
        assert_eq!(toml::from_str::<ReconConfig>(&text).unwrap(), ReconConfig::default(), "{text}");
    }

    #[test]
    fn validate_names_the_field() {
        let cases: [(ReconConfig, &str); 6] = [
            (ReconConfig { slice_mm: 0.0, ..ReconConfig::default() }, "recon.slice_mm"),
            (ReconConfig { voxel_mm: Some(f64::NAN), ..ReconConfig::default() }, "recon.voxel_mm"),
            (ReconConfig { cutoff: -1.0, ..ReconConfig::default() }, "recon.cutoff"),
            (ReconConfig { algorithm: Algorithm::Sart, relaxation: 2.5, ..ReconConfig::default() }, "recon.relaxation"),
            (ReconConfig { algorithm: Algorithm::Mlem, iterations: 0, ..ReconConfig::default() }, "recon.iterations"),
            (ReconConfig { synthetic_2d_alpha: 1.5, ..ReconConfig::default() }, "recon.synthetic_2d_alpha"),
        ];
        for (config, field) in cases {
            assert_eq!(err_field(config.validate().unwrap_err()), field);
        }
        // Iterative settings do not concern FBP.
        ReconConfig { iterations: 0, ..ReconConfig::default() }.validate().unwrap_or_else(|e| panic!("{e}"));
    }
}
