//! The Modbus register map of the gantry motion controller and the compression paddle (see `docs/modbus.md`).
//!
//! Addresses are 0-based PDU addresses of holding registers (function codes 03, 06, 16; 04 reads the same
//! map). Multi-register values are big-endian: the most significant word first. Doubles are IEEE-754 binary64
//! in four registers; they carry the exact values the bridge uses. Scaled integers are for simple clients and
//! displays.

/// Gantry angle, i32 in millidegrees, two registers (read-only; reading samples the position).
pub const GANTRY_ANGLE_MDEG: u16 = 0;
/// Gantry angle, f64 degrees, four registers (read-only; reading samples the position).
pub const GANTRY_ANGLE_DEG: u16 = 2;
/// Gantry command status bits (read-only): see [`STATUS_BUSY`], [`STATUS_DONE`], [`STATUS_FAULT`].
pub const GANTRY_STATUS: u16 = 6;
/// Gantry error code of the last command, an ErrorKind code (0 = none; read-only).
pub const GANTRY_ERROR: u16 = 7;
/// Gantry commands completed, wrapping counter (read-only).
pub const GANTRY_COUNT: u16 = 8;
/// Angle returned by the last AWAIT command, f64 degrees (read-only).
pub const GANTRY_RESULT_DEG: u16 = 10;
/// Command parameter: target / sweep end / awaited angle, f64 degrees (read-write).
pub const GANTRY_TARGET_DEG: u16 = 16;
/// Command parameter: sweep speed, f64 degrees per second (read-write).
pub const GANTRY_SPEED: u16 = 20;
/// Gantry command register (read-write; writing runs the command): see [`GANTRY_CMD_MOVE`] and following.
pub const GANTRY_COMMAND: u16 = 24;
/// One past the last gantry register.
pub const GANTRY_END: u16 = 25;

/// Move to the target angle and stop there.
pub const GANTRY_CMD_MOVE: u16 = 1;
/// Start a sweep toward the target angle at the speed.
pub const GANTRY_CMD_SWEEP: u16 = 2;
/// Wait until the running sweep reaches the target angle.
pub const GANTRY_CMD_AWAIT: u16 = 3;
/// Stop all motion.
pub const GANTRY_CMD_STOP: u16 = 4;

/// Slowest sweep the controller accepts, degrees per second (slower: exception 03).
pub const MIN_SWEEP_SPEED: f64 = 0.001;
/// Fastest sweep the controller accepts, degrees per second (faster: exception 03).
pub const MAX_SWEEP_SPEED: f64 = 100.0;

/// Paddle force, u16 in 0.1 N (read-only; reading samples force and thickness).
pub const PADDLE_FORCE_DN: u16 = 100;
/// Paddle thickness, u16 in 0.01 mm (read-only; reading samples force and thickness).
pub const PADDLE_THICKNESS_CMM: u16 = 101;
/// Paddle force, f64 newtons (read-only; reading samples).
pub const PADDLE_FORCE_N: u16 = 102;
/// Compressed thickness, f64 millimetres (read-only; reading samples).
pub const PADDLE_THICKNESS_MM: u16 = 106;
/// Paddle command status bits (read-only).
pub const PADDLE_STATUS: u16 = 110;
/// Paddle error code of the last command (read-only).
pub const PADDLE_ERROR: u16 = 111;
/// Paddle commands completed, wrapping counter (read-only).
pub const PADDLE_COUNT: u16 = 112;
/// Command parameter: target force, f64 newtons (read-write).
pub const PADDLE_TARGET_N: u16 = 116;
/// Paddle command register (read-write; writing runs the command).
pub const PADDLE_COMMAND: u16 = 120;
/// Force reached by the last COMPRESS, f64 newtons (read-only).
pub const PADDLE_RESULT_FORCE_N: u16 = 124;
/// Thickness reached by the last COMPRESS, f64 millimetres (read-only).
pub const PADDLE_RESULT_THICKNESS_MM: u16 = 128;
/// One past the last paddle register.
pub const PADDLE_END: u16 = 132;

/// Compress to the target force.
pub const PADDLE_CMD_COMPRESS: u16 = 1;
/// Release compression.
pub const PADDLE_CMD_RELEASE: u16 = 2;

/// Status bit: a command is running.
pub const STATUS_BUSY: u16 = 1 << 0;
/// Status bit: the last command completed successfully.
pub const STATUS_DONE: u16 = 1 << 1;
/// Status bit: the last command failed; the error register says why.
pub const STATUS_FAULT: u16 = 1 << 2;

/// Largest register count in one read (the Modbus limit).
pub const MAX_READ: u16 = 125;

/// Splits a double into four registers, most significant first.
pub fn f64_to_regs(v: f64) -> [u16; 4] {
    let b = v.to_bits();
    [(b >> 48) as u16, (b >> 32) as u16, (b >> 16) as u16, b as u16]
}

/// Joins four registers (most significant first) into a double.
pub fn regs_to_f64(r: &[u16]) -> f64 {
    let b = r.iter().take(4).fold(0u64, |acc, &w| (acc << 16) | u64::from(w));
    f64::from_bits(b)
}

/// Splits an i32 into two registers, high word first.
pub fn i32_to_regs(v: i32) -> [u16; 2] {
    let b = v as u32;
    [(b >> 16) as u16, b as u16]
}
