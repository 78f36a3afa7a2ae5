//! # tomolab-simulator: the X-ray physics behind the simulated device
//!
//! This crate turns a phantom (a `u8` label volume and its material table), a tube technique and a view
//! pose into the raw frame a flat-panel detector would return. It is built as a short pipeline of
//! independent stages, each a plain value with a checked constructor, so a test or an experiment can stop
//! at any stage and compare it with an oracle:
//!
//! 1. [`attenuation`]: mass attenuation and energy-absorption coefficients of every material, from the
//!    tables in `data/attenuation/` (NIST-grade, with their provenance), compiled into the binary and parsed
//!    once. Log-log interpolation between grid points, exact jumps at absorption edges. Each table has a
//!    typed [`MaterialId`] (filter layers name their material with it; the HAL's filter materials map to it).
//! 2. [`spectrum`]: the tube output of a W, Mo or Rh target at 20-49 kVp (SpekPy tables in `data/spectra/`),
//!    filtered by any stack of layers (window, filter, paddle, air) with bin-averaged Beer-Lambert
//!    transmission; fluence per mAs at a distance, air kerma per mAs, mean energy, first and second HVL.
//! 3. [`ray_tracer`]: exact voxel traversal (Amanatides-Woo / Siddon) of every detector ray, path length per
//!    material in a stack array, then polyenergetic Beer-Lambert over energy groups weighted by the energy
//!    the detector's conversion layer absorbs. Focal-spot size, pixel aperture and continuous tube motion
//!    are integrated by sampling sub-sources, sub-rays and sub-poses. Rows run in parallel with rayon.
//! 4. [`scatter`]: a scatter-to-primary model against tissue path, glandularity and angle, spread by a broad
//!    kernel; it can be switched off.
//! 5. [`detector`]: presampling blur (configurable MTF), 1x1 or 2x2 binning, Poisson quantum noise,
//!    Gaussian electronic noise, gain, offset, a fixed gain pattern and defective pixels.
//!
//! On top of the pipeline sit the simulated unit and its helpers:
//!
//! 6. [`device`]: every HAL device (tube, gantry with acceleration and speed limit, detector, paddle
//!    compression model, interlocks) on a virtual clock, with configurable fault injection; the detector hands
//!    each frame's beam-on intervals to a [`device::FrameRenderer`], whose failures are typed
//!    ([`device::RenderError`], with a HAL `ErrorKind`). Errors of the devices are [`device::SimDeviceError`];
//!    errors of the physics stages are [`PhysicsError`].
//! 7. [`render`]: the [`device::FrameRenderer`] that runs stages 2-5 on a phantom.
//! 8. [`mc`]: Monte Carlo photon transport (Woodcock tracking in the voxels; photoelectric, Compton with
//!    S(x), Rayleigh with F(x)) with batch statistics, seeded per batch; [`mc::tg195`] is the AAPM TG-195
//!    Case 3 benchmark.
//! 9. [`dose`]: mean glandular dose per view from the Monte Carlo (model breast or phantom) and from the
//!    conversion-factor formalism `K g c s t` (tables in `data/dose/`), and the sequencer's dose model.
//! 10. [`aec`]: the pre-shot AEC's calibration (open-field output per kVp, fat and gland slab attenuation
//!     per thickness, scatter included) measured on the physics renderer.
//!
//! ## Making a frame
//!
//! ```no_run
//! use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion, Target};
//! use tomolab_simulator::{
//!     DetectorModel, FilterLayer, MaterialId, MaterialMap, RayTracer, RayTracerConfig, ScatterModel, Spectrum, VolumeView,
//!     motion_sub_poses,
//! };
//! # fn volume() -> tomolab_phantom::LabelVolume { unimplemented!() }
//! # fn table() -> tomolab_phantom::MaterialTable { unimplemented!() }
//! let filters = [FilterLayer::new(MaterialId::Beryllium, 1.0)?, FilterLayer::new(MaterialId::Rhodium, 0.05)?];
//! let spectrum = Spectrum::new(Target::W, 28.0, &filters, 1000.0)?;
//! let detector = DetectorGeometry {
//!     cols: 512, rows: 256, pitch_u_mm: 0.085, pitch_v_mm: 0.085,
//!     material: DetectorMaterial::ASe, layer_thickness_mm: 0.2,
//! };
//! let arc = ArcGeometry {
//!     source_to_detector_mm: 650.0, rotation_axis_height_mm: 50.0, detector,
//!     detector_motion: DetectorMotion::Stationary,
//! };
//! let (vol, tab) = (volume(), table());
//! let tracer = RayTracer::new(
//!     VolumeView::of(&vol), MaterialMap::of(&tab)?, &spectrum, &detector, RayTracerConfig::default(),
//! )?;
//! let poses = motion_sub_poses(&arc, 10.0, 0.18, 3)?; // continuous motion over 0.18 deg
//! let mut image = tracer.project(&poses, 1.2)?;   // 1.2 mAs
//! ScatterModel::default().apply(&mut image, 50.0, 0.2)?;
//! let frame = DetectorModel::default().read_out(&image, 42)?;
//! # let _ = frame;
//! # Ok::<(), tomolab_simulator::PhysicsError>(())
//! ```
//!
//! ## Determinism
//!
//! Projection is a pure function of its inputs. Every random draw (quantum and electronic noise, the fixed
//! gain pattern, defective pixels) comes from a ChaCha8 stream keyed by a seed and the row index, so the
//! same seed gives the same frame whatever the thread count.
//!
//! ## Units
//!
//! Millimetres, keV, mAs and uGy, with the unit in every name. Checked HAL newtypes are converted at the
//! boundary by the device backends; inside this crate quantities are `f64`.

#![deny(missing_docs)]

pub mod aec;
pub mod anti_scatter;
pub mod attenuation;
pub mod detector;
pub mod device;
pub mod dose;
mod error;
pub mod mc;
pub mod ray_tracer;
pub mod render;
pub mod scatter;
pub mod spectrum;

pub use anti_scatter::AntiScatterGrid;
pub use attenuation::{MassCoefficients, MaterialData, MaterialId, known_materials, material};
pub use detector::{ConversionMtf, DetectorModel};
pub use error::PhysicsError;
pub use ray_tracer::{
    MAX_MATERIALS, MaterialMap, PathLengths, ProjectedImage, RayTracer, RayTracerConfig, TraceStats, VolumeView,
    motion_sub_poses,
};
pub use scatter::ScatterModel;
pub use spectrum::{FilterLayer, Spectrum, SpectrumBin, SpectrumSummary};
