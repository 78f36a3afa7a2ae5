//! The homogeneous model breast of the conversion-factor formalism, voxelised for the Monte Carlo.
//!
//! Dance's model (Dance, Phys Med Biol 35:1211, 1990; Dance et al., Phys Med Biol 45:3225, 2000): a
//! semi-cylinder of compressed thickness `T`, a central region of uniform glandularity (by weight) inside a
//! superficial layer of adipose tissue. We use a radius of 80 mm and a 5 mm adipose layer on the top, the
//! bottom and the curved side (no layer at the chest wall), which are the dimensions usually quoted for that
//! model; the paddle is part of the beam's filtration and the incident air kerma is free in air at the
//! upper surface, as in the formalism.

use rayon::prelude::*;
use tomolab_hal::ArcGeometry;

use super::beam::ViewBeam;
use crate::error::PhysicsError;
use crate::mc::{self, Aabb, Estimate, McConfig, McMaterial, McResult, McScene, ScoringPlane};
use crate::ray_tracer::VolumeView;

/// keV per gram to mGy.
pub const MGY_PER_KEV_PER_G: f64 = 1.602_176_634e-16 * 1e3 * 1e3;
/// Label of the adipose layer.
pub const LAYER: u8 = 1;
/// Label of the central region.
pub const CORE: u8 = 2;
/// Density of glandular and adipose tissue (Hammerstein et al. 1979), g/cm^3.
const RHO_GLANDULAR: f64 = 1.04;
const RHO_ADIPOSE: f64 = 0.93;

/// Shape and composition of the model breast.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StandardBreast {
    /// Compressed thickness, mm.
    pub thickness_mm: f64,
    /// Glandular weight fraction of the central region.
    pub glandular_weight_fraction: f64,
    /// Radius of the semi-cylinder, mm.
    pub radius_mm: f64,
    /// Adipose layer, mm.
    pub layer_mm: f64,
    /// Height of the breast support above the detector, mm.
    pub support_height_mm: f64,
    /// Voxel edge, mm.
    pub voxel_mm: f64,
}

impl StandardBreast {
    /// Dance's model at `thickness_mm` and glandular weight fraction `glandular`.
    pub fn new(thickness_mm: f64, glandular: f64) -> Self {
        Self {
            thickness_mm,
            glandular_weight_fraction: glandular,
            radius_mm: 80.0,
            layer_mm: 5.0,
            support_height_mm: 20.0,
            voxel_mm: 0.5,
        }
    }

    fn validate(&self) -> Result<(), PhysicsError> {
        let problem = if !(0.0..).contains(&self.layer_mm) {
            format!("adipose layer {} mm must not be negative", self.layer_mm)
        } else if !(2.0 * self.layer_mm..=200.0).contains(&self.thickness_mm)
            || self.thickness_mm == 2.0 * self.layer_mm
        {
            format!(
                "thickness {} mm must exceed twice the {} mm adipose layer and be at most 200 mm",
                self.thickness_mm, self.layer_mm
            )
        } else if !(self.layer_mm..).contains(&self.radius_mm) || self.radius_mm == self.layer_mm {
            format!("radius {} mm must exceed the {} mm adipose layer", self.radius_mm, self.layer_mm)
        } else if !(0.0..=1.0).contains(&self.glandular_weight_fraction) {
            format!("glandular weight fraction {} must lie in 0..=1", self.glandular_weight_fraction)
        } else if !(0.0..).contains(&self.support_height_mm) {
            format!("support height {} mm must not be negative", self.support_height_mm)
        } else if !(self.voxel_mm > 0.0 && self.voxel_mm <= 2.0) {
            format!("voxel {} mm must lie in (0, 2] mm", self.voxel_mm)
        } else {
            return Ok(());
        };
        Err(PhysicsError::invalid("standard breast", problem))
    }

    /// Density of the central mixture, g/cm^3 (volumes add).
    pub fn core_density_g_cm3(&self) -> f64 {
        let w = self.glandular_weight_fraction;
        1.0 / (w / RHO_GLANDULAR + (1.0 - w) / RHO_ADIPOSE)
    }

    /// The central region's material.
    pub fn core_material(&self) -> Result<McMaterial, PhysicsError> {
        let w = self.glandular_weight_fraction;
        let name = format!("breast_{:.4}", w);
        let parts: Vec<(&str, f64)> =
            [("glandular", w), ("adipose", 1.0 - w)].into_iter().filter(|p| p.1 > 0.0).collect();
        McMaterial::mixture(&name, &parts, self.core_density_g_cm3())
    }

    /// Height of the upper surface above the detector, mm.
    pub fn top_mm(&self) -> f64 {
        self.support_height_mm + self.thickness_mm
    }

    /// The labels (air 0, layer 1, core 2) on a grid covering the semi-cylinder.
    pub fn voxelise(&self) -> Result<Voxels, PhysicsError> {
        self.validate()?;
        let v = self.voxel_mm;
        let nx = (2.0 * self.radius_mm / v).ceil() as usize;
        let ny = (self.radius_mm / v).ceil() as usize;
        let nz = (self.thickness_mm / v).round().max(1.0) as usize;
        let origin = [-(nx as f64) * v / 2.0, 0.0, self.support_height_mm];
        let (r, l, t) = (self.radius_mm, self.layer_mm, self.thickness_mm);
        let mut labels = vec![0u8; nx * ny * nz];
        labels.par_chunks_mut(nx * ny).enumerate().for_each(|(k, slice)| {
            let z = (k as f64 + 0.5) * v;
            for j in 0..ny {
                let y = (j as f64 + 0.5) * v;
                for i in 0..nx {
                    let x = origin[0] + (i as f64 + 0.5) * v;
                    let rho = x.hypot(y);
                    slice[j * nx + i] = if rho > r {
                        0
                    } else if rho <= r - l && z >= l && z <= t - l {
                        CORE
                    } else {
                        LAYER
                    };
                }
            }
        });
        Ok(Voxels { grid: tomolab_hal::VoxelGrid::cubic([nx, ny, nz], v, origin), labels })
    }
}

/// A voxelised model breast.
#[derive(Debug, Clone)]
pub struct Voxels {
    grid: tomolab_hal::VoxelGrid,
    labels: Vec<u8>,
}

impl Voxels {
    /// A view for the Monte Carlo scene.
    pub fn view(&self) -> VolumeView<'_> {
        VolumeView { grid: self.grid, labels: &self.labels }
    }
}

/// The world every dose scene uses: air from the detector plane up past the focal spot.
pub(crate) fn world(focal_spot_mm: [f64; 3]) -> Result<Aabb, PhysicsError> {
    let reach = 2000.0f64.max(focal_spot_mm[0].abs() + 500.0);
    Aabb::new([-reach, -reach, 0.0], [reach, reach, focal_spot_mm[2] + 100.0])
}

/// The detector plane, scored in `pixel_mm` pixels over the field.
pub(crate) fn scoring_plane(beam: &ViewBeam, pixel_mm: f64) -> ScoringPlane {
    let f = &beam.field;
    let pixels = [0, 1].map(|a| ((f.max_xy_mm[a] - f.min_xy_mm[a]) / pixel_mm).ceil().max(1.0) as usize);
    ScoringPlane { z_mm: 0.0, min_xy_mm: f.min_xy_mm, pixels, pixel_mm }
}

/// Monte Carlo dose of one view of the model breast.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StandardViewDose {
    /// Mean glandular dose per mAs, mGy/mAs.
    pub mgd_per_mas: Estimate,
    /// Incident air kerma per mAs at the upper surface, uGy/mAs.
    pub incident_kerma_ugy_per_mas: f64,
    /// MGD per unit incident air kerma, mGy/mGy (the product g c s t of the formalism).
    pub mgd_per_kerma: Estimate,
    /// HVL of the beam, mm Al.
    pub hvl_mm_al: f64,
    /// The raw Monte Carlo result (with the detector images at 2 mm pixels).
    pub mc: McResult,
}

/// Runs the model breast under `beam`.
pub fn standard_view_dose(
    breast: &StandardBreast,
    beam: &ViewBeam,
    config: &McConfig,
) -> Result<StandardViewDose, PhysicsError> {
    let voxels = breast.voxelise()?;
    let scene = McScene::new(world(beam.focal_spot_mm)?, McMaterial::named("air")?)
        .with_voxels(
            voxels.view(),
            &[(0, McMaterial::named("air")?), (LAYER, McMaterial::named("adipose")?), (CORE, breast.core_material()?)],
        )?
        .with_detector(scoring_plane(beam, 2.0))?;
    let source = beam.source_on(&scene.voxel_bounds().ok_or_else(|| PhysicsError::invalid("dose", "no voxels"))?)?;
    let result = mc::run(&scene, &source, config)?;
    let mass = scene.glandular_mass_g();
    if mass <= 0.0 {
        return Err(PhysicsError::invalid("standard breast", "has no glandular tissue; MGD is undefined"));
    }
    let mgd_per_mas = result.glandular_kev.scaled(source.photons_per_mas() / mass * MGY_PER_KEV_PER_G);
    let k_mgy = beam.incident_kerma_ugy_per_mas * 1e-3;
    Ok(StandardViewDose {
        mgd_per_kerma: mgd_per_mas.scaled(1.0 / k_mgy),
        mgd_per_mas,
        incident_kerma_ugy_per_mas: beam.incident_kerma_ugy_per_mas,
        hvl_mm_al: beam.hvl_mm_al,
        mc: result,
    })
}

/// The arc for which the model's t factors are tabulated and the field used for them.
pub fn reference_arc() -> ArcGeometry {
    tomolab_hal::presets::ScanPreset::builtin(tomolab_hal::presets::PresetName::WideAngle).geometry
}
