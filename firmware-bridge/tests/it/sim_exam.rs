//! The bridge against the virtual device on virtual time: contract suites and the full exam, bit for bit.

use tomolab_hal::XrayTube;
use tomolab_hal::mock::{MockConfig, mock_technique};

use crate::common::*;

#[test]
fn bridged_wide_angle_exam_matches_the_direct_mock_exam_bit_for_bit() {
    let (_unit, sim) = mock_sim(vec![]);
    let mut devices = sim_bridge(&sim, sim.serial(), sim.frame_stream()).unwrap();
    let bridged = run_exam(&mut devices);
    assert!(bridged.is_complete(), "{:?}", bridged.meta.status);
    assert_eq!(bridged.frames.len(), 25);
    assert_eq!(without_timestamps(bridged), without_timestamps(direct_exam()));
}

#[test]
fn contract_suites_pass_over_the_simulated_links() {
    let make = || {
        let (_u, sim) = mock_sim_with(vec![], service_mode_device());
        sim_bridge(&sim, sim.serial(), sim.frame_stream()).unwrap()
    };
    contract_suites(make);
}

#[test]
fn device_goes_safe_when_the_host_heartbeat_stops() {
    use std::time::Duration;
    use tomolab_hal::{CompressionPaddle, Degrees, Gantry, Newtons};
    let (unit, sim) = mock_sim(vec![]);
    let mut d = sim_bridge(&sim, sim.serial(), sim.frame_stream()).unwrap();
    d.paddle.compress(Newtons::new(100.0).unwrap()).unwrap();
    d.tube.set_technique(&mock_technique(1.0)).unwrap();
    d.tube.prepare().unwrap();
    d.gantry.move_to(Degrees::new(-20.0).unwrap()).unwrap();
    d.gantry.start_sweep(Degrees::new(20.0).unwrap(), 10.0).unwrap();
    assert!(unit.with_state(|s| s.prepared && s.force_n > 0.0 && s.moving));
    sim.idle(Duration::from_millis(200));
    assert!(unit.with_state(|s| !s.prepared && s.force_n == 0.0 && !s.moving), "device did not go safe");
    assert!(!sim.with_device(|dev| dev.session_open()));
}

#[test]
fn a_protocol_major_mismatch_is_refused() {
    use std::time::Duration;
    use tomolab_firmware_bridge::device::DeviceConfig;
    use tomolab_firmware_bridge::host::client::ControlClient;
    use tomolab_firmware_bridge::protocol::wire::PROTOCOL_MAJOR;
    use tomolab_firmware_bridge::testing::sim::LoopbackUnit;
    use tomolab_hal::mock::MockUnit;
    let unit = MockUnit::new(MockConfig::default(), vec![]);
    let sim = LoopbackUnit::new(
        unit.devices(),
        DeviceConfig { protocol_major: PROTOCOL_MAJOR + 1, ..sim_device() },
        Duration::from_millis(1),
    );
    let mut client = ControlClient::new(sim.serial(), sim.clock(), sim_link());
    let err = client.handshake().unwrap_err();
    assert_eq!(err.kind, tomolab_hal::ErrorKind::Refused, "{err}");
}

/// Loses everything the device sends once, when armed.
struct LoseNextAnswer<S> {
    inner: S,
    armed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<S: std::io::Read> std::io::Read for LoseNextAnswer<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.armed.replace(false) {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "lost"));
        }
        Ok(n)
    }
}

impl<S: std::io::Write> std::io::Write for LoseNextAnswer<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_lost_exposure_answer_is_queried_never_resent() {
    use std::time::Duration;
    use tomolab_firmware_bridge::host::client::ControlClient;
    use tomolab_hal::ExposureRequest;
    let (unit, sim) = mock_sim(vec![]);
    compress_backend(&unit);
    let armed = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut client =
        ControlClient::new(LoseNextAnswer { inner: sim.serial(), armed: armed.clone() }, sim.clock(), sim_link());
    client.request(&tomolab_firmware_bridge::protocol::message::Request::SetTechnique(mock_technique(1.0))).unwrap();
    client.request(&tomolab_firmware_bridge::protocol::message::Request::Prepare).unwrap();
    let request = ExposureRequest { mas: mock_technique(1.0).mas_per_view, backup_time: Duration::from_millis(11) };
    armed.set(true);
    let record = client.expose(&request).unwrap();
    assert_eq!(record.mas.get(), 1.0);
    assert_eq!(client.stats().exposure_queries, 1, "the outcome must come from QUERY_EXPOSURE");
    assert_eq!(unit.with_state(|s| s.exposures.len()), 1, "the exposure fired more than once");
}
