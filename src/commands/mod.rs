//! One module per subcommand: argument struct plus `run`.

pub mod plan;
pub mod presets;
