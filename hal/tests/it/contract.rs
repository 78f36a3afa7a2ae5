//! The backend contract suites, run against the in-memory mock.

use tomolab_hal::XrayTube;
use tomolab_hal::contract;
use tomolab_hal::mock::{MockConfig, MockUnit, mock_technique};

fn unit() -> MockUnit {
    MockUnit::new(MockConfig::default(), vec![])
}

#[test]
fn mock_tube_meets_the_contract() {
    contract::tube_suite(|| unit().devices().tube, &mock_technique(2.0));
}

#[test]
fn mock_gantry_meets_the_contract() {
    contract::gantry_suite(|| unit().devices().gantry, MockConfig::default().angle_limit_deg);
}

#[test]
fn mock_detector_meets_the_contract() {
    contract::detector_suite(|| unit().devices().detector);
    let u = unit();
    let mut devices = u.devices();
    devices.tube.set_technique(&mock_technique(1.0)).unwrap();
    contract::flood_suite(&mut devices.detector);
}

#[test]
fn mock_paddle_meets_the_contract() {
    contract::paddle_suite(|| unit().devices().paddle, MockConfig::default().paddle_force_limit_n);
}

#[test]
fn mock_interlocks_meet_the_contract() {
    contract::interlocks_suite(|| unit().devices().interlocks);
}

#[test]
fn devices_work_through_mutable_borrows() {
    fn arm_and_read<D: tomolab_hal::Detector>(mut d: D) -> usize {
        d.arm().unwrap();
        d.read_frame().unwrap().data.len()
    }
    let u = unit();
    let mut devices = u.devices();
    assert_eq!(arm_and_read(&mut devices.detector), MockConfig::default().detector.pixel_count());
}
