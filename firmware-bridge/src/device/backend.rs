//! The backend half of the virtual device: the one place that calls the HAL backend.
//!
//! The protocol half ([`super::DeviceProtocol`]) turns every request that needs the backend into a [`Job`];
//! [`DeviceBackend::run`] executes it on the [`Unit`] and returns an [`Outcome`], which the protocol half then
//! applies to its state and answers. Jobs carry everything they need (values decoded and range-checked by the
//! protocol half), so they can run on another thread: the server runs them on a worker while the protocol
//! thread keeps the link alive; the single-threaded harness runs them inline.

use tomolab_hal::{
    CompressionPaddle, Degrees, Detector, DetectorGeometry, Error, ExposureRecord, ExposureRequest, Frame, Gantry,
    InterlockStatus, Interlocks, Newtons, Technique, Unit, XrayTube,
};

use crate::error::kind_code;
use crate::protocol::message::error_code;
use crate::protocol::regs::*;

/// A backend error as it goes on the wire: code and text.
pub type WireError = (u8, String);

fn wire<E: Error>(e: &E) -> WireError {
    (kind_code(e.kind()), e.to_string())
}

/// One backend call, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// `XrayTube::set_technique`.
    SetTechnique(Technique),
    /// `XrayTube::prepare`.
    Prepare,
    /// The compression-window check (if any), then `XrayTube::expose`.
    Expose {
        /// The exposure.
        request: ExposureRequest,
        /// Force window (N) the paddle must read for the beam to fire.
        window: Option<(f64, f64)>,
    },
    /// `XrayTube::disable`.
    Disable,
    /// `Interlocks::status`.
    Interlocks,
    /// `Detector::geometry`.
    DetectorGeometry,
    /// `Detector::arm`.
    Arm,
    /// `Detector::disarm`.
    Disarm,
    /// `Detector::read_frame`.
    ReadFrame,
    /// `Detector::flood_frame`.
    FloodFrame,
    /// Samples the live Modbus registers: gantry position and/or paddle state.
    Sample {
        /// Read the gantry position.
        gantry: bool,
        /// Read the paddle state.
        paddle: bool,
    },
    /// A gantry command (register values already decoded and checked).
    Gantry {
        /// Command code (`GANTRY_CMD_*`).
        command: u16,
        /// Target angle (not for STOP).
        target: Option<Degrees>,
        /// Sweep speed, deg/s.
        speed: f64,
    },
    /// A paddle command.
    Paddle {
        /// Command code (`PADDLE_CMD_*`).
        command: u16,
        /// Compression target (COMPRESS only).
        target: Option<Newtons>,
    },
    /// Tube disabled, motion stopped, detector disarmed, paddle released; every step attempted.
    GoSafe,
}

/// What a [`Job`] returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A call without a value.
    Done(Result<(), WireError>),
    /// An exposure: `fired` tells whether `expose` was called (the compression check passed).
    Exposed {
        /// The backend's `expose` was called.
        fired: bool,
        /// Its record, or why there was no beam.
        result: Result<ExposureRecord, WireError>,
    },
    /// The interlock chain.
    Interlocks(Result<InterlockStatus, WireError>),
    /// The detector geometry.
    Geometry(DetectorGeometry),
    /// A frame.
    Frame(Result<Frame, WireError>),
    /// Live register values; `None` when a device could not be read.
    Sample(Option<Live>),
    /// A motion command's result (error kind code on failure) and its value (reached angle, or compression
    /// force and thickness).
    Motion(Result<MotionValue, u16>),
}

/// Live register values sampled from the backend; `None` where not asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Live {
    /// Gantry angle, deg.
    pub angle_deg: Option<f64>,
    /// Paddle force (N) and thickness (mm).
    pub paddle: Option<(f64, f64)>,
}

/// The value a motion command leaves in its result registers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MotionValue {
    /// Nothing new.
    None,
    /// AWAIT: the angle reached, deg.
    Angle(f64),
    /// COMPRESS: force N and thickness mm reached.
    Compression(f64, f64),
}

/// The backend half: owns the unit and executes jobs on it.
#[derive(Debug)]
pub struct DeviceBackend<U> {
    unit: U,
}

impl<U: Unit> DeviceBackend<U> {
    /// Serves this unit.
    pub fn new(unit: U) -> Self {
        Self { unit }
    }

    /// The unit.
    pub fn unit_mut(&mut self) -> &mut U {
        &mut self.unit
    }

    /// Tube disabled, motion stopped, detector disarmed, paddle released; every step attempted.
    pub fn go_safe(&mut self) {
        let d = self.unit.parts();
        let _ = d.tube.disable();
        let _ = d.gantry.stop();
        let _ = d.detector.disarm();
        let _ = d.paddle.release();
    }

    /// Executes one job.
    pub fn run(&mut self, job: &Job) -> Outcome {
        let d = self.unit.parts();
        let done = |r: Result<(), _>| Outcome::Done(r.map_err(|e| wire(&e)));
        match job {
            Job::SetTechnique(t) => done(d.tube.set_technique(t)),
            Job::Prepare => done(d.tube.prepare()),
            Job::Expose { request, window } => self.expose(request, *window),
            Job::Disable => done(d.tube.disable()),
            Job::Interlocks => Outcome::Interlocks(d.interlocks.status().map_err(|e| wire(&e))),
            Job::DetectorGeometry => Outcome::Geometry(d.detector.geometry()),
            Job::Arm => Outcome::Done(d.detector.arm().map_err(|e| wire(&e))),
            Job::Disarm => Outcome::Done(d.detector.disarm().map_err(|e| wire(&e))),
            Job::ReadFrame => Outcome::Frame(d.detector.read_frame().map_err(|e| wire(&e))),
            Job::FloodFrame => Outcome::Frame(d.detector.flood_frame().map_err(|e| wire(&e))),
            Job::Sample { gantry, paddle } => {
                let angle = match gantry {
                    true => d.gantry.position().ok().map(|a| Some(a.get())),
                    false => Some(None),
                };
                let comp = match paddle {
                    true => d.paddle.state().ok().map(|c| Some((c.force.get(), c.thickness.get()))),
                    false => Some(None),
                };
                Outcome::Sample(angle.zip(comp).map(|(angle_deg, paddle)| Live { angle_deg, paddle }))
            }
            Job::Gantry { command, target, speed } => {
                let g = d.gantry;
                let r = match (*command, *target) {
                    (GANTRY_CMD_MOVE, Some(a)) => g.move_to(a).map(|()| MotionValue::None),
                    (GANTRY_CMD_SWEEP, Some(a)) => g.start_sweep(a, *speed).map(|()| MotionValue::None),
                    (GANTRY_CMD_AWAIT, Some(a)) => g.await_angle(a).map(|x| MotionValue::Angle(x.get())),
                    _ => g.stop().map(|()| MotionValue::None),
                };
                Outcome::Motion(r.map_err(|e| u16::from(kind_code(e.kind()))))
            }
            Job::Paddle { command, target } => {
                let p = d.paddle;
                let r = match (*command, target) {
                    (PADDLE_CMD_COMPRESS, Some(f)) => {
                        p.compress(*f).map(|c| MotionValue::Compression(c.force.get(), c.thickness.get()))
                    }
                    _ => p.release().map(|()| MotionValue::None),
                };
                Outcome::Motion(r.map_err(|e| u16::from(kind_code(e.kind()))))
            }
            Job::GoSafe => {
                self.go_safe();
                Outcome::Done(Ok(()))
            }
        }
    }

    /// The compression window, then the beam.
    fn expose(&mut self, request: &ExposureRequest, window: Option<(f64, f64)>) -> Outcome {
        let d = self.unit.parts();
        if let Some((lo, hi)) = window {
            let no_beam = |m: String| Outcome::Exposed { fired: false, result: Err((error_code::NO_COMPRESSION, m)) };
            let force = match d.paddle.state() {
                Ok(c) => c.force.get(),
                Err(e) => return no_beam(format!("expose: compression force unreadable ({e}); no beam")),
            };
            if !(force.is_finite() && (lo..=hi).contains(&force)) {
                return no_beam(format!(
                    "expose: compression force {force} N outside the exposure window {lo}..={hi} N; no beam"
                ));
            }
        }
        Outcome::Exposed { fired: true, result: d.tube.expose(request).map_err(|e| wire(&e)) }
    }
}
