//! The device side of the Modbus register map (docs/modbus.md): range checks, the register image of the
//! command blocks, and the commands turned into backend jobs.
//!
//! Reads of the command blocks (status, error, count, results, targets) are answered from the image at once,
//! whatever the backend is doing; reads covering the live registers (gantry angle, paddle force and
//! thickness) and writes that run a command wait for the backend, in the device's one queue. A queued command
//! shows BUSY in its status register until it has run.

use tokio_modbus::ExceptionCode;
use tomolab_hal::{Degrees, Newtons};

use super::DeviceProtocol;
use super::backend::{Job, MotionValue, Outcome};
use crate::protocol::modbus::PduRequest;
use crate::protocol::regs::*;

/// What became of a Modbus request.
#[derive(Debug, Clone, PartialEq)]
pub enum ModbusStep {
    /// Answered now: the registers read (empty for a write), or the exception.
    Answer(Result<Vec<u16>, ExceptionCode>),
    /// Waiting for the backend; the answer comes in a [`super::Completion`] under this ticket.
    Queued(u64),
}

/// A queued Modbus request, for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModbusWork {
    /// A read covering live registers.
    Read { addr: u16, count: u16 },
    /// A gantry (`true`) or paddle command.
    Command { gantry: bool, command: u16 },
}

#[derive(Debug, Default, Clone, Copy)]
struct CommandBlock {
    status: u16,
    error: u16,
    count: u16,
    command: u16,
}

impl CommandBlock {
    fn finish(&mut self, command: u16, result: Result<(), u16>) {
        self.command = command;
        self.count = self.count.wrapping_add(1);
        match result {
            Ok(()) => {
                self.status = STATUS_DONE;
                self.error = 0;
            }
            Err(code) => {
                self.status = STATUS_FAULT;
                self.error = code;
            }
        }
    }
}

/// The register image of the command blocks.
#[derive(Debug, Default)]
pub(super) struct ModbusRegs {
    gantry: CommandBlock,
    gantry_target: [u16; 4],
    gantry_speed: [u16; 4],
    gantry_result: f64,
    paddle: CommandBlock,
    paddle_target: [u16; 4],
    paddle_result: (f64, f64),
}

fn in_map(addr: u16, count: u16) -> bool {
    let end = u32::from(addr) + u32::from(count);
    (end <= u32::from(GANTRY_END)) || (addr >= PADDLE_FORCE_DN && end <= u32::from(PADDLE_END))
}

impl ModbusRegs {
    /// Registers `addr..addr + count` (in the map), with the live values sampled (`None`: not covered).
    fn image(&self, addr: u16, count: u16, angle: Option<f64>, paddle: Option<(f64, f64)>) -> Vec<u16> {
        let mut image = vec![0u16; usize::from(PADDLE_END)];
        if let Some(angle) = angle {
            // Saturating (`as` on a float): a backend reporting a non-finite angle cannot panic the device.
            let mdeg = (angle * 1000.0).round() as i32;
            image[0..2].copy_from_slice(&i32_to_regs(mdeg));
            image[2..6].copy_from_slice(&f64_to_regs(angle));
        }
        if let Some((f, t)) = paddle {
            image[100] = (f * 10.0).round().clamp(0.0, 65535.0) as u16;
            image[101] = (t * 100.0).round().clamp(0.0, 65535.0) as u16;
            image[102..106].copy_from_slice(&f64_to_regs(f));
            image[106..110].copy_from_slice(&f64_to_regs(t));
        }
        image[6] = self.gantry.status;
        image[7] = self.gantry.error;
        image[8] = self.gantry.count;
        image[10..14].copy_from_slice(&f64_to_regs(self.gantry_result));
        image[16..20].copy_from_slice(&self.gantry_target);
        image[20..24].copy_from_slice(&self.gantry_speed);
        image[24] = self.gantry.command;
        image[110] = self.paddle.status;
        image[111] = self.paddle.error;
        image[112] = self.paddle.count;
        image[116..120].copy_from_slice(&self.paddle_target);
        image[120] = self.paddle.command;
        image[124..128].copy_from_slice(&f64_to_regs(self.paddle_result.0));
        image[128..132].copy_from_slice(&f64_to_regs(self.paddle_result.1));
        // in_map guarantees addr + count <= PADDLE_END, so this cannot wrap.
        image[usize::from(addr)..usize::from(addr.saturating_add(count))].to_vec()
    }

    fn gantry_job(&self, c: u16) -> Result<Job, ExceptionCode> {
        let target = regs_to_f64(&self.gantry_target);
        let speed = regs_to_f64(&self.gantry_speed);
        let angle = || Degrees::new(target).map(Some).map_err(|_| ExceptionCode::IllegalDataValue);
        let target = match c {
            GANTRY_CMD_MOVE | GANTRY_CMD_AWAIT => angle()?,
            GANTRY_CMD_SWEEP => {
                // The controller's own speed range: 1e-300 deg/s would make an AWAIT last 1e300 s (issue 14
                // item 5); whatever the backend does with it, such a value never leaves the wire decoder.
                if !(speed.is_finite() && (MIN_SWEEP_SPEED..=MAX_SWEEP_SPEED).contains(&speed)) {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                angle()?
            }
            GANTRY_CMD_STOP => None,
            _ => return Err(ExceptionCode::IllegalDataValue),
        };
        Ok(Job::Gantry { command: c, target, speed })
    }

    fn paddle_job(&self, c: u16) -> Result<Job, ExceptionCode> {
        let target = regs_to_f64(&self.paddle_target);
        match c {
            PADDLE_CMD_COMPRESS => {
                let force = Newtons::new(target).map_err(|_| ExceptionCode::IllegalDataValue)?;
                Ok(Job::Paddle { command: c, target: Some(force) })
            }
            PADDLE_CMD_RELEASE => Ok(Job::Paddle { command: c, target: None }),
            _ => Err(ExceptionCode::IllegalDataValue),
        }
    }
}

impl DeviceProtocol {
    /// Takes a decoded Modbus request: answered now, or queued for the backend.
    pub fn on_modbus(&mut self, req: &PduRequest) -> ModbusStep {
        if self.failure().is_some() {
            return ModbusStep::Answer(Err(ExceptionCode::ServerDeviceFailure));
        }
        match req {
            PduRequest::Read { addr, count, .. } => self.modbus_read(*addr, *count),
            PduRequest::Write { addr, values, .. } => self.modbus_write(*addr, values),
        }
    }

    /// A register read (function 03 or 04).
    fn modbus_read(&mut self, addr: u16, count: u16) -> ModbusStep {
        if count == 0 || count > MAX_READ {
            return ModbusStep::Answer(Err(ExceptionCode::IllegalDataValue));
        }
        if !in_map(addr, count) {
            return ModbusStep::Answer(Err(ExceptionCode::IllegalDataAddress));
        }
        let end = addr.saturating_add(count);
        let overlaps = |lo: u16, hi: u16| addr < hi && end > lo;
        let (gantry, paddle) = (overlaps(GANTRY_ANGLE_MDEG, GANTRY_STATUS), overlaps(PADDLE_FORCE_DN, PADDLE_STATUS));
        if gantry || paddle {
            return ModbusStep::Queued(
                self.enqueue_modbus(ModbusWork::Read { addr, count }, Job::Sample { gantry, paddle }),
            );
        }
        ModbusStep::Answer(Ok(self.regs.image(addr, count, None, None)))
    }

    /// A register write (function 06 or 16); a write covering a command register runs the command.
    fn modbus_write(&mut self, addr: u16, values: &[u16]) -> ModbusStep {
        let Ok(count) = u16::try_from(values.len()) else {
            return ModbusStep::Answer(Err(ExceptionCode::IllegalDataValue));
        };
        if count == 0 || count > 123 {
            return ModbusStep::Answer(Err(ExceptionCode::IllegalDataValue));
        }
        // In u32: a range wrapping past 65535 (FC06 at 65535, FC16 at 65520 with 41 registers) must not fold
        // back onto the command registers (issue 14 item 4).
        let (start, end) = (u32::from(addr), u32::from(addr) + u32::from(count));
        let gantry = start >= u32::from(GANTRY_TARGET_DEG) && end <= u32::from(GANTRY_END);
        let paddle = start >= u32::from(PADDLE_TARGET_N) && end <= u32::from(PADDLE_COMMAND) + 1;
        if !(gantry || paddle) {
            return ModbusStep::Answer(Err(ExceptionCode::IllegalDataAddress));
        }
        let regs = &mut self.regs;
        let mut command = None;
        for (a, &v) in (addr..).zip(values) {
            match a {
                16..=19 => regs.gantry_target[usize::from(a - 16)] = v,
                20..=23 => regs.gantry_speed[usize::from(a - 20)] = v,
                GANTRY_COMMAND => command = Some((true, v)),
                116..=119 => regs.paddle_target[usize::from(a - 116)] = v,
                PADDLE_COMMAND => command = Some((false, v)),
                _ => {}
            }
        }
        let Some((gantry, c)) = command else { return ModbusStep::Answer(Ok(Vec::new())) };
        let job = match gantry {
            true => regs.gantry_job(c),
            false => regs.paddle_job(c),
        };
        match job {
            Ok(job) => {
                let block = if gantry { &mut regs.gantry } else { &mut regs.paddle };
                block.status = STATUS_BUSY;
                ModbusStep::Queued(self.enqueue_modbus(ModbusWork::Command { gantry, command: c }, job))
            }
            Err(e) => ModbusStep::Answer(Err(e)),
        }
    }

    /// Applies a Modbus job's outcome; the answer.
    pub(super) fn apply_modbus(&mut self, work: ModbusWork, outcome: Outcome) -> Result<Vec<u16>, ExceptionCode> {
        let regs = &mut self.regs;
        match (work, outcome) {
            (ModbusWork::Read { addr, count }, Outcome::Sample(Some(live))) => {
                Ok(regs.image(addr, count, live.angle_deg, live.paddle))
            }
            (ModbusWork::Command { gantry, command }, Outcome::Motion(r)) => {
                match r {
                    Ok(MotionValue::Angle(a)) => regs.gantry_result = a,
                    Ok(MotionValue::Compression(f, t)) => regs.paddle_result = (f, t),
                    _ => {}
                }
                let block = if gantry { &mut regs.gantry } else { &mut regs.paddle };
                block.finish(command, r.map(drop));
                Ok(Vec::new())
            }
            _ => Err(ExceptionCode::ServerDeviceFailure),
        }
    }
}

impl ModbusRegs {
    /// A command whose backend call failed (panicked): its block reports a device fault, not BUSY forever.
    pub(super) fn fail(&mut self, work: ModbusWork) {
        if let ModbusWork::Command { gantry, command } = work {
            let block = if gantry { &mut self.gantry } else { &mut self.paddle };
            block.finish(command, Err(u16::from(crate::error::kind_code(tomolab_hal::ErrorKind::DeviceFault))));
        }
    }
}
