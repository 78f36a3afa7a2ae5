//! The dose model of the sequencer's budget check: the formalism, or the Monte Carlo of the model breast
//! where the formalism's tables do not reach.

use std::sync::Mutex;

use tomolab_hal::Compression;
use tomolab_hal::sequencer::DoseModel;
use tomolab_hal::technique::Technique;

use super::beam::ViewBeam;
use super::formalism::Formalism;
use super::standard::{StandardBreast, standard_view_dose};
use crate::error::PhysicsError;
use crate::mc::McConfig;

/// Histories of a fallback Monte Carlo estimate (about 1 % uncertainty).
const FALLBACK_HISTORIES: u64 = 200_000;
/// Largest angle the fallback simulates; beyond it (breast CT) the dose at this angle stands in.
const FALLBACK_MAX_ANGLE_DEG: f64 = 30.0;

type Key = (u64, u64, u64, u64);

/// Formalism first, Monte Carlo of the model breast otherwise.
#[derive(Debug)]
pub struct BudgetDose {
    /// The formalism of the unit.
    pub formalism: Formalism,
    /// Glandular weight fraction assumed for the breast.
    pub glandularity: f64,
    fallback: Mutex<Vec<(Key, f64)>>,
}

impl BudgetDose {
    /// A budget model for a unit and a breast glandularity (by weight).
    pub fn new(formalism: Formalism, glandularity: f64) -> Self {
        Self { formalism, glandularity, fallback: Mutex::new(Vec::new()) }
    }

    /// MGD per mAs of a view, mGy/mAs, and whether it came from the formalism.
    pub fn estimate(
        &self,
        technique: &Technique,
        thickness_mm: f64,
        angle_deg: f64,
    ) -> Result<(f64, bool), PhysicsError> {
        match self.formalism.view(technique, thickness_mm, self.glandularity, angle_deg) {
            Ok(v) => Ok((v.mgd_per_mas, true)),
            Err(_) => self.monte_carlo(technique, thickness_mm, angle_deg).map(|d| (d, false)),
        }
    }

    fn monte_carlo(&self, technique: &Technique, thickness_mm: f64, angle_deg: f64) -> Result<f64, PhysicsError> {
        let angle = angle_deg.clamp(-FALLBACK_MAX_ANGLE_DEG, FALLBACK_MAX_ANGLE_DEG);
        let key = (
            technique.kvp.get().to_bits() ^ ((technique.target as u64) << 56),
            technique.filter.thickness_mm.to_bits() ^ ((technique.filter.material as u64) << 56),
            thickness_mm.to_bits(),
            angle.to_bits(),
        );
        if let Some(v) = self.fallback.lock().ok().and_then(|c| c.iter().find(|(k, _)| *k == key).map(|x| x.1)) {
            return Ok(v);
        }
        let breast = StandardBreast {
            support_height_mm: self.formalism.support_height_mm,
            ..StandardBreast::new(thickness_mm, self.glandularity.clamp(0.01, 1.0))
        };
        let beam = ViewBeam::of_technique(
            &self.formalism.arc,
            angle,
            technique,
            &self.formalism.fixed_layers,
            breast.top_mm(),
        )?;
        let config = McConfig { histories: FALLBACK_HISTORIES, batches: 16, seed: 1, stream_offset: 0 };
        let d = standard_view_dose(&breast, &beam, &config)?;
        let v = d.mgd_per_mas.mean + 2.0 * d.mgd_per_mas.std_error;
        if let Ok(mut c) = self.fallback.lock() {
            c.push((key, v));
        }
        Ok(v)
    }
}

impl DoseModel for BudgetDose {
    fn mgd_per_mas(&self, technique: &Technique, compression: &Compression, angle_deg: f64) -> f64 {
        // The sequencer refuses a plan when the estimate is not a finite number.
        self.estimate(technique, compression.thickness.get(), angle_deg).map_or(f64::NAN, |v| v.0)
    }
}
