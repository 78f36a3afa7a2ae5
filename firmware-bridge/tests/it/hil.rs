//! The hardware-in-the-loop suite, one for both targets. With `TOMOLAB_HIL_SERIAL`, `TOMOLAB_HIL_MODBUS` and
//! `TOMOLAB_HIL_FRAMES` set it drives the device they name; otherwise it starts the virtual device on a
//! pseudo-terminal and loopback TCP. See `docs/hil.md`.

use tomolab_firmware_bridge::device::server::ServerHandle;
use tomolab_firmware_bridge::host::backend::{Endpoints, MotionConfig, connect};
use tomolab_hal::{CompressionPaddle, Degrees, Detector, Gantry, Interlocks, Newtons};

use crate::common::run_exam;
use crate::server::{endpoints, real_link, start_mock_server};

fn target() -> (Endpoints, Option<ServerHandle>) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("TOMOLAB_HIL_SERIAL"), var("TOMOLAB_HIL_MODBUS"), var("TOMOLAB_HIL_FRAMES")) {
        (Some(serial), Some(modbus), Some(frames)) => {
            let modbus = modbus.parse().expect("TOMOLAB_HIL_MODBUS must be HOST:PORT");
            let frames = frames.parse().expect("TOMOLAB_HIL_FRAMES must be HOST:PORT");
            (Endpoints { serial, modbus, frames }, None)
        }
        _ => {
            let h = start_mock_server();
            (endpoints(&h), Some(h))
        }
    }
}

#[test]
fn hil_links_come_up_and_answer() {
    let (ep, _server) = target();
    let (mut d, _hb) = connect(&ep, real_link(), MotionConfig::default()).expect("connect to the device");
    let status = d.interlocks.status().expect("interlocks");
    assert!(status.link_alive, "the device reports its link down: {status:?}");
    let g = d.detector.geometry();
    g.validate().expect("detector geometry");
    d.gantry.move_to(Degrees::new(5.0).unwrap()).expect("gantry move");
    let p = d.gantry.position().expect("gantry position").get();
    assert!((p - 5.0).abs() < 0.1, "gantry at {p} deg after move_to 5 deg");
    d.gantry.move_to(Degrees::new(0.0).unwrap()).expect("gantry home");
    let c = d.paddle.compress(Newtons::new(60.0).unwrap()).expect("paddle compress");
    assert!(c.force.get() > 0.0);
    d.paddle.release().expect("paddle release");
    d.detector.arm().expect("detector arm");
    let dark = d.detector.read_frame().expect("dark frame over the frame stream");
    assert_eq!(dark.data.len(), g.pixel_count());
}

#[test]
fn hil_wide_angle_exam_completes() {
    let (ep, _server) = target();
    let (mut d, _hb) = connect(&ep, real_link(), MotionConfig::default()).expect("connect to the device");
    let acq = run_exam(&mut d);
    assert!(acq.is_complete(), "exam did not complete: {:?}", acq.meta.status);
    assert_eq!(acq.frames.len(), 25);
    assert!(acq.meta.safe_state_errors.is_empty(), "{:?}", acq.meta.safe_state_errors);
}
