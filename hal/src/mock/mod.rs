//! An in-memory backend for every device trait, with scripted faults and a full log of what happened.
//!
//! All five devices share one state, so the mock can behave as one unit would: the detector integrates the
//! tube's mAs, the generator's hardware interlock blocks the beam when the chain is open, and losing the link
//! takes the tube to its safe state. Time is virtual: exposures and motion advance a shared clock.
//!
//! Like a real generator, the mock never lets a beam outlast its backup time: an exposure that would, ends at
//! the backup time with the mAs delivered by then and is recorded as ended by the backup timer. Every time
//! computed from a caller's value (exposure time, move time, the wait for an angle at a given sweep speed) is
//! converted checked: one that is not representable is an `OutOfRange` error, never a panic.
//!
//! Faults are scheduled by device-call index: at the start of the n-th call to any device, the faults
//! scheduled for n take effect. Interlock faults change the chain at once; the others arm a one-shot
//! failure that the next matching call consumes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::devices::{
    Clock, Compression, CompressionPaddle, Detector, Frame, Gantry, InterlockStatus, Interlocks, XrayTube,
};
use crate::error::{Error, ErrorKind};
use crate::geometry::{DetectorGeometry, DetectorMaterial};
use crate::technique::{ExposureEnd, ExposureRecord, ExposureRequest, Technique};
use crate::unit::Devices;
use crate::units::{Degrees, Kilovolts, MilliampereSeconds, Millimetres, Newtons};

mod devices;

/// A fault the mock can inject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MockFault {
    /// The next exposure fails with a generator error (no beam).
    TubeError,
    /// The next exposure is cut short by a kV drop (tube arc).
    KvDrop,
    /// The next exposure runs until the backup timer ends it.
    BackupOverrun,
    /// The next frame readout times out (a dropped frame).
    DetectorTimeout,
    /// The next gantry motion stalls.
    GantryStall,
    /// The next compression command faults.
    PaddleError,
    /// The compression force drifts by this many newtons (seen at the next force reading).
    ForceDrift(f64),
    /// The emergency stop is pressed.
    EmergencyStop,
    /// The room door opens.
    DoorOpen,
    /// The operator releases the hold-to-run switch.
    SwitchRelease,
    /// The operator releases the switch during the next exposure.
    SwitchReleaseDuringExposure,
    /// The control link is lost; the device side makes the tube safe.
    LinkLoss,
}

/// A fault and the device-call index at which it takes effect (1 = the first call).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduledFault {
    /// Call index.
    pub at_call: usize,
    /// The fault.
    pub fault: MockFault,
}

/// Fixed behaviour of the mock unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MockConfig {
    /// Detector grid.
    pub detector: DetectorGeometry,
    /// Dark level, counts.
    pub dark_counts: f32,
    /// Open-field signal per mAs, counts.
    pub counts_per_mas: f32,
    /// Mechanical limit of the gantry, degrees either side of 0.
    pub angle_limit_deg: f64,
    /// The paddle's own powered-compression limit, N.
    pub paddle_force_limit_n: f64,
    /// Uncompressed breast thickness, mm.
    pub uncompressed_thickness_mm: f64,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            detector: DetectorGeometry {
                cols: 8,
                rows: 6,
                pitch_u_mm: 1.0,
                pitch_v_mm: 1.0,
                material: DetectorMaterial::ASe,
                layer_thickness_mm: 0.2,
            },
            dark_counts: 50.0,
            counts_per_mas: 100.0,
            angle_limit_deg: 60.0,
            paddle_force_limit_n: 200.0,
            uncompressed_thickness_mm: 70.0,
        }
    }
}

/// One call to `expose`, with the unit's state when it was made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExposureEvent {
    /// Call index.
    pub call: usize,
    /// Gantry angle when the beam started, degrees.
    pub angle_deg: f64,
    /// The request.
    pub request: ExposureRequest,
    /// The outcome, if any (None for an `Err`).
    pub record: Option<ExposureRecord>,
    /// Detector armed when called.
    pub detector_armed: bool,
    /// Gantry positioned for this exposure (a move or await completed since the last exposure).
    pub positioned: bool,
    /// The caller had prepared the tube (and not disabled it) when it called.
    pub prepared: bool,
    /// `disable` had been called before.
    pub after_disable: bool,
    /// The interlocks were read after the gantry reached this exposure's position.
    pub status_polled_after_positioning: bool,
    /// The force was read after the gantry reached this exposure's position.
    pub force_polled_after_positioning: bool,
    /// The most recent interlock reading (before this call) was all clear.
    pub last_status_clear: bool,
    /// The most recent force reading (before this call), N.
    pub last_force_read_n: f64,
    /// The true force when the beam would start, N.
    pub force_n: f64,
    /// The true interlock chain was clear when the beam would start.
    pub chain_clear: bool,
    /// A frame was read out successfully after this exposure.
    pub frame_read: bool,
}

/// The shared state and log of a mock unit.
#[derive(Debug)]
pub struct MockState {
    /// Fixed behaviour.
    pub config: MockConfig,
    faults: Vec<ScheduledFault>,
    /// Device calls so far.
    pub calls: usize,
    /// Virtual time.
    pub now: Duration,
    /// Interlock chain.
    pub chain: InterlockStatus,
    technique: Option<Technique>,
    /// Tube prepared (beam possible).
    pub prepared: bool,
    /// The caller has prepared the tube since its last technique change or disable (the device may still
    /// have made itself safe since, e.g. on link loss).
    pub prepared_by_caller: bool,
    /// `disable` has been called.
    pub disabled_once: bool,
    /// Gantry angle, degrees.
    pub angle_deg: f64,
    sweep: Option<(f64, f64)>,
    /// Gantry in motion (a sweep running).
    pub moving: bool,
    positioned: bool,
    status_polled: bool,
    force_polled: bool,
    /// Detector armed.
    pub armed: bool,
    integrated_mas: f64,
    /// Compression force, N.
    pub force_n: f64,
    drift_n: f64,
    pending: Vec<MockFault>,
    /// Every force ever commanded, N.
    pub commanded_forces_n: Vec<f64>,
    /// Every force reading returned, N.
    pub force_readings_n: Vec<f64>,
    /// Every interlock reading returned.
    pub status_readings: Vec<InterlockStatus>,
    /// Every exposure call.
    pub exposures: Vec<ExposureEvent>,
    /// Frames successfully read (not counting flood).
    pub frames_read: usize,
    /// Number of calls that returned `Err`.
    pub errors_returned: usize,
    /// Faults that have taken effect, in order.
    pub faults_fired: Vec<MockFault>,
}

impl MockState {
    fn tick(&mut self) {
        self.calls += 1;
        let now = self.calls;
        let due: Vec<MockFault> = self.faults.iter().filter(|f| f.at_call == now).map(|f| f.fault).collect();
        for fault in due {
            self.faults_fired.push(fault);
            match fault {
                MockFault::EmergencyStop => self.chain.emergency_stop_clear = false,
                MockFault::DoorOpen => self.chain.door_closed = false,
                MockFault::SwitchRelease => self.chain.exposure_switch_held = false,
                MockFault::LinkLoss => {
                    self.chain.link_alive = false;
                    self.prepared = false;
                }
                MockFault::ForceDrift(n) => self.drift_n += n,
                other => self.pending.push(other),
            }
        }
    }

    fn take(&mut self, fault: MockFault) -> bool {
        match self.pending.iter().position(|&f| f == fault) {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    fn thickness_mm(&self) -> f64 {
        // Thickness falls with force and levels off.
        let t0 = self.config.uncompressed_thickness_mm;
        t0 * (0.6 + 0.4 * (-self.force_n / 60.0).exp())
    }

    fn compression(&self) -> Result<Compression, MockError> {
        Ok(Compression {
            force: Newtons::new(self.force_n.clamp(0.0, Newtons::MAX))?,
            thickness: Millimetres::new(self.thickness_mm())?,
        })
    }
}

/// Errors of the mock backend.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mock {kind}: {message}")]
pub struct MockError {
    /// Generic kind.
    pub kind: ErrorKind,
    /// Detail.
    pub message: String,
}

impl Error for MockError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<crate::units::UnitError> for MockError {
    fn from(e: crate::units::UnitError) -> Self {
        Self { kind: ErrorKind::OutOfRange, message: e.to_string() }
    }
}

fn fail<T>(state: &mut MockState, kind: ErrorKind, message: &str) -> Result<T, MockError> {
    state.errors_returned += 1;
    Err(MockError { kind, message: message.into() })
}

/// A checked seconds-to-`Duration` conversion: a negative, non-finite or unrepresentable time (a speed of
/// 1e-300 deg/s makes an await last 1e300 s) is an `OutOfRange` error naming `what`, never a panic.
fn checked_secs(state: &mut MockState, seconds: f64, what: &str) -> Result<Duration, MockError> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if state.now.checked_add(d).is_some() => Ok(d),
        _ => fail(state, ErrorKind::OutOfRange, &format!("{what}: {seconds} s is not a representable duration")),
    }
}

/// A mock unit: hands out device handles that share one state.
#[derive(Debug, Clone)]
pub struct MockUnit {
    shared: Rc<RefCell<MockState>>,
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            shared: Rc<RefCell<MockState>>,
        }
    };
}
handle!(
    /// Mock tube handle.
    MockTube
);
handle!(
    /// Mock gantry handle.
    MockGantry
);
handle!(
    /// Mock detector handle.
    MockDetector
);
handle!(
    /// Mock paddle handle.
    MockPaddle
);
handle!(
    /// Mock interlock-chain handle.
    MockInterlocks
);
handle!(
    /// The mock's virtual clock.
    MockClock
);

/// The device set of a mock unit.
pub type MockDevices = Devices<MockTube, MockGantry, MockDetector, MockPaddle, MockInterlocks>;

impl MockUnit {
    /// A mock unit with this configuration and fault schedule.
    pub fn new(config: MockConfig, faults: Vec<ScheduledFault>) -> Self {
        let state = MockState {
            config,
            faults,
            calls: 0,
            now: Duration::ZERO,
            chain: InterlockStatus::ALL_CLEAR,
            technique: None,
            prepared: false,
            prepared_by_caller: false,
            disabled_once: false,
            angle_deg: 0.0,
            sweep: None,
            moving: false,
            positioned: false,
            status_polled: false,
            force_polled: false,
            armed: false,
            integrated_mas: 0.0,
            force_n: 0.0,
            drift_n: 0.0,
            pending: Vec::new(),
            commanded_forces_n: Vec::new(),
            force_readings_n: Vec::new(),
            status_readings: Vec::new(),
            exposures: Vec::new(),
            frames_read: 0,
            errors_returned: 0,
            faults_fired: Vec::new(),
        };
        Self { shared: Rc::new(RefCell::new(state)) }
    }

    /// Device handles sharing this unit's state.
    pub fn devices(&self) -> MockDevices {
        let s = || self.shared.clone();
        Devices {
            tube: MockTube { shared: s() },
            gantry: MockGantry { shared: s() },
            detector: MockDetector { shared: s() },
            paddle: MockPaddle { shared: s() },
            interlocks: MockInterlocks { shared: s() },
        }
    }

    /// The unit's virtual clock.
    pub fn clock(&self) -> MockClock {
        MockClock { shared: self.shared.clone() }
    }

    /// Runs `f` on the state (for assertions and for scripting the chain by hand).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut MockState) -> R) -> R {
        f(&mut self.shared.borrow_mut())
    }
}

/// A manual technique the mock accepts: W/Rh 28 kV, 100 mA, `mas` per view.
pub fn mock_technique(mas: f64) -> Technique {
    use crate::technique::{Filter, FilterMaterial, FocalSpot, Target};
    Technique {
        kvp: Kilovolts(28.0),
        tube_current: crate::units::Milliamperes(100.0),
        mas_per_view: MilliampereSeconds(mas.clamp(0.0, MilliampereSeconds::MAX)),
        target: Target::W,
        filter: Filter { material: FilterMaterial::Rh, thickness_mm: 0.05 },
        focal_spot: FocalSpot::Large,
    }
}
