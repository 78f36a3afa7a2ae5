//! # tomolab-recon: one reconstruction pipeline for real and simulated acquisitions
//!
//! This crate turns any [`tomolab_hal::Acquisition`] into attenuation slices (1/mm), whatever produced it:
//! the simulator, a real detector through the firmware bridge, or a bundle loaded from disk. It depends on
//! the HAL only; the scanner is known solely through each view's pose (focal spot, detector centre, u and v
//! pixel steps), so measured, tilted, rotating and non-uniform geometries all work the same way.
//!
//! Three families are kept apart, as in astra and RTK:
//!
//! - **geometry** ([`geometry`]): the voxel grid ([`VoxelGrid`], derived by default from the poses and
//!   the compressed thickness: in-plane voxel = pitch at the mid-breast plane, 1 mm slices), the projection
//!   stack ([`Projections`]) and the projective map of each view ([`geometry::ViewMatrix`]);
//! - **projectors** ([`projector`]): the [`ProjectorPair`] trait (`A` / `A^T`) and its voxel-driven
//!   implementations (bilinear splatting with path-length weights, exactly transposed):
//!   [`SeparableProjector`] when the detector is parallel to the slices, [`GeneralProjector`] for any pose;
//! - **algorithms**, each taking projections and a projector ([`fbp_with`], [`sart_with`], [`mlem_with`],
//!   [`fdk_with`]; so a new projector plugs into all of them) or, for short, a grid on which they build
//!   the [`VoxelProjector`]: [`fbp::fbp`] (ramp along u, apodization, slice-thickness filter,
//!   low-frequency floor so large uniform regions come out at their true mu), [`iterative::sart`]
//!   (OS-SART with relaxation and positivity), [`iterative::mlem`], [`fdk::fdk`] for full-circle scans,
//!   and [`synth::synthetic_2d`].
//!
//! On top, [`pipeline::reconstruct`] is the whole reconstruction as one call: an acquisition and a
//! [`ReconConfig`] (serde, unknown keys rejected, the `[recon]` section of `exam.toml`) in, one
//! [`Reconstruction`] (volume, report with timings, optional synthetic 2D) out, for every algorithm.
//! Output files are separate: the [`io::writers::ReconWriter`]s (NRRD, TIFF, PNG previews, synthetic 2D,
//! `recon.json`) take the reconstruction and the acquisition's metadata.
//!
//! Around them: [`preprocess`] (dark/flood, defective-pixel repair, guarded log, crop), [`metrics`] (ASF,
//! MTF, SDNR, RMSE, SSIM) and [`io`] (16-bit TIFF stack, NRRD with spacing and origin, PNG previews with
//! the one windowing rule every tomolab preview uses, [`io::write_preview_png`]).
//!
//! The `clap` feature derives `clap::ValueEnum` on the option enums, so CLIs take them as they are.
//!
//! Numbers are f32 in the hot loops and f64 in geometry; parallelism is rayon over slices (backprojection)
//! or views (forward projection, filtering); inner loops do not allocate. Errors are [`ReconError`] values
//! that name the field at fault; nothing panics on bad input.

#![deny(missing_docs)]

pub mod error;
pub mod fbp;
pub mod fdk;
pub mod geometry;
pub mod io;
pub mod iterative;
pub mod metrics;
pub mod pipeline;
pub mod preprocess;
pub mod projector;
pub mod synth;

pub use error::{ReconError, Result};
pub use fbp::{FbpOptions, Window, fbp, fbp_with};
pub use fdk::{FdkOptions, fdk, fdk_with};
pub use geometry::{Projections, Volume, VolumeOptions, tomosynthesis_grid, validate_grid};
pub use iterative::{IterationReport, MlemOptions, SartOptions, mlem, mlem_with, sart, sart_with};
pub use pipeline::{Algorithm, ReconConfig, ReconReport, Reconstruction, reconstruct};
pub use preprocess::{Crop, DefectRepair, Normalisation, PreprocessOptions, line_integrals};
pub use projector::{GeneralProjector, KernelPath, ProjectorPair, SeparableProjector, ViewWeight, VoxelProjector};
pub use synth::synthetic_2d;
/// The voxel grid of a reconstruction: hal's one grid type, re-exported for the algorithms' callers.
pub use tomolab_hal::VoxelGrid;

/// The default tomosynthesis grid for an acquisition's (preprocessed) projections: see
/// [`tomosynthesis_grid`]. The compressed thickness comes from `meta.compression`.
pub fn tomosynthesis_volume(
    meta: &tomolab_hal::AcquisitionMeta,
    projections: &Projections,
    options: &VolumeOptions,
) -> Result<VoxelGrid> {
    let thickness = meta.compression.map(|c| c.thickness.get());
    tomosynthesis_grid(&projections.detector, &projections.poses, thickness, options)
}
