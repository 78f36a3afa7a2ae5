//! A simulated exam end to end: phantom, simulated unit, AEC, sequencer, and what it leaves on disk.
//!
//! - [`aec_survey`]: the AEC over a grid of breasts (`tomolab aec-table`);
//! - [`config`]: [`ExamConfig`], every knob, `exam.toml` and its validation;
//! - [`prepare`]: the configuration built into an [`ExamProtocol`] and, for a simulated exam, the
//!   [`PreparedExam`]'s simulated unit;
//! - [`protocol`]: the exam as a value, `protocol.run(&mut unit, &clock)` on any [`tomolab_hal::Unit`];
//! - [`mod@print`]: `--print-config`, every key (unset ones commented);
//! - [`outputs`]: the bundle, previews, ground truth, summary and dose report on disk;
//! - [`dose_match`]: a manual technique that books the same dose as another exam (DBT against 2D).

pub mod aec_survey;
pub mod config;
pub mod dose_match;
pub mod outputs;
pub mod prepare;
pub mod print;
pub mod protocol;

pub use config::{
    ConfigError, ExamConfig, GeometryOverrides, MAX_HISTORIES_PER_VIEW, MAX_MEMORY_BYTES, MAX_PITCH_MM, MAX_SECONDS,
    MAX_VIEWS, MIN_PITCH_MM, PhysicsConfig, Resolution, ResourceEstimate, SafetyConfig, TechniqueConfig,
};
pub use outputs::{write_outputs, write_processed_2d};
pub use prepare::{PreparedExam, prepare_exam, prepare_protocol, run_exam};
pub use print::printed_config;
pub use protocol::{ExamDose, ExamOutcome, ExamProtocol, ExamSummary};
