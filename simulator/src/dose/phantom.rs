//! Monte Carlo mean glandular dose of the views of an exam on a voxel phantom.

use tomolab_hal::ArcGeometry;
use tomolab_hal::technique::Technique;
use tomolab_phantom::{LabelVolume, MaterialTable};

use super::beam::ViewBeam;
use super::standard::{MGY_PER_KEV_PER_G, scoring_plane, world};
use crate::error::PhysicsError;
use crate::mc::{self, DetectorImages, Estimate, McConfig, McMaterial, McScene};
use crate::ray_tracer::VolumeView;
use crate::spectrum::FilterLayer;

/// Monte Carlo settings of an exam's dose report.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhantomDoseConfig {
    /// Photons per view.
    pub histories_per_view: u64,
    /// Batches per view.
    pub batches: u32,
    /// Seed; view k uses stream block k.
    pub seed: u64,
}

impl Default for PhantomDoseConfig {
    fn default() -> Self {
        Self { histories_per_view: 20_000, batches: 16, seed: 1 }
    }
}

/// The phantom and the unit it is imaged on.
#[derive(Debug, Clone, Copy)]
pub struct PhantomDose<'a> {
    /// Label volume.
    pub volume: &'a LabelVolume,
    /// Its materials.
    pub materials: &'a MaterialTable,
    /// Gantry geometry.
    pub arc: &'a ArcGeometry,
    /// Window and paddle.
    pub fixed_layers: &'a [FilterLayer],
}

/// Monte Carlo dose of one view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhantomViewDose {
    /// Mean glandular dose per mAs, mGy/mAs.
    pub mgd_per_mas: Estimate,
    /// Incident air kerma per mAs at the breast's upper surface, uGy/mAs.
    pub incident_kerma_ugy_per_mas: f64,
    /// HVL, mm Al.
    pub hvl_mm_al: f64,
    /// Glandular mass of the phantom, g.
    pub glandular_mass_g: f64,
    /// Detector images (4 mm pixels).
    #[serde(skip)]
    pub images: Option<DetectorImages>,
}

impl PhantomDose<'_> {
    /// Top of the breast (highest non-air voxel layer), mm.
    pub fn top_mm(&self) -> f64 {
        let v = self.volume;
        let slice = v.grid.nx * v.grid.ny;
        let top_k =
            (0..v.grid.nz).rev().find(|&k| v.labels[k * slice..(k + 1) * slice].iter().any(|&l| l != 0)).unwrap_or(0);
        v.grid.min_corner_mm[2] + (top_k + 1) as f64 * v.grid.cubic_voxel_mm()
    }

    /// Glandularity as the formalism means it: the glandular weight fraction of the breast tissue, glandular
    /// mass over adipose plus glandular mass (skin, lesions and inserts left out).
    pub fn glandularity(&self) -> Result<f64, PhysicsError> {
        let mut counts = [0u64; 256];
        for &l in self.volume.labels.iter() {
            counts[l as usize] += 1;
        }
        let (mut glandular, mut tissue) = (0.0, 0.0);
        for e in &self.materials.entries {
            let name = e.material.name();
            if name == "glandular" || name == "adipose" {
                let mass = counts[e.label as usize] as f64 * crate::material(name)?.density_g_cm3();
                tissue += mass;
                if name == "glandular" {
                    glandular += mass;
                }
            }
        }
        if tissue <= 0.0 {
            return Err(PhysicsError::invalid("phantom dose", "the phantom has no adipose or glandular tissue"));
        }
        Ok(glandular / tissue)
    }

    /// Runs view `index` at `angle_deg` with `technique`.
    pub fn view(
        &self,
        index: u64,
        angle_deg: f64,
        technique: &Technique,
        config: &PhantomDoseConfig,
    ) -> Result<PhantomViewDose, PhysicsError> {
        let mut out = self.views(&[(index, angle_deg, *technique)], config)?;
        out.pop().ok_or_else(|| PhysicsError::invalid("phantom dose", "no view"))
    }

    /// Runs every `(index, angle_deg, technique)`; the scene is built once for all of them.
    pub fn views(
        &self,
        views: &[(u64, f64, Technique)],
        config: &PhantomDoseConfig,
    ) -> Result<Vec<PhantomViewDose>, PhysicsError> {
        let top = self.top_mm();
        let beams = views
            .iter()
            .map(|(_, angle, technique)| ViewBeam::of_technique(self.arc, *angle, technique, self.fixed_layers, top))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = beams.first() else { return Ok(Vec::new()) };
        // One world for every view: wide and high enough for all focal spots.
        let highest = beams
            .iter()
            .map(|b| b.focal_spot_mm)
            .fold(first.focal_spot_mm, |h, f| [h[0].abs().max(f[0].abs()), 0.0, h[2].max(f[2])]);
        let mut with_air: Vec<(u8, McMaterial)> = self
            .materials
            .entries
            .iter()
            .map(|e| Ok((e.label, McMaterial::named(e.material.name())?)))
            .collect::<Result<_, PhysicsError>>()?;
        if !with_air.iter().any(|(l, _)| *l == 0) {
            with_air.push((0, McMaterial::named("air")?));
        }
        let scene = McScene::new(world(highest)?, McMaterial::named("air")?)
            .with_voxels(VolumeView::of(self.volume), &with_air)?
            .with_detector(scoring_plane(first, 4.0))?;
        let mass = scene.glandular_mass_g();
        if mass <= 0.0 {
            return Err(PhysicsError::invalid("phantom dose", "the phantom has no glandular tissue; MGD is undefined"));
        }
        let bounds = scene.voxel_bounds().ok_or_else(|| PhysicsError::invalid("phantom dose", "no voxels"))?;
        views
            .iter()
            .zip(&beams)
            .map(|((index, _, _), beam)| {
                let source = beam.source_on(&bounds)?;
                let mc_config = McConfig {
                    histories: config.histories_per_view,
                    batches: config.batches,
                    seed: config.seed,
                    stream_offset: *index,
                };
                let result = mc::run(&scene, &source, &mc_config)?;
                Ok(PhantomViewDose {
                    mgd_per_mas: result.glandular_kev.scaled(source.photons_per_mas() / mass * MGY_PER_KEV_PER_G),
                    incident_kerma_ugy_per_mas: beam.incident_kerma_ugy_per_mas,
                    hvl_mm_al: beam.hvl_mm_al,
                    glandular_mass_g: mass,
                    images: result.detector,
                })
            })
            .collect()
    }
}
