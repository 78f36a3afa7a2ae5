//! The exam's dose report: per-view and total mean glandular dose from the Monte Carlo on the phantom, next to
//! the conversion-factor formalism the sequencer booked, with entrance air kerma, HVL and technique; written
//! as `dose.json` and a plot of dose against angle, `dose.svg`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;
use tomolab_hal::technique::Technique;
use tomolab_hal::{Acquisition, ArcGeometry};
use tomolab_phantom::{LabelVolume, MaterialTable};
use tomolab_simulator::FilterLayer;
use tomolab_simulator::dose::{BudgetDose, PhantomDose, PhantomDoseConfig};
use tomolab_simulator::mc::Estimate;

/// What the Monte Carlo report needs besides the acquisition.
#[derive(Debug, Clone)]
pub struct DoseInputs {
    /// The phantom.
    pub volume: Arc<LabelVolume>,
    /// Its materials.
    pub materials: MaterialTable,
    /// The unit's geometry.
    pub arc: ArcGeometry,
    /// Window and paddle.
    pub fixed_layers: Vec<FilterLayer>,
    /// Monte Carlo settings.
    pub config: PhantomDoseConfig,
}

/// One view of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ViewDose {
    /// View index.
    pub view: usize,
    /// Angle at mid-exposure, degrees.
    pub angle_deg: f64,
    /// Delivered tube voltage (as measured), kV.
    pub kvp: f64,
    /// Target/filter, e.g. `W/Rh 0.050 mm`.
    pub beam: String,
    /// Delivered mAs.
    pub mas: f64,
    /// First HVL, mm Al.
    pub hvl_mm_al: f64,
    /// Incident air kerma at the breast's upper surface below the focal spot, mGy.
    pub incident_air_kerma_mgy: f64,
    /// Monte Carlo mean glandular dose, mGy.
    pub mgd_mgy: f64,
    /// Its standard error, mGy.
    pub mgd_std_error_mgy: f64,
    /// The estimate the sequencer booked for this view (formalism), mGy.
    pub booked_mgd_mgy: f64,
}

/// One view's dose figures per mAs, before they are scaled by the delivered mAs.
#[derive(Debug, Clone, Copy)]
pub struct ViewDosePerMas {
    /// First HVL, mm Al.
    pub hvl_mm_al: f64,
    /// Incident air kerma per mAs at the breast's upper surface below the focal spot, uGy/mAs.
    pub incident_kerma_ugy_per_mas: f64,
    /// Monte Carlo mean glandular dose per mAs, mGy/mAs, with its standard error.
    pub mgd_per_mas: Estimate,
    /// The formalism's estimate per mAs (NaN where its tables stop), mGy/mAs.
    pub booked_mgd_per_mas: f64,
}

impl ViewDose {
    /// The row of view `at = (index, angle in degrees, kV)` exposed with `technique` at `mas`.
    pub fn new(at: (usize, f64, f64), technique: &Technique, mas: f64, per_mas: &ViewDosePerMas) -> Self {
        let (view, angle_deg, kvp) = at;
        let f = &technique.filter;
        Self {
            view,
            angle_deg,
            kvp,
            beam: format!("{:?}/{:?} {:.3} mm", technique.target, f.material, f.thickness_mm),
            mas,
            hvl_mm_al: per_mas.hvl_mm_al,
            incident_air_kerma_mgy: per_mas.incident_kerma_ugy_per_mas * 1e-3 * mas,
            mgd_mgy: per_mas.mgd_per_mas.mean * mas,
            mgd_std_error_mgy: per_mas.mgd_per_mas.std_error * mas,
            booked_mgd_mgy: per_mas.booked_mgd_per_mas * mas,
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct DoseReport {
    /// How the numbers were made.
    pub method: String,
    /// Per view.
    pub views: Vec<ViewDose>,
    /// Sum over the views (Monte Carlo), mGy.
    pub total_mgd_mgy: f64,
    /// Its standard error, mGy.
    pub total_std_error_mgy: f64,
    /// Sum of the booked (formalism) estimates, mGy.
    pub booked_total_mgd_mgy: f64,
    /// Glandular tissue mass of the phantom, g.
    pub glandular_mass_g: f64,
    /// Photons per view.
    pub histories_per_view: u64,
}

impl DoseReport {
    /// Runs the Monte Carlo for every acquired view of `acquisition`.
    pub fn compute(inputs: &DoseInputs, budget: &BudgetDose, acquisition: &Acquisition) -> anyhow::Result<Self> {
        let technique = acquisition.meta.technique.context("the acquisition records no view technique")?;
        let thickness = acquisition
            .meta
            .compression
            .map(|c| c.thickness.get())
            .context("the acquisition records no compression")?;
        let phantom = PhantomDose {
            volume: &inputs.volume,
            materials: &inputs.materials,
            arc: &inputs.arc,
            fixed_layers: &inputs.fixed_layers,
        };
        let requests = acquisition
            .meta
            .views
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let delivered = Technique { kvp: v.exposure.kvp, ..technique };
                Ok((k as u64, 0.5 * (v.angle_start_deg + v.angle_end_deg), delivered))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let doses = phantom.views(&requests, &inputs.config)?;
        let mass = doses.first().map_or(0.0, |d| d.glandular_mass_g);
        let views = acquisition
            .meta
            .views
            .iter()
            .zip(requests.iter().zip(&doses))
            .map(|(v, ((k, angle, _), d))| {
                let per_mas = ViewDosePerMas {
                    hvl_mm_al: d.hvl_mm_al,
                    incident_kerma_ugy_per_mas: d.incident_kerma_ugy_per_mas,
                    mgd_per_mas: d.mgd_per_mas,
                    booked_mgd_per_mas: budget
                        .estimate(&technique, thickness, v.nominal_angle_deg)
                        .map_or(f64::NAN, |e| e.0),
                };
                let at = (*k as usize, *angle, v.exposure.kvp.get());
                ViewDose::new(at, &technique, v.exposure.mas.get(), &per_mas)
            })
            .collect::<Vec<_>>();
        Ok(Self {
            method:
                "Monte Carlo photon transport in the voxel phantom (photoelectric, Compton with S(x), Rayleigh with \
                     F(x); Woodcock tracking), normalised to the spectrum model's tube output per mAs; booked = \
                     conversion-factor formalism K g c s t"
                    .into(),
            total_mgd_mgy: views.iter().map(|v| v.mgd_mgy).sum(),
            total_std_error_mgy: views.iter().map(|v| v.mgd_std_error_mgy.powi(2)).sum::<f64>().sqrt(),
            booked_total_mgd_mgy: views.iter().map(|v| v.booked_mgd_mgy).sum(),
            glandular_mass_g: mass,
            histories_per_view: inputs.config.histories_per_view,
            views,
        })
    }

    /// Writes `dose.json` and `dose.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(dir.join("dose.json"), serde_json::to_vec_pretty(self)?).context("writing dose.json")?;
        plot(&self.views, &dir.join("dose.svg")).context("writing dose.svg")
    }
}

/// Dose per view against angle: Monte Carlo with one-sigma error bars, and the booked estimate.
pub fn plot(views: &[ViewDose], path: &Path) -> anyhow::Result<()> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let (lo, hi) =
            views.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v.angle_deg), hi.max(v.angle_deg)));
        let pad = ((hi - lo) * 0.05).max(1.0);
        let top = views
            .iter()
            .map(|v| {
                (v.mgd_mgy + v.mgd_std_error_mgy).max(if v.booked_mgd_mgy.is_finite() { v.booked_mgd_mgy } else { 0.0 })
            })
            .fold(0.0, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption("Mean glandular dose per view", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..top.max(1e-6))?;
        chart.configure_mesh().x_desc("projection angle (deg)").y_desc("MGD (mGy)").draw()?;
        let mc: Vec<(f64, f64)> = views.iter().map(|v| (v.angle_deg, v.mgd_mgy)).collect();
        chart
            .draw_series(LineSeries::new(mc.clone(), &BLUE))?
            .label("Monte Carlo (phantom)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart.draw_series(views.iter().map(|v| {
            ErrorBar::new_vertical(
                v.angle_deg,
                v.mgd_mgy - v.mgd_std_error_mgy,
                v.mgd_mgy,
                v.mgd_mgy + v.mgd_std_error_mgy,
                BLUE.filled(),
                5,
            )
        }))?;
        let booked: Vec<(f64, f64)> =
            views.iter().filter(|v| v.booked_mgd_mgy.is_finite()).map(|v| (v.angle_deg, v.booked_mgd_mgy)).collect();
        chart
            .draw_series(LineSeries::new(booked, RED.stroke_width(1)))?
            .label("formalism (booked)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("{e}"))
}
