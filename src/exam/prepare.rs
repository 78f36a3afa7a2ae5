//! Building an exam from its configuration: the preset with its overrides, the phantom, the physics renderer,
//! the AEC calibrated from that physics, the dose models, and the simulated unit (or no unit at all, when a
//! device over the firmware bridge will run the protocol).

use std::sync::Arc;

use anyhow::{Context, bail};
use tomolab_hal::acquisition::TechniqueMode;
use tomolab_hal::aec::PreshotAec;
use tomolab_hal::presets::Motion;
use tomolab_hal::technique::{Filter, FocalSpot, Technique};
use tomolab_hal::{
    DetectorGeometry, ExamPlan, Kilovolts, MilliGray, MilliampereSeconds, Milliamperes, Newtons, ScanPreset,
};
use tomolab_phantom::{BreastParams, LabelVolume, MaterialTable, Phantom};
use tomolab_simulator::aec::{self, AecSettings};
use tomolab_simulator::device::{FrameRenderer, GantryDynamics, SimConfig, SimUnit};
use tomolab_simulator::dose::{BudgetDose, Formalism, PhantomDose};
use tomolab_simulator::render::{PhysicsRenderer, RenderConfig};
use tomolab_simulator::{AntiScatterGrid, DetectorModel, FilterLayer, MaterialId, RayTracerConfig, ScatterModel};

use super::{ExamConfig, ExamDose, ExamOutcome, ExamProtocol, Resolution, TechniqueConfig};
use crate::dose_report::DoseInputs;

/// A simulated exam ready to run: the simulated unit and the protocol to run on it.
pub struct PreparedExam {
    /// The simulated unit (its devices can also be served over the firmware bridge).
    pub unit: SimUnit,
    /// What runs on it.
    pub protocol: ExamProtocol,
}

impl core::fmt::Debug for PreparedExam {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedExam").field("protocol", &self.protocol).finish_non_exhaustive()
    }
}

/// The protocol of `config` and the physics the simulated unit would render with.
struct Built {
    protocol: ExamProtocol,
    renderer: PhysicsRenderer,
    sim: SimConfig,
}

/// Builds the phantom, the physics and the simulated unit of `config`. `on_frame` is called after each frame
/// is rendered (for progress display).
pub fn prepare_exam(config: &ExamConfig, on_frame: Option<Box<dyn Fn(u64) + Send>>) -> anyhow::Result<PreparedExam> {
    let Built { protocol, mut renderer, sim } = build(config)?;
    if let Some(cb) = on_frame {
        renderer.set_on_frame(cb);
    }
    Ok(PreparedExam { unit: SimUnit::new(sim, Box::new(renderer)), protocol })
}

/// The protocol of `config` alone, for a unit that is not the simulated one (a device over the firmware
/// bridge, or a journal being resumed): the AEC is still calibrated from the physics, but no simulated unit is
/// built.
pub fn prepare_protocol(config: &ExamConfig) -> anyhow::Result<ExamProtocol> {
    Ok(build(config)?.protocol)
}

/// Runs a simulated exam. `on_frame` is called after each frame is rendered (for progress display).
pub fn run_exam(config: &ExamConfig, on_frame: Option<Box<dyn Fn(u64) + Send>>) -> anyhow::Result<ExamOutcome> {
    let prepared = prepare_exam(config, on_frame)?;
    prepared.protocol.run(&mut prepared.unit.devices(), &prepared.unit.clock())
}

fn build(config: &ExamConfig) -> anyhow::Result<Built> {
    config.validate()?;
    let preset = preset_with_overrides(config)?;
    let params = BreastParams { seed: config.seed, ..config.phantom.clone() };
    let phantom = Phantom::breast(&params).context("phantom")?;
    let generated = phantom.generate().context("generating the phantom")?;
    let volume = Arc::new(generated.volume);
    let mut rc = render_config(config, &preset)?;
    // The glandularity of the breast actually generated (ligaments count as glandular tissue), the same
    // figure `tomolab dose --phantom` uses: computed once, for the scatter model and the dose budget alike.
    let glandularity = PhantomDose {
        volume: &volume,
        materials: phantom.materials(),
        arc: &preset.geometry,
        fixed_layers: &rc.fixed_layers,
    }
    .glandularity()
    .context("phantom glandularity")?;
    rc.glandular_fraction = glandularity;
    let dose = exam_dose(config, &preset, &volume, phantom.materials(), &rc)?;
    let renderer = PhysicsRenderer::new(preset.geometry, volume, phantom.materials(), rc)?;
    let mut sim = SimConfig::new(params.thickness_mm);
    sim.faults = config.faults;
    // The preset's mechanical travel; `ExamConfig::validate` checked the arc against it.
    sim.gantry = GantryDynamics { limit_deg: preset.gantry_limit_deg, ..GantryDynamics::default() };
    let (technique_mode, aec) = technique(config, &preset, &renderer)?;
    let detector = renderer.geometry();
    let mut plan = ExamPlan::from_preset(
        &preset,
        technique_mode,
        Newtons::new(config.safety.compression_force_n).context("safety.compression_force_n")?,
        MilliGray::new(config.safety.dose_budget_mgd).context("safety.dose_budget_mgd")?,
    )?;
    // Recorded in the bundle, so `tomolab recon` puts its slab on the breast by default.
    plan.support_height_mm = Some(params.support_height_mm);
    let protocol = ExamProtocol { config: config.clone(), plan, aec, dose, truth: generated.truth, detector };
    Ok(Built { protocol, renderer, sim })
}

/// The budget's dose model and the Monte Carlo report's inputs.
fn exam_dose(
    config: &ExamConfig,
    preset: &ScanPreset,
    volume: &Arc<LabelVolume>,
    materials: &MaterialTable,
    rc: &RenderConfig,
) -> anyhow::Result<ExamDose> {
    let formalism = Formalism {
        arc: preset.geometry,
        fixed_layers: rc.fixed_layers.clone(),
        support_height_mm: config.phantom.support_height_mm,
    };
    Ok(ExamDose {
        budget: BudgetDose::new(formalism, rc.glandular_fraction),
        inputs: DoseInputs {
            volume: Arc::clone(volume),
            materials: materials.clone(),
            arc: preset.geometry,
            fixed_layers: rc.fixed_layers.clone(),
            config: config.dose,
        },
    })
}

/// The technique mode of the plan, and the AEC (calibrated from the renderer's physics) when it is automatic.
fn technique(
    config: &ExamConfig,
    preset: &ScanPreset,
    renderer: &PhysicsRenderer,
) -> anyhow::Result<(TechniqueMode, Option<PreshotAec>)> {
    Ok(match &config.technique {
        TechniqueConfig::Aec { preshot_mas, target_counts } => {
            // The pre-shot runs at the preset's nominal beam.
            let preshot = Technique {
                kvp: Kilovolts::new(preset.beam.kvp).context("the preset's kvp")?,
                tube_current: Milliamperes::new(50.0)?,
                mas_per_view: MilliampereSeconds::new(*preshot_mas).context("technique.preshot_mas")?,
                target: preset.beam.target,
                filter: preset.beam.filter,
                focal_spot: FocalSpot::Large,
            };
            let scatter = if config.physics.scatter { ScatterModel::default() } else { ScatterModel::off() };
            let settings = AecSettings {
                preset,
                preshot: &preshot,
                scatter: &scatter,
                support_height_mm: config.phantom.support_height_mm,
                target_counts: *target_counts,
                exposure_time_s: exposure_time_s(preset),
            };
            let aec = aec::calibrate(renderer, &settings).context("calibrating the AEC")?;
            (TechniqueMode::Aec { preshot }, Some(aec))
        }
        TechniqueConfig::Manual { target, filter, filter_mm, kvp, mas_per_view } => {
            let exposure_s = exposure_time_s(preset);
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
    })
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
    let mut fixed_layers = vec![FilterLayer::new(MaterialId::Beryllium, config.physics.window_be_mm)?];
    if config.physics.paddle_pmma_mm > 0.0 {
        fixed_layers.push(FilterLayer::new(MaterialId::Pmma, config.physics.paddle_pmma_mm)?);
    }
    Ok(RenderConfig {
        fixed_layers,
        ray_tracer: RayTracerConfig::default(),
        scatter: if config.physics.scatter { ScatterModel::default() } else { ScatterModel::off() },
        anti_scatter_grid: preset.anti_scatter_grid.then(AntiScatterGrid::linear_mammography),
        detector,
        motion_samples: match config.resolution {
            Resolution::Fast => 1,
            Resolution::Clinical => 3,
        },
        // Replaced by the generated phantom's measured glandularity once it exists (see `build`).
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
