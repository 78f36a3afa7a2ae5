//! A provisional mean-glandular-dose estimate for the sequencer's budget check: primary photons only.
//!
//! The breast is a homogeneous slab of the compressed thickness and glandular fraction. Each photon of the
//! spectrum entering the top surface deposits, at depth z, `E (mu_en/rho)_g Phi(E) exp(-mu z)` in glandular
//! tissue; averaging over the path gives
//! `MGD = sum_E Phi(E) E (mu_en/rho)_g(E) (1 - exp(-mu L)) / (mu L)`, with `L = T / cos(angle)` and `Phi` the
//! fluence per mAs at the breast's top surface. This is the primary dose (Hammerstein et al., Radiology
//! 130:485, 1979); scattered photons add to it, so it is a lower estimate, replaced by the Monte Carlo and
//! conversion-factor formalism of the dose issue.

use crate::attenuation::material;
use crate::spectrum::{FilterLayer, Spectrum};
use tomolab_hal::sequencer::DoseModel;
use tomolab_hal::technique::Technique;
use tomolab_hal::{ArcGeometry, Compression};

/// keV/g to mGy.
const MGY_PER_KEV_PER_G: f64 = 1.602_176_634e-16 / 1e-3 * 1e3;

/// Primary-only slab estimate of mean glandular dose.
#[derive(Debug, Clone)]
pub struct PrimarySlabDose {
    /// Gantry geometry (the source's distance to the breast).
    pub arc: ArcGeometry,
    /// Height of the breast support above the detector, mm.
    pub support_height_mm: f64,
    /// Layers every beam crosses besides the technique's filter.
    pub fixed_layers: Vec<FilterLayer>,
    /// Glandular volume fraction of the slab.
    pub glandular_fraction: f64,
}

impl PrimarySlabDose {
    /// MGD per mAs, or an error message.
    pub fn estimate(&self, technique: &Technique, compression: &Compression, angle_deg: f64) -> Result<f64, String> {
        let t = compression.thickness.get();
        let top = self.support_height_mm + t;
        let source = self.arc.pose_at(angle_deg).source_mm;
        let distance = (source.z - top) / angle_deg.to_radians().cos().max(1e-3);
        let mut layers = self.fixed_layers.clone();
        layers.push(
            FilterLayer::new(crate::render::filter_name(technique.filter.material), technique.filter.thickness_mm)
                .map_err(|e| e.to_string())?,
        );
        let spectrum = Spectrum::new(technique.target, technique.kvp.get().round(), &layers, distance)
            .map_err(|e| e.to_string())?;
        let (gland, fat) =
            (material("glandular").map_err(|e| e.to_string())?, material("adipose").map_err(|e| e.to_string())?);
        let g = self.glandular_fraction.clamp(0.0, 1.0);
        let path = t / angle_deg.to_radians().cos().max(1e-3);
        let kev_per_g: f64 = spectrum
            .samples()
            .map(|(e, fluence_mm2)| {
                let mu = g * gland.mu_per_mm(e) + (1.0 - g) * fat.mu_per_mm(e);
                let depth_average = if mu * path > 1e-12 { (1.0 - (-mu * path).exp()) / (mu * path) } else { 1.0 };
                fluence_mm2 * 100.0 * e * gland.mu_en_over_rho_cm2_g(e) * depth_average
            })
            .sum();
        Ok(kev_per_g * MGY_PER_KEV_PER_G)
    }
}

impl DoseModel for PrimarySlabDose {
    fn mgd_per_mas(&self, technique: &Technique, compression: &Compression, angle_deg: f64) -> f64 {
        // The sequencer refuses a plan when the estimate is not a finite number.
        self.estimate(technique, compression, angle_deg).unwrap_or(f64::NAN)
    }
}
