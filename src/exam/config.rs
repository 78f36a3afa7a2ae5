//! The exam's configuration: every knob with its default, `exam.toml` deep-merged over the defaults with
//! unknown keys rejected by path and case-insensitive enum values, the range check of every field, and the
//! resource estimate that refuses an exam too large for the machine before anything is built.

use serde::{Deserialize, Serialize};
use tomolab_hal::presets::Motion;
use tomolab_hal::sequencer::SafetyLimits;
use tomolab_hal::technique::{FilterMaterial, Target};
use tomolab_hal::{PresetName, ScanPreset};
use tomolab_phantom::{BreastParams, CalcMaterial, LesionSpec, Placement};
use tomolab_recon::{ReconConfig, ReconError};
use tomolab_simulator::device::FaultPlan;
use tomolab_simulator::dose::PhantomDoseConfig;

/// How finely the exam is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
        /// kV and filter come from the technique table (`data/aec/technique_table.csv`) by thickness and
        /// estimated glandularity, offset from the preset's nominal kV.
        target_counts: f64,
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
    /// The reconstruction after the exam (`[recon]`, any key of [`ReconConfig`]); its `support_height_mm`
    /// follows `phantom.support_height_mm` unless given.
    pub recon: ReconConfig,
}

/// The AEC's default signal target (counts behind the densest block, summed over the views).
///
/// Tomosynthesis presets aim at 8000. Behind an anti-scatter grid (2D mammography) the same signal would cost
/// the Bucky factor (about 1.9) in dose, so the 2D target is lower, set so the default breast's 2D dose
/// against this simulator's wide-angle DBT dose follows the clinical ratio Feng & Sechopoulos measured under a
/// commercial AEC ("Clinical digital breast tomosynthesis system: dosimetric characterization", Radiology
/// 263:35 (2012): 1.20 mGy 2D against 1.30 mGy DBT for a 5.0 cm, 50 % glandular breast).
pub fn default_target_counts(preset: PresetName) -> f64 {
    if ScanPreset::builtin(preset).anti_scatter_grid { 3700.0 } else { 8000.0 }
}

impl ExamConfig {
    /// The default exam: wide-angle, a 50 mm 20% glandular breast with a spiculated mass and a
    /// calcification cluster, AEC.
    ///
    /// The mass (8 mm of infiltrating ductal carcinoma) is placed, at a position drawn from the seed, in fatty
    /// tissue: Johns & Yaffe's carcinoma attenuates only 3-5 % more than fibroglandular tissue at 20-30 keV, so
    /// a mass wholly inside a dense region is invisible in DBT and in 2D alike (as isodense masses are on real
    /// units); in fat it is what a radiologist sees, and what shows DBT's gain over 2D.
    pub fn defaults(preset: PresetName, resolution: Resolution) -> Self {
        let phantom = BreastParams {
            thickness_mm: 50.0,
            glandular_fraction: 0.2,
            voxel_mm: match resolution {
                Resolution::Fast => 0.25,
                Resolution::Clinical => 0.1,
            },
            lesions: vec![
                LesionSpec::spiculated(8.0, 12, 6.0).in_tissue(Placement::Fat),
                LesionSpec::calcifications(12, 0.2, 0.4, 8.0, CalcMaterial::default()).at([25.0, 50.0, 47.0]),
            ],
            ..BreastParams::default()
        };
        Self {
            preset,
            seed: 1,
            resolution,
            geometry: GeometryOverrides::default(),
            technique: TechniqueConfig::Aec { preshot_mas: 2.0, target_counts: default_target_counts(preset) },
            physics: PhysicsConfig { scatter: true, noise: true, window_be_mm: 1.0, paddle_pmma_mm: 2.5 },
            safety: SafetyConfig { compression_force_n: 100.0, dose_budget_mgd: 3.0 },
            faults: FaultPlan::default(),
            dose: PhantomDoseConfig::default(),
            recon: ReconConfig { support_height_mm: phantom.support_height_mm, ..ReconConfig::default() },
            phantom,
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
        let support_given =
            user.get("recon").and_then(toml::Value::as_table).is_some_and(|r| r.contains_key("support_height_mm"));
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
                            return Err(ConfigError::new(&error_key(&message), message.trim()));
                        }
                    }
                }
            }
        }
        let config = config.ok_or_else(|| ConfigError::new("exam.toml", "too many enum values to normalise"))?;
        let mut config = Self { preset, resolution, ..config };
        if !support_given {
            config.recon.support_height_mm = config.phantom.support_height_mm;
        }
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
        check_gantry_reach(&preset, g)?;
        match &self.technique {
            TechniqueConfig::Aec { preshot_mas, target_counts } => {
                check("technique.preshot_mas", *preshot_mas, 0.1, 100.0, "mAs")?;
                check("technique.target_counts", *target_counts, 1.0, 1.0e7, "counts")?;
            }
            TechniqueConfig::Manual { filter_mm, kvp, mas_per_view, .. } => {
                check("technique.filter_mm", *filter_mm, 0.0, 5.0, "mm")?;
                // The spectrum tables' range; between integers the spectrum is interpolated, so what is recorded
                // is what is simulated.
                let (lo, hi) =
                    (f64::from(tomolab_simulator::spectrum::MIN_KVP), f64::from(tomolab_simulator::spectrum::MAX_KVP));
                check("technique.kvp", *kvp, lo, hi, "kV (the spectrum tables' range)")?;
                check("technique.mas_per_view", *mas_per_view, 0.01, 500.0, "mAs")?;
            }
        }
        check("physics.window_be_mm", self.physics.window_be_mm, 0.0, 10.0, "mm")?;
        check("physics.paddle_pmma_mm", self.physics.paddle_pmma_mm, 0.0, 50.0, "mm")?;
        check("safety.compression_force_n", self.safety.compression_force_n, 0.0, 200.0, "N")?;
        // A budget above the sequencer's own exam limit would be capped silently: refuse it instead.
        let cap = SafetyLimits::default().exam_dose_limit.get();
        check("safety.dose_budget_mgd", self.safety.dose_budget_mgd, 0.001, 100.0, "mGy")?;
        if self.safety.dose_budget_mgd > cap {
            return Err(ConfigError::new(
                "safety.dose_budget_mgd",
                format!(
                    "{} mGy is above the unit's exam dose limit of {cap} mGy (the sequencer never books more); \
                     give at most {cap}",
                    self.safety.dose_budget_mgd
                ),
            ));
        }
        check("faults.force_drift_n", self.faults.force_drift_n, -1000.0, 1000.0, "N")?;
        let d = &self.dose;
        if !(1..=MAX_HISTORIES_PER_VIEW).contains(&d.histories_per_view) {
            return Err(ConfigError::new(
                "dose.histories_per_view",
                format!("{} is outside 1..={MAX_HISTORIES_PER_VIEW}", d.histories_per_view),
            ));
        }
        // The Monte Carlo needs two batches for its standard error (one passed here and failed after the exam).
        if d.batches < 2 || d.batches > 1024 || u64::from(d.batches) > d.histories_per_view {
            return Err(ConfigError::new(
                "dose.batches",
                format!("{} must lie within 2..=1024 and not exceed dose.histories_per_view", d.batches),
            ));
        }
        self.phantom.validate().map_err(|e| ConfigError::new("phantom", e))?;
        // Every number of [recon] is finite, including those the chosen algorithm does not read.
        let recon = toml::Value::try_from(self.recon).map_err(|e| ConfigError::new("recon", e))?;
        finite_numbers("recon", &recon)?;
        self.recon.validate().map_err(|e| match e {
            ReconError::Invalid { field, problem } => ConfigError::new(&field, problem),
            other => ConfigError::new("recon", other),
        })?;
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

/// The arc, with a continuous sweep's exposure arc and run-up, must stay within the preset's gantry travel.
fn check_gantry_reach(preset: &ScanPreset, g: &GeometryOverrides) -> Result<(), ConfigError> {
    let (start, end) =
        (g.arc_start_deg.unwrap_or(preset.sampling.start_deg), g.arc_end_deg.unwrap_or(preset.sampling.end_deg));
    let beyond = match preset.motion {
        Motion::Continuous { exposure_arc_deg, run_up_deg } => exposure_arc_deg / 2.0 + run_up_deg,
        _ => 0.0,
    };
    let limit = preset.gantry_limit_deg;
    let (key, angle) = if end.abs() >= start.abs() {
        (if g.arc_end_deg.is_some() { "geometry.arc_end_deg" } else { "preset" }, end)
    } else {
        (if g.arc_start_deg.is_some() { "geometry.arc_start_deg" } else { "preset" }, start)
    };
    if angle.abs() + beyond > limit {
        return Err(ConfigError::new(
            key,
            format!(
                "{angle} deg plus {beyond} deg of exposure arc and run-up is beyond the {} gantry's +-{limit} deg travel",
                preset.name
            ),
        ));
    }
    Ok(())
}

/// The key a deserialisation error is about: "... key `a.b` ...", or "unknown field `f` ... in `a.b`" (a
/// section that refuses unknown fields itself) as `a.b.f`.
fn error_key(message: &str) -> String {
    let quoted = |after: &str| message.split(after).nth(1).and_then(|rest| rest.split('`').next()).map(str::to_owned);
    if let Some(key) = quoted("key `") {
        return key;
    }
    match (quoted("unknown field `"), message.rsplit("in `").next().filter(|_| message.contains("in `"))) {
        (Some(field), Some(rest)) => format!("{}.{field}", rest.split('`').next().unwrap_or_default()),
        (Some(field), None) => field,
        _ => "exam.toml".to_owned(),
    }
}

/// Refuses a NaN or infinite number anywhere in `value`, naming its key.
fn finite_numbers(key: &str, value: &toml::Value) -> Result<(), ConfigError> {
    match value {
        toml::Value::Float(f) if !f.is_finite() => Err(ConfigError::new(key, format!("{f} is not a finite number"))),
        toml::Value::Table(t) => t.iter().try_for_each(|(k, v)| finite_numbers(&format!("{key}.{k}"), v)),
        toml::Value::Array(a) => a.iter().try_for_each(|v| finite_numbers(key, v)),
        _ => Ok(()),
    }
}

fn check(key: &str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("{v} is outside {lo}..={hi} {unit}").trim_end().to_owned()))
    }
}

/// Parses a resolution name, case-insensitively.
fn parse_resolution(s: &str) -> Result<Resolution, String> {
    <Resolution as clap::ValueEnum>::from_str(s, true)
        .map_err(|_| format!("`{s}` is not a resolution; use fast or clinical"))
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
