//! The physics behind the simulated detector: projection of the phantom, scatter, detector read-out.

use std::sync::Arc;

use crate::anti_scatter::AntiScatterGrid;
use crate::detector::DetectorModel;
use crate::error::PhysicsError;
use crate::ray_tracer::{MaterialMap, ProjectedImage, RayTracer, RayTracerConfig, VolumeView, motion_sub_poses};
use crate::scatter::ScatterModel;
use crate::spectrum::{FilterLayer, Spectrum};
use tomolab_hal::technique::{FilterMaterial, Technique};
use tomolab_hal::{ArcGeometry, DetectorGeometry, Frame};
use tomolab_phantom::{LabelVolume, MaterialTable};

use crate::device::{BeamOn, FrameRenderer, RenderError};

/// Fixed choices of the physics renderer.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// Layers every beam crosses besides the technique's filter: tube window, compression paddle.
    pub fixed_layers: Vec<FilterLayer>,
    /// RayTracer sampling.
    pub ray_tracer: RayTracerConfig,
    /// Scatter model.
    pub scatter: ScatterModel,
    /// The anti-scatter grid in the beam, if any (2D mammography): it transmits part of the primary and of
    /// the scatter ([`AntiScatterGrid`]), in frames and flood alike.
    pub anti_scatter_grid: Option<AntiScatterGrid>,
    /// Detector electronics and conversion.
    pub detector: DetectorModel,
    /// Sub-poses per exposure to integrate continuous-motion blur (1 = none).
    pub motion_samples: usize,
    /// Glandular fraction the scatter model assumes.
    pub glandular_fraction: f64,
    /// Compressed thickness the scatter model assumes, mm.
    pub thickness_mm: f64,
    /// Seed of the quantum and electronic noise; frame k uses a stream derived from it and k.
    pub noise_seed: u64,
}

/// Renders frames of a phantom with the simulator's physics.
pub struct PhysicsRenderer {
    arc: ArcGeometry,
    volume: Arc<LabelVolume>,
    map: MaterialMap,
    config: RenderConfig,
    on_frame: Option<Box<dyn Fn(u64) + Send>>,
    /// Flood frames already computed, by beam quality (target, filter, filter thickness bits, kVp).
    floods: std::sync::Mutex<Vec<(FloodKey, Frame)>>,
}

type FloodKey = (tomolab_hal::Target, FilterMaterial, u64, u64);

impl core::fmt::Debug for PhysicsRenderer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PhysicsRenderer").field("arc", &self.arc).finish_non_exhaustive()
    }
}

impl PhysicsRenderer {
    /// A renderer for `volume` seen through `arc` (whose detector is the native, unbinned panel).
    pub fn new(
        arc: ArcGeometry,
        volume: Arc<LabelVolume>,
        materials: &MaterialTable,
        config: RenderConfig,
    ) -> Result<Self, PhysicsError> {
        let map = MaterialMap::of(materials)?;
        if config.motion_samples == 0 {
            return Err(PhysicsError::invalid("motion_samples", "must be at least 1"));
        }
        config.scatter.validate()?;
        if let Some(grid) = &config.anti_scatter_grid {
            grid.validate()?;
        }
        Ok(Self { arc, volume, map, config, on_frame: None, floods: std::sync::Mutex::new(Vec::new()) })
    }

    /// The anti-scatter grid in the beam, if any.
    pub fn anti_scatter_grid(&self) -> Option<&AntiScatterGrid> {
        self.config.anti_scatter_grid.as_ref()
    }

    /// Calls `callback` with the frame index after each frame is rendered.
    pub fn set_on_frame(&mut self, callback: Box<dyn Fn(u64) + Send>) {
        self.on_frame = Some(callback);
    }

    /// Energy absorbed in a single probe pixel of `arc` (a 1x1 detector) behind `volume`, per mAs, at 0 deg.
    pub fn probe_energy(
        &self,
        arc: &ArcGeometry,
        volume: &LabelVolume,
        table: &MaterialTable,
        technique: &Technique,
    ) -> Result<f64, PhysicsError> {
        let spectrum = self.spectrum(technique, technique.kvp.get())?;
        let tracer = RayTracer::new(
            VolumeView::of(volume),
            MaterialMap::of(table)?,
            &spectrum,
            &arc.detector,
            self.config.ray_tracer,
        )?;
        let image = tracer.project(&[arc.pose_at(0.0)], 1.0)?;
        Ok(image.energy_kev[0])
    }

    fn spectrum(&self, technique: &Technique, kvp: f64) -> Result<Spectrum, PhysicsError> {
        let mut layers = self.config.fixed_layers.clone();
        layers.push(FilterLayer::new(technique.filter.material, technique.filter.thickness_mm)?);
        Spectrum::new(technique.target, kvp, &layers, 1000.0)
    }

    fn zero_image(&self) -> ProjectedImage {
        let d = &self.arc.detector;
        let n = d.pixel_count();
        ProjectedImage {
            cols: d.cols,
            rows: d.rows,
            pitch_u_mm: d.pitch_u_mm,
            pitch_v_mm: d.pitch_v_mm,
            energy_kev: vec![0.0; n],
            energy_sq_kev2: vec![0.0; n],
            tissue_path_mm: vec![0.0; n],
            stats: Default::default(),
        }
    }

    /// The expected primary + scatter image of one beam.
    pub fn beam_image(&self, beam: &BeamOn) -> Result<ProjectedImage, PhysicsError> {
        let spectrum = self.spectrum(&beam.technique, beam.kvp)?;
        let tracer = RayTracer::new(
            VolumeView::of(&self.volume),
            self.map.clone(),
            &spectrum,
            &self.arc.detector,
            self.config.ray_tracer,
        )?;
        let centre = 0.5 * (beam.angle_start_deg + beam.angle_end_deg);
        let sweep = (beam.angle_end_deg - beam.angle_start_deg).abs();
        let samples = if sweep > 0.0 { self.config.motion_samples } else { 1 };
        let poses = motion_sub_poses(&self.arc, centre, sweep, samples)?;
        let mut image = tracer.project(&poses, beam.mas)?;
        self.config.scatter.apply_through(
            &mut image,
            self.config.thickness_mm,
            self.config.glandular_fraction,
            self.config.anti_scatter_grid.as_ref(),
        )?;
        Ok(image)
    }

    fn try_render(&self, beams: &[BeamOn], frame_index: u64) -> Result<Frame, PhysicsError> {
        let mut total = self.zero_image();
        for beam in beams {
            let image = self.beam_image(beam)?;
            for (t, v) in total.energy_kev.iter_mut().zip(&image.energy_kev) {
                *t += v;
            }
            for (t, v) in total.energy_sq_kev2.iter_mut().zip(&image.energy_sq_kev2) {
                *t += v;
            }
            total.tissue_path_mm = image.tissue_path_mm;
        }
        let seed = self.config.noise_seed ^ frame_index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.config.detector.read_out(&total, seed)
    }

    pub(crate) fn try_flood(&self, technique: &Technique) -> Result<Frame, PhysicsError> {
        let key: FloodKey = (
            technique.target,
            technique.filter.material,
            technique.filter.thickness_mm.to_bits(),
            technique.kvp.get().to_bits(),
        );
        let cached = self.floods.lock().ok().and_then(|c| c.iter().find(|(k, _)| *k == key).map(|(_, f)| f.clone()));
        if let Some(flood) = cached {
            return Ok(flood);
        }
        let flood = self.compute_flood(technique)?;
        if let Ok(mut cache) = self.floods.lock() {
            cache.push((key, flood.clone()));
        }
        Ok(flood)
    }

    fn compute_flood(&self, technique: &Technique) -> Result<Frame, PhysicsError> {
        let spectrum = self.spectrum(technique, technique.kvp.get())?;
        let empty = LabelVolume::air(self.volume.grid()).map_err(|e| PhysicsError::invalid("volume", e.to_string()))?;
        let tracer = RayTracer::new(
            VolumeView::of(&empty),
            self.map.clone(),
            &spectrum,
            &self.arc.detector,
            self.config.ray_tracer,
        )?;
        let mut image = tracer.project(&[self.arc.pose_at(0.0)], 1.0)?;
        if let Some(grid) = &self.config.anti_scatter_grid {
            let tp = grid.primary_transmission;
            image.energy_kev.iter_mut().chain(image.energy_sq_kev2.iter_mut()).for_each(|v| *v *= tp);
        }
        let mut flood = self.config.detector.expected(&image)?;
        let offset = self.config.detector.offset_adu as f32;
        for v in &mut flood.data {
            *v -= offset;
        }
        Ok(flood)
    }
}

impl FrameRenderer for PhysicsRenderer {
    fn geometry(&self) -> DetectorGeometry {
        self.arc.detector.binned(self.config.detector.binning).unwrap_or(self.arc.detector)
    }

    fn render(&self, beams: &[BeamOn], frame_index: u64) -> Result<Frame, RenderError> {
        let frame = self.try_render(beams, frame_index).map_err(RenderError::from);
        if let Some(cb) = &self.on_frame {
            cb(frame_index);
        }
        frame
    }

    fn flood_per_mas(&self, technique: &Technique) -> Result<Frame, RenderError> {
        Ok(self.try_flood(technique)?)
    }
}
