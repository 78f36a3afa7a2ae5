//! `export_exam`: an exam output directory to a directory of DICOM files, written to a temporary directory
//! beside the target and renamed at the end, so an interrupted export leaves nothing that looks complete.
//!
//! The output holds `projection_NN.dcm` (one per view, For Processing), `volume.dcm` (the Breast Tomosynthesis
//! Image, when the exam has a reconstruction), `presentation_2d.dcm` (the synthetic 2D, or a 2D exam's image)
//! and `ground_truth_patient.json` (every ground-truth object's centre in tomolab and in DICOM patient
//! coordinates, by [`crate::frame::PatientFrame`]).

use std::path::{Path, PathBuf};

use dicom_core::VR;
use dicom_dictionary_std::tags;
use nalgebra::Vector3;

use crate::elements::{Ds, Put, item};
use crate::error::{DicomError, Result};
use crate::frame::Laterality;
use crate::inputs::ExamInputs;
use crate::study::{Study, series};
use crate::uid::UidRole;
use crate::{bto, presentation, projection};

/// Identifiers and choices of an export (anonymous defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Patient's Name (0010,0010).
    pub patient_name: String,
    /// Patient ID (0010,0020).
    pub patient_id: String,
    /// Study ID (0020,0010).
    pub study_id: String,
    /// Accession Number (0008,0050); empty by default.
    pub accession_number: String,
    /// Which breast was imaged.
    pub laterality: Laterality,
    /// Patient's Birth Date (0010,0030), YYYYMMDD; the IHE Mammography and DBT profiles need one, so the
    /// anonymous default is a placeholder, 19700101. Patient's Age follows from it and the study date.
    pub patient_birth_date: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            patient_name: "ANONYMOUS^TOMOLAB".into(),
            patient_id: "TOMOLAB".into(),
            study_id: "1".into(),
            accession_number: String::new(),
            laterality: Laterality::Left,
            patient_birth_date: "19700101".into(),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The output directory.
    pub dir: PathBuf,
    /// Every DICOM file written, in the order written.
    pub files: Vec<PathBuf>,
    /// The Study Instance UID.
    pub study_uid: String,
}

/// The X-Ray 3D Acquisition Sequence item of the BTO: the whole sweep (technique, arc, geometry, dose) and one
/// Per Projection Acquisition item per view (PS3.3 C.8.21.2.1, Breast Tomosynthesis Acquisition Module).
fn acquisition_item(study: &Study) -> Ds {
    let meta = &study.inputs.acquisition.meta;
    let angles: Vec<f64> = meta.views.iter().map(|v| 0.5 * (v.angle_start_deg + v.angle_end_deg)).collect();
    let (first, last) = (angles[0], angles[angles.len() - 1]);
    let increment = if angles.len() > 1 { (last - first) / (angles.len() - 1) as f64 } else { 0.0 };
    let det = &meta.detector;
    let g = &meta.geometry;
    let total_mas: f64 = meta.views.iter().map(|v| v.exposure.mas.get()).sum();
    let total_ms: f64 = meta.views.iter().map(|v| v.exposure.duration.as_secs_f64() * 1000.0).sum();
    let per_view: Vec<Ds> = meta
        .views
        .iter()
        .zip(&angles)
        .map(|(v, &angle)| {
            let (mas, ms) = (v.exposure.mas.get(), v.exposure.duration.as_secs_f64() * 1000.0);
            let mut p = item();
            p.ds(tags::KVP, &[v.exposure.kvp.get()])
                .fd(tags::X_RAY_TUBE_CURRENT_INM_A, &[if ms > 0.0 { mas / ms * 1000.0 } else { 0.0 }])
                .fd(tags::EXPOSURE_TIME_INMS, &[ms])
                .fd(tags::EXPOSURE_INM_AS, &[mas])
                .fl(tags::POSITIONER_PRIMARY_ANGLE, &[angle])
                .is(tags::RELATIVE_X_RAY_EXPOSURE, (mas * 1000.0).round() as i64);
            p
        })
        .collect();
    let mut a = item();
    a.fl(tags::PRIMARY_POSITIONER_SCAN_ARC, &[(last - first).abs()])
        .fl(tags::PRIMARY_POSITIONER_SCAN_START_ANGLE, &[first])
        .fl(tags::PRIMARY_POSITIONER_INCREMENT, &[increment])
        .s(tags::X_RAY_RECEPTOR_TYPE, VR::CS, "DIGITAL_DETECTOR")
        .s(tags::FIELD_OF_VIEW_SHAPE, VR::CS, "RECTANGLE")
        .fl(tags::FIELD_OF_VIEW_DIMENSIONS_IN_FLOAT, &[det.height_mm(), det.width_mm()])
        .ds(tags::FIELD_OF_VIEW_ORIGIN, &[0.0, 0.0])
        .ds(tags::FIELD_OF_VIEW_ROTATION, &[0.0])
        .s(tags::FIELD_OF_VIEW_HORIZONTAL_FLIP, VR::CS, "NO")
        .s(tags::GRID, VR::CS, "NONE")
        .ds(tags::KVP, &[meta.views[0].exposure.kvp.get()])
        .fd(tags::EXPOSURE_INM_AS, &[total_mas])
        .fd(tags::EXPOSURE_TIME_INMS, &[total_ms])
        .fd(tags::X_RAY_TUBE_CURRENT_INM_A, &[if total_ms > 0.0 { total_mas / total_ms * 1000.0 } else { 0.0 }])
        .ds(tags::DISTANCE_SOURCE_TO_DETECTOR, &[g.source_to_detector_mm])
        .ds(tags::DISTANCE_SOURCE_TO_PATIENT, &[g.source_to_axis_mm()])
        .ds(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, &[g.source_to_detector_mm / g.source_to_axis_mm()])
        .s(
            tags::EXPOSURE_CONTROL_MODE,
            VR::CS,
            if meta.exposures.len() > meta.views.len() { "AUTOMATIC" } else { "MANUAL" },
        )
        .s(tags::EXPOSURE_CONTROL_MODE_DESCRIPTION, VR::LT, "tomolab: pre-shot AEC or a manual technique")
        .ds(tags::DETECTOR_TEMPERATURE, &[20.0])
        .s(tags::FILTER_TYPE, VR::CS, "FLAT")
        .s(tags::PADDLE_DESCRIPTION, VR::LO, "flat compression paddle (simulated)")
        .seq(tags::PER_PROJECTION_ACQUISITION_SEQUENCE, per_view);
    if let Some(t) = &meta.technique {
        a.s(tags::ANODE_TARGET_MATERIAL, VR::CS, projection::anode(t.target))
            .s(tags::FILTER_MATERIAL, VR::CS, projection::filter(t.filter.material))
            .ds(tags::FILTER_THICKNESS_MINIMUM, &[t.filter.thickness_mm])
            .ds(tags::FILTER_THICKNESS_MAXIMUM, &[t.filter.thickness_mm])
            .ds(tags::FOCAL_SPOTS, &[t.focal_spot.nominal_size_mm()]);
    }
    if let Some(c) = &meta.compression {
        a.ds(tags::BODY_PART_THICKNESS, &[c.thickness.get()]).ds(tags::COMPRESSION_FORCE, &[c.force.get()]);
    }
    if let Some(d) = &study.inputs.dose {
        let entrance: f64 = d.views.iter().map(|v| v.incident_air_kerma_mgy).sum();
        a.ds(tags::ORGAN_DOSE, &[d.total_mgd_mgy / 100.0])
            .ds(tags::ENTRANCE_DOSE_INM_GY, &[entrance])
            .ds(tags::HALF_VALUE_LAYER, &[d.views[d.views.len() / 2].hvl_mm_al]);
    }
    a
}

/// The Contributing Sources Sequence of the BTO: the equipment and time of the projections it was made from.
fn contributing_sources(study: &Study) -> Vec<Ds> {
    let det = &study.inputs.acquisition.meta.detector;
    let mut s = item();
    s.s(tags::MANUFACTURER, VR::LO, "tomolab")
        .s(tags::MANUFACTURER_MODEL_NAME, VR::LO, &format!("tomolab {}", study.inputs.acquisition.meta.preset))
        .s(tags::DEVICE_SERIAL_NUMBER, VR::LO, "SIMULATED")
        .s(tags::SOFTWARE_VERSIONS, VR::LO, env!("CARGO_PKG_VERSION"))
        .s(tags::ACQUISITION_DATE_TIME, VR::DT, &study.datetime_at(0.0))
        .s(tags::STATION_NAME, VR::SH, "TOMOLAB")
        .s(tags::DETECTOR_ID, VR::SH, "SIMULATED")
        .s(tags::DEVICE_UID, VR::UI, crate::IMPLEMENTATION_CLASS_UID)
        .s(tags::GANTRY_ID, VR::LO, "SIMULATED")
        .s(tags::DATE_OF_LAST_DETECTOR_CALIBRATION, VR::DA, &study.date)
        .s(tags::TIME_OF_LAST_DETECTOR_CALIBRATION, VR::TM, &study.time)
        .s(tags::ACQUISITION_DEVICE_PROCESSING_DESCRIPTION, VR::LO, "flat-field corrected transmission")
        .s(tags::ACQUISITION_DEVICE_PROCESSING_CODE, VR::LO, "TOMOLAB-FF")
        .s(tags::INSTITUTION_NAME, VR::LO, "tomolab")
        .s(tags::PATIENT_ORIENTATION, VR::CS, "")
        .s(tags::FRAME_OF_REFERENCE_UID, VR::UI, &study.uids.uid(UidRole::FrameOfReference))
        .us(tags::ROWS, det.rows as u16)
        .us(tags::COLUMNS, det.cols as u16)
        .us(tags::SAMPLES_PER_PIXEL, 1)
        .s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2")
        .us(tags::BITS_ALLOCATED, 16)
        .us(tags::BITS_STORED, 16)
        .us(tags::HIGH_BIT, 15)
        .us(tags::PIXEL_REPRESENTATION, 0)
        .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    projection::detector_attributes(study, &mut s);
    let _ = series::PROJECTIONS;
    vec![s]
}

/// Writes `ground_truth_patient.json`: each object's centre in both frames.
fn write_truth(study: &Study, path: &Path) -> Result<()> {
    let objects: Vec<serde_json::Value> = study
        .inputs
        .truth
        .iter()
        .map(|o| {
            let p = study.frame.point(&Vector3::from(o.centre_mm));
            serde_json::json!({ "id": o.id, "kind": o.kind, "centre_mm_tomolab": o.centre_mm,
                "centre_mm_patient": [p.x, p.y, p.z] })
        })
        .collect();
    let doc = serde_json::json!({
        "patient_frame": "DICOM patient coordinates (LPS), mm: (x, y, z)_patient = (-x, -y, z)_tomolab, cranio-caudal view",
        "frame_of_reference_uid": study.uids.uid(UidRole::FrameOfReference),
        "objects": objects,
    });
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| DicomError::encode("ground truth", e))?;
    std::fs::write(path, bytes).map_err(|e| DicomError::io(path, "write", e))
}

/// Checks that `out` is new or an empty directory; returns the temporary directory to write into.
fn staging_dir(out: &Path) -> Result<PathBuf> {
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(|e| DicomError::io(out, "read", e))?.next().is_none();
        if !empty {
            return Err(DicomError::Output { path: out.into(), problem: "exists and is not empty".into() });
        }
    }
    let name =
        out.file_name().ok_or_else(|| DicomError::Output { path: out.into(), problem: "no file name".into() })?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DicomError::io(parent, "create", e))?;
    let tmp = parent.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| DicomError::io(&tmp, "remove", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| DicomError::io(&tmp, "create", e))?;
    Ok(tmp)
}

/// Exports the exam read from `exam_dir` into `out` (new, or an empty directory).
pub fn export_exam(exam_dir: &Path, out: &Path, options: &ExportOptions) -> Result<ExportReport> {
    let inputs = ExamInputs::read(exam_dir)?;
    export_inputs(&inputs, out, options)
}

/// Exports already-read inputs into `out` (new, or an empty directory).
pub fn export_inputs(inputs: &ExamInputs, out: &Path, options: &ExportOptions) -> Result<ExportReport> {
    let study = Study::new(inputs, options);
    let tmp = staging_dir(out)?;
    let result = write_all(&study, &tmp);
    let names = match result {
        Ok(names) => names,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| DicomError::io(out, "replace the empty directory", e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| DicomError::io(out, "rename into place", e))?;
    Ok(ExportReport {
        dir: out.to_path_buf(),
        files: names.into_iter().map(|n| out.join(n)).collect(),
        study_uid: study.uids.uid(UidRole::Study),
    })
}

fn write_all(study: &Study, dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for k in 0..study.inputs.acquisition.frames.len() {
        let name = format!("projection_{:02}.dcm", k + 1);
        projection::write(study, k, &dir.join(&name))?;
        names.push(name);
    }
    if let Some(volume) = &study.inputs.volume {
        let name = "volume.dcm".to_string();
        bto::write(study, volume, acquisition_item(study), contributing_sources(study), &dir.join(&name))?;
        names.push(name);
    }
    if let Some(image) = presentation::Image2d::of_exam(study)? {
        let name = "presentation_2d.dcm".to_string();
        presentation::write(study, &image, &dir.join(&name))?;
        names.push(name);
    }
    write_truth(study, &dir.join("ground_truth_patient.json"))?;
    Ok(names)
}
