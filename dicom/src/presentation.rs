//! The 2D image for presentation as Digital Mammography X-Ray Image For Presentation (SOP class
//! 1.2.840.10008.5.1.4.1.1.1.2, PS3.3 A.27): the synthetic 2D of a DBT exam (the reconstruction's
//! `alpha max + (1 - alpha) mean` along z, alpha 0.5) or the one view of a 2D exam (its line integrals, as the
//! exam's `mammogram.png`).
//!
//! Stored value `= round(4000 * p)` clamped to 0..=65535, where `p` is the line integral (2D exam) or the
//! synthetic 2D's attenuation times the slab thickness (mm, so both are dimensionless line integrals):
//! attenuation is bright, Pixel Intensity Relationship `LOG` with sign `-1` (a larger value means fewer X-rays),
//! and a window from the 0.5th to the 99.5th percentile (the previews' rule).

use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::tags;

use crate::bto::write_streamed;
use crate::elements::{Ds, Put, item};
use crate::error::{DicomError, Result};
use crate::projection::{detector_attributes, view_attributes};
use crate::study::{Study, series};
use crate::uid::UidRole;

/// The Digital Mammography X-Ray Image Storage - For Presentation SOP class.
pub const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.1.2";

/// Stored value per unit line integral.
pub const LINE_INTEGRAL_SCALE: f64 = 4000.0;

/// A 2D image for presentation: line integrals (dimensionless), row-major, `rows` x `cols`, with its pixel
/// spacing (row, column), mm.
#[derive(Debug, Clone)]
pub(crate) struct Image2d {
    pub values: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    pub spacing_mm: [f64; 2],
    pub description: &'static str,
}

impl Image2d {
    /// The 2D image of the exam: the synthetic 2D of its volume, or its one view's line integrals.
    pub fn of_exam(study: &Study) -> Result<Option<Self>> {
        let inputs = study.inputs;
        if let Some(volume) = &inputs.volume {
            let g = &volume.geometry;
            let mean = tomolab_recon::synthetic_2d(volume, 0.5).map_err(|e| DicomError::encode("synthetic 2D", e))?;
            let thickness = g.voxel_mm[2] * g.nz as f64;
            let values = mean.iter().map(|&v| v * thickness as f32).collect();
            return Ok(Some(Self {
                values,
                rows: g.ny,
                cols: g.nx,
                spacing_mm: [g.voxel_mm[1], g.voxel_mm[0]],
                description: "synthetic 2D",
            }));
        }
        let acq = &inputs.acquisition;
        if acq.frames.len() != 1 {
            return Ok(None);
        }
        let options = tomolab_recon::PreprocessOptions::default();
        let p = tomolab_recon::line_integrals(acq, &options).map_err(|e| DicomError::encode("2D image", e))?;
        let det = &acq.meta.detector;
        Ok(Some(Self {
            values: p.view(0).to_vec(),
            rows: det.rows,
            cols: det.cols,
            spacing_mm: [det.pitch_v_mm, det.pitch_u_mm],
            description: "processed 2D mammogram",
        }))
    }
}

/// The image the 2D was made from: the Breast Tomosynthesis Image (synthetic 2D; spatial locations not
/// preserved), or the 2D exam's one projection (preserved).
fn sources(study: &Study) -> Vec<Ds> {
    let (class, uid, preserved) = if study.inputs.volume.is_some() {
        (crate::bto::SOP_CLASS, study.uids.uid(UidRole::Instance(series::VOLUME, 1)), "NO")
    } else {
        (crate::projection::SOP_CLASS, study.uids.uid(UidRole::Instance(series::PROJECTIONS, 1)), "YES")
    };
    let mut r = item();
    r.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class).s(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &uid).s(
        tags::SPATIAL_LOCATIONS_PRESERVED,
        VR::CS,
        preserved,
    );
    vec![r]
}

fn header(study: &Study, image: &Image2d, window: (f64, f64)) -> Ds {
    let mut ds = item();
    study.common(&mut ds, SOP_CLASS, series::PRESENTATION, 1, image.description);
    let orientation = study.frame.patient_orientation();
    ds.strs(tags::IMAGE_TYPE, VR::CS, &["DERIVED", "PRIMARY"])
        .s(tags::PRESENTATION_INTENT_TYPE, VR::CS, "FOR PRESENTATION")
        .is(tags::ACQUISITION_NUMBER, 1)
        .strs(tags::PATIENT_ORIENTATION, VR::CS, &orientation)
        .grey16(image.rows, image.cols)
        .intensity_relationship("LOG", -1);
    ds.ds(tags::RESCALE_INTERCEPT, &[0.0])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "US")
        .s(tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY")
        .ds(tags::WINDOW_CENTER, &[window.0])
        .ds(tags::WINDOW_WIDTH, &[window.1])
        .s(tags::VOILUT_FUNCTION, VR::CS, "LINEAR")
        .is(tags::RELATIVE_X_RAY_EXPOSURE, 0)
        .s(tags::WINDOW_CENTER_WIDTH_EXPLANATION, VR::LO, "0.5th to 99.5th percentile")
        .seq(tags::SOURCE_IMAGE_SEQUENCE, sources(study));
    study.mammography_image(&mut ds, image.description);
    // The central view's technique and geometry (for a 2D exam, its only view).
    let views = &study.inputs.acquisition.meta.views;
    view_attributes(study, &mut ds, views.len() / 2);
    detector_attributes(study, &mut ds);
    ds.ds(tags::IMAGER_PIXEL_SPACING, &image.spacing_mm);
    ds
}

/// Writes `image` to `path`.
pub(crate) fn write(study: &Study, image: &Image2d, path: &Path) -> Result<()> {
    if image.rows > 65535 || image.cols > 65535 || image.values.len() != image.rows * image.cols {
        return Err(DicomError::encode("2D image", "Rows/Columns above 65535 or inconsistent with the pixels"));
    }
    let stored: Vec<u16> =
        image.values.iter().map(|&v| (f64::from(v) * LINE_INTEGRAL_SCALE).round().clamp(0.0, 65535.0) as u16).collect();
    let mut sorted = stored.clone();
    sorted.sort_unstable();
    let at = |q: f64| f64::from(sorted[((sorted.len() - 1) as f64 * q) as usize]);
    let (lo, hi) = (at(0.005), at(0.995));
    let window = ((lo + hi) / 2.0, (hi - lo).max(2.0));
    let file = std::fs::File::create(path).map_err(|e| DicomError::io(path, "create", e))?;
    write_streamed(header(study, image, window), std::io::BufWriter::new(file), "2D image", stored.len(), |sink| {
        sink(&stored)
    })
}
