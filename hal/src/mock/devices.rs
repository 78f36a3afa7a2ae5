//! The mock's five devices and clock: each call checks its preconditions, applies scripted faults and logs
//! what physically happened.

use super::*;

impl Clock for MockClock {
    fn now(&self) -> Duration {
        self.shared.borrow().now
    }
}

impl XrayTube for MockTube {
    type Error = MockError;

    fn set_technique(&mut self, technique: &Technique) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if !s.chain.link_alive {
            return fail(s, ErrorKind::Link, "link lost");
        }
        if technique.kvp.get() > 49.0 || technique.kvp.get() < 20.0 {
            return fail(s, ErrorKind::OutOfRange, "kVp outside 20..=49");
        }
        s.technique = Some(*technique);
        s.prepared = false;
        s.prepared_by_caller = false;
        Ok(())
    }

    fn prepare(&mut self) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if !s.chain.link_alive {
            return fail(s, ErrorKind::Link, "link lost");
        }
        if s.technique.is_none() {
            return fail(s, ErrorKind::NotReady, "no technique");
        }
        s.prepared = true;
        s.prepared_by_caller = true;
        Ok(())
    }

    fn expose(&mut self, request: &ExposureRequest) -> Result<ExposureRecord, MockError> {
        let s = &mut *self.shared.borrow_mut();
        // What the caller could know: the state before this call's scheduled faults take effect.
        let mut event = ExposureEvent {
            call: s.calls + 1,
            angle_deg: s.angle_deg,
            request: *request,
            record: None,
            detector_armed: s.armed,
            positioned: s.positioned,
            status_polled_after_positioning: s.status_polled,
            force_polled_after_positioning: s.force_polled,
            prepared: s.prepared_by_caller,
            after_disable: s.disabled_once,
            last_status_clear: s.status_readings.last().is_some_and(|r| r.first_open().is_none()),
            last_force_read_n: s.force_readings_n.last().copied().unwrap_or(f64::NAN),
            force_n: 0.0,
            chain_clear: false,
            frame_read: false,
        };
        s.tick();
        // The physical state when the beam would start.
        event.force_n = s.force_n;
        event.chain_clear = s.chain.first_open().is_none();
        s.positioned = false;
        s.status_polled = false;
        s.force_polled = false;
        let outcome = (|| {
            if !s.chain.link_alive {
                return fail(s, ErrorKind::Link, "link lost");
            }
            let Some(technique) = s.technique.filter(|_| s.prepared) else {
                return fail(s, ErrorKind::NotReady, "tube not prepared");
            };
            if s.take(MockFault::TubeError) {
                return fail(s, ErrorKind::DeviceFault, "generator fault, no beam");
            }
            let ma = technique.tube_current.get();
            if !(ma.is_finite() && ma > 0.0) {
                return fail(s, ErrorKind::OutOfRange, "tube current must be positive and finite");
            }
            let backup = request.backup_time;
            // The most the generator can deliver before the backup timer ends the beam.
            let backup_mas = ma * backup.as_secs_f64();
            let (mut mas, mut end) = if s.chain.first_open().is_some() {
                let end =
                    if s.chain.exposure_switch_held { ExposureEnd::Interlock } else { ExposureEnd::OperatorRelease };
                (0.0, end)
            } else if s.take(MockFault::KvDrop) {
                (request.mas.get() * 0.5, ExposureEnd::Fault)
            } else if s.take(MockFault::BackupOverrun) {
                (backup_mas, ExposureEnd::BackupTimer)
            } else if s.take(MockFault::SwitchReleaseDuringExposure) {
                s.chain.exposure_switch_held = false;
                (request.mas.get() * 0.3, ExposureEnd::OperatorRelease)
            } else {
                (request.mas.get(), ExposureEnd::Planned)
            };
            // Never later than the backup time: an exposure that would outlast it ends at it, recorded as
            // ended by the backup timer (the sequencer latches on that).
            if mas > backup_mas {
                mas = backup_mas;
                end = ExposureEnd::BackupTimer;
            }
            let duration = if end == ExposureEnd::BackupTimer {
                backup
            } else {
                checked_secs(s, mas / ma, "exposure time")?.min(backup)
            };
            if s.now.checked_add(duration).is_none() {
                return fail(s, ErrorKind::OutOfRange, "backup time overflows the unit's clock");
            }
            s.now += duration;
            if let Some((end_deg, speed)) = s.sweep {
                let dir = (end_deg - s.angle_deg).signum();
                let step = (speed * duration.as_secs_f64()).min((end_deg - s.angle_deg).abs());
                s.angle_deg += dir * step;
            }
            if s.armed {
                s.integrated_mas += mas;
            }
            Ok(ExposureRecord { kvp: technique.kvp, mas: MilliampereSeconds::new(mas)?, duration, end })
        })();
        event.record = outcome.as_ref().ok().copied();
        s.exposures.push(event);
        outcome
    }

    fn disable(&mut self) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        s.prepared = false;
        s.prepared_by_caller = false;
        s.disabled_once = true;
        Ok(())
    }
}

impl Gantry for MockGantry {
    type Error = MockError;

    fn move_to(&mut self, angle: Degrees) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if angle.get().abs() > s.config.angle_limit_deg {
            return fail(s, ErrorKind::OutOfRange, "angle beyond mechanical limit");
        }
        if s.take(MockFault::GantryStall) {
            s.moving = false;
            return fail(s, ErrorKind::DeviceFault, "motor stall");
        }
        let travel = checked_secs(s, (angle.get() - s.angle_deg).abs() / 20.0, "move time")?;
        s.now += travel;
        s.angle_deg = angle.get();
        s.sweep = None;
        s.moving = false;
        s.positioned = true;
        s.status_polled = false;
        s.force_polled = false;
        Ok(())
    }

    fn start_sweep(&mut self, end: Degrees, speed_deg_per_s: f64) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if end.get().abs() > s.config.angle_limit_deg || !(speed_deg_per_s.is_finite() && speed_deg_per_s > 0.0) {
            return fail(s, ErrorKind::OutOfRange, "sweep end or speed out of range");
        }
        s.sweep = Some((end.get(), speed_deg_per_s));
        s.moving = true;
        Ok(())
    }

    fn await_angle(&mut self, angle: Degrees) -> Result<Degrees, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        let Some((end, speed)) = s.sweep else {
            return fail(s, ErrorKind::NotReady, "no sweep running");
        };
        if s.take(MockFault::GantryStall) {
            s.moving = false;
            s.sweep = None;
            return fail(s, ErrorKind::DeviceFault, "motor stall");
        }
        let dir = (end - s.angle_deg).signum();
        let ahead = (angle.get() - s.angle_deg) * dir;
        let within = (angle.get() - end) * dir <= 1e-9;
        if ahead < -1e-9 || !within {
            return fail(s, ErrorKind::Timeout, "sweep will not reach that angle");
        }
        let wait = checked_secs(s, ahead.max(0.0) / speed, "sweep time to the awaited angle")?;
        s.now += wait;
        s.angle_deg = angle.get();
        s.positioned = true;
        s.status_polled = false;
        s.force_polled = false;
        Ok(angle)
    }

    fn position(&mut self) -> Result<Degrees, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        Ok(Degrees::new(s.angle_deg)?)
    }

    fn stop(&mut self) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        s.sweep = None;
        s.moving = false;
        Ok(())
    }
}

impl Detector for MockDetector {
    type Error = MockError;

    fn geometry(&self) -> DetectorGeometry {
        self.shared.borrow().config.detector
    }

    fn arm(&mut self) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        s.armed = true;
        s.integrated_mas = 0.0;
        Ok(())
    }

    fn read_frame(&mut self) -> Result<Frame, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if !s.armed {
            return fail(s, ErrorKind::NotReady, "detector not armed");
        }
        s.armed = false;
        if s.take(MockFault::DetectorTimeout) {
            return fail(s, ErrorKind::Timeout, "frame not received");
        }
        let d = s.config.detector;
        let value = s.config.dark_counts + s.config.counts_per_mas * s.integrated_mas as f32;
        s.frames_read += 1;
        if let Some(last) = s.exposures.last_mut().filter(|e| !e.frame_read && s.integrated_mas > 0.0) {
            last.frame_read = true;
        }
        Ok(Frame::filled(d.cols, d.rows, value))
    }

    fn flood_frame(&mut self) -> Result<Frame, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if s.armed {
            return fail(s, ErrorKind::NotReady, "detector armed");
        }
        let d = s.config.detector;
        Ok(Frame::filled(d.cols, d.rows, s.config.counts_per_mas))
    }

    fn disarm(&mut self) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        s.armed = false;
        Ok(())
    }
}

impl CompressionPaddle for MockPaddle {
    type Error = MockError;

    fn compress(&mut self, target: Newtons) -> Result<Compression, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        s.commanded_forces_n.push(target.get());
        if target.get() > s.config.paddle_force_limit_n {
            return fail(s, ErrorKind::OutOfRange, "force above the paddle's powered limit");
        }
        if s.take(MockFault::PaddleError) {
            return fail(s, ErrorKind::DeviceFault, "paddle drive fault");
        }
        s.force_n = target.get();
        s.force_readings_n.push(s.force_n);
        s.compression()
    }

    fn state(&mut self) -> Result<Compression, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        if s.force_n > 0.0 {
            s.force_n = (s.force_n + s.drift_n).max(0.0);
        }
        s.drift_n = 0.0;
        s.force_readings_n.push(s.force_n);
        s.force_polled = true;
        s.compression()
    }

    fn release(&mut self) -> Result<(), MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        s.force_n = 0.0;
        Ok(())
    }
}

impl Interlocks for MockInterlocks {
    type Error = MockError;

    fn status(&mut self) -> Result<InterlockStatus, MockError> {
        let s = &mut *self.shared.borrow_mut();
        s.tick();
        let chain = s.chain;
        s.status_readings.push(chain);
        s.status_polled = true;
        Ok(chain)
    }
}
