//! The AEC's calibration from the simulator's own physics, as a clinical AEC is calibrated on phantoms.
//!
//! The HAL's [`PreshotAec`] turns a pre-shot frame into a technique using two backend-supplied tables: the
//! open-field output per kVp (counts per mAs, read from the renderer's flood) and the effective attenuation
//! `-ln(T) / t` of large adipose and glandular slabs per thickness, measured by a single probe pixel behind
//! each slab with the scatter model's share added (what the detector sees behind a large phantom).

use tomolab_hal::aec::{DensityCalibration, OutputCalibration, PreshotAec};
use tomolab_hal::technique::Technique;
use tomolab_hal::{ArcGeometry, DetectorGeometry, Kilovolts, ScanPreset};
use tomolab_phantom::{LabelVolume, Material, MaterialTable};

use crate::error::PhysicsError;
use crate::render::PhysicsRenderer;
use crate::scatter::ScatterModel;

/// kVp of the density rule for breasts that are not fatty.
pub const STANDARD_KVP: f64 = 28.0;
/// kVp of the density rule for fatty breasts.
pub const FATTY_KVP: f64 = 30.0;
/// Slab thicknesses of the density calibration, mm.
pub const CALIBRATION_THICKNESSES_MM: [f64; 6] = [20.0, 35.0, 50.0, 65.0, 80.0, 95.0];

/// The exam's choices the calibration needs besides the physics.
#[derive(Debug, Clone, Copy)]
pub struct AecSettings<'a> {
    /// The scanner (beam, geometry, detector pitch).
    pub preset: &'a ScanPreset,
    /// The pre-shot technique (its kVp is calibrated too).
    pub preshot: &'a Technique,
    /// The scatter model the exam renders with ([`ScatterModel::off`] when scatter is off).
    pub scatter: &'a ScatterModel,
    /// Height of the breast support above the detector, mm (where the calibration slabs lie).
    pub support_height_mm: f64,
    /// Signal the densest block must reach, summed over all views, counts above dark.
    pub target_counts: f64,
    /// Glandular fraction below which a breast counts as fatty.
    pub fatty_glandular_max: f64,
    /// Duration of each view's exposure, s.
    pub exposure_time_s: f64,
}

/// The pre-shot AEC of `settings`, calibrated on `renderer`'s physics.
pub fn calibrate(renderer: &PhysicsRenderer, settings: &AecSettings<'_>) -> Result<PreshotAec, PhysicsError> {
    let preset = settings.preset;
    Ok(PreshotAec {
        target: preset.beam.target,
        filter: preset.beam.filter,
        standard_kvp: STANDARD_KVP,
        fatty_kvp: FATTY_KVP,
        fatty_glandular_max: settings.fatty_glandular_max,
        target_counts: settings.target_counts,
        exposure_time_s: settings.exposure_time_s,
        tube_current_range_ma: (5.0, 200.0),
        breast_transmission_max: 0.8,
        block_mm: 5.0,
        pixel_pitch_mm: preset.geometry.detector.pitch_u_mm,
        output: output_calibration(renderer, settings.preshot)?,
        density: density_calibration(
            renderer,
            settings.scatter,
            &preset.geometry,
            settings.preshot,
            settings.support_height_mm,
        )?,
    })
}

/// Open-field output (mean flood counts per mAs) at the pre-shot kVp and both rule kVps, sorted by kVp,
/// duplicates removed.
pub fn output_calibration(
    renderer: &PhysicsRenderer,
    preshot: &Technique,
) -> Result<Vec<OutputCalibration>, PhysicsError> {
    let mut output = Vec::new();
    for kvp in [preshot.kvp.get(), STANDARD_KVP, FATTY_KVP] {
        let kv = Kilovolts::new(kvp).map_err(|e| PhysicsError::invalid("aec kvp", e.to_string()))?;
        let t = Technique { kvp: kv, ..*preshot };
        let flood = renderer.try_flood(&t)?;
        output.push(OutputCalibration { kvp, counts_per_mas: flood.mean() });
    }
    output.sort_by(|a, b| a.kvp.total_cmp(&b.kvp));
    output.dedup_by(|a, b| a.kvp == b.kvp);
    Ok(output)
}

/// Effective attenuation of adipose and glandular slabs at every [`CALIBRATION_THICKNESSES_MM`].
pub fn density_calibration(
    renderer: &PhysicsRenderer,
    scatter: &ScatterModel,
    arc: &ArcGeometry,
    preshot: &Technique,
    support_mm: f64,
) -> Result<Vec<DensityCalibration>, PhysicsError> {
    CALIBRATION_THICKNESSES_MM
        .into_iter()
        .map(|t| {
            Ok(DensityCalibration {
                thickness_mm: t,
                mu_adipose_per_mm: slab_mu(renderer, scatter, arc, Material::Adipose, t, preshot, support_mm)?,
                mu_glandular_per_mm: slab_mu(renderer, scatter, arc, Material::Glandular, t, preshot, support_mm)?,
            })
        })
        .collect()
}

/// Effective attenuation -ln(T)/t of a slab of `material`, primary plus the scatter model's share.
pub fn slab_mu(
    renderer: &PhysicsRenderer,
    scatter: &ScatterModel,
    arc: &ArcGeometry,
    material: Material,
    thickness_mm: f64,
    technique: &Technique,
    support_mm: f64,
) -> Result<f64, PhysicsError> {
    let phantom_err = |e: tomolab_phantom::PhantomError| PhysicsError::invalid("aec calibration slab", e.to_string());
    let probe = DetectorGeometry { cols: 1, rows: 1, pitch_u_mm: 1.0, pitch_v_mm: 1.0, ..arc.detector };
    let probe_arc = ArcGeometry { detector: probe, ..*arc };
    let centre_y = 0.45;
    let grid = tomolab_phantom::volume::covering(
        [-thickness_mm / 2.0, centre_y - thickness_mm / 2.0, support_mm],
        [thickness_mm / 2.0, centre_y + thickness_mm / 2.0, support_mm + thickness_mm],
        thickness_mm,
    )
    .map_err(phantom_err)?;
    let mut table = MaterialTable::air_only();
    table.set(1, material, "calibration slab");
    let slab = LabelVolume::new(grid, vec![1]).map_err(phantom_err)?;
    let air = LabelVolume::air(grid).map_err(phantom_err)?;
    let with = renderer.probe_energy(&probe_arc, &slab, &table, technique)?;
    let without = renderer.probe_energy(&probe_arc, &air, &table, technique)?;
    // Calibrate on what the detector sees behind a large slab: primary plus the scatter model's share, as a
    // clinical AEC is calibrated on phantoms.
    let g = if material == Material::Glandular { 1.0 } else { 0.0 };
    let with = with * (1.0 + scatter.spr(thickness_mm, g, 0.0));
    Ok(-(with / without).ln() / thickness_mm)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tomolab_hal::PresetName;
    use tomolab_hal::technique::FocalSpot;
    use tomolab_hal::{MilliampereSeconds, Milliamperes};

    use super::*;
    use crate::detector::DetectorModel;
    use crate::ray_tracer::RayTracerConfig;
    use crate::render::RenderConfig;
    use crate::spectrum::FilterLayer;

    fn renderer(preset: &ScanPreset, scatter: ScatterModel) -> PhysicsRenderer {
        let grid = tomolab_phantom::volume::covering([-10.0, 0.0, 20.0], [10.0, 20.0, 40.0], 10.0).unwrap();
        let volume = Arc::new(LabelVolume::air(grid).unwrap());
        let config = RenderConfig {
            fixed_layers: vec![FilterLayer::named("Be", 1.0).unwrap()],
            ray_tracer: RayTracerConfig::default(),
            scatter,
            detector: DetectorModel::default(),
            motion_samples: 1,
            glandular_fraction: 0.2,
            thickness_mm: 50.0,
            noise_seed: 1,
        };
        let mut arc = preset.geometry;
        arc.detector = DetectorGeometry { cols: 8, rows: 4, pitch_u_mm: 0.085, pitch_v_mm: 0.085, ..arc.detector };
        PhysicsRenderer::new(arc, volume, &MaterialTable::air_only(), config).unwrap()
    }

    #[test]
    fn calibration_follows_the_physics() {
        let preset = ScanPreset::builtin(PresetName::WideAngle);
        let preshot = Technique {
            kvp: Kilovolts::new(26.0).unwrap(),
            tube_current: Milliamperes::new(50.0).unwrap(),
            mas_per_view: MilliampereSeconds::new(5.0).unwrap(),
            target: preset.beam.target,
            filter: preset.beam.filter,
            focal_spot: FocalSpot::Large,
        };
        let scatter = ScatterModel::default();
        let r = renderer(&preset, scatter);
        let settings = AecSettings {
            preset: &preset,
            preshot: &preshot,
            scatter: &scatter,
            support_height_mm: 20.0,
            target_counts: 1e5,
            fatty_glandular_max: 0.25,
            exposure_time_s: 0.09,
        };
        let aec = calibrate(&r, &settings).unwrap();
        // Output: three kVps, ascending, rising with kVp.
        let kvps: Vec<f64> = aec.output.iter().map(|o| o.kvp).collect();
        assert_eq!(kvps, [26.0, 28.0, 30.0]);
        assert!(aec.output.windows(2).all(|w| w[1].counts_per_mas > w[0].counts_per_mas), "{:?}", aec.output);
        // Density: glandular attenuates more than fat; the beam hardens with thickness.
        assert_eq!(aec.density.len(), CALIBRATION_THICKNESSES_MM.len());
        for d in &aec.density {
            assert!(d.mu_glandular_per_mm > d.mu_adipose_per_mm && d.mu_adipose_per_mm > 0.0, "{d:?}");
        }
        assert!(aec.density.windows(2).all(|w| w[1].mu_adipose_per_mm < w[0].mu_adipose_per_mm));
        // Each entry is exactly the slab measurement; scatter lowers the effective attenuation.
        let arc = preset.geometry;
        let mu = slab_mu(&r, &scatter, &arc, Material::Glandular, 50.0, &preshot, 20.0).unwrap();
        assert_eq!(mu.to_bits(), aec.density[2].mu_glandular_per_mm.to_bits());
        let off = slab_mu(&r, &ScatterModel::off(), &arc, Material::Glandular, 50.0, &preshot, 20.0).unwrap();
        assert!(off > mu, "{off} {mu}");
        assert_eq!(
            (aec.pixel_pitch_mm, aec.standard_kvp, aec.fatty_kvp),
            (preset.geometry.detector.pitch_u_mm, 28.0, 30.0)
        );
    }
}
