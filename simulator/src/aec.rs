//! The AEC's calibration from the simulator's own physics, as a clinical AEC is calibrated on phantoms, and
//! its technique table (`data/aec/technique_table.csv`).
//!
//! The HAL's [`PreshotAec`] turns a pre-shot frame into a technique using backend-supplied tables, for the
//! pre-shot beam and every beam the technique table can choose: the open-field output (counts per mAs: the
//! renderer's flood for the pre-shot beam, scaled by a probe pixel's open-field signal for the others) and the
//! effective attenuation `-ln(T) / t` of large skin-covered adipose and glandular slabs per thickness, measured
//! by a single probe pixel behind each slab with the scatter model's share added (what the detector sees
//! behind a large phantom).

use tomolab_hal::aec::{BeamCalibration, BeamChoice, DensityCalibration, PreshotAec, TechniqueRow, TechniqueTable};
use tomolab_hal::technique::{Filter, FilterMaterial, Technique};
use tomolab_hal::{ArcGeometry, DetectorGeometry, Kilovolts, ScanPreset};
use tomolab_phantom::{LabelVolume, Material, MaterialTable};

use crate::error::PhysicsError;
use crate::render::PhysicsRenderer;
use crate::scatter::ScatterModel;
use crate::spectrum::{MAX_KVP, MIN_KVP};

/// Slab thicknesses of the density calibration, mm.
pub const CALIBRATION_THICKNESSES_MM: [f64; 8] = [15.0, 20.0, 35.0, 50.0, 65.0, 80.0, 95.0, 110.0];
/// The filter a W/Rh beam switches to in the table's `hard_filter` rows: 50 um silver, as on clinical W/Ag
/// units.
pub const HARD_FILTER: Filter = Filter { material: FilterMaterial::Ag, thickness_mm: 0.05 };

/// Skin the calibration slabs carry on both faces, mm: the AEC assumes the mean skin thickness of Huang et al.,
/// Med Phys 38:2180 (2011), 1.45 +- 0.30 mm (the phantom's default is 1.5 mm); it cannot know the patient's.
pub const ASSUMED_SKIN_MM: f64 = 1.5;

const TABLE: &str = include_str!("../../data/aec/technique_table.csv");
const BIAS: &str = include_str!("../../data/aec/density_bias.csv");

/// The numeric rows of a data file after its `#` lines and `header`, each with its line index.
fn data_rows(text: &str, file: &'static str, header: &str) -> Result<Vec<(usize, Vec<f64>)>, PhysicsError> {
    let bad = |line: usize, why: String| PhysicsError::invalid(file, format!("line {}: {why}", line + 1));
    let mut rows = Vec::new();
    let mut seen_header = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !seen_header {
            if line != header {
                return Err(bad(n, format!("unexpected header `{line}`, expected `{header}`")));
            }
            seen_header = true;
            continue;
        }
        let v: Vec<f64> = line
            .split(',')
            .map(|c| c.trim().parse::<f64>().map_err(|e| bad(n, format!("`{c}`: {e}"))))
            .collect::<Result<_, _>>()?;
        if v.len() != header.split(',').count() {
            return Err(bad(n, format!("{} columns, expected those of `{header}`", v.len())));
        }
        rows.push((n, v));
    }
    if rows.is_empty() {
        return Err(bad(0, "no rows".into()));
    }
    Ok(rows)
}

/// The density estimator's bias per thickness, `data/aec/density_bias.csv` (see its header: measured on the
/// phantom generator's breasts with `tomolab aec-table`).
pub fn density_bias() -> Result<Vec<(f64, f64)>, PhysicsError> {
    let file = "data/aec/density_bias.csv";
    let rows = data_rows(BIAS, file, "thickness_mm,bias")?;
    let out: Vec<(f64, f64)> = rows.iter().map(|(_, v)| (v[0], v[1])).collect();
    if out.windows(2).any(|w| w[1].0 <= w[0].0) || out.iter().any(|p| p.1.is_nan() || p.1.abs() >= 0.5) {
        return Err(PhysicsError::invalid(file, "thicknesses must ascend and |bias| stay below 0.5"));
    }
    Ok(out)
}

/// The technique table of `data/aec/technique_table.csv` (see its header for what it is and its sources).
pub fn technique_table() -> Result<TechniqueTable, PhysicsError> {
    let file = "data/aec/technique_table.csv";
    let bad = |line: usize, why: String| PhysicsError::invalid(file, format!("line {}: {why}", line + 1));
    let mut rows: Vec<TechniqueRow> = Vec::new();
    let header = "thickness_max_mm,glandular_min,kvp_offset_kedge,kvp_offset_al,hard_filter";
    for (n, v) in data_rows(TABLE, file, header)? {
        let [t, g, k, a, h] = v[..] else { return Err(bad(n, "expected 5 columns".into())) };
        let row = TechniqueRow {
            thickness_max_mm: t,
            glandular_min: g,
            kvp_offset_kedge: k,
            kvp_offset_al: a,
            hard_filter: h == 1.0,
        };
        if let Some(prev) = rows.last()
            && (t < prev.thickness_max_mm || (t == prev.thickness_max_mm && g <= prev.glandular_min))
        {
            return Err(bad(n, "rows must ascend by thickness, then glandular fraction".into()));
        }
        if !(0.0..=1.0).contains(&g) || !(h == 0.0 || h == 1.0) {
            return Err(bad(n, "glandular_min must lie in 0..=1 and hard_filter be 0 or 1".into()));
        }
        rows.push(row);
    }
    Ok(TechniqueTable { rows, hard_filter: HARD_FILTER, kvp_range: (f64::from(MIN_KVP), f64::from(MAX_KVP)) })
}

/// The exam's choices the calibration needs besides the physics.
#[derive(Debug, Clone, Copy)]
pub struct AecSettings<'a> {
    /// The scanner (nominal beam, geometry, detector pitch).
    pub preset: &'a ScanPreset,
    /// The pre-shot technique (its beam is calibrated too).
    pub preshot: &'a Technique,
    /// The scatter model the exam renders with ([`ScatterModel::off`] when scatter is off).
    pub scatter: &'a ScatterModel,
    /// Height of the breast support above the detector, mm (where the calibration slabs lie).
    pub support_height_mm: f64,
    /// Signal the densest block must reach, summed over all views, counts above dark.
    pub target_counts: f64,
    /// Duration of each view's exposure, s.
    pub exposure_time_s: f64,
}

/// The pre-shot AEC of `settings`, calibrated on `renderer`'s physics.
pub fn calibrate(renderer: &PhysicsRenderer, settings: &AecSettings<'_>) -> Result<PreshotAec, PhysicsError> {
    let preset = settings.preset;
    let nominal = BeamChoice { target: preset.beam.target, filter: preset.beam.filter, kvp: preset.beam.kvp };
    let table = technique_table()?;
    let pre = tomolab_hal::aec::beam_of(settings.preshot);
    let mut beams = vec![pre];
    beams.extend(table.beams(&nominal).into_iter().filter(|b| *b != pre));
    let geometry = &preset.geometry;
    let flood_frame = renderer.try_flood(settings.preshot)?;
    let flood = flood_frame.mean();
    let block_mm = 5.0;
    let pitch = geometry.detector.pitch_u_mm;
    let open_pre = open_probe(renderer, geometry, settings.preshot)?;
    let beams = beams
        .into_iter()
        .map(|beam| {
            let technique = technique_of(settings.preshot, &beam)?;
            let counts_per_mas = flood * open_probe(renderer, geometry, &technique)? / open_pre;
            let density = density_calibration(renderer, settings, &technique)?;
            Ok(BeamCalibration { beam, counts_per_mas, density })
        })
        .collect::<Result<Vec<_>, PhysicsError>>()?;
    // The mid-plane of a typical (50 mm) breast, magnified onto the detector.
    let mid_mm = settings.support_height_mm + 25.0;
    Ok(PreshotAec {
        nominal,
        table,
        target_counts: settings.target_counts,
        exposure_time_s: settings.exposure_time_s,
        tube_current_range_ma: (5.0, 200.0),
        breast_transmission_max: 0.8,
        block_mm,
        pixel_pitch_mm: pitch,
        density_bias: density_bias()?,
        open_field_blocks: block_means(&flood_frame, ((block_mm / pitch).round() as usize).max(1), flood),
        magnification: geometry.source_to_detector_mm / (geometry.source_to_detector_mm - mid_mm),
        beams,
    })
}

/// Mean of each `block` x `block` square of `frame` (row-major), relative to `mean`.
fn block_means(frame: &tomolab_hal::Frame, block: usize, mean: f64) -> Vec<f64> {
    let (bc, br) = (frame.cols / block, frame.rows / block);
    let mut out = Vec::with_capacity(bc * br);
    for by in 0..br {
        for bx in 0..bc {
            let sum: f64 = (by * block..(by + 1) * block)
                .flat_map(|y| (bx * block..(bx + 1) * block).map(move |x| y * frame.cols + x))
                .map(|i| f64::from(frame.data[i]))
                .sum();
            out.push(sum / (block * block) as f64 / mean);
        }
    }
    out
}

fn technique_of(base: &Technique, beam: &BeamChoice) -> Result<Technique, PhysicsError> {
    let kvp = Kilovolts::new(beam.kvp).map_err(|e| PhysicsError::invalid("aec kvp", e.to_string()))?;
    Ok(Technique { kvp, target: beam.target, filter: beam.filter, ..*base })
}

/// Effective attenuation of skin-covered adipose and glandular slabs at every [`CALIBRATION_THICKNESSES_MM`].
pub fn density_calibration(
    renderer: &PhysicsRenderer,
    settings: &AecSettings<'_>,
    technique: &Technique,
) -> Result<Vec<DensityCalibration>, PhysicsError> {
    let slab = |material, t| {
        let s = Slab { material, thickness_mm: t, skin_mm: ASSUMED_SKIN_MM, support_mm: settings.support_height_mm };
        slab_mu(renderer, settings.scatter, &settings.preset.geometry, &s, technique)
    };
    CALIBRATION_THICKNESSES_MM
        .into_iter()
        .map(|t| {
            Ok(DensityCalibration {
                thickness_mm: t,
                mu_adipose_per_mm: slab(Material::Adipose, t)?,
                mu_glandular_per_mm: slab(Material::Glandular, t)?,
            })
        })
        .collect()
}

/// A large calibration slab on the breast support: `material` between two skin layers.
#[derive(Debug, Clone, Copy)]
pub struct Slab {
    /// The tissue inside.
    pub material: Material,
    /// Total thickness (skin included), mm.
    pub thickness_mm: f64,
    /// Skin on each face, mm (0 for a bare slab).
    pub skin_mm: f64,
    /// Height of the support above the detector, mm.
    pub support_mm: f64,
}

/// The probe pixel at the chest-wall centre of the detector.
fn probe_arc(arc: &ArcGeometry) -> ArcGeometry {
    let probe = DetectorGeometry { cols: 1, rows: 1, pitch_u_mm: 1.0, pitch_v_mm: 1.0, ..arc.detector };
    ArcGeometry { detector: probe, ..*arc }
}

const PROBE_CENTRE_Y_MM: f64 = 0.45;

fn phantom_err(e: tomolab_phantom::PhantomError) -> PhysicsError {
    PhysicsError::invalid("aec calibration slab", e.to_string())
}

/// The probe pixel's open-field signal (keV absorbed per mAs).
fn open_probe(renderer: &PhysicsRenderer, arc: &ArcGeometry, technique: &Technique) -> Result<f64, PhysicsError> {
    let grid = tomolab_phantom::volume::covering(
        [-1.0, PROBE_CENTRE_Y_MM - 1.0, 20.0],
        [1.0, PROBE_CENTRE_Y_MM + 1.0, 22.0],
        2.0,
    )
    .map_err(phantom_err)?;
    let air = LabelVolume::air(grid).map_err(phantom_err)?;
    renderer.probe_energy(&probe_arc(arc), &air, &MaterialTable::air_only(), technique)
}

/// Effective attenuation -ln(T)/t of a [`Slab`], primary plus the scatter model's share.
pub fn slab_mu(
    renderer: &PhysicsRenderer,
    scatter: &ScatterModel,
    arc: &ArcGeometry,
    slab: &Slab,
    technique: &Technique,
) -> Result<f64, PhysicsError> {
    let t = slab.thickness_mm;
    // Voxels as thick as the skin (or the whole slab without skin): the outer layers are skin.
    let layers = if slab.skin_mm > 0.0 { (t / slab.skin_mm).round().max(3.0) as usize } else { 1 };
    let voxel = t / layers as f64;
    let (y0, z0) = (PROBE_CENTRE_Y_MM, slab.support_mm);
    // Two voxels wide is enough for the probe's single central ray.
    let grid = tomolab_phantom::volume::covering([-voxel, y0 - voxel, z0], [voxel, y0 + voxel, z0 + t], voxel)
        .map_err(phantom_err)?;
    let mut table = MaterialTable::air_only();
    table.set(1, slab.material, "calibration slab");
    table.set(2, Material::Skin, "calibration skin");
    let per_layer = grid.nx * grid.ny;
    let labels: Vec<u8> = (0..grid.nz)
        .flat_map(|z| {
            let skin = slab.skin_mm > 0.0 && (z == 0 || z + 1 == grid.nz);
            std::iter::repeat_n(if skin { 2 } else { 1 }, per_layer)
        })
        .collect();
    let volume = LabelVolume::new(grid, labels).map_err(phantom_err)?;
    let air = LabelVolume::air(grid).map_err(phantom_err)?;
    let probe = probe_arc(arc);
    let with = renderer.probe_energy(&probe, &volume, &table, technique)?;
    let without = renderer.probe_energy(&probe, &air, &table, technique)?;
    // Calibrate on what the detector sees behind a large slab: primary plus the scatter model's share, as a
    // clinical AEC is calibrated on phantoms.
    let g = if slab.material == Material::Glandular { 1.0 } else { 0.0 };
    // Behind a grid the scatter share is cut by T_s / T_p relative to the primary (flood through the grid).
    let share = renderer.anti_scatter_grid().map_or(1.0, |grid| grid.scatter_transmission / grid.primary_transmission);
    let with = with * (1.0 + share * scatter.spr(t, g, 0.0));
    Ok(-(with / without).ln() / t)
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
            anti_scatter_grid: None,
            detector: DetectorModel::default(),
            motion_samples: 1,
            glandular_fraction: 0.2,
            thickness_mm: 50.0,
            noise_seed: 1,
        };
        let mut arc = preset.geometry;
        arc.detector = DetectorGeometry { cols: 80, rows: 40, pitch_u_mm: 1.0, pitch_v_mm: 1.0, ..arc.detector };
        PhysicsRenderer::new(arc, volume, &MaterialTable::air_only(), config).unwrap()
    }

    #[test]
    fn the_data_tables_parse_and_the_reference_band_keeps_the_nominal_kv() {
        let table = technique_table().unwrap();
        let row = table.row(50.0, 0.2).unwrap();
        assert_eq!((row.kvp_offset_kedge, row.kvp_offset_al, row.hard_filter), (0.0, 0.0, false));
        assert!(table.rows.windows(2).all(|w| w[0].thickness_max_mm <= w[1].thickness_max_mm));
        let bias = density_bias().unwrap();
        assert!(bias.len() >= 2 && bias.iter().all(|b| b.1.abs() < 0.5));
    }

    #[test]
    fn calibration_covers_every_beam_the_table_can_choose_and_follows_the_physics() {
        let preset = ScanPreset::builtin(PresetName::WideAngle);
        let preshot = Technique {
            kvp: Kilovolts::new(28.0).unwrap(),
            tube_current: Milliamperes::new(50.0).unwrap(),
            mas_per_view: MilliampereSeconds::new(2.0).unwrap(),
            target: preset.beam.target,
            filter: preset.beam.filter,
            focal_spot: FocalSpot::Large,
        };
        let scatter = ScatterModel::default();
        let mut preset_small = preset.clone();
        preset_small.geometry.detector =
            DetectorGeometry { cols: 80, rows: 40, pitch_u_mm: 1.0, pitch_v_mm: 1.0, ..preset.geometry.detector };
        let r = renderer(&preset, scatter);
        let settings = AecSettings {
            preset: &preset_small,
            preshot: &preshot,
            scatter: &scatter,
            support_height_mm: 20.0,
            target_counts: 1e5,
            exposure_time_s: 0.09,
        };
        let aec = calibrate(&r, &settings).unwrap();
        // The pre-shot beam first, then every table beam; W/Ag among them for this W/Rh unit.
        assert_eq!(aec.beams[0].beam, tomolab_hal::aec::beam_of(&preshot));
        for b in aec.table.beams(&aec.nominal) {
            aec.calibration(&b).unwrap();
        }
        assert!(aec.beams.iter().any(|c| c.beam.filter == HARD_FILTER));
        assert_eq!(aec.beams[0].counts_per_mas, r.try_flood(&preshot).unwrap().mean());
        // Gland attenuates more than fat; the beam hardens with thickness; a higher kV attenuates less.
        for c in &aec.beams {
            for d in &c.density {
                assert!(d.mu_glandular_per_mm > d.mu_adipose_per_mm && d.mu_adipose_per_mm > 0.0, "{d:?}");
            }
            assert!(c.density.windows(2).all(|w| w[1].mu_adipose_per_mm < w[0].mu_adipose_per_mm), "{c:?}");
        }
        let rh = |kv: f64| aec.beams.iter().find(|c| c.beam.kvp == kv && c.beam.filter.material == FilterMaterial::Rh);
        let (lo, hi) = (rh(25.0).unwrap(), rh(29.0).unwrap());
        assert!(hi.density[3].mu_glandular_per_mm < lo.density[3].mu_glandular_per_mm);
        assert!(hi.counts_per_mas > lo.counts_per_mas);
        // The open field falls off away from the chest-wall centre; its block means average to about 1.
        let mean = aec.open_field_blocks.iter().sum::<f64>() / aec.open_field_blocks.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
        // Skin (denser than fat) raises the adipose slab's attenuation; scatter lowers the effective one.
        let arc = preset.geometry;
        let slab = |skin, scatter: &ScatterModel| {
            let s = Slab { material: Material::Adipose, thickness_mm: 20.0, skin_mm: skin, support_mm: 20.0 };
            slab_mu(&r, scatter, &arc, &s, &preshot).unwrap()
        };
        assert!(slab(1.5, &ScatterModel::off()) > slab(0.0, &ScatterModel::off()));
        assert!(slab(1.5, &ScatterModel::off()) > slab(1.5, &scatter));
    }
}
