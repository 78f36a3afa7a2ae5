//! Shared helpers: the reference plan, the direct mock exam, and a bridged exam over the simulated links.

use std::time::Duration;

use tomolab_firmware_bridge::device::DeviceConfig;
use tomolab_firmware_bridge::host::backend::{
    BridgeDetector, BridgeGantry, BridgeInterlocks, BridgePaddle, BridgeTube, MotionConfig, share_bus, share_client,
};
use tomolab_firmware_bridge::host::client::{ControlClient, LinkConfig};
use tomolab_firmware_bridge::host::framesource::StreamFrameSource;
use tomolab_firmware_bridge::testing::sim::LoopbackUnit;
use tomolab_hal::mock::{MockConfig, MockDevices, MockUnit, mock_technique};
use tomolab_hal::sequencer::{FixedDoseRate, SafetyLimits, Sequencer};
use tomolab_hal::{Acquisition, ExamPlan, MilliGray, Newtons, PresetName, ScanPreset, SystemClock, TechniqueMode};
use tomolab_hal::{Devices, Unit};

/// The mock's simulated unit.
pub type MockSim = LoopbackUnit<MockDevices>;

/// The wide-angle reference plan with the mock's technique.
pub fn wide_angle_plan() -> ExamPlan {
    let preset = ScanPreset::builtin(PresetName::WideAngle);
    ExamPlan::from_preset(
        &preset,
        TechniqueMode::Manual { technique: mock_technique(1.0) },
        Newtons::new(100.0).unwrap(),
        MilliGray::new(3.0).unwrap(),
    )
    .unwrap()
}

/// Dose model of the tests.
pub const DOSE: FixedDoseRate = FixedDoseRate { mgd_per_mas: 0.05 };

/// Runs an exam on any devices.
pub fn run_exam<U: Unit>(devices: &mut U) -> Acquisition {
    let mut seq = Sequencer::new(SafetyLimits::default()).unwrap();
    seq.run(devices, &wide_angle_plan(), &DOSE, None, &SystemClock::default()).unwrap()
}

/// The same exam straight on the mock.
pub fn direct_exam() -> Acquisition {
    let unit = MockUnit::new(MockConfig::default(), vec![]);
    run_exam(&mut unit.devices())
}

/// The acquisition with its timestamps zeroed (start time, per-view times).
pub fn without_timestamps(mut a: Acquisition) -> Acquisition {
    a.meta.started_unix_ms = 0;
    for v in &mut a.meta.views {
        v.time_since_start = Duration::ZERO;
    }
    a
}

/// Link timing of the simulated tests (virtual time).
pub fn sim_link() -> LinkConfig {
    LinkConfig {
        command_timeout: Duration::from_millis(20),
        retries: 3,
        heartbeat_interval: Duration::from_millis(10),
        frame_timeout: Duration::from_millis(20),
    }
}

/// Device timing of the simulated tests (virtual time).
pub fn sim_device() -> DeviceConfig {
    DeviceConfig {
        link_timeout: Duration::from_millis(60),
        heartbeat_interval: Duration::from_millis(10),
        ..DeviceConfig::default()
    }
}

/// Bridge devices over simulated links, with the serial and frame transports passed through `wrap_serial` and
/// `wrap_frames`.
#[allow(clippy::type_complexity)]
pub fn sim_bridge<S, R>(
    sim: &MockSim,
    serial: S,
    frames: R,
) -> Result<
    Devices<
        BridgeTube<S, tomolab_firmware_bridge::testing::sim::VirtualClock>,
        BridgeGantry<tomolab_firmware_bridge::testing::sim::SimBus<MockDevices>>,
        BridgeDetector<
            S,
            tomolab_firmware_bridge::testing::sim::VirtualClock,
            StreamFrameSource<R, tomolab_firmware_bridge::testing::sim::VirtualClock>,
        >,
        BridgePaddle<tomolab_firmware_bridge::testing::sim::SimBus<MockDevices>>,
        BridgeInterlocks<S, tomolab_firmware_bridge::testing::sim::VirtualClock>,
    >,
    tomolab_firmware_bridge::BridgeError,
>
where
    S: std::io::Read + std::io::Write,
    R: std::io::Read,
{
    let client = share_client(ControlClient::new(serial, sim.clock(), sim_link()));
    let bus = share_bus(sim.bus());
    let motion = MotionConfig { retries: 0, ..MotionConfig::default() };
    Ok(Devices {
        tube: BridgeTube::new(client.clone()),
        gantry: BridgeGantry::new(bus.clone(), motion),
        detector: BridgeDetector::new(client.clone(), StreamFrameSource::new(frames, sim.clock()))?,
        paddle: BridgePaddle::new(bus, motion),
        interlocks: BridgeInterlocks::new(client),
    })
}

/// A fresh mock unit and its simulated virtual device.
pub fn mock_sim(faults: Vec<tomolab_hal::mock::ScheduledFault>) -> (MockUnit, MockSim) {
    mock_sim_with(faults, sim_device())
}

/// A fresh mock unit and its simulated virtual device with this configuration.
pub fn mock_sim_with(faults: Vec<tomolab_hal::mock::ScheduledFault>, config: DeviceConfig) -> (MockUnit, MockSim) {
    let unit = MockUnit::new(MockConfig::default(), faults);
    let sim = LoopbackUnit::new(unit.devices(), config, Duration::from_millis(1));
    (unit, sim)
}

/// The device in service mode (no compression interlock), for the HAL's tube contract suite, which exposes a
/// bare tube.
pub fn service_mode_device() -> DeviceConfig {
    DeviceConfig { compression_window_n: None, ..sim_device() }
}

/// Every HAL contract suite against fresh bridge devices from `make`, with the mock unit's limits.
pub fn contract_suites<U: Unit + 'static>(mut make: impl FnMut() -> U) {
    use tomolab_hal::contract;
    // Each suite takes one device by value; a unit's parts are borrowed, so each fresh unit lives to the end of
    // the test process (a handful of small values).
    let mut fresh = || Box::leak(Box::new(make())).parts();
    contract::tube_suite(|| fresh().tube, &mock_technique(2.0));
    contract::gantry_suite(|| fresh().gantry, MockConfig::default().angle_limit_deg);
    contract::detector_suite(|| fresh().detector);
    contract::paddle_suite(|| fresh().paddle, MockConfig::default().paddle_force_limit_n);
    contract::interlocks_suite(|| fresh().interlocks);
    let d = fresh();
    tomolab_hal::XrayTube::set_technique(d.tube, &mock_technique(1.0)).unwrap();
    contract::flood_suite(d.detector);
}

/// Compresses the mock's paddle directly (the device's compression interlock then lets exposures fire).
pub fn compress_backend(unit: &MockUnit) {
    use tomolab_hal::CompressionPaddle;
    unit.devices().paddle.compress(Newtons::new(100.0).unwrap()).unwrap();
}

/// Serving on a new pty and loopback TCP (ports picked by the system), with this device behaviour.
pub fn loopback_serve(device: DeviceConfig) -> tomolab_firmware_bridge::device::server::ServeConfig {
    use tomolab_firmware_bridge::device::server::{SerialEndpoint, ServeConfig};
    let loopback = Some("127.0.0.1:0".parse().expect("loopback address"));
    ServeConfig { serial: SerialEndpoint::Pty, modbus: loopback, modbus_rtu_over_tcp: None, frames: loopback, device }
}
