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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tomolab_hal::Devices;
use tomolab_hal::devices::{
    Clock, Compression, CompressionPaddle, Detector, Frame, Gantry, InterlockStatus, Interlocks, XrayTube,
};
use tomolab_hal::technique::{ExposureEnd, ExposureRecord, ExposureRequest, Technique};
use tomolab_hal::units::{Degrees, Kilovolts, MilliampereSeconds, Millimetres, Newtons};
use tomolab_hal::{DetectorGeometry, Error, ErrorKind};

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
    fn render(&self, beams: &[BeamOn], frame_index: u64) -> Result<Frame, String>;
    /// The dark-subtracted open-field signal per mAs for `technique`.
    fn flood_per_mas(&self, technique: &Technique) -> Result<Frame, String>;
}

/// Gantry mechanics.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GantryDynamics {
    /// Mechanical limit either side of 0 deg.
    pub limit_deg: f64,
    /// Speed limit, deg/s.
    pub max_speed_deg_per_s: f64,
    /// Acceleration (and deceleration), deg/s^2.
    pub acceleration_deg_per_s2: f64,
}

impl Default for GantryDynamics {
    fn default() -> Self {
        Self { limit_deg: 30.0, max_speed_deg_per_s: 15.0, acceleration_deg_per_s2: 30.0 }
    }
}

/// Compression paddle model: thickness falls exponentially with force toward the compressed thickness.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaddleModel {
    /// Thickness the breast levels off at under firm compression, mm (the phantom's thickness).
    pub compressed_thickness_mm: f64,
    /// Thickness with no force, mm.
    pub uncompressed_thickness_mm: f64,
    /// Force scale of the exponential, N: at 5x this force the breast is within 1% of its compressed thickness.
    pub force_scale_n: f64,
    /// The paddle's powered-compression limit, N.
    pub powered_limit_n: f64,
    /// Powered compression speed, N/s.
    pub force_rate_n_per_s: f64,
}

impl PaddleModel {
    /// A model that levels off at `compressed_thickness_mm`.
    pub fn for_thickness(compressed_thickness_mm: f64) -> Self {
        Self {
            compressed_thickness_mm,
            uncompressed_thickness_mm: compressed_thickness_mm * 1.4,
            force_scale_n: 15.0,
            powered_limit_n: 200.0,
            force_rate_n_per_s: 20.0,
        }
    }

    /// Thickness at `force_n`, mm.
    pub fn thickness_mm(&self, force_n: f64) -> f64 {
        let (tc, t0) = (self.compressed_thickness_mm, self.uncompressed_thickness_mm);
        tc + (t0 - tc) * (-force_n.max(0.0) / self.force_scale_n).exp()
    }
}

/// Faults to inject, each at an exposure index (0-based, counting every exposure including an AEC pre-shot).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The tube arcs during this exposure: it ends early as a fault.
    pub tube_arc_at: Option<usize>,
    /// The kV drops during this exposure: it ends early as a fault at reduced kV.
    pub kv_drop_at: Option<usize>,
    /// The frame of this exposure is lost (readout times out).
    pub dropped_frame_at: Option<usize>,
    /// The gantry motor stalls on its way to this exposure.
    pub motor_stall_at: Option<usize>,
    /// The compression force drifts by `force_drift_n` after this exposure.
    pub force_drift_at: Option<usize>,
    /// Drift of the compression force, N (used with `force_drift_at`).
    pub force_drift_n: f64,
    /// The emergency stop is pressed during this exposure.
    pub emergency_stop_at: Option<usize>,
    /// The operator releases the exposure switch during this exposure.
    pub switch_release_at: Option<usize>,
}

/// Fixed configuration of a simulated unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Gantry mechanics.
    pub gantry: GantryDynamics,
    /// Paddle model.
    pub paddle: PaddleModel,
    /// Accepted tube voltage range, kV.
    pub kvp_range: (f64, f64),
    /// Tube preparation (rotor and filament) time.
    pub prep_time: Duration,
    /// Detector readout time.
    pub readout_time: Duration,
    /// Faults to inject.
    pub faults: FaultPlan,
}

impl SimConfig {
    /// A mammography unit compressing to `compressed_thickness_mm`, with no faults.
    pub fn new(compressed_thickness_mm: f64) -> Self {
        Self {
            gantry: GantryDynamics::default(),
            paddle: PaddleModel::for_thickness(compressed_thickness_mm),
            kvp_range: (20.0, 49.0),
            prep_time: Duration::from_millis(800),
            readout_time: Duration::from_millis(100),
            faults: FaultPlan::default(),
        }
    }
}

/// An error of the simulated unit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("simulated {device}: {message}")]
pub struct SimError {
    /// Which device.
    pub device: &'static str,
    /// Generic kind.
    pub kind: ErrorKind,
    /// Detail.
    pub message: String,
}

impl Error for SimError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

fn err<T>(device: &'static str, kind: ErrorKind, message: impl Into<String>) -> Result<T, SimError> {
    Err(SimError { device, kind, message: message.into() })
}

impl From<tomolab_hal::UnitError> for SimError {
    fn from(e: tomolab_hal::UnitError) -> Self {
        Self { device: "unit", kind: ErrorKind::OutOfRange, message: e.to_string() }
    }
}

/// Trapezoidal (or triangular) motion from rest to rest over `distance`, deg.
fn move_time_s(distance: f64, g: &GantryDynamics) -> f64 {
    let (v, a) = (g.max_speed_deg_per_s, g.acceleration_deg_per_s2);
    let d = distance.abs();
    if d <= v * v / a { 2.0 * (d / a).sqrt() } else { d / v + v / a }
}

/// A continuous sweep: accelerate from rest at `from`, cruise at `speed`, decelerate to rest at `to`.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    from: f64,
    to: f64,
    speed: f64,
    accel: f64,
    t0: f64,
}

impl Sweep {
    fn dir(&self) -> f64 {
        if self.to >= self.from { 1.0 } else { -1.0 }
    }

    /// Distance covered while accelerating (and, symmetrically, decelerating), deg; and the peak speed reached.
    fn ramp(&self) -> (f64, f64) {
        let total = (self.to - self.from).abs();
        let ramp = self.speed * self.speed / (2.0 * self.accel);
        if 2.0 * ramp <= total { (ramp, self.speed) } else { (total / 2.0, (total * self.accel).sqrt()) }
    }

    /// Angle at absolute time `t` seconds.
    fn angle_at(&self, t: f64) -> f64 {
        let (ramp, peak) = self.ramp();
        let total = (self.to - self.from).abs();
        let ta = peak / self.accel;
        let tc = (total - 2.0 * ramp) / peak;
        let s = (t - self.t0).max(0.0);
        let d = if s <= ta {
            0.5 * self.accel * s * s
        } else if s <= ta + tc {
            ramp + peak * (s - ta)
        } else {
            let r = (s - ta - tc).min(ta);
            ramp + peak * tc + peak * r - 0.5 * self.accel * r * r
        };
        self.from + self.dir() * d.min(total)
    }

    /// Absolute time at which the sweep reaches `angle`, or `None` if it never does.
    fn time_of(&self, angle: f64) -> Option<f64> {
        let total = (self.to - self.from).abs();
        let d = (angle - self.from) * self.dir();
        if !(-1e-9..=total + 1e-9).contains(&d) {
            return None;
        }
        let d = d.clamp(0.0, total);
        let (ramp, peak) = self.ramp();
        let ta = peak / self.accel;
        let tc = (total - 2.0 * ramp) / peak;
        let s = if d <= ramp {
            (2.0 * d / self.accel).sqrt()
        } else if d <= total - ramp {
            ta + (d - ramp) / peak
        } else {
            let rem = total - d;
            ta + tc + ta - (2.0 * rem / self.accel).sqrt()
        };
        Some(self.t0 + s)
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

    /// Sets the interlock chain (operator actions outside the fault plan, e.g. in tests).
    pub fn set_interlocks(&self, chain: InterlockStatus) {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).chain = chain;
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        // Checked: the clock saturates instead of panicking (issue 14 item 5).
        Duration::try_from_secs_f64(self.lock().now_s.max(0.0)).unwrap_or(Duration::MAX)
    }
}

impl XrayTube for SimTube {
    type Error = SimError;

    fn set_technique(&mut self, technique: &Technique) -> Result<(), SimError> {
        let mut s = self.lock();
        let (lo, hi) = s.config.kvp_range;
        let kv = technique.kvp.get();
        if !(lo..=hi).contains(&kv) {
            return err("tube", ErrorKind::OutOfRange, format!("{} outside {lo}..={hi} kV", technique.kvp));
        }
        s.technique = Some(*technique);
        s.prepared = false;
        Ok(())
    }

    fn prepare(&mut self) -> Result<(), SimError> {
        let mut s = self.lock();
        if s.technique.is_none() {
            return err("tube", ErrorKind::NotReady, "no technique loaded");
        }
        let prep = s.config.prep_time.as_secs_f64();
        s.advance(prep);
        s.prepared = true;
        Ok(())
    }

    fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, SimError> {
        let mut s = self.lock();
        let Some(technique) = s.technique.filter(|_| s.prepared) else {
            return err("tube", ErrorKind::NotReady, "tube not prepared");
        };
        let index = s.exposures;
        s.exposures += 1;
        let faults = s.config.faults;
        let at = |f: Option<usize>| f == Some(index);
        let ma = technique.tube_current.get();
        let requested = request.mas.get();
        let backup_mas = ma * request.backup_time.as_secs_f64();
        let (fraction, end, kvp) = if s.chain.first_open().is_some() {
            let end = if s.chain.exposure_switch_held { ExposureEnd::Interlock } else { ExposureEnd::OperatorRelease };
            (0.0, end, technique.kvp.get())
        } else if at(faults.tube_arc_at) {
            (0.35, ExposureEnd::Fault, technique.kvp.get())
        } else if at(faults.kv_drop_at) {
            (0.6, ExposureEnd::Fault, technique.kvp.get() * 0.8)
        } else if at(faults.emergency_stop_at) {
            s.chain.emergency_stop_clear = false;
            (0.5, ExposureEnd::Interlock, technique.kvp.get())
        } else if at(faults.switch_release_at) {
            s.chain.exposure_switch_held = false;
            (0.5, ExposureEnd::OperatorRelease, technique.kvp.get())
        } else {
            (1.0, ExposureEnd::Planned, technique.kvp.get())
        };
        let mut mas = requested * fraction;
        let mut end = end;
        if mas > backup_mas {
            mas = backup_mas;
            end = ExposureEnd::BackupTimer;
        }
        let angle_start = s.angle_now();
        let duration_s = mas / ma;
        // Checked, and never past the backup time (float rounding of mas / ma could add a nanosecond).
        let Ok(duration) = Duration::try_from_secs_f64(duration_s).map(|d| d.min(request.backup_time)) else {
            return err("tube", ErrorKind::OutOfRange, format!("exposure time {duration_s} s is not representable"));
        };
        s.advance(duration_s);
        let angle_end = s.angle_now();
        if s.armed && mas > 0.0 {
            s.beams.push(BeamOn { technique, kvp, mas, angle_start_deg: angle_start, angle_end_deg: angle_end });
        }
        if at(faults.force_drift_at) {
            s.drift_pending = true;
        }
        Ok(ExposureRecord { kvp: Kilovolts::new(kvp)?, mas: MilliampereSeconds::new(mas)?, duration, end })
    }

    fn disable(&mut self) -> Result<(), SimError> {
        self.lock().prepared = false;
        Ok(())
    }
}

impl Gantry for SimGantry {
    type Error = SimError;

    fn move_to(&mut self, angle: Degrees) -> Result<(), SimError> {
        let mut s = self.lock();
        let g = s.config.gantry;
        if angle.get().abs() > g.limit_deg {
            return err("gantry", ErrorKind::OutOfRange, format!("{angle} beyond the +-{} deg limit", g.limit_deg));
        }
        s.halt();
        if s.config.faults.motor_stall_at == Some(s.exposures) {
            return err("gantry", ErrorKind::DeviceFault, "motor stall");
        }
        let t = move_time_s(angle.get() - s.angle_deg, &g);
        s.advance(t);
        s.angle_deg = angle.get();
        Ok(())
    }

    fn start_sweep(&mut self, end: Degrees, speed_deg_per_s: f64) -> Result<(), SimError> {
        let mut s = self.lock();
        let g = s.config.gantry;
        if end.get().abs() > g.limit_deg {
            return err(
                "gantry",
                ErrorKind::OutOfRange,
                format!("sweep end {end} beyond the +-{} deg limit", g.limit_deg),
            );
        }
        if !(speed_deg_per_s.is_finite() && speed_deg_per_s > 0.0 && speed_deg_per_s <= g.max_speed_deg_per_s) {
            return err(
                "gantry",
                ErrorKind::OutOfRange,
                format!("sweep speed {speed_deg_per_s} deg/s outside (0, {}]", g.max_speed_deg_per_s),
            );
        }
        s.halt();
        s.sweep = Some(Sweep {
            from: s.angle_deg,
            to: end.get(),
            speed: speed_deg_per_s,
            accel: g.acceleration_deg_per_s2,
            t0: s.now_s,
        });
        Ok(())
    }

    fn await_angle(&mut self, angle: Degrees) -> Result<Degrees, SimError> {
        let mut s = self.lock();
        let Some(sweep) = s.sweep else {
            return err("gantry", ErrorKind::NotReady, "no sweep running");
        };
        if s.config.faults.motor_stall_at == Some(s.exposures) {
            s.halt();
            return err("gantry", ErrorKind::DeviceFault, "motor stall");
        }
        match sweep.time_of(angle.get()) {
            // A sweep so slow that the angle is reached only after an unrepresentable time (1e-300 deg/s) is out
            // of range, not a panic in the clock (issue 14 item 5).
            Some(t) if Duration::try_from_secs_f64(t).is_err() => {
                err("gantry", ErrorKind::OutOfRange, format!("the sweep would reach {angle} only after {t} s"))
            }
            Some(t) if t >= s.now_s - 1e-9 => {
                s.now_s = s.now_s.max(t);
                Ok(Degrees::new(s.angle_now())?)
            }
            _ => err("gantry", ErrorKind::Timeout, format!("the sweep will not reach {angle}")),
        }
    }

    fn position(&mut self) -> Result<Degrees, SimError> {
        let s = self.lock();
        Ok(Degrees::new(s.angle_now())?)
    }

    fn stop(&mut self) -> Result<(), SimError> {
        self.lock().halt();
        Ok(())
    }
}

impl Detector for SimDetector {
    type Error = SimError;

    fn geometry(&self) -> DetectorGeometry {
        self.lock().renderer.geometry()
    }

    fn arm(&mut self) -> Result<(), SimError> {
        let mut s = self.lock();
        s.armed = true;
        s.beams.clear();
        Ok(())
    }

    fn read_frame(&mut self) -> Result<Frame, SimError> {
        let mut s = self.lock();
        if !s.armed {
            return err("detector", ErrorKind::NotReady, "detector not armed");
        }
        s.armed = false;
        let readout = s.config.readout_time.as_secs_f64();
        s.advance(readout);
        let last_exposure = s.exposures.checked_sub(1);
        if !s.beams.is_empty() && last_exposure.is_some() && s.config.faults.dropped_frame_at == last_exposure {
            return err("detector", ErrorKind::Timeout, "frame lost in readout");
        }
        let index = s.frames;
        s.frames += 1;
        let beams = std::mem::take(&mut s.beams);
        s.renderer.render(&beams, index).or_else(|e| err("detector", ErrorKind::DeviceFault, e))
    }

    fn flood_frame(&mut self) -> Result<Frame, SimError> {
        let s = self.lock();
        if s.armed {
            return err("detector", ErrorKind::NotReady, "detector armed");
        }
        let Some(technique) = s.technique else {
            return err("detector", ErrorKind::NotReady, "no technique loaded: the flood depends on the beam");
        };
        s.renderer.flood_per_mas(&technique).or_else(|e| err("detector", ErrorKind::DeviceFault, e))
    }

    fn disarm(&mut self) -> Result<(), SimError> {
        let mut s = self.lock();
        s.armed = false;
        s.beams.clear();
        Ok(())
    }
}

impl SimPaddle {
    fn compression(s: &State) -> Result<Compression, SimError> {
        Ok(Compression {
            force: Newtons::new(s.force_n.clamp(0.0, Newtons::MAX))?,
            thickness: Millimetres::new(s.config.paddle.thickness_mm(s.force_n))?,
        })
    }
}

impl CompressionPaddle for SimPaddle {
    type Error = SimError;

    fn compress(&mut self, target: Newtons) -> Result<Compression, SimError> {
        let mut s = self.lock();
        let p = s.config.paddle;
        if target.get() > p.powered_limit_n {
            return err(
                "paddle",
                ErrorKind::OutOfRange,
                format!("{target} above the powered limit {} N", p.powered_limit_n),
            );
        }
        let t = (target.get() - s.force_n).abs() / p.force_rate_n_per_s;
        s.advance(t);
        s.force_n = target.get();
        Self::compression(&s)
    }

    fn state(&mut self) -> Result<Compression, SimError> {
        let mut s = self.lock();
        if s.drift_pending && s.force_n > 0.0 {
            s.drift_pending = false;
            s.force_n = (s.force_n + s.config.faults.force_drift_n).max(0.0);
        }
        Self::compression(&s)
    }

    fn release(&mut self) -> Result<(), SimError> {
        let mut s = self.lock();
        s.force_n = 0.0;
        s.drift_pending = false;
        Ok(())
    }
}

impl Interlocks for SimInterlocks {
    type Error = SimError;

    fn status(&mut self) -> Result<InterlockStatus, SimError> {
        Ok(self.lock().chain)
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

    fn render(&self, beams: &[BeamOn], _frame_index: u64) -> Result<Frame, String> {
        let mas: f64 = beams.iter().map(|b| b.mas).sum();
        Ok(Frame::filled(self.detector.cols, self.detector.rows, self.dark_counts + self.counts_per_mas * mas as f32))
    }

    fn flood_per_mas(&self, _technique: &Technique) -> Result<Frame, String> {
        Ok(Frame::filled(self.detector.cols, self.detector.rows, self.counts_per_mas))
    }
}
