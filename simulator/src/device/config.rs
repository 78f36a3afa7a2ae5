//! Fixed configuration of a simulated unit: gantry mechanics, the paddle model and the fault plan.

use std::time::Duration;

/// Gantry mechanics.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GantryDynamics {
    /// Mechanical limit either side of 0 deg.
    pub limit_deg: f64,
    /// Speed limit, deg/s.
    pub max_speed_deg_per_s: f64,
    /// Acceleration (and deceleration), deg/s^2.
    pub acceleration_deg_per_s2: f64,
}

impl Default for GantryDynamics {
    fn default() -> Self {
        Self { limit_deg: 30.0, max_speed_deg_per_s: 15.0, acceleration_deg_per_s2: 30.0 }
    }
}

/// Compression paddle model: thickness falls exponentially with force toward the compressed thickness.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaddleModel {
    /// Thickness the breast levels off at under firm compression, mm (the phantom's thickness).
    pub compressed_thickness_mm: f64,
    /// Thickness with no force, mm.
    pub uncompressed_thickness_mm: f64,
    /// Force scale of the exponential, N: at 5x this force the breast is within 1% of its compressed thickness.
    pub force_scale_n: f64,
    /// The paddle's powered-compression limit, N.
    pub powered_limit_n: f64,
    /// Powered compression speed, N/s.
    pub force_rate_n_per_s: f64,
}

impl PaddleModel {
    /// A model that levels off at `compressed_thickness_mm`.
    pub fn for_thickness(compressed_thickness_mm: f64) -> Self {
        Self {
            compressed_thickness_mm,
            uncompressed_thickness_mm: compressed_thickness_mm * 1.4,
            force_scale_n: 15.0,
            powered_limit_n: 200.0,
            force_rate_n_per_s: 20.0,
        }
    }

    /// Thickness at `force_n`, mm.
    pub fn thickness_mm(&self, force_n: f64) -> f64 {
        let (tc, t0) = (self.compressed_thickness_mm, self.uncompressed_thickness_mm);
        tc + (t0 - tc) * (-force_n.max(0.0) / self.force_scale_n).exp()
    }
}

/// Faults to inject, each at an exposure index (0-based, counting every exposure including an AEC pre-shot).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The tube arcs during this exposure: it ends early as a fault.
    pub tube_arc_at: Option<usize>,
    /// The kV drops during this exposure: it ends early as a fault at reduced kV.
    pub kv_drop_at: Option<usize>,
    /// The frame of this exposure is lost (readout times out).
    pub dropped_frame_at: Option<usize>,
    /// The gantry motor stalls on its way to this exposure.
    pub motor_stall_at: Option<usize>,
    /// The compression force drifts by `force_drift_n` after this exposure.
    pub force_drift_at: Option<usize>,
    /// Drift of the compression force, N (used with `force_drift_at`).
    pub force_drift_n: f64,
    /// The emergency stop is pressed during this exposure.
    pub emergency_stop_at: Option<usize>,
    /// The operator releases the exposure switch during this exposure.
    pub switch_release_at: Option<usize>,
}

/// Fixed configuration of a simulated unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Gantry mechanics.
    pub gantry: GantryDynamics,
    /// Paddle model.
    pub paddle: PaddleModel,
    /// Accepted tube voltage range, kV.
    pub kvp_range: (f64, f64),
    /// Tube preparation (rotor and filament) time.
    pub prep_time: Duration,
    /// Detector readout time.
    pub readout_time: Duration,
    /// Faults to inject.
    pub faults: FaultPlan,
}

impl SimConfig {
    /// A mammography unit compressing to `compressed_thickness_mm`, with no faults.
    pub fn new(compressed_thickness_mm: f64) -> Self {
        Self {
            gantry: GantryDynamics::default(),
            paddle: PaddleModel::for_thickness(compressed_thickness_mm),
            kvp_range: (20.0, 49.0),
            prep_time: Duration::from_millis(800),
            readout_time: Duration::from_millis(100),
            faults: FaultPlan::default(),
        }
    }
}
