//! Integration tests of the firmware bridge: codecs, the virtual device on virtual time, fault injection, the
//! threaded server over a pseudo-terminal and loopback TCP, and the hardware-in-the-loop suite.

#![allow(clippy::unwrap_used)]

mod codec;
mod common;
mod faults;
mod fuzz_modbus;
mod fuzz_serial;
mod hil;
mod modbus_faults;
mod server;
mod session_faults;
mod sim_exam;
mod slow_backend;
