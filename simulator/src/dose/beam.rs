//! The beam of one view as both the Monte Carlo and the formalism see it: the filtered spectrum, the field
//! and the incident air kerma at the breast's upper surface.

use tomolab_hal::technique::Technique;
use tomolab_hal::{ArcGeometry, Target};

use crate::attenuation::MaterialId;
use crate::error::PhysicsError;
use crate::mc::{Aabb, FieldRect, McSource};
use crate::spectrum::{FilterLayer, Spectrum};

/// A view's beam.
#[derive(Debug, Clone)]
pub struct ViewBeam {
    /// Tube output through window, filter and paddle (no air), at 1 m.
    pub spectrum: Spectrum,
    /// Focal spot, mm.
    pub focal_spot_mm: [f64; 3],
    /// Collimated field on the detector plane.
    pub field: FieldRect,
    /// Incident air kerma per mAs free in air at the breast's upper surface below the focal spot (air
    /// between included, no backscatter), uGy/mAs.
    pub incident_kerma_ugy_per_mas: f64,
    /// First HVL of the beam, mm Al.
    pub hvl_mm_al: f64,
}

impl ViewBeam {
    /// The beam of `arc` at `angle_deg` with the spectrum of `target` at `kvp` through `layers` (window,
    /// filter, paddle), for a breast whose upper surface is at `top_mm`; the field covers the detector.
    pub fn new(
        arc: &ArcGeometry,
        angle_deg: f64,
        target: Target,
        kvp: f64,
        layers: &[FilterLayer],
        top_mm: f64,
    ) -> Result<Self, PhysicsError> {
        let spectrum = Spectrum::new(target, kvp, layers, 1000.0)?;
        let s = arc.pose_at(angle_deg).source_mm;
        let focal_spot_mm = [s.x, s.y, s.z];
        let to_top = s.z - top_mm;
        if to_top.is_nan() || to_top <= 0.0 {
            return Err(PhysicsError::invalid("dose beam", "the breast's upper surface must lie below the focal spot"));
        }
        // K at the top surface point straight below the focal spot.
        let at_top = spectrum.at_distance(to_top)?.filtered(&FilterLayer::new(MaterialId::Air, to_top)?)?;
        let det = &arc.detector;
        let half = det.cols as f64 * det.pitch_u_mm / 2.0;
        let field =
            FieldRect { z_mm: 0.0, min_xy_mm: [-half, 0.0], max_xy_mm: [half, det.rows as f64 * det.pitch_v_mm] };
        Ok(Self {
            incident_kerma_ugy_per_mas: at_top.air_kerma_ugy_per_mas()?,
            hvl_mm_al: spectrum.hvl1_mm_al()?,
            spectrum,
            focal_spot_mm,
            field,
        })
    }

    /// The beam of a technique: window and paddle from `fixed_layers`, the technique's filter and kVp.
    pub fn of_technique(
        arc: &ArcGeometry,
        angle_deg: f64,
        technique: &Technique,
        fixed_layers: &[FilterLayer],
        top_mm: f64,
    ) -> Result<Self, PhysicsError> {
        let mut layers = fixed_layers.to_vec();
        layers.push(FilterLayer::new(technique.filter.material, technique.filter.thickness_mm)?);
        Self::new(arc, angle_deg, technique.target, technique.kvp.get(), &layers, top_mm)
    }

    /// The Monte Carlo source of this beam.
    pub fn source(&self) -> Result<McSource, PhysicsError> {
        McSource::from_spectrum(&self.spectrum, self.focal_spot_mm, self.field)
    }

    /// The source collimated further to the shadow of `object` on the detector plane (within the field):
    /// photons that would miss the object add nothing to its dose, so following only the others is exact
    /// for dose and cuts the variance. Photons per mAs shrink with the solid angle.
    pub fn source_on(&self, object: &Aabb) -> Result<McSource, PhysicsError> {
        let s = self.focal_spot_mm;
        let z = self.field.z_mm;
        let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
        for corner in 0..8 {
            let p = [0, 1, 2].map(|a| if corner >> a & 1 == 0 { object.min_mm[a] } else { object.max_mm[a] });
            if p[2] >= s[2] {
                return self.source();
            }
            let t = (s[2] - z) / (s[2] - p[2]);
            for a in 0..2 {
                let v = s[a] + t * (p[a] - s[a]);
                lo[a] = lo[a].min(v);
                hi[a] = hi[a].max(v);
            }
        }
        let field = FieldRect {
            z_mm: z,
            min_xy_mm: [0, 1].map(|a| lo[a].max(self.field.min_xy_mm[a])),
            max_xy_mm: [0, 1].map(|a| hi[a].min(self.field.max_xy_mm[a])),
        };
        if (0..2).any(|a| field.max_xy_mm[a] <= field.min_xy_mm[a]) {
            return Err(PhysicsError::invalid("dose beam", "the object is outside the field"));
        }
        McSource::from_spectrum(&self.spectrum, self.focal_spot_mm, field)
    }
}
