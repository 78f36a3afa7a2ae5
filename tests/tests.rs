//! End-to-end tests of the `tomolab` binary and the whole chain. One test binary; modules inside.

#![allow(clippy::unwrap_used)]

mod aec;
mod cli;
mod dicom;
mod exam;
mod exam_cli;
mod exam_config;
mod lesions;
mod silent;
mod support;
