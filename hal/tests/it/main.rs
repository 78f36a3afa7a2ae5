//! Integration tests of the HAL: geometry, storage, contracts and the sequencer's safety rules.

mod bundle;
mod contract;
mod geometry;
mod sequencer;
