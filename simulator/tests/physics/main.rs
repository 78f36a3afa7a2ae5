//! Physics checks of the simulator against independent oracles (published HVLs, NIST coefficients,
//! analytic path lengths, numerical integration, noise and MTF models), and the simulated unit through the HAL.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap fixed, known-good inputs

mod attenuation;
mod detector;
mod device;
mod dose;
mod mc;
mod ray_tracer;
mod spectrum;
