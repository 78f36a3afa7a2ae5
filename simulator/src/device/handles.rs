//! The HAL device traits on the handles of a simulated unit; every call locks the shared state.

use std::time::Duration;

use tomolab_hal::devices::{
    Compression, CompressionPaddle, Detector, Frame, Gantry, InterlockStatus, Interlocks, XrayTube,
};
use tomolab_hal::technique::{ExposureEnd, ExposureRecord, ExposureRequest, Technique};
use tomolab_hal::units::{Degrees, Kilovolts, MilliampereSeconds, Millimetres, Newtons};
use tomolab_hal::{DetectorGeometry, Error, ErrorKind};

use super::motion::{Sweep, move_time_s};
use super::{BeamOn, SimDetector, SimDeviceError, SimGantry, SimInterlocks, SimPaddle, SimTube, State, err};

impl XrayTube for SimTube {
    type Error = SimDeviceError;

    fn set_technique(&mut self, technique: &Technique) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        let (lo, hi) = s.config.kvp_range;
        let kv = technique.kvp.get();
        if !(lo..=hi).contains(&kv) {
            return err("tube", ErrorKind::OutOfRange, format!("{} outside {lo}..={hi} kV", technique.kvp));
        }
        s.technique = Some(*technique);
        s.prepared = false;
        Ok(())
    }

    fn prepare(&mut self) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        if s.technique.is_none() {
            return err("tube", ErrorKind::NotReady, "no technique loaded");
        }
        let prep = s.config.prep_time.as_secs_f64();
        s.advance(prep);
        s.prepared = true;
        Ok(())
    }

    fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, SimDeviceError> {
        let mut s = self.lock();
        let Some(technique) = s.technique.filter(|_| s.prepared) else {
            return err("tube", ErrorKind::NotReady, "tube not prepared");
        };
        let index = s.exposures;
        s.exposures += 1;
        let faults = s.config.faults;
        let at = |f: Option<usize>| f == Some(index);
        let ma = technique.tube_current.get();
        let requested = request.mas.get();
        let backup_mas = ma * request.backup_time.as_secs_f64();
        let (fraction, end, kvp) = if s.chain.first_open().is_some() {
            let end = if s.chain.exposure_switch_held { ExposureEnd::Interlock } else { ExposureEnd::OperatorRelease };
            (0.0, end, technique.kvp.get())
        } else if at(faults.tube_arc_at) {
            (0.35, ExposureEnd::Fault, technique.kvp.get())
        } else if at(faults.kv_drop_at) {
            (0.6, ExposureEnd::Fault, technique.kvp.get() * 0.8)
        } else if at(faults.emergency_stop_at) {
            s.chain.emergency_stop_clear = false;
            (0.5, ExposureEnd::Interlock, technique.kvp.get())
        } else if at(faults.switch_release_at) {
            s.chain.exposure_switch_held = false;
            (0.5, ExposureEnd::OperatorRelease, technique.kvp.get())
        } else {
            (1.0, ExposureEnd::Planned, technique.kvp.get())
        };
        let mut mas = requested * fraction;
        let mut end = end;
        if mas > backup_mas {
            mas = backup_mas;
            end = ExposureEnd::BackupTimer;
        }
        let angle_start = s.angle_now();
        let duration_s = mas / ma;
        // Checked, and never past the backup time (float rounding of mas / ma could add a nanosecond).
        let Ok(duration) = Duration::try_from_secs_f64(duration_s).map(|d| d.min(request.backup_time)) else {
            return err("tube", ErrorKind::OutOfRange, format!("exposure time {duration_s} s is not representable"));
        };
        s.advance(duration_s);
        let angle_end = s.angle_now();
        if s.armed && mas > 0.0 {
            s.beams.push(BeamOn { technique, kvp, mas, angle_start_deg: angle_start, angle_end_deg: angle_end });
        }
        if at(faults.force_drift_at) {
            s.drift_pending = true;
        }
        Ok(ExposureRecord { kvp: Kilovolts::new(kvp)?, mas: MilliampereSeconds::new(mas)?, duration, end })
    }

    fn disable(&mut self) -> Result<(), SimDeviceError> {
        self.lock().prepared = false;
        Ok(())
    }
}

impl Gantry for SimGantry {
    type Error = SimDeviceError;

    fn move_to(&mut self, angle: Degrees) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        let g = s.config.gantry;
        if angle.get().abs() > g.limit_deg {
            return err("gantry", ErrorKind::OutOfRange, format!("{angle} beyond the +-{} deg limit", g.limit_deg));
        }
        s.halt();
        if s.config.faults.motor_stall_at == Some(s.exposures) {
            return err("gantry", ErrorKind::DeviceFault, "motor stall");
        }
        let t = move_time_s(angle.get() - s.angle_deg, &g);
        s.advance(t);
        s.angle_deg = angle.get();
        Ok(())
    }

    fn start_sweep(&mut self, end: Degrees, speed_deg_per_s: f64) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        let g = s.config.gantry;
        if end.get().abs() > g.limit_deg {
            return err(
                "gantry",
                ErrorKind::OutOfRange,
                format!("sweep end {end} beyond the +-{} deg limit", g.limit_deg),
            );
        }
        if !(speed_deg_per_s.is_finite() && speed_deg_per_s > 0.0 && speed_deg_per_s <= g.max_speed_deg_per_s) {
            return err(
                "gantry",
                ErrorKind::OutOfRange,
                format!("sweep speed {speed_deg_per_s} deg/s outside (0, {}]", g.max_speed_deg_per_s),
            );
        }
        s.halt();
        s.sweep = Some(Sweep {
            from: s.angle_deg,
            to: end.get(),
            speed: speed_deg_per_s,
            accel: g.acceleration_deg_per_s2,
            t0: s.now_s,
        });
        Ok(())
    }

    fn await_angle(&mut self, angle: Degrees) -> Result<Degrees, SimDeviceError> {
        let mut s = self.lock();
        let Some(sweep) = s.sweep else {
            return err("gantry", ErrorKind::NotReady, "no sweep running");
        };
        if s.config.faults.motor_stall_at == Some(s.exposures) {
            s.halt();
            return err("gantry", ErrorKind::DeviceFault, "motor stall");
        }
        match sweep.time_of(angle.get()) {
            // A sweep so slow that the angle is reached only after an unrepresentable time (1e-300 deg/s) is out
            // of range, not a panic in the clock (issue 14 item 5).
            Some(t) if Duration::try_from_secs_f64(t).is_err() => {
                err("gantry", ErrorKind::OutOfRange, format!("the sweep would reach {angle} only after {t} s"))
            }
            Some(t) if t >= s.now_s - 1e-9 => {
                s.now_s = s.now_s.max(t);
                Ok(Degrees::new(s.angle_now())?)
            }
            _ => err("gantry", ErrorKind::Timeout, format!("the sweep will not reach {angle}")),
        }
    }

    fn position(&mut self) -> Result<Degrees, SimDeviceError> {
        let s = self.lock();
        Ok(Degrees::new(s.angle_now())?)
    }

    fn stop(&mut self) -> Result<(), SimDeviceError> {
        self.lock().halt();
        Ok(())
    }
}

impl Detector for SimDetector {
    type Error = SimDeviceError;

    fn geometry(&self) -> DetectorGeometry {
        self.lock().renderer.geometry()
    }

    fn arm(&mut self) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        s.armed = true;
        s.beams.clear();
        Ok(())
    }

    fn read_frame(&mut self) -> Result<Frame, SimDeviceError> {
        let mut s = self.lock();
        if !s.armed {
            return err("detector", ErrorKind::NotReady, "detector not armed");
        }
        s.armed = false;
        let readout = s.config.readout_time.as_secs_f64();
        s.advance(readout);
        let last_exposure = s.exposures.checked_sub(1);
        if !s.beams.is_empty() && last_exposure.is_some() && s.config.faults.dropped_frame_at == last_exposure {
            return err("detector", ErrorKind::Timeout, "frame lost in readout");
        }
        let index = s.frames;
        s.frames += 1;
        let beams = std::mem::take(&mut s.beams);
        s.renderer.render(&beams, index).or_else(|e| err("detector", e.kind(), e.to_string()))
    }

    fn flood_frame(&mut self) -> Result<Frame, SimDeviceError> {
        let s = self.lock();
        if s.armed {
            return err("detector", ErrorKind::NotReady, "detector armed");
        }
        let Some(technique) = s.technique else {
            return err("detector", ErrorKind::NotReady, "no technique loaded: the flood depends on the beam");
        };
        s.renderer.flood_per_mas(&technique).or_else(|e| err("detector", e.kind(), e.to_string()))
    }

    fn disarm(&mut self) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        s.armed = false;
        s.beams.clear();
        Ok(())
    }
}

impl SimPaddle {
    fn compression(s: &State) -> Result<Compression, SimDeviceError> {
        Ok(Compression {
            force: Newtons::new(s.force_n.clamp(0.0, Newtons::MAX))?,
            thickness: Millimetres::new(s.config.paddle.thickness_mm(s.force_n))?,
        })
    }
}

impl CompressionPaddle for SimPaddle {
    type Error = SimDeviceError;

    fn compress(&mut self, target: Newtons) -> Result<Compression, SimDeviceError> {
        let mut s = self.lock();
        let p = s.config.paddle;
        if target.get() > p.powered_limit_n {
            return err(
                "paddle",
                ErrorKind::OutOfRange,
                format!("{target} above the powered limit {} N", p.powered_limit_n),
            );
        }
        let t = (target.get() - s.force_n).abs() / p.force_rate_n_per_s;
        s.advance(t);
        s.force_n = target.get();
        Self::compression(&s)
    }

    fn state(&mut self) -> Result<Compression, SimDeviceError> {
        let mut s = self.lock();
        if s.drift_pending && s.force_n > 0.0 {
            s.drift_pending = false;
            s.force_n = (s.force_n + s.config.faults.force_drift_n).max(0.0);
        }
        Self::compression(&s)
    }

    fn release(&mut self) -> Result<(), SimDeviceError> {
        let mut s = self.lock();
        s.force_n = 0.0;
        s.drift_pending = false;
        Ok(())
    }
}

impl Interlocks for SimInterlocks {
    type Error = SimDeviceError;

    fn status(&mut self) -> Result<InterlockStatus, SimDeviceError> {
        Ok(self.lock().chain)
    }
}
