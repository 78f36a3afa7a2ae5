//! The virtual device's fixed behaviour: timing, identity and the generator's own limits.

use std::time::Duration;

use tomolab_hal::{ExposureRequest, Technique};

use crate::protocol::wire::PROTOCOL_MAJOR;

/// Fixed behaviour of the virtual device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceConfig {
    /// Without a valid packet from the host for this long, the device goes safe and closes the session.
    pub link_timeout: Duration,
    /// Interval of the device's heartbeats.
    pub heartbeat_interval: Duration,
    /// Firmware version reported in HELLO_ACK.
    pub firmware: (u16, u16, u16),
    /// Protocol major reported in HELLO_ACK (tests set another to check refusal).
    pub protocol_major: u8,
    /// Frames kept for RESEND_FRAME.
    pub frame_history: usize,
    /// Seed of the device's random draws (session ids, frame tokens). A real unit seeds it from a hardware
    /// RNG at boot; the draws continue across [`VirtualDevice::reset`](super::VirtualDevice::reset), so a restarted device announces a new
    /// session id.
    pub boot_nonce: u32,
    /// The generator's own technique limits, checked on SET_TECHNIQUE and EXPOSE whatever the host checked.
    pub limits: GeneratorLimits,
    /// Compression force window (min, max) in N that the paddle must read for an EXPOSE to fire; `None` is the
    /// service mode without the compression interlock (QC on a bare detector, the HAL's tube contract suite).
    pub compression_window_n: Option<(f64, f64)>,
}

/// The virtual generator's limits (inclusive ranges), those of a typical mammography generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorLimits {
    /// Tube voltage, kV (mammography: 20-49 kV).
    pub kvp: (f64, f64),
    /// Tube current, mA.
    pub tube_current_ma: (f64, f64),
    /// Tube current-time product per exposure, mAs (technique and EXPOSE).
    pub mas: (f64, f64),
    /// Longest planned exposure (mAs / mA).
    pub max_exposure_time: Duration,
    /// Longest backup time of an EXPOSE (must also be non-zero).
    pub max_backup_time: Duration,
    /// Added filter thickness, mm.
    pub filter_thickness_mm: (f64, f64),
}

impl Default for GeneratorLimits {
    fn default() -> Self {
        Self {
            kvp: (20.0, 49.0),
            tube_current_ma: (0.5, 500.0),
            mas: (0.01, 600.0),
            max_exposure_time: Duration::from_secs(10),
            max_backup_time: Duration::from_secs(10),
            filter_thickness_mm: (0.001, 3.0),
        }
    }
}

fn within(field: &str, value: f64, (lo, hi): (f64, f64), unit: &str) -> Result<(), String> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!("{field} {value} {unit} outside the generator's limits {lo}..={hi} {unit}"))
    }
}

impl GeneratorLimits {
    /// Checks a technique; the error names the field, its value and the limit.
    pub fn check_technique(&self, t: &Technique) -> Result<(), String> {
        within("kvp", t.kvp.get(), self.kvp, "kV")?;
        within("tube_current", t.tube_current.get(), self.tube_current_ma, "mA")?;
        within("mas_per_view", t.mas_per_view.get(), self.mas, "mAs")?;
        within("filter_thickness", t.filter.thickness_mm, self.filter_thickness_mm, "mm")?;
        self.check_time(t.mas_per_view.get(), t.tube_current.get())
    }

    fn check_time(&self, mas: f64, ma: f64) -> Result<(), String> {
        let max_s = self.max_exposure_time.as_secs_f64();
        let time_s = mas / ma;
        if time_s.is_finite() && time_s <= max_s {
            Ok(())
        } else {
            Err(format!("exposure time {mas} mAs / {ma} mA = {time_s} s exceeds the generator's {max_s} s"))
        }
    }

    /// Checks an exposure request against the limits and the loaded technique (if any).
    pub fn check_request(&self, r: &ExposureRequest, technique: Option<&Technique>) -> Result<(), String> {
        within("mas", r.mas.get(), self.mas, "mAs")?;
        if r.backup_time.is_zero() || r.backup_time > self.max_backup_time {
            return Err(format!(
                "backup_time {} ns outside the generator's limits 1..={} ns",
                r.backup_time.as_nanos(),
                self.max_backup_time.as_nanos()
            ));
        }
        match technique {
            Some(t) => self.check_time(r.mas.get(), t.tube_current.get()),
            None => Ok(()),
        }
    }
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            link_timeout: Duration::from_millis(1500),
            heartbeat_interval: Duration::from_millis(250),
            firmware: (1, 0, 0),
            protocol_major: PROTOCOL_MAJOR,
            frame_history: 4,
            boot_nonce: 0x5EED_0001,
            limits: GeneratorLimits::default(),
            compression_window_n: Some((20.0, 200.0)),
        }
    }
}
