//! A simulated exam end to end: phantom, simulated unit, AEC, sequencer, and what it leaves on disk.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use serde::{Deserialize, Serialize};
use tomolab_hal::acquisition::{ExamStatus, TechniqueMode};
use tomolab_hal::aec::{AecReading, DensityCalibration, OutputCalibration, PreshotAec};
use tomolab_hal::presets::Motion;
use tomolab_hal::sequencer::{SafetyLimits, Sequencer};
use tomolab_hal::technique::{Filter, FilterMaterial, FocalSpot, Target, Technique};
use tomolab_hal::{
    Acquisition, ArcGeometry, DetectorGeometry, ExamPlan, Kilovolts, MilliGray, MilliampereSeconds, Milliamperes,
    Newtons, PresetName, ScanPreset,
};
use tomolab_phantom::{
    BreastParams, CalcMaterial, GroundTruth, LabelVolume, LesionSpec, Material, MaterialTable, Phantom,
};
use tomolab_simulator::{DetectorModel, FilterLayer, ProjectorConfig, ScatterModel};

use tomolab_simulator::device::{FaultPlan, FrameRenderer, GantryDynamics, SimConfig, SimUnit};
use tomolab_simulator::dose::{BudgetDose, Formalism, PhantomDose, PhantomDoseConfig};

use crate::dose_report::{DoseInputs, DoseReport};
use tomolab_simulator::render::{PhysicsRenderer, RenderConfig};

/// How finely the exam is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Detector read out 4x4-binned (0.34 mm on the wide-angle panel), 0.25 mm phantom voxels, no motion
    /// sub-sampling: the whole exam in seconds.
    Fast,
    /// The preset's native pixels (85 um on the wide-angle panel), 0.1 mm phantom voxels, three motion
    /// sub-poses per exposure.
    Clinical,
}

/// Optional changes to the preset's geometry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryOverrides {
    /// Focal spot to detector at 0 deg, mm.
    pub source_to_detector_mm: Option<f64>,
    /// Rotation axis above the detector, mm.
    pub rotation_axis_height_mm: Option<f64>,
    /// First view angle, degrees.
    pub arc_start_deg: Option<f64>,
    /// Last view angle, degrees.
    pub arc_end_deg: Option<f64>,
    /// Number of views.
    pub views: Option<usize>,
    /// Detector pixel pitch, mm (the panel keeps its size).
    pub detector_pitch_mm: Option<f64>,
}

/// The technique: automatic, or fixed by the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum TechniqueConfig {
    /// Pre-shot AEC.
    Aec {
        /// Pre-shot current-time product, mAs.
        preshot_mas: f64,
        /// Signal the densest region must reach over the whole exam, counts above dark (85 um pixel scale).
        target_counts: f64,
        /// Glandular fraction below which the breast counts as fatty (30 kV instead of 28 kV).
        fatty_glandular_max: f64,
    },
    /// A fixed technique.
    Manual {
        /// Anode.
        target: Target,
        /// Filter material.
        filter: FilterMaterial,
        /// Filter thickness, mm.
        filter_mm: f64,
        /// Tube voltage, kV.
        kvp: f64,
        /// Current-time product per view, mAs.
        mas_per_view: f64,
    },
}

/// Detector and scatter physics switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicsConfig {
    /// Add scatter.
    pub scatter: bool,
    /// Draw quantum and electronic noise.
    pub noise: bool,
    /// Tube window (beryllium), mm.
    pub window_be_mm: f64,
    /// Compression paddle (PMMA), mm.
    pub paddle_pmma_mm: f64,
}

/// Safety settings of the exam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// Target compression force, N.
    pub compression_force_n: f64,
    /// Dose budget of the exam, mGy.
    pub dose_budget_mgd: f64,
}

/// Every knob of a simulated exam. In `exam.toml` any subset may be given; the rest keep these defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamConfig {
    /// Scanner preset.
    pub preset: PresetName,
    /// Seed of every random draw (phantom, noise).
    pub seed: u64,
    /// Simulation fidelity.
    pub resolution: Resolution,
    /// Geometry overrides.
    pub geometry: GeometryOverrides,
    /// The breast.
    pub phantom: BreastParams,
    /// Technique.
    pub technique: TechniqueConfig,
    /// Physics switches.
    pub physics: PhysicsConfig,
    /// Safety.
    pub safety: SafetyConfig,
    /// Injected faults.
    pub faults: FaultPlan,
    /// Monte Carlo of the dose report.
    pub dose: PhantomDoseConfig,
}

impl ExamConfig {
    /// The default exam: wide-angle, a 50 mm 20% glandular breast with a spiculated mass and a
    /// calcification cluster, AEC.
    pub fn defaults(preset: PresetName, resolution: Resolution) -> Self {
        let phantom = BreastParams {
            thickness_mm: 50.0,
            glandular_fraction: 0.2,
            voxel_mm: match resolution {
                Resolution::Fast => 0.25,
                Resolution::Clinical => 0.1,
            },
            lesions: vec![
                LesionSpec::spiculated(8.0, 12, 6.0).at([-20.0, 45.0, 42.0]),
                LesionSpec::calcifications(12, 0.2, 0.4, 8.0, CalcMaterial::default()).at([25.0, 50.0, 47.0]),
            ],
            ..BreastParams::default()
        };
        Self {
            preset,
            seed: 1,
            resolution,
            geometry: GeometryOverrides::default(),
            phantom,
            technique: TechniqueConfig::Aec { preshot_mas: 2.0, target_counts: 8000.0, fatty_glandular_max: 0.1 },
            physics: PhysicsConfig { scatter: true, noise: true, window_be_mm: 1.0, paddle_pmma_mm: 2.5 },
            safety: SafetyConfig { compression_force_n: 100.0, dose_budget_mgd: 3.0 },
            faults: FaultPlan::default(),
            dose: PhantomDoseConfig::default(),
        }
    }

    /// Reads `exam.toml` text over the defaults, then [`ExamConfig::validate`]s the result. Unknown keys, wrongly
    /// typed and out-of-range values are [`ConfigError`]s naming the key. Enum values (preset, resolution,
    /// technique mode, target, filter, lesion kinds...) are case-insensitive.
    pub fn from_toml(text: &str, preset: Option<PresetName>, resolution: Option<Resolution>) -> anyhow::Result<Self> {
        Ok(Self::parse_toml(text, preset, resolution)?)
    }

    /// [`ExamConfig::from_toml`] with the error type kept.
    pub fn parse_toml(
        text: &str,
        preset: Option<PresetName>,
        resolution: Option<Resolution>,
    ) -> Result<Self, ConfigError> {
        let mut user: toml::Table = toml::from_str(text)
            .map_err(|e| ConfigError { key: String::new(), problem: format!("not valid TOML: {e}") })?;
        for key in ["preset", "resolution"] {
            if let Some(toml::Value::String(v)) = user.get_mut(key) {
                *v = v.to_ascii_lowercase();
            }
        }
        let read = |key: &str| user.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let preset = match (preset, read("preset")) {
            (Some(p), _) => p,
            (None, Some(p)) => p.parse().map_err(|e| ConfigError::new("preset", e))?,
            (None, None) => PresetName::WideAngle,
        };
        let resolution = match (resolution, read("resolution")) {
            (Some(r), _) => r,
            (None, Some(r)) => parse_resolution(&r).map_err(|e| ConfigError::new("resolution", e))?,
            (None, None) => Resolution::Fast,
        };
        let mut merged =
            toml::Table::try_from(Self::defaults(preset, resolution)).map_err(|e| ConfigError::new("(defaults)", e))?;
        if user.contains_key("technique") {
            // A technique table replaces the default whole: its fields depend on its mode.
            merged.remove("technique");
        }
        merge(&mut merged, user);
        // Enum values are case-insensitive: on "unknown variant `x`, expected one of `X`, ..." put the
        // canonical spelling in and try again (bounded: each round fixes one distinct value).
        let mut config = None;
        for _ in 0..32 {
            let mut unknown = Vec::new();
            match serde_ignored::deserialize::<_, _, Self>(toml::Value::Table(merged.clone()), |path| {
                unknown.push(path.to_string())
            }) {
                Ok(c) => {
                    if let Some(key) = unknown.first() {
                        return Err(ConfigError::new(key, "unknown key"));
                    }
                    config = Some(c);
                    break;
                }
                Err(e) => {
                    let message = e.to_string();
                    match canonical_variant(&message) {
                        Some((given, canonical)) if replace_strings(&mut merged, &given, &canonical) => {}
                        _ => {
                            let key = message
                                .split("key `")
                                .nth(1)
                                .and_then(|rest| rest.split('`').next())
                                .unwrap_or("exam.toml")
                                .to_owned();
                            return Err(ConfigError::new(&key, message.trim()));
                        }
                    }
                }
            }
        }
        let config = config.ok_or_else(|| ConfigError::new("exam.toml", "too many enum values to normalise"))?;
        let config = Self { preset, resolution, ..config };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field of every section before anything is built or exposed; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let g = &self.geometry;
        let opt = |key: &str, v: Option<f64>, lo: f64, hi: f64, unit: &str| match v {
            Some(v) => check(key, v, lo, hi, unit),
            None => Ok(()),
        };
        opt("geometry.source_to_detector_mm", g.source_to_detector_mm, 100.0, 2000.0, "mm")?;
        opt("geometry.rotation_axis_height_mm", g.rotation_axis_height_mm, -500.0, 1000.0, "mm")?;
        opt("geometry.arc_start_deg", g.arc_start_deg, -360.0, 360.0, "deg")?;
        opt("geometry.arc_end_deg", g.arc_end_deg, -360.0, 360.0, "deg")?;
        opt("geometry.detector_pitch_mm", g.detector_pitch_mm, MIN_PITCH_MM, MAX_PITCH_MM, "mm")?;
        if let Some(v) = g.views
            && !(1..=MAX_VIEWS).contains(&v)
        {
            return Err(ConfigError::new("geometry.views", format!("{v} is outside 1..={MAX_VIEWS}")));
        }
        let preset = ScanPreset::builtin(self.preset);
        let sid = g.source_to_detector_mm.unwrap_or(preset.geometry.source_to_detector_mm);
        let axis = g.rotation_axis_height_mm.unwrap_or(preset.geometry.rotation_axis_height_mm);
        if axis >= sid - 50.0 {
            return Err(ConfigError::new(
                "geometry.rotation_axis_height_mm",
                format!("{axis} mm must be at least 50 mm below the source ({sid} mm)"),
            ));
        }
        match &self.technique {
            TechniqueConfig::Aec { preshot_mas, target_counts, fatty_glandular_max } => {
                check("technique.preshot_mas", *preshot_mas, 0.1, 100.0, "mAs")?;
                check("technique.target_counts", *target_counts, 1.0, 1.0e7, "counts")?;
                check("technique.fatty_glandular_max", *fatty_glandular_max, 0.0, 1.0, "")?;
            }
            TechniqueConfig::Manual { filter_mm, kvp, mas_per_view, .. } => {
                check("technique.filter_mm", *filter_mm, 0.0, 5.0, "mm")?;
                check("technique.kvp", *kvp, 20.0, 49.0, "kV")?;
                check("technique.mas_per_view", *mas_per_view, 0.01, 500.0, "mAs")?;
            }
        }
        check("physics.window_be_mm", self.physics.window_be_mm, 0.0, 10.0, "mm")?;
        check("physics.paddle_pmma_mm", self.physics.paddle_pmma_mm, 0.0, 50.0, "mm")?;
        check("safety.compression_force_n", self.safety.compression_force_n, 0.0, 200.0, "N")?;
        check("safety.dose_budget_mgd", self.safety.dose_budget_mgd, 0.001, 100.0, "mGy")?;
        check("faults.force_drift_n", self.faults.force_drift_n, -1000.0, 1000.0, "N")?;
        let d = &self.dose;
        if !(1..=MAX_HISTORIES_PER_VIEW).contains(&d.histories_per_view) {
            return Err(ConfigError::new(
                "dose.histories_per_view",
                format!("{} is outside 1..={MAX_HISTORIES_PER_VIEW}", d.histories_per_view),
            ));
        }
        if d.batches == 0 || d.batches > 1024 || u64::from(d.batches) > d.histories_per_view {
            return Err(ConfigError::new(
                "dose.batches",
                format!("{} must lie within 1..=1024 and not exceed dose.histories_per_view", d.batches),
            ));
        }
        self.phantom.validate().map_err(|e| ConfigError::new("phantom", e))?;
        Ok(())
    }

    /// Memory and run time the exam will need, estimated from the configuration alone (nothing is built).
    /// Call after [`ExamConfig::validate`].
    pub fn estimate(&self) -> ResourceEstimate {
        let preset = ScanPreset::builtin(self.preset);
        let native = preset.geometry.detector;
        let pitch = self.geometry.detector_pitch_mm.unwrap_or(match self.resolution {
            Resolution::Fast => native.pitch_u_mm * 4.0,
            Resolution::Clinical => native.pitch_u_mm,
        });
        let cols = (native.cols as f64 * native.pitch_u_mm / pitch).ceil();
        let rows = (native.rows as f64 * native.pitch_v_mm / pitch).ceil();
        let pixels = cols * rows;
        let views = self.geometry.views.unwrap_or(preset.sampling.views) as f64;
        let p = &self.phantom;
        let voxels = (p.chest_wall_width_mm / p.voxel_mm).ceil()
            * (p.nipple_distance_mm / p.voxel_mm + 10.0 / p.voxel_mm).ceil()
            * (p.thickness_mm / p.voxel_mm).ceil();
        // Frames (views, dark, flood, pre-shot) as f32, twice (acquisition and the renderer's working copies);
        // the label volume (1 byte per voxel); the reconstruction (1 mm slices at the detector pitch, f32,
        // plus the filtered projections).
        let slices = p.thickness_mm.ceil() + 1.0;
        let memory = (views + 3.0) * pixels * 4.0 * 2.0 + voxels + pixels * slices * 4.0 + views * pixels * 4.0;
        let motion = match self.resolution {
            Resolution::Fast => 1.0,
            Resolution::Clinical => 3.0,
        };
        let ray_steps = (views + 3.0) * pixels * motion * (p.thickness_mm / p.voxel_mm) * 2.0;
        let histories = views * self.dose.histories_per_view as f64;
        let seconds = ray_steps / RAY_STEPS_PER_S + histories / HISTORIES_PER_S + voxels / VOXELS_PER_S;
        ResourceEstimate { memory_bytes: memory, seconds, pixels_per_frame: pixels, phantom_voxels: voxels }
    }
}

/// Finest detector pitch accepted, mm (10 um, finer than any mammography detector).
pub const MIN_PITCH_MM: f64 = 0.01;
/// Coarsest detector pitch accepted, mm.
pub const MAX_PITCH_MM: f64 = 10.0;
/// Most views accepted.
pub const MAX_VIEWS: usize = 1000;
/// Most Monte Carlo histories per view accepted.
pub const MAX_HISTORIES_PER_VIEW: u64 = 100_000_000;
/// Memory estimate above which `tomolab exam` refuses without `--force`: 8 GiB.
pub const MAX_MEMORY_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;
/// Run-time estimate above which `tomolab exam` refuses without `--force`: 2 hours.
pub const MAX_SECONDS: f64 = 7200.0;
/// Throughput assumed by the run-time estimate: ray-marching steps per second (2 cores, release build).
const RAY_STEPS_PER_S: f64 = 4.0e8;
/// Monte Carlo photon histories per second assumed by the estimate.
const HISTORIES_PER_S: f64 = 1.0e6;
/// Phantom voxels generated per second assumed by the estimate.
const VOXELS_PER_S: f64 = 5.0e7;

/// What an exam is expected to cost (order of magnitude: good to a factor of a few).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResourceEstimate {
    /// Peak memory, bytes.
    pub memory_bytes: f64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Pixels per detector frame.
    pub pixels_per_frame: f64,
    /// Voxels of the phantom.
    pub phantom_voxels: f64,
}

impl ResourceEstimate {
    /// `Err` with the figures when the estimate exceeds [`MAX_MEMORY_BYTES`] or [`MAX_SECONDS`].
    pub fn check(&self) -> Result<(), String> {
        let gib = self.memory_bytes / (1024.0 * 1024.0 * 1024.0);
        if self.memory_bytes > MAX_MEMORY_BYTES || self.seconds > MAX_SECONDS {
            return Err(format!(
                "the exam would need about {gib:.1} GiB of memory and {:.0} s ({} frame pixels, {:.2e} phantom \
                 voxels); the limits are {:.0} GiB and {MAX_SECONDS:.0} s. Reduce geometry.views, \
                 geometry.detector_pitch_mm, phantom.voxel_mm or dose.histories_per_view, or pass --force",
                self.seconds,
                self.pixels_per_frame,
                self.phantom_voxels,
                MAX_MEMORY_BYTES / (1024.0 * 1024.0 * 1024.0)
            ));
        }
        Ok(())
    }
}

/// An `exam.toml` (or exam configuration) that cannot be used; `key` names the offending key (empty for a
/// TOML syntax error, whose message gives the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, e.g. `geometry.detector_pitch_mm`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl core::fmt::Display) -> Self {
        Self { key: key.to_owned(), problem: problem.to_string() }
    }
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.key.is_empty() {
            write!(f, "exam.toml: {}", self.problem)
        } else {
            write!(f, "exam.toml: key `{}`: {}", self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

fn check(key: &str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("{v} is outside {lo}..={hi} {unit}").trim_end().to_owned()))
    }
}

/// Parses a resolution name, case-insensitively.
pub fn parse_resolution(s: &str) -> Result<Resolution, String> {
    match s.to_ascii_lowercase().as_str() {
        "fast" => Ok(Resolution::Fast),
        "clinical" => Ok(Resolution::Clinical),
        _ => Err(format!("`{s}` is not a resolution; use fast or clinical")),
    }
}

/// From serde's "unknown variant `given`, expected one of `A`, `B`" (or "expected `A` or `B`"), the given
/// value and the expected variant equal to it ignoring case.
fn canonical_variant(message: &str) -> Option<(String, String)> {
    let rest = message.split("unknown variant `").nth(1)?;
    let (given, rest) = rest.split_once('`')?;
    let expected = rest.split("expected").nth(1)?;
    let canonical = expected.split('`').skip(1).step_by(2).find(|v| v.eq_ignore_ascii_case(given) && *v != given)?;
    Some((given.to_owned(), canonical.to_owned()))
}

/// Replaces every string value equal to `from` with `to`; whether any was replaced.
fn replace_strings(table: &mut toml::Table, from: &str, to: &str) -> bool {
    fn walk(v: &mut toml::Value, from: &str, to: &str) -> bool {
        match v {
            toml::Value::String(s) if s == from => {
                *s = to.to_owned();
                true
            }
            toml::Value::Array(a) => a.iter_mut().fold(false, |acc, v| walk(v, from, to) | acc),
            toml::Value::Table(t) => t.iter_mut().map(|(_, v)| v).fold(false, |acc, v| walk(v, from, to) | acc),
            _ => false,
        }
    }
    table.iter_mut().map(|(_, v)| v).fold(false, |acc, v| walk(v, from, to) | acc)
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// What the exam chose and measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExamSummary {
    /// Preset.
    pub preset: PresetName,
    /// Seed.
    pub seed: u64,
    /// Resolution.
    pub resolution: Resolution,
    /// How the exam ended.
    pub status: ExamStatus,
    /// Views acquired.
    pub views: usize,
    /// The technique used for the views.
    pub technique: Option<Technique>,
    /// Total mAs of the views.
    pub total_mas: f64,
    /// What the AEC read from the pre-shot, if AEC ran.
    pub aec: Option<AecReading>,
    /// Compressed thickness, mm.
    pub thickness_mm: Option<f64>,
    /// Duration of the exam on the unit's clock (what a real sweep would take), s.
    pub exam_time_s: f64,
    /// Mean glandular dose the sequencer booked (conversion-factor formalism), mGy.
    pub estimated_mgd: f64,
    /// Mean glandular dose from the Monte Carlo on the phantom, mGy (absent when no report was made).
    pub mgd_mgy: Option<f64>,
    /// Its standard error, mGy.
    pub mgd_std_error_mgy: Option<f64>,
    /// Detector grid of the frames.
    pub detector: DetectorGeometry,
}

/// Everything a simulated exam produced.
#[derive(Debug)]
pub struct ExamOutcome {
    /// The acquisition.
    pub acquisition: Acquisition,
    /// The phantom's ground truth.
    pub truth: GroundTruth,
    /// Summary.
    pub summary: ExamSummary,
    /// Per-view dose report (Monte Carlo on the phantom and the formalism).
    pub dose: Option<DoseReport>,
}

fn preset_with_overrides(config: &ExamConfig) -> anyhow::Result<ScanPreset> {
    let mut preset = ScanPreset::builtin(config.preset);
    let g = &config.geometry;
    if let Some(v) = g.source_to_detector_mm {
        preset.geometry.source_to_detector_mm = v;
    }
    if let Some(v) = g.rotation_axis_height_mm {
        preset.geometry.rotation_axis_height_mm = v;
    }
    if let Some(v) = g.arc_start_deg {
        preset.sampling.start_deg = v;
    }
    if let Some(v) = g.arc_end_deg {
        preset.sampling.end_deg = v;
    }
    if let Some(v) = g.views {
        if v == 0 {
            bail!("geometry.views: must be at least 1");
        }
        preset.sampling.views = v;
    }
    let native = preset.geometry.detector;
    let pitch = g.detector_pitch_mm.unwrap_or(match config.resolution {
        Resolution::Fast => native.pitch_u_mm * 4.0,
        Resolution::Clinical => native.pitch_u_mm,
    });
    if !(pitch.is_finite() && pitch > 0.0) {
        bail!("geometry.detector_pitch_mm: must be positive, got {pitch}");
    }
    preset.geometry.detector = DetectorGeometry {
        cols: (native.width_mm() / pitch).round().max(1.0) as usize,
        rows: (native.height_mm() / pitch).round().max(1.0) as usize,
        pitch_u_mm: pitch,
        pitch_v_mm: pitch,
        ..native
    };
    preset.geometry.validate().map_err(|e| anyhow::anyhow!("geometry: {e}"))?;
    Ok(preset)
}

fn render_config(config: &ExamConfig, preset: &ScanPreset) -> anyhow::Result<RenderConfig> {
    let pitch = preset.geometry.detector.pitch_u_mm;
    let base = DetectorModel::default();
    // The default model is an 85 um panel; binned pixels average their sub-pixels, so the gain per keV
    // falls with the pixel area and the counts stay on the 85 um scale.
    let area_ratio = (0.085 / pitch).powi(2);
    let detector = DetectorModel {
        gain_adu_per_kev: base.gain_adu_per_kev * area_ratio,
        quantum_noise: config.physics.noise,
        electronic_noise_adu: if config.physics.noise { base.electronic_noise_adu } else { 0.0 },
        ..base
    };
    let mut fixed_layers = vec![FilterLayer::new("beryllium", config.physics.window_be_mm)?];
    if config.physics.paddle_pmma_mm > 0.0 {
        fixed_layers.push(FilterLayer::new("pmma", config.physics.paddle_pmma_mm)?);
    }
    Ok(RenderConfig {
        fixed_layers,
        projector: ProjectorConfig::default(),
        scatter: if config.physics.scatter { ScatterModel::default() } else { ScatterModel::off() },
        detector,
        motion_samples: match config.resolution {
            Resolution::Fast => 1,
            Resolution::Clinical => 3,
        },
        glandular_fraction: config.phantom.glandular_fraction,
        thickness_mm: config.phantom.thickness_mm,
        noise_seed: config.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5eed,
    })
}

/// Nominal gantry speed of a continuous sweep, deg/s (about 25 s for the 50 deg wide-angle arc).
const NOMINAL_SWEEP_DEG_PER_S: f64 = 2.0;

fn exposure_time_s(preset: &ScanPreset) -> f64 {
    match preset.motion {
        Motion::Continuous { exposure_arc_deg, .. } if exposure_arc_deg > 0.0 => {
            exposure_arc_deg / NOMINAL_SWEEP_DEG_PER_S
        }
        _ => 0.1,
    }
}

fn beam_filter(preset: &ScanPreset) -> Filter {
    preset.beam.filter
}

/// Effective attenuation -ln(T)/t of a slab of `material`, for the AEC's density calibration.
fn slab_mu(
    renderer: &PhysicsRenderer,
    scatter: &ScatterModel,
    arc: &ArcGeometry,
    material: Material,
    thickness_mm: f64,
    technique: &Technique,
    support_mm: f64,
) -> anyhow::Result<f64> {
    use tomolab_phantom::Grid;
    let probe = DetectorGeometry { cols: 1, rows: 1, pitch_u_mm: 1.0, pitch_v_mm: 1.0, ..arc.detector };
    let probe_arc = ArcGeometry { detector: probe, ..*arc };
    let centre_y = 0.45;
    let grid = Grid::covering(
        [-thickness_mm / 2.0, centre_y - thickness_mm / 2.0, support_mm],
        [thickness_mm / 2.0, centre_y + thickness_mm / 2.0, support_mm + thickness_mm],
        thickness_mm,
    )?;
    let mut table = MaterialTable::air_only();
    table.set(1, material, "calibration slab");
    let slab = LabelVolume::new(grid, vec![1])?;
    let air = LabelVolume::air(grid)?;
    let with = renderer.probe_energy(&probe_arc, &slab, &table, technique)?;
    let without = renderer.probe_energy(&probe_arc, &air, &table, technique)?;
    // Calibrate on what the detector sees behind a large slab: primary plus the scatter model's share, as a
    // clinical AEC is calibrated on phantoms.
    let g = if material == Material::Glandular { 1.0 } else { 0.0 };
    let with = with * (1.0 + scatter.spr(thickness_mm, g, 0.0));
    Ok(-(with / without).ln() / thickness_mm)
}

fn build_aec(
    config: &ExamConfig,
    preset: &ScanPreset,
    renderer: &PhysicsRenderer,
    preshot: &Technique,
    target_counts: f64,
    fatty_max: f64,
) -> anyhow::Result<PreshotAec> {
    let (standard, fatty) = (28.0, 30.0);
    let mut output = Vec::new();
    for kvp in [preshot.kvp.get(), standard, fatty] {
        let t = Technique { kvp: Kilovolts::new(kvp)?, ..*preshot };
        let flood = renderer.flood_per_mas(&t).map_err(anyhow::Error::msg)?;
        output.push(OutputCalibration { kvp, counts_per_mas: flood.mean() });
    }
    output.sort_by(|a, b| a.kvp.total_cmp(&b.kvp));
    output.dedup_by(|a, b| a.kvp == b.kvp);
    let scatter = if config.physics.scatter { ScatterModel::default() } else { ScatterModel::off() };
    let mut density = Vec::new();
    for t in [20.0, 35.0, 50.0, 65.0, 80.0, 95.0] {
        density.push(DensityCalibration {
            thickness_mm: t,
            mu_adipose_per_mm: slab_mu(
                renderer,
                &scatter,
                &preset.geometry,
                Material::Adipose,
                t,
                preshot,
                config.phantom.support_height_mm,
            )?,
            mu_glandular_per_mm: slab_mu(
                renderer,
                &scatter,
                &preset.geometry,
                Material::Glandular,
                t,
                preshot,
                config.phantom.support_height_mm,
            )?,
        });
    }
    Ok(PreshotAec {
        target: preset.beam.target,
        filter: beam_filter(preset),
        standard_kvp: standard,
        fatty_kvp: fatty,
        fatty_glandular_max: fatty_max,
        target_counts,
        exposure_time_s: exposure_time_s(preset),
        tube_current_range_ma: (5.0, 200.0),
        breast_transmission_max: 0.8,
        block_mm: 5.0,
        pixel_pitch_mm: preset.geometry.detector.pitch_u_mm,
        output,
        density,
    })
}

/// The exam's dose models: the sequencer's budget estimate and the phantom Monte Carlo of the report.
#[derive(Debug)]
pub struct ExamDose {
    /// Formalism (with the model-breast Monte Carlo where its tables stop) for the budget check.
    pub budget: BudgetDose,
    /// The phantom and unit for the Monte Carlo report.
    pub inputs: DoseInputs,
}

/// A simulated exam ready to run: the unit, the plan, the AEC and the dose model.
pub struct PreparedExam {
    /// The simulated unit (its devices can also be served over the firmware bridge).
    pub unit: SimUnit,
    /// The exam plan.
    pub plan: ExamPlan,
    /// The AEC, if the technique is automatic.
    pub aec: Option<PreshotAec>,
    /// The dose model of the budget check and what the dose report needs.
    pub dose: ExamDose,
    /// The phantom's ground truth.
    pub truth: GroundTruth,
    /// The detector grid of the frames.
    pub detector: DetectorGeometry,
}

impl core::fmt::Debug for PreparedExam {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedExam").field("plan", &self.plan).finish_non_exhaustive()
    }
}

/// Builds the phantom, the physics and the simulated unit of `config`. `on_frame` is called after each frame
/// is rendered (for progress display).
pub fn prepare_exam(config: &ExamConfig, on_frame: Option<Box<dyn Fn(u64) + Send>>) -> anyhow::Result<PreparedExam> {
    config.validate()?;
    let preset = preset_with_overrides(config)?;
    let params = BreastParams { seed: config.seed, ..config.phantom.clone() };
    let phantom = Phantom::breast(&params).context("phantom")?;
    let generated = phantom.generate().context("generating the phantom")?;
    let volume = Arc::new(generated.volume);
    let rc = render_config(config, &preset)?;
    let formalism = Formalism {
        arc: preset.geometry,
        fixed_layers: rc.fixed_layers.clone(),
        support_height_mm: params.support_height_mm,
    };
    // The budget's formalism uses the glandularity of the breast actually generated (ligaments count as
    // glandular tissue), the same figure `tomolab dose --phantom` uses.
    let glandularity = PhantomDose {
        volume: &volume,
        materials: phantom.materials(),
        arc: &preset.geometry,
        fixed_layers: &rc.fixed_layers,
    }
    .glandularity()
    .context("phantom glandularity")?;
    let dose = ExamDose {
        budget: BudgetDose::new(formalism, glandularity),
        inputs: DoseInputs {
            volume: Arc::clone(&volume),
            materials: phantom.materials().clone(),
            arc: preset.geometry,
            fixed_layers: rc.fixed_layers.clone(),
            config: config.dose,
        },
    };
    let mut renderer = PhysicsRenderer::new(preset.geometry, volume, phantom.materials(), rc)?;
    let full_circle = preset.sampling.is_full_circle();
    let mut sim = SimConfig::new(params.thickness_mm);
    sim.faults = config.faults;
    sim.gantry = GantryDynamics { limit_deg: if full_circle { 360.0 } else { 30.0 }, ..GantryDynamics::default() };
    let exposure_s = exposure_time_s(&preset);
    let (technique_mode, aec) = match &config.technique {
        TechniqueConfig::Aec { preshot_mas, target_counts, fatty_glandular_max } => {
            let preshot = Technique {
                kvp: Kilovolts::new(28.0)?,
                tube_current: Milliamperes::new(50.0)?,
                mas_per_view: MilliampereSeconds::new(*preshot_mas).context("technique.preshot_mas")?,
                target: preset.beam.target,
                filter: beam_filter(&preset),
                focal_spot: FocalSpot::Large,
            };
            let aec = build_aec(config, &preset, &renderer, &preshot, *target_counts, *fatty_glandular_max)?;
            (TechniqueMode::Aec { preshot }, Some(aec))
        }
        TechniqueConfig::Manual { target, filter, filter_mm, kvp, mas_per_view } => {
            let technique = Technique {
                kvp: Kilovolts::new(*kvp).context("technique.kvp")?,
                tube_current: Milliamperes::new((mas_per_view / exposure_s).clamp(1.0, 500.0))
                    .context("technique.mas_per_view")?,
                mas_per_view: MilliampereSeconds::new(*mas_per_view).context("technique.mas_per_view")?,
                target: *target,
                filter: Filter { material: *filter, thickness_mm: *filter_mm },
                focal_spot: FocalSpot::Large,
            };
            (TechniqueMode::Manual { technique }, None)
        }
    };
    if let Some(cb) = on_frame {
        renderer.set_on_frame(cb);
    }
    let detector = renderer.geometry();
    let unit = SimUnit::new(sim, Box::new(renderer));
    let plan = ExamPlan::from_preset(
        &preset,
        technique_mode,
        Newtons::new(config.safety.compression_force_n).context("safety.compression_force_n")?,
        MilliGray::new(config.safety.dose_budget_mgd).context("safety.dose_budget_mgd")?,
    )?;
    Ok(PreparedExam { unit, plan, aec, dose, truth: generated.truth, detector })
}

/// Runs a simulated exam. `on_frame` is called after each frame is rendered (for progress display).
pub fn run_exam(config: &ExamConfig, on_frame: Option<Box<dyn Fn(u64) + Send>>) -> anyhow::Result<ExamOutcome> {
    let prepared = prepare_exam(config, on_frame)?;
    let mut devices = prepared.unit.devices();
    let clock = prepared.unit.clock();
    run_prepared(
        config,
        prepared.plan,
        prepared.aec,
        &prepared.dose,
        prepared.truth,
        prepared.detector,
        &mut devices,
        &clock,
    )
}

/// Runs the sequencer on any backend (the simulated unit, or the firmware bridge to a device) and summarises.
#[allow(clippy::too_many_arguments)]
pub fn run_prepared<T, G, D, P, I>(
    config: &ExamConfig,
    plan: ExamPlan,
    aec: Option<PreshotAec>,
    dose: &ExamDose,
    truth: GroundTruth,
    detector: DetectorGeometry,
    devices: &mut tomolab_hal::Devices<T, G, D, P, I>,
    clock: &dyn tomolab_hal::Clock,
) -> anyhow::Result<ExamOutcome>
where
    T: tomolab_hal::XrayTube,
    G: tomolab_hal::Gantry,
    D: tomolab_hal::Detector,
    P: tomolab_hal::CompressionPaddle,
    I: tomolab_hal::Interlocks,
{
    run_prepared_observed(config, plan, aec, dose, truth, detector, devices, clock, None)
}

/// [`run_prepared`], handing each view to `observer` as it arrives (to stream it to disk, see
/// [`tomolab_hal::journal`]).
#[allow(clippy::too_many_arguments)]
pub fn run_prepared_observed<T, G, D, P, I>(
    config: &ExamConfig,
    plan: ExamPlan,
    aec: Option<PreshotAec>,
    dose: &ExamDose,
    truth: GroundTruth,
    detector: DetectorGeometry,
    devices: &mut tomolab_hal::Devices<T, G, D, P, I>,
    clock: &dyn tomolab_hal::Clock,
    observer: Option<&mut dyn tomolab_hal::sequencer::ViewObserver>,
) -> anyhow::Result<ExamOutcome>
where
    T: tomolab_hal::XrayTube,
    G: tomolab_hal::Gantry,
    D: tomolab_hal::Detector,
    P: tomolab_hal::CompressionPaddle,
    I: tomolab_hal::Interlocks,
{
    let mut sequencer = Sequencer::new(SafetyLimits::default())?;
    let recording = aec.map(|inner| RecordingAec { inner, reading: std::cell::Cell::new(None) });
    let aec_ref = recording.as_ref().map(|a| a as &dyn tomolab_hal::sequencer::Aec);
    let t0 = clock.now();
    let acquisition = sequencer.run_observed(devices, &plan, &dose.budget, aec_ref, clock, observer)?;
    let exam_time_s = clock.now().saturating_sub(t0).as_secs_f64();
    let reading = recording.and_then(|r| r.reading.get());
    summarise(config, acquisition, dose, truth, detector, exam_time_s, reading)
}

/// The dose report and summary of an acquisition (a fresh one, or one recovered from a journal).
pub fn summarise(
    config: &ExamConfig,
    acquisition: Acquisition,
    dose: &ExamDose,
    truth: GroundTruth,
    detector: DetectorGeometry,
    exam_time_s: f64,
    aec: Option<AecReading>,
) -> anyhow::Result<ExamOutcome> {
    let report = if acquisition.meta.views.is_empty() {
        None
    } else {
        Some(DoseReport::compute(&dose.inputs, &dose.budget, &acquisition).context("dose report")?)
    };
    let summary = ExamSummary {
        preset: config.preset,
        seed: config.seed,
        resolution: config.resolution,
        status: acquisition.meta.status.clone(),
        views: acquisition.frames.len(),
        technique: acquisition.meta.technique,
        total_mas: acquisition.meta.views.iter().map(|v| v.exposure.mas.get()).sum(),
        aec,
        thickness_mm: acquisition.meta.compression.map(|c| c.thickness.get()),
        exam_time_s,
        estimated_mgd: acquisition.meta.dose.delivered_mgd,
        mgd_mgy: report.as_ref().map(|r| r.total_mgd_mgy),
        mgd_std_error_mgy: report.as_ref().map(|r| r.total_std_error_mgy),
        detector,
    };
    Ok(ExamOutcome { acquisition, truth, summary, dose: report })
}

/// Writes the acquisition bundle, ground truth, previews and summary into `dir`.
pub fn write_outputs(outcome: &ExamOutcome, dir: &Path) -> anyhow::Result<()> {
    let acq_dir = dir.join("acquisition");
    tomolab_hal::bundle::save(&outcome.acquisition, &acq_dir)?;
    std::fs::write(dir.join("ground_truth.json"), serde_json::to_vec_pretty(&outcome.truth)?)?;
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(&outcome.summary)?)?;
    write_previews(&outcome.acquisition, &dir.join("previews"))?;
    if let Some(report) = &outcome.dose {
        report.write(dir)?;
    }
    Ok(())
}

/// Log-scaled 8-bit preview of line integrals, or of raw counts when calibration is missing.
fn preview(
    frame: &tomolab_hal::Frame,
    dark: Option<&tomolab_hal::Frame>,
    flood: Option<&tomolab_hal::Frame>,
    mas: f64,
) -> image::GrayImage {
    let p: Vec<f32> = frame
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let d = dark.map_or(0.0, |d| d.data[i]);
            let f = flood.map_or(1.0, |f| f.data[i] * mas as f32);
            -((v - d).max(1e-3) / f.max(1e-3)).ln()
        })
        .collect();
    let mut sorted: Vec<f32> = p.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let lo = sorted.get(sorted.len() / 100).copied().unwrap_or(0.0);
    let hi = sorted.get(sorted.len() * 999 / 1000).copied().unwrap_or(1.0).max(lo + 1e-6);
    // Display convention: attenuation bright, as on a mammogram.
    image::GrayImage::from_fn(frame.cols as u32, frame.rows as u32, |x, y| {
        let v = p[y as usize * frame.cols + x as usize];
        image::Luma([(((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8])
    })
}

fn write_previews(acq: &Acquisition, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (k, (frame, view)) in acq.frames.iter().zip(&acq.meta.views).enumerate() {
        let img = preview(frame, acq.dark.as_ref(), acq.flood.as_ref(), view.exposure.mas.get());
        img.save(dir.join(format!("view_{k:02}.png"))).with_context(|| format!("writing preview of view {k}"))?;
    }
    Ok(())
}

/// Keeps what the AEC read from the pre-shot, for the summary.
struct RecordingAec {
    inner: PreshotAec,
    reading: std::cell::Cell<Option<AecReading>>,
}

impl tomolab_hal::sequencer::Aec for RecordingAec {
    fn choose(
        &self,
        preshot: &tomolab_hal::Frame,
        dark: Option<&tomolab_hal::Frame>,
        preshot_technique: &Technique,
        compression: &tomolab_hal::Compression,
        views: usize,
    ) -> Result<Technique, tomolab_hal::sequencer::AecError> {
        self.reading.set(self.inner.read(preshot, dark, preshot_technique, compression).ok());
        self.inner.choose(preshot, dark, preshot_technique, compression, views)
    }
}
