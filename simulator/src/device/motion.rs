//! Gantry kinematics: rest-to-rest moves and continuous sweeps under an acceleration and a speed limit.

use super::GantryDynamics;

/// Trapezoidal (or triangular) motion from rest to rest over `distance`, deg.
pub(super) fn move_time_s(distance: f64, g: &GantryDynamics) -> f64 {
    let (v, a) = (g.max_speed_deg_per_s, g.acceleration_deg_per_s2);
    let d = distance.abs();
    if d <= v * v / a { 2.0 * (d / a).sqrt() } else { d / v + v / a }
}

/// A continuous sweep: accelerate from rest at `from`, cruise at `speed`, decelerate to rest at `to`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sweep {
    pub(super) from: f64,
    pub(super) to: f64,
    pub(super) speed: f64,
    pub(super) accel: f64,
    pub(super) t0: f64,
}

impl Sweep {
    pub(super) fn dir(&self) -> f64 {
        if self.to >= self.from { 1.0 } else { -1.0 }
    }

    /// Distance covered while accelerating (and, symmetrically, decelerating), deg; and the peak speed reached.
    pub(super) fn ramp(&self) -> (f64, f64) {
        let total = (self.to - self.from).abs();
        let ramp = self.speed * self.speed / (2.0 * self.accel);
        if 2.0 * ramp <= total { (ramp, self.speed) } else { (total / 2.0, (total * self.accel).sqrt()) }
    }

    /// Angle at absolute time `t` seconds.
    pub(super) fn angle_at(&self, t: f64) -> f64 {
        let (ramp, peak) = self.ramp();
        let total = (self.to - self.from).abs();
        let ta = peak / self.accel;
        let tc = (total - 2.0 * ramp) / peak;
        let s = (t - self.t0).max(0.0);
        let d = if s <= ta {
            0.5 * self.accel * s * s
        } else if s <= ta + tc {
            ramp + peak * (s - ta)
        } else {
            let r = (s - ta - tc).min(ta);
            ramp + peak * tc + peak * r - 0.5 * self.accel * r * r
        };
        self.from + self.dir() * d.min(total)
    }

    /// Absolute time at which the sweep reaches `angle`, or `None` if it never does.
    pub(super) fn time_of(&self, angle: f64) -> Option<f64> {
        let total = (self.to - self.from).abs();
        let d = (angle - self.from) * self.dir();
        if !(-1e-9..=total + 1e-9).contains(&d) {
            return None;
        }
        let d = d.clamp(0.0, total);
        let (ramp, peak) = self.ramp();
        let ta = peak / self.accel;
        let tc = (total - 2.0 * ramp) / peak;
        let s = if d <= ramp {
            (2.0 * d / self.accel).sqrt()
        } else if d <= total - ramp {
            ta + (d - ramp) / peak
        } else {
            let rem = total - d;
            ta + tc + ta - (2.0 * rem / self.accel).sqrt()
        };
        Some(self.t0 + s)
    }
}
