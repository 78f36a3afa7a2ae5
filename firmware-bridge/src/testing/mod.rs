//! Test support (feature `testing`): the seeded fault injector and the single-threaded co-simulation of host
//! and device on virtual time. The fault suite runs thousands of exams through them in seconds.

pub mod fault;
pub mod sim;
