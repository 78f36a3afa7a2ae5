//! Integration tests of the firmware bridge: codecs, the virtual device on virtual time, fault injection, the
//! threaded server over a pseudo-terminal and loopback TCP, and the hardware-in-the-loop suite.

#![allow(clippy::unwrap_used)]

mod codec;
mod common;
mod faults;
mod hil;
mod server;
mod sim_exam;
