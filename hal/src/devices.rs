//! The device traits: one small trait per device, units in the signatures, errors classified by [`ErrorKind`].
//!
//! Traits do I/O only; configuration lives in each backend's constructor. Each trait is implemented for
//! `&mut T`, so generic code can take a device or a borrow of one.
//!
//! [`ErrorKind`]: crate::ErrorKind

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::geometry::DetectorGeometry;
use crate::technique::{ExposureRecord, ExposureRequest, Technique};
use crate::units::{Degrees, Millimetres, Newtons};

/// The X-ray tube and its generator.
pub trait XrayTube {
    /// The backend's error type.
    type Error: Error;

    /// Loads the technique for the following exposures.
    ///
    /// # Contract
    /// Call before [`prepare`](Self::prepare). Rejects a technique the generator cannot deliver with
    /// `OutOfRange`. Clears any previous preparation.
    fn set_technique(&mut self, technique: &Technique) -> Result<(), Self::Error>;

    /// Brings the tube to readiness (rotor up, filament boosted).
    ///
    /// # Contract
    /// Requires a technique. After it, [`expose`](Self::expose) may be called. Backends without a preparation
    /// phase keep the default, which does nothing.
    fn prepare(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Fires one exposure and blocks until it ends.
    ///
    /// # Contract
    /// Requires a prepared tube. The exposure ends at the requested mAs, or earlier on an interlock, switch
    /// release or fault, and never later than `request.backup_time`. The returned record says how it ended; an
    /// `Err` means no beam was produced or the outcome is unknown, which the caller treats as a fault. A caller
    /// never repeats an exposure after an error without first querying the device.
    fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, Self::Error>;

    /// Makes the tube safe: no beam possible until the next technique and preparation.
    ///
    /// # Contract
    /// Callable in any state, idempotent. Used on every abort.
    fn disable(&mut self) -> Result<(), Self::Error>;
}

/// The arc gantry that carries the tube.
pub trait Gantry {
    /// The backend's error type.
    type Error: Error;

    /// Moves to an angle and blocks until the gantry is there and still.
    ///
    /// # Contract
    /// Rejects angles outside the mechanical range with `OutOfRange`. A stall reports `DeviceFault`.
    fn move_to(&mut self, angle: Degrees) -> Result<(), Self::Error>;

    /// Starts a continuous sweep from the current position toward `end` at `speed_deg_per_s`, and returns at once.
    ///
    /// # Contract
    /// Call after [`move_to`](Self::move_to) the start angle. Motion continues until `end` or
    /// [`stop`](Self::stop).
    fn start_sweep(&mut self, end: Degrees, speed_deg_per_s: f64) -> Result<(), Self::Error>;

    /// Blocks until a running sweep reaches `angle`, then returns the position at that moment.
    ///
    /// # Contract
    /// Requires a sweep heading toward `angle`. A stall or an angle the sweep will never reach gives an error
    /// (`DeviceFault` or `Timeout`).
    fn await_angle(&mut self, angle: Degrees) -> Result<Degrees, Self::Error>;

    /// Reports the current angle.
    ///
    /// # Contract
    /// Callable in any state.
    fn position(&mut self) -> Result<Degrees, Self::Error>;

    /// Stops all motion as fast as safely possible.
    ///
    /// # Contract
    /// Callable in any state, idempotent. Used on every abort.
    fn stop(&mut self) -> Result<(), Self::Error>;
}

/// One detector frame: raw values, row-major, `rows` x `cols`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Pixels along u.
    pub cols: usize,
    /// Pixels along v.
    pub rows: usize,
    /// Raw pixel values (detector counts, as read out).
    pub data: Vec<f32>,
}

impl Frame {
    /// A frame filled with one value.
    pub fn filled(cols: usize, rows: usize, value: f32) -> Self {
        Self { cols, rows, data: vec![value; cols * rows] }
    }

    /// Mean of all pixels.
    pub fn mean(&self) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().map(|&v| f64::from(v)).sum::<f64>() / self.data.len() as f64
    }
}

/// The flat-panel detector.
pub trait Detector {
    /// The backend's error type.
    type Error: Error;

    /// The pixel grid as currently configured (including binning).
    ///
    /// # Contract
    /// Pure: no I/O. Every frame this detector returns has this size.
    fn geometry(&self) -> DetectorGeometry;

    /// Clears the panel and opens the integration window for the next frame.
    ///
    /// # Contract
    /// Must precede every exposure whose frame is wanted. Reports `NotReady` if the panel cannot be armed.
    fn arm(&mut self) -> Result<(), Self::Error>;

    /// Reads out the frame integrated since [`arm`](Self::arm).
    ///
    /// # Contract
    /// Requires an armed panel; disarms it. Without an exposure in between, the result is a dark frame.
    /// A missing frame reports `Timeout`.
    fn read_frame(&mut self) -> Result<Frame, Self::Error>;

    /// The open-field (flood) signal per mAs for the technique now loaded in the tube, dark-subtracted.
    ///
    /// With it, `-ln((raw - dark) / (flood * view_mas))` is each pixel's line integral of attenuation.
    ///
    /// # Contract
    /// Callable when not armed, after the tube's technique is set. Same size as every other frame.
    fn flood_frame(&mut self) -> Result<Frame, Self::Error>;

    /// Closes the integration window without reading out.
    ///
    /// # Contract
    /// Callable in any state, idempotent. Used on every abort.
    fn disarm(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Paddle force and the compressed thickness it produces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Compression {
    /// Force on the breast.
    pub force: Newtons,
    /// Paddle-to-support distance (the compressed breast thickness).
    pub thickness: Millimetres,
}

/// The powered compression paddle.
pub trait CompressionPaddle {
    /// The backend's error type.
    type Error: Error;

    /// Compresses until the force reaches `target` (or the paddle stops), and reports the result.
    ///
    /// # Contract
    /// `target` must not exceed the paddle's powered-compression limit (`OutOfRange`). Blocks until motion ends.
    fn compress(&mut self, target: Newtons) -> Result<Compression, Self::Error>;

    /// Reads the present force and thickness.
    ///
    /// # Contract
    /// Callable in any state.
    fn state(&mut self) -> Result<Compression, Self::Error>;

    /// Releases compression (automatic after a scan, and on every abort).
    ///
    /// # Contract
    /// Callable in any state, idempotent; afterwards the force is zero.
    fn release(&mut self) -> Result<(), Self::Error>;
}

/// A snapshot of the hardware interlock chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterlockStatus {
    /// The room door is closed.
    pub door_closed: bool,
    /// The emergency stop is not pressed.
    pub emergency_stop_clear: bool,
    /// The operator holds the hold-to-run exposure switch.
    pub exposure_switch_held: bool,
    /// The detector reports ready.
    pub detector_ready: bool,
    /// The control link's heartbeat is alive.
    pub link_alive: bool,
}

/// One interlock of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interlock {
    /// Room door.
    Door,
    /// Emergency stop.
    EmergencyStop,
    /// Hold-to-run exposure switch.
    ExposureSwitch,
    /// Detector ready.
    DetectorReady,
    /// Link heartbeat.
    LinkHeartbeat,
}

impl InterlockStatus {
    /// All interlocks closed and the switch held.
    pub const ALL_CLEAR: Self = Self {
        door_closed: true,
        emergency_stop_clear: true,
        exposure_switch_held: true,
        detector_ready: true,
        link_alive: true,
    };

    /// The first open interlock, in order of severity, or `None` if exposure is permitted.
    pub fn first_open(&self) -> Option<Interlock> {
        [
            (self.emergency_stop_clear, Interlock::EmergencyStop),
            (self.door_closed, Interlock::Door),
            (self.link_alive, Interlock::LinkHeartbeat),
            (self.detector_ready, Interlock::DetectorReady),
            (self.exposure_switch_held, Interlock::ExposureSwitch),
        ]
        .into_iter()
        .find_map(|(ok, which)| (!ok).then_some(which))
    }
}

/// The interlock chain.
pub trait Interlocks {
    /// The backend's error type.
    type Error: Error;

    /// Reads every interlock at once.
    ///
    /// # Contract
    /// Callable in any state; must reflect the hardware at the moment of the call.
    fn status(&mut self) -> Result<InterlockStatus, Self::Error>;
}

/// A source of time for timestamps: the wall clock, or a simulator's virtual clock.
pub trait Clock {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The host's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self { origin: std::time::Instant::now() }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

macro_rules! forward_mut {
    ($trait:ident { $($(#[$m:meta])* fn $f:ident(&mut self $(, $a:ident : $t:ty)*) -> $r:ty;)* }) => {
        impl<T: $trait + ?Sized> $trait for &mut T {
            type Error = T::Error;
            $(fn $f(&mut self $(, $a: $t)*) -> $r { (**self).$f($($a),*) })*
        }
    };
}

forward_mut!(XrayTube {
    fn set_technique(&mut self, technique: &Technique) -> Result<(), Self::Error>;
    fn prepare(&mut self) -> Result<(), Self::Error>;
    fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, Self::Error>;
    fn disable(&mut self) -> Result<(), Self::Error>;
});
forward_mut!(Gantry {
    fn move_to(&mut self, angle: Degrees) -> Result<(), Self::Error>;
    fn start_sweep(&mut self, end: Degrees, speed_deg_per_s: f64) -> Result<(), Self::Error>;
    fn await_angle(&mut self, angle: Degrees) -> Result<Degrees, Self::Error>;
    fn position(&mut self) -> Result<Degrees, Self::Error>;
    fn stop(&mut self) -> Result<(), Self::Error>;
});
forward_mut!(CompressionPaddle {
    fn compress(&mut self, target: Newtons) -> Result<Compression, Self::Error>;
    fn state(&mut self) -> Result<Compression, Self::Error>;
    fn release(&mut self) -> Result<(), Self::Error>;
});
forward_mut!(Interlocks {
    fn status(&mut self) -> Result<InterlockStatus, Self::Error>;
});

impl<T: Detector + ?Sized> Detector for &mut T {
    type Error = T::Error;
    fn geometry(&self) -> DetectorGeometry {
        (**self).geometry()
    }
    fn arm(&mut self) -> Result<(), Self::Error> {
        (**self).arm()
    }
    fn read_frame(&mut self) -> Result<Frame, Self::Error> {
        (**self).read_frame()
    }
    fn flood_frame(&mut self) -> Result<Frame, Self::Error> {
        (**self).flood_frame()
    }
    fn disarm(&mut self) -> Result<(), Self::Error> {
        (**self).disarm()
    }
}
