//! Energy groups of a spectrum: fluence, per-material attenuation and the detector's tabulated response.

use tomolab_hal::{DetectorGeometry, DetectorMaterial};

use super::{COS_MIN, COS_TABLE, MAX_MATERIALS, PathLengths};
use crate::attenuation::{MaterialData, MaterialId};
use crate::error::{PhysicsError, check_at_least};
use crate::spectrum::{SUB_SAMPLES, Spectrum, TABLE_DISTANCE_MM};

/// Energy groups of a spectrum with material coefficients and the detector response.
#[derive(Debug, Clone)]
pub(super) struct EnergyGroups {
    /// Mean energy of each group (detected-energy weighted), keV.
    energy_kev: Vec<f64>,
    /// `mu[g * MAX_MATERIALS + m]`, 1/mm.
    mu: Vec<f64>,
    /// `resp[c * groups + g]`: photons/mm^2/mAs at 1000 mm x mean deposited energy per incident photon, for
    /// the c-th cosine of the table.
    resp: Vec<f64>,
    /// Same with squared deposited energy.
    resp_sq: Vec<f64>,
}

fn detector_material(material: DetectorMaterial) -> Result<&'static MaterialData, PhysicsError> {
    match material {
        DetectorMaterial::ASe => MaterialId::Selenium,
        DetectorMaterial::CsI => MaterialId::CsI,
    }
    .data()
}

impl EnergyGroups {
    pub(super) fn new(
        spectrum: &Spectrum,
        detector: &DetectorGeometry,
        materials: &[&'static MaterialData],
        groups_per_bin: usize,
    ) -> Result<Self, PhysicsError> {
        if groups_per_bin == 0 || SUB_SAMPLES % groups_per_bin != 0 {
            return Err(PhysicsError::invalid("groups_per_bin", format!("must divide {SUB_SAMPLES}")));
        }
        let det = detector_material(detector.material)?;
        let t_mm = check_at_least("detector.layer_thickness_mm", detector.layer_thickness_mm, 0.0, true)?;
        let per_group = SUB_SAMPLES / groups_per_bin;
        let samples: Vec<(f64, f64)> = spectrum.at_distance(TABLE_DISTANCE_MM)?.samples().collect();
        let cos_at = |c: usize| COS_MIN + (1.0 - COS_MIN) * c as f64 / (COS_TABLE - 1) as f64;
        let mut energy_kev = Vec::new();
        let mut mu = Vec::new();
        let mut resp_g: Vec<[f64; COS_TABLE]> = Vec::new();
        let mut resp_sq_g: Vec<[f64; COS_TABLE]> = Vec::new();
        let mut total = 0.0;
        for group in samples.chunks_exact(per_group) {
            let mut r = [0.0; COS_TABLE];
            let mut r2 = [0.0; COS_TABLE];
            let (mut w_sum, mut we_sum) = (0.0, 0.0);
            for &(e, n) in group {
                let mu_det = det.mu_per_mm(e);
                let deposit = e * det.mu_en_over_rho_cm2_g(e) / det.mu_over_rho_cm2_g(e);
                for c in 0..COS_TABLE {
                    let p = 1.0 - (-mu_det * t_mm / cos_at(c)).exp();
                    r[c] += n * p * deposit;
                    r2[c] += n * p * deposit * deposit;
                }
                let w = n * (1.0 - (-mu_det * t_mm).exp()) * deposit;
                w_sum += w;
                we_sum += w * e;
            }
            if w_sum <= 0.0 {
                continue;
            }
            let e_mean = we_sum / w_sum;
            total += w_sum;
            energy_kev.push(e_mean);
            let mut row = [0.0; MAX_MATERIALS];
            for (slot, m) in materials.iter().enumerate() {
                row[slot] = m.mu_per_mm(e_mean);
            }
            mu.extend_from_slice(&row);
            resp_g.push(r);
            resp_sq_g.push(r2);
        }
        // Drop groups that carry a negligible share of the detected energy (soft photons stopped by the
        // filter): they change no pixel by more than 1e-9 relative.
        let keep: Vec<usize> = (0..energy_kev.len()).filter(|&g| resp_g[g][COS_TABLE - 1] > 1e-9 * total).collect();
        let groups = keep.len();
        let mut out = Self {
            energy_kev: keep.iter().map(|&g| energy_kev[g]).collect(),
            mu: keep.iter().flat_map(|&g| mu[g * MAX_MATERIALS..(g + 1) * MAX_MATERIALS].iter().copied()).collect(),
            resp: vec![0.0; COS_TABLE * groups],
            resp_sq: vec![0.0; COS_TABLE * groups],
        };
        for (k, &g) in keep.iter().enumerate() {
            for c in 0..COS_TABLE {
                out.resp[c * groups + k] = resp_g[g][c];
                out.resp_sq[c * groups + k] = resp_sq_g[g][c];
            }
        }
        Ok(out)
    }

    pub(super) fn len(&self) -> usize {
        self.energy_kev.len()
    }

    /// (sum_g R_g T_g, sum_g R2_g T_g) at incidence cosine `cos` for path lengths `paths` over `n_mat` slots.
    #[inline]
    pub(super) fn detect(&self, paths: &PathLengths, n_mat: usize, cos: f64) -> (f64, f64) {
        let groups = self.len();
        let x = ((cos - COS_MIN) / (1.0 - COS_MIN) * (COS_TABLE - 1) as f64).clamp(0.0, (COS_TABLE - 1) as f64);
        let c0 = (x.floor() as usize).min(COS_TABLE - 2);
        let w = x - c0 as f64;
        let (r0, r1) = (&self.resp[c0 * groups..(c0 + 1) * groups], &self.resp[(c0 + 1) * groups..(c0 + 2) * groups]);
        let (q0, q1) =
            (&self.resp_sq[c0 * groups..(c0 + 1) * groups], &self.resp_sq[(c0 + 1) * groups..(c0 + 2) * groups]);
        let (mut e1, mut e2) = (0.0, 0.0);
        for g in 0..groups {
            let mu = &self.mu[g * MAX_MATERIALS..g * MAX_MATERIALS + n_mat];
            let line: f64 = mu.iter().zip(paths).map(|(m, l)| m * l).sum();
            let t = (-line).exp();
            e1 += (r0[g] + w * (r1[g] - r0[g])) * t;
            e2 += (q0[g] + w * (q1[g] - q0[g])) * t;
        }
        (e1, e2)
    }
}
