//! One module per subcommand: argument struct plus `run`.

pub mod attenuation;
pub mod device;
pub mod dose;
pub mod exam;
pub mod metrics;
pub mod phantom;
pub mod plan;
pub mod presets;
pub mod recon;
pub mod spectrum;
