//! Integration tests of the HAL: geometry, storage, contracts and the sequencer's safety rules.

#![allow(clippy::unwrap_used)]

mod bundle;
mod contract;
mod fuzz;
mod geometry;
mod sequencer;
