//! # tomolab-hal: the hardware abstraction layer of a tomosynthesis unit
//!
//! This crate is the contract between acquisition code and whatever produces X-ray images: the physics
//! simulator, the firmware bridge to a real gantry, or an in-memory test double. It holds:
//!
//! - [`units`]: checked newtypes (kV, mAs, mA, N, mm, degrees, mGy) for everything that bears on dose or safety;
//! - [`grid`]: the voxel grid every volume (phantom, dose phantom, reconstruction) lives on;
//! - [`geometry`] and [`presets`]: per-view poses (source, detector centre, u/v pixel steps) computed from an
//!   arc gantry's constants, and the five reference scanners;
//! - [`devices`]: one small trait per device (tube, gantry, detector, paddle, interlocks), each error mapped to a
//!   shared [`ErrorKind`] so generic code can act on it without knowing the backend;
//! - [`acquisition`] and [`bundle`]: the exam plan, the acquisition record, and its on-disk form (JSON metadata
//!   plus NumPy arrays, checksummed) that a physicist can open without our code; [`journal`] streams each
//!   view to disk as it arrives, so a killed exam leaves a partial bundle that loads;
//! - [`preview`]: the one windowing rule and PNG writer of every preview;
//! - [`aec`]: automatic exposure control from a pre-shot, driven by a backend-supplied calibration;
//! - [`sequencer`]: the exam state machine, generic over the device traits, which enforces the safety rules
//!   whatever the backend does;
//! - [`unit`](mod@unit): the five devices of one unit as one type ([`Unit`]), so generic code names one parameter;
//! - `contract` and `mock` (feature `testing`): the behaviour every backend must show, as reusable test
//!   suites, and an in-memory backend with scripted faults that runs them. A build without the feature does
//!   not ship them.
//!
//! Nothing here knows whether it drives a simulator or hardware.

#![deny(missing_docs)]

pub mod acquisition;
pub mod aec;
pub mod bundle;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod devices;
pub mod error;
pub mod geometry;
pub mod grid;
pub mod journal;
#[cfg(any(test, feature = "testing"))]
pub mod mock;
pub mod presets;
pub mod preview;
pub mod sequencer;
pub(crate) mod serde_duration;
pub mod technique;
pub mod unit;
pub mod units;

pub use acquisition::{Acquisition, AcquisitionMeta, ExamPlan, ExamStatus, TechniqueMode, ViewRecord};
pub use devices::{
    Clock, Compression, CompressionPaddle, Detector, Frame, Gantry, Interlock, InterlockStatus, Interlocks,
    SystemClock, XrayTube,
};
pub use error::{Error, ErrorKind};
pub use geometry::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion, Vec3, ViewPose};
pub use grid::VoxelGrid;
pub use presets::{PresetName, ScanPreset};
pub use technique::{
    ExposureEnd, ExposureRecord, ExposureRequest, Filter, FilterMaterial, FocalSpot, Target, Technique,
};
pub use unit::{Devices, Parts, Unit};
pub use units::{Degrees, Kilovolts, MilliGray, MilliampereSeconds, Milliamperes, Millimetres, Newtons, UnitError};
