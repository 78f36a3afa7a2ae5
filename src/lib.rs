//! # tomolab: the command-line application's library
//!
//! The binary's subcommands are thin; what they share lives here. [`exam`] runs a simulated DBT exam end to
//! end (phantom, simulated unit, AEC, safety sequencer) and writes the acquisition bundle, previews, ground
//! truth and summary, and can run the same plan against any other HAL backend. [`dose_report`] turns an
//! acquisition into its per-view mean glandular dose report (Monte Carlo on the phantom, and the formalism).

#![deny(missing_docs)]

pub mod dose_report;
pub mod exam;
