//! The simulated unit: every HAL device, driven only through the HAL traits.
//!
//! One shared state (behind a mutex, so a unit can be served from another thread) holds a virtual clock, the
//! tube, the gantry kinematics, the paddle's compression model and the interlock chain. Time advances by what
//! each action would take on a real unit — tube preparation, motion under an acceleration and speed limit,
//! compression, exposures, readout — so a 25-view sweep runs as fast as the physics computes while recording
//! the timestamps a real sweep would.
//!
//! The detector integrates every beam-on interval between `arm` and `read_frame`, with the gantry's angle at
//! its start and end, and hands them to a [`FrameRenderer`]: the physics (projection, detector model, noise)
//! lives behind that trait. Frames are numbered in readout order and the renderer seeds its noise from that
//! number, so a unit gives the same frames whatever the thread count.
//!
//! Faults are configured by exposure index (0-based, counting every exposure of the exam; with AEC the
//! pre-shot is exposure 0, so view k is exposure k + 1).
//!
//! [`SimUnit::devices`] hands out [`SimDevices`], a [`tomolab_hal::Devices`] and so a [`tomolab_hal::Unit`].
//! Layout: `config` (gantry mechanics, paddle model, fault plan), `motion` (moves and sweeps), `handles` (the
//! HAL traits on the device handles); this file holds the shared state, the unit and the renderer seam.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tomolab_hal::Devices;
use tomolab_hal::devices::{Clock, Frame, InterlockStatus};
use tomolab_hal::technique::Technique;
use tomolab_hal::{DetectorGeometry, Error, ErrorKind};

use crate::error::PhysicsError;

mod config;
mod handles;
mod motion;

pub use config::{FaultPlan, GantryDynamics, PaddleModel, SimConfig};
use motion::Sweep;

/// One beam-on interval as the detector saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOn {
    /// Technique loaded in the tube.
    pub technique: Technique,
    /// Tube voltage actually delivered (lower than set on a kV drop).
    pub kvp: f64,
    /// Delivered current-time product.
    pub mas: f64,
    /// Gantry angle when the beam started, degrees.
    pub angle_start_deg: f64,
    /// Gantry angle when the beam ended, degrees.
    pub angle_end_deg: f64,
}

/// Turns beam-on intervals into detector frames: the physics behind the simulated detector.
pub trait FrameRenderer: Send {
    /// The detector grid of every frame.
    fn geometry(&self) -> DetectorGeometry;
    /// The raw frame integrated over `beams` (empty: a dark frame). `frame_index` seeds the noise.
    fn render(&self, beams: &[BeamOn], frame_index: u64) -> Result<Frame, RenderError>;
    /// The dark-subtracted open-field signal per mAs for `technique`.
    fn flood_per_mas(&self, technique: &Technique) -> Result<Frame, RenderError>;
}

/// Why a [`FrameRenderer`] made no frame; the simulated detector reports it with the same [`ErrorKind`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The physics refused an input (a beam, a geometry or a table): a device fault.
    #[error(transparent)]
    Physics(#[from] PhysicsError),
    /// Any other failure of a renderer, with the kind the HAL should see.
    #[error("{message}")]
    Other {
        /// Generic kind.
        kind: ErrorKind,
        /// Detail.
        message: String,
    },
}

impl Error for RenderError {
    fn kind(&self) -> ErrorKind {
        match self {
            RenderError::Physics(_) => ErrorKind::DeviceFault,
            RenderError::Other { kind, .. } => *kind,
        }
    }
}

/// An error of the simulated unit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("simulated {device}: {message}")]
pub struct SimDeviceError {
    /// Which device.
    pub device: &'static str,
    /// Generic kind.
    pub kind: ErrorKind,
    /// Detail.
    pub message: String,
}

impl Error for SimDeviceError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

fn err<T>(device: &'static str, kind: ErrorKind, message: impl Into<String>) -> Result<T, SimDeviceError> {
    Err(SimDeviceError { device, kind, message: message.into() })
}

impl From<tomolab_hal::UnitError> for SimDeviceError {
    fn from(e: tomolab_hal::UnitError) -> Self {
        Self { device: "unit", kind: ErrorKind::OutOfRange, message: e.to_string() }
    }
}

/// The shared state of a simulated unit.
struct State {
    config: SimConfig,
    renderer: Box<dyn FrameRenderer>,
    now_s: f64,
    chain: InterlockStatus,
    technique: Option<Technique>,
    prepared: bool,
    angle_deg: f64,
    sweep: Option<Sweep>,
    armed: bool,
    beams: Vec<BeamOn>,
    exposures: usize,
    frames: u64,
    force_n: f64,
    drift_pending: bool,
}

impl State {
    fn angle_now(&self) -> f64 {
        self.sweep.map_or(self.angle_deg, |s| s.angle_at(self.now_s))
    }

    fn advance(&mut self, seconds: f64) {
        self.now_s += seconds.max(0.0);
    }

    /// Freeze any sweep at its present angle.
    fn halt(&mut self) {
        self.angle_deg = self.angle_now();
        self.sweep = None;
    }
}

/// A simulated unit: hands out HAL device handles that share one state.
#[derive(Clone)]
pub struct SimUnit {
    shared: Arc<Mutex<State>>,
}

impl core::fmt::Debug for SimUnit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimUnit").finish_non_exhaustive()
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            shared: Arc<Mutex<State>>,
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl $name {
            fn lock(&self) -> MutexGuard<'_, State> {
                // A panic while holding the lock cannot leave the state half-updated in a way that matters
                // more than the panic itself; keep serving.
                self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            }
        }
    };
}
handle!(
    /// Simulated tube and generator.
    SimTube
);
handle!(
    /// Simulated arc gantry.
    SimGantry
);
handle!(
    /// Simulated detector.
    SimDetector
);
handle!(
    /// Simulated compression paddle.
    SimPaddle
);
handle!(
    /// Simulated interlock chain.
    SimInterlocks
);
handle!(
    /// The unit's virtual clock.
    SimClock
);

/// The device set of a simulated unit.
pub type SimDevices = Devices<SimTube, SimGantry, SimDetector, SimPaddle, SimInterlocks>;

impl SimUnit {
    /// A unit with this configuration, rendering frames with `renderer`.
    pub fn new(config: SimConfig, renderer: Box<dyn FrameRenderer>) -> Self {
        let state = State {
            config,
            renderer,
            now_s: 0.0,
            chain: InterlockStatus::ALL_CLEAR,
            technique: None,
            prepared: false,
            angle_deg: 0.0,
            sweep: None,
            armed: false,
            beams: Vec::new(),
            exposures: 0,
            frames: 0,
            force_n: 0.0,
            drift_pending: false,
        };
        Self { shared: Arc::new(Mutex::new(state)) }
    }

    /// HAL device handles.
    pub fn devices(&self) -> SimDevices {
        let s = || self.shared.clone();
        Devices {
            tube: SimTube { shared: s() },
            gantry: SimGantry { shared: s() },
            detector: SimDetector { shared: s() },
            paddle: SimPaddle { shared: s() },
            interlocks: SimInterlocks { shared: s() },
        }
    }

    /// The unit's virtual clock.
    pub fn clock(&self) -> SimClock {
        SimClock { shared: self.shared.clone() }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        // Checked: the clock saturates instead of panicking (issue 14 item 5).
        Duration::try_from_secs_f64(self.lock().now_s.max(0.0)).unwrap_or(Duration::MAX)
    }
}

/// A renderer with no object: every frame is the dark level plus the open-field signal of the beams it saw.
/// For contract tests and protocol work, where the physics does not matter.
#[derive(Debug, Clone, Copy)]
pub struct OpenFieldRenderer {
    /// Detector grid.
    pub detector: DetectorGeometry,
    /// Dark level, counts.
    pub dark_counts: f32,
    /// Open-field signal per mAs, counts.
    pub counts_per_mas: f32,
}

impl FrameRenderer for OpenFieldRenderer {
    fn geometry(&self) -> DetectorGeometry {
        self.detector
    }

    fn render(&self, beams: &[BeamOn], _frame_index: u64) -> Result<Frame, RenderError> {
        let mas: f64 = beams.iter().map(|b| b.mas).sum();
        Ok(Frame::filled(self.detector.cols, self.detector.rows, self.dark_counts + self.counts_per_mas * mas as f32))
    }

    fn flood_per_mas(&self, _technique: &Technique) -> Result<Frame, RenderError> {
        Ok(Frame::filled(self.detector.cols, self.detector.rows, self.counts_per_mas))
    }
}

#[cfg(test)]
mod tests {
    use tomolab_hal::{Detector as _, DetectorMaterial};

    use super::*;

    /// A renderer whose every frame fails with `error`.
    struct Failing(RenderError);

    impl FrameRenderer for Failing {
        fn geometry(&self) -> DetectorGeometry {
            DetectorGeometry {
                cols: 2,
                rows: 2,
                pitch_u_mm: 0.1,
                pitch_v_mm: 0.1,
                material: DetectorMaterial::ASe,
                layer_thickness_mm: 0.2,
            }
        }
        fn render(&self, _beams: &[BeamOn], _frame_index: u64) -> Result<Frame, RenderError> {
            Err(self.0.clone())
        }
        fn flood_per_mas(&self, _technique: &Technique) -> Result<Frame, RenderError> {
            Err(self.0.clone())
        }
    }

    #[test]
    fn render_errors_keep_their_kind_through_the_detector() {
        let cases = [
            (RenderError::Physics(PhysicsError::invalid("beam", "bad")), ErrorKind::DeviceFault),
            (RenderError::Other { kind: ErrorKind::Timeout, message: "slow".into() }, ErrorKind::Timeout),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind);
            let unit = SimUnit::new(SimConfig::new(50.0), Box::new(Failing(error.clone())));
            let mut d = unit.devices();
            d.detector.arm().unwrap();
            let e = d.detector.read_frame().unwrap_err();
            assert_eq!((e.kind(), e.message), (kind, error.to_string()));
        }
    }
}
