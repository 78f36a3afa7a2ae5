//! Each projection as a Digital Mammography X-Ray Image For Processing (SOP class 1.2.840.10008.5.1.4.1.1.1.2.1,
//! PS3.3 A.27), one single-frame object per view.
//!
//! # Why this SOP class
//!
//! Breast Projection X-Ray Image For Processing (1.2.840.10008.5.1.4.1.1.13.1.5) is the newer enhanced
//! multi-frame alternative, but the DBT units in the field deliver their projections as one Digital Mammography
//! For Processing object per view, which every PACS and the IHE Mammography profile (`dciodvfy -profile
//! IHEMammo`) know, and a reconstruction that reads real units must read those anyway. So tomolab writes what
//! it will import.
//!
//! # Pixels
//!
//! The stored value is the flat-fielded transmission of the view: `stored = round(50000 * (raw - dark) /
//! (flood * mAs))`, clamped to 0..=65535 (16 bits stored; an open field is about 50000). Pixel Intensity
//! Relationship is `LIN` with sign `+1` (a larger value means more X-rays reached the detector), Rescale Slope
//! 1 and Intercept 0; `-ln(stored / 50000)` is the view's line integral. Rows run along tomolab's y (chest wall
//! to nipple), columns along x (tube travel), so Patient Orientation is `R\A` ([`crate::frame`]).
//!
//! # Geometry attributes (what a reconstruction rebuilds the poses from)
//!
//! | attribute | tomolab value |
//! |---|---|
//! | Positioner Primary Angle (0018,1510) | the tube's angle at mid-exposure, degrees; positive moves the focal spot toward tomolab +x (the patient's right) |
//! | Distance Source to Detector (0018,1110) | focal spot to detector surface at 0 degrees |
//! | Distance Source to Patient (0018,1111) | focal spot to the rotation axis, so the axis lies `SID - DSP` above the detector |
//! | Imager Pixel Spacing (0018,1164) | detector pitch (row spacing = pitch along y, column spacing = pitch along x) |
//! | Detector Active Dimensions (0018,7026), Origin (0018,7014) | the active area (rows x pitch, columns x pitch), origin 0\0 |
//! | Body Part Thickness (0018,11A0), Compression Force (0018,11A2) | the paddle's reading at the sweep's start |

use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use tomolab_hal::technique::{FilterMaterial, Target};
use tomolab_hal::{Frame, ViewRecord};

use crate::bto::write_streamed;
use crate::elements::{Ds, Put, item};
use crate::error::{DicomError, Result};
use crate::study::{Study, series};

/// The Digital Mammography X-Ray Image Storage - For Processing SOP class.
pub const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.1.2.1";

/// Stored value of full transmission (see the module doc).
pub const TRANSMISSION_SCALE: f64 = 50_000.0;

/// The DICOM defined term of an anode material (PS3.3 C.8.7.10).
pub(crate) fn anode(target: Target) -> &'static str {
    match target {
        Target::W => "TUNGSTEN",
        Target::Mo => "MOLYBDENUM",
        Target::Rh => "RHODIUM",
    }
}

/// The DICOM defined term of a filter material (PS3.3 C.8.7.10).
pub(crate) fn filter(material: FilterMaterial) -> &'static str {
    match material {
        FilterMaterial::Rh => "RHODIUM",
        FilterMaterial::Mo => "MOLYBDENUM",
        FilterMaterial::Al => "ALUMINUM",
        FilterMaterial::Ag => "SILVER",
    }
}

/// The flat-fielded transmission of one view in the stored scale.
pub(crate) fn stored_transmission(frame: &Frame, dark: Option<&Frame>, flood: Option<&Frame>, mas: f64) -> Vec<u16> {
    frame
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let d = dark.map_or(0.0, |d| f64::from(d.data[i]));
            let f = flood.map_or(1.0, |f| f64::from(f.data[i]) * mas);
            let t = if f > 0.0 { (f64::from(v) - d) / f } else { 0.0 };
            (t * TRANSMISSION_SCALE).round().clamp(0.0, 65535.0) as u16
        })
        .collect()
}

/// The acquisition attributes of view `k` (technique, geometry, dose), shared by the projection objects and
/// the BTO's X-Ray 3D Acquisition Sequence.
pub(crate) fn view_attributes(study: &Study, ds: &mut Ds, k: usize) {
    let meta = &study.inputs.acquisition.meta;
    let view = &meta.views[k];
    let det = &meta.detector;
    let angle = 0.5 * (view.angle_start_deg + view.angle_end_deg);
    let e = &view.exposure;
    let ms = e.duration.as_secs_f64() * 1000.0;
    let mas = e.mas.get();
    ds.ds(tags::KVP, &[e.kvp.get()])
        .is(tags::EXPOSURE_TIME, ms.round() as i64)
        .is(tags::X_RAY_TUBE_CURRENT, if ms > 0.0 { (mas / ms * 1000.0).round() as i64 } else { 0 })
        .is(tags::EXPOSURE, mas.round() as i64)
        .is(tags::EXPOSURE_INU_AS, (mas * 1000.0).round() as i64)
        .ds(tags::POSITIONER_PRIMARY_ANGLE, &[angle])
        .ds(tags::DISTANCE_SOURCE_TO_DETECTOR, &[meta.geometry.source_to_detector_mm])
        .ds(tags::DISTANCE_SOURCE_TO_PATIENT, &[meta.geometry.source_to_axis_mm()])
        .ds(
            tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR,
            &[meta.geometry.source_to_detector_mm / meta.geometry.source_to_axis_mm()],
        )
        .ds(tags::IMAGER_PIXEL_SPACING, &[det.pitch_v_mm, det.pitch_u_mm])
        .s(
            tags::EXPOSURE_CONTROL_MODE,
            VR::CS,
            if meta.exposures.len() > meta.views.len() { "AUTOMATIC" } else { "MANUAL" },
        );
    if let Some(t) = &meta.technique {
        ds.s(tags::ANODE_TARGET_MATERIAL, VR::CS, anode(t.target))
            .s(tags::FILTER_MATERIAL, VR::CS, filter(t.filter.material))
            .ds(tags::FILTER_THICKNESS_MINIMUM, &[t.filter.thickness_mm])
            .ds(tags::FILTER_THICKNESS_MAXIMUM, &[t.filter.thickness_mm])
            .ds(tags::FOCAL_SPOTS, &[t.focal_spot.nominal_size_mm()]);
    }
    if let Some(c) = &meta.compression {
        ds.ds(tags::BODY_PART_THICKNESS, &[c.thickness.get()]).ds(tags::COMPRESSION_FORCE, &[c.force.get()]);
    }
    if let Some(d) = study.inputs.dose.as_ref().map(|d| d.views[k]) {
        // Organ Dose is in dGy (PS3.3 C.8.7.8), Entrance Dose in mGy.
        ds.ds(tags::ENTRANCE_DOSE_INM_GY, &[d.incident_air_kerma_mgy])
            .ds(tags::ORGAN_DOSE, &[d.mgd_mgy / 100.0])
            .ds(tags::HALF_VALUE_LAYER, &[d.hvl_mm_al]);
    } else {
        ds.ds(tags::ORGAN_DOSE, &[view.estimated_mgd.get() / 100.0]);
    }
    ds.s(tags::ORGAN_EXPOSED, VR::CS, "BREAST");
}

/// The detector attributes (DX Detector module).
pub(crate) fn detector_attributes(study: &Study, ds: &mut Ds) {
    let det = &study.inputs.acquisition.meta.detector;
    let kind = match det.material {
        tomolab_hal::DetectorMaterial::ASe => "DIRECT",
        tomolab_hal::DetectorMaterial::CsI => "SCINTILLATOR",
    };
    ds.s(tags::DETECTOR_TYPE, VR::CS, kind)
        .s(tags::DETECTOR_CONFIGURATION, VR::CS, "AREA")
        .s(tags::DETECTOR_ID, VR::SH, "SIMULATED")
        .s(tags::DETECTOR_ACTIVE_SHAPE, VR::CS, "RECTANGLE")
        .ds(tags::DETECTOR_ACTIVE_DIMENSIONS, &[det.height_mm(), det.width_mm()])
        .ds(tags::DETECTOR_ACTIVE_ORIGIN, &[0.0, 0.0])
        .ds(tags::DETECTOR_ELEMENT_PHYSICAL_SIZE, &[det.pitch_v_mm, det.pitch_u_mm])
        .ds(tags::DETECTOR_ELEMENT_SPACING, &[det.pitch_v_mm, det.pitch_u_mm])
        .s(tags::GRID, VR::CS, "NONE");
}

/// The header of view `k`'s object (all but Pixel Data).
fn header(study: &Study, k: usize, view: &ViewRecord) -> Ds {
    let det = &study.inputs.acquisition.meta.detector;
    let mut ds = item();
    study.common(&mut ds, SOP_CLASS, series::PROJECTIONS, k as u32 + 1, "tomosynthesis projections");
    let orientation = study.frame.patient_orientation();
    ds.strs(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY"])
        .s(tags::PRESENTATION_INTENT_TYPE, VR::CS, "FOR PROCESSING")
        .s(tags::ACQUISITION_DATE_TIME, VR::DT, &study.datetime_at(view.time_since_start.as_secs_f64()))
        .is(tags::ACQUISITION_NUMBER, k as i64 + 1)
        .strs(tags::PATIENT_ORIENTATION, VR::CS, &orientation)
        .grey16(det.rows, det.cols)
        .intensity_relationship("LIN", 1);
    ds.ds(tags::RESCALE_INTERCEPT, &[0.0])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "US")
        .s(tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY")
        .is(tags::RELATIVE_X_RAY_EXPOSURE, (view.exposure.mas.get() * 1000.0).round() as i64);
    study.mammography_image(&mut ds, "flat-field corrected transmission");
    view_attributes(study, &mut ds, k);
    detector_attributes(study, &mut ds);
    ds
}

/// Writes view `k` to `path`.
pub(crate) fn write(study: &Study, k: usize, path: &Path) -> Result<()> {
    let acq = &study.inputs.acquisition;
    let (det, view, frame) = (&acq.meta.detector, &acq.meta.views[k], &acq.frames[k]);
    if det.rows > 65535 || det.cols > 65535 {
        return Err(DicomError::encode("projection", "Rows/Columns above 65535"));
    }
    let pixels = stored_transmission(frame, acq.dark.as_ref(), acq.flood.as_ref(), view.exposure.mas.get());
    let file = std::fs::File::create(path).map_err(|e| DicomError::io(path, "create", e))?;
    let what = format!("projection {k}");
    write_streamed(header(study, k, view), std::io::BufWriter::new(file), &what, pixels.len(), |sink| sink(&pixels))
}
