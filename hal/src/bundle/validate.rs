//! The range and consistency checks of a bundle's metadata and pixel arrays, run on every load.

use std::path::Path;

use super::*;

fn check_angle(file: &Path, field: String, value: f64) -> Result<(), BundleError> {
    if value.is_finite() && value.abs() <= 360.0 {
        Ok(())
    } else {
        Err(invalid(file, field, format!("{value} deg is not a finite angle within one turn (-360..=360)")))
    }
}

fn check_pose(
    file: &Path,
    k: usize,
    pose: &crate::geometry::ViewPose,
    det: &crate::geometry::DetectorGeometry,
) -> Result<(), BundleError> {
    let field = |name: &str| format!("acquisition.views[{k}].pose.{name}");
    for (name, v) in [
        ("source_mm", pose.source_mm),
        ("detector_centre_mm", pose.detector_centre_mm),
        ("u_step_mm", pose.u_step_mm),
        ("v_step_mm", pose.v_step_mm),
    ] {
        if !v.iter().all(|c| c.is_finite() && c.abs() <= MAX_COORDINATE_MM) {
            return Err(invalid(
                file,
                field(name),
                format!("{:?} has a coordinate that is not finite or beyond +-{MAX_COORDINATE_MM} mm", v.as_slice()),
            ));
        }
    }
    for (name, step, pitch, pitch_field) in [
        ("u_step_mm", pose.u_step_mm, det.pitch_u_mm, "pitch_u_mm"),
        ("v_step_mm", pose.v_step_mm, det.pitch_v_mm, "pitch_v_mm"),
    ] {
        let len = step.norm();
        if (len - pitch).abs() > PITCH_TOLERANCE * pitch {
            return Err(invalid(
                file,
                field(name),
                format!("step of {len} mm disagrees with acquisition.detector.{pitch_field} = {pitch} mm"),
            ));
        }
    }
    let normal = pose.u_step_mm.cross(&pose.v_step_mm);
    if normal.norm() <= 1e-6 * det.pitch_u_mm * det.pitch_v_mm {
        return Err(invalid(file, field("u_step_mm"), "u_step_mm and v_step_mm are parallel"));
    }
    let height = normal.normalize().dot(&(pose.source_mm - pose.detector_centre_mm)).abs();
    if height < 1.0 {
        return Err(invalid(file, field("source_mm"), format!("the source is {height} mm from the detector plane")));
    }
    Ok(())
}

/// Checks what the CRCs cannot: every field's range and the consistency of the metadata with itself.
///
/// - the detector grid is valid and at most 65536 pixels a side; the arc geometry is valid and within
///   [`MAX_COORDINATE_MM`]; the technique's filter thickness is in range;
/// - every view's angles are finite and within one turn; its pose is finite, within [`MAX_COORDINATE_MM`],
///   its pixel steps agree with the detector pitch within [`PITCH_TOLERANCE`], and the source is off the
///   detector plane;
/// - every view's exposure record appears, in order, among the exposure log's view entries (same angle,
///   same record); a view that ended as planned delivered the technique's mAs within [`MAS_TOLERANCE`];
/// - doses are finite and non-negative.
pub fn validate_meta(meta: &AcquisitionMeta, file: &Path) -> Result<(), BundleError> {
    let det = &meta.detector;
    det.validate().map_err(|e| invalid(file, format!("acquisition.{}", e.field), e.problem))?;
    if det.cols > 65536 || det.rows > 65536 {
        return Err(invalid(
            file,
            "acquisition.detector.cols/rows",
            format!("{}x{} exceeds 65536 a side", det.cols, det.rows),
        ));
    }
    meta.geometry.validate().map_err(|e| invalid(file, format!("acquisition.geometry.{}", e.field), e.problem))?;
    if meta.geometry.source_to_detector_mm > MAX_COORDINATE_MM {
        return Err(invalid(
            file,
            "acquisition.geometry.source_to_detector_mm",
            format!("{} mm is beyond {MAX_COORDINATE_MM} mm", meta.geometry.source_to_detector_mm),
        ));
    }
    if let Some(h) = meta.support_height_mm {
        let sdd = meta.geometry.source_to_detector_mm;
        if !(h.is_finite() && (0.0..sdd).contains(&h)) {
            return Err(invalid(
                file,
                "acquisition.support_height_mm",
                format!("{h} mm must lie between the detector (0) and the focal spot ({sdd} mm)"),
            ));
        }
    }
    if let Some(t) = &meta.technique {
        t.validate().map_err(|e| invalid(file, "acquisition.technique.filter.thickness_mm", e.to_string()))?;
    }
    let dose = &meta.dose;
    for (name, v) in [("budget_mgd", dose.budget_mgd), ("delivered_mgd", dose.delivered_mgd)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(file, format!("acquisition.dose.{name}"), format!("{v} must be finite and >= 0")));
        }
    }
    for (i, e) in meta.exposures.iter().enumerate() {
        check_angle(file, format!("acquisition.exposures[{i}].nominal_angle_deg"), e.nominal_angle_deg)?;
        if !(e.estimated_mgd.is_finite() && e.estimated_mgd >= 0.0) {
            return Err(invalid(file, format!("acquisition.exposures[{i}].estimated_mgd"), "must be finite and >= 0"));
        }
    }
    let mut log = meta.exposures.iter().filter(|e| e.purpose == crate::acquisition::ExposurePurpose::View);
    for (k, view) in meta.views.iter().enumerate() {
        check_angle(file, format!("acquisition.views[{k}].nominal_angle_deg"), view.nominal_angle_deg)?;
        check_angle(file, format!("acquisition.views[{k}].angle_start_deg"), view.angle_start_deg)?;
        check_angle(file, format!("acquisition.views[{k}].angle_end_deg"), view.angle_end_deg)?;
        check_pose(file, k, &view.pose, det)?;
        if !log.any(|e| e.record == view.exposure && e.nominal_angle_deg == view.nominal_angle_deg) {
            return Err(invalid(
                file,
                format!("acquisition.views[{k}].exposure"),
                "does not match the exposure log (acquisition.exposures): no view exposure at this angle with this \
                 record, in order",
            ));
        }
        if let (Some(t), crate::technique::ExposureEnd::Planned) = (&meta.technique, view.exposure.end) {
            let (got, want) = (view.exposure.mas.get(), t.mas_per_view.get());
            if (got - want).abs() > MAS_TOLERANCE * want {
                return Err(invalid(
                    file,
                    format!("acquisition.views[{k}].exposure.mas"),
                    format!("{got} mAs ended as planned but the technique's mas_per_view is {want} mAs"),
                ));
            }
        }
        if !(view.estimated_mgd.get().is_finite()) {
            return Err(invalid(file, format!("acquisition.views[{k}].estimated_mgd"), "must be finite"));
        }
    }
    Ok(())
}

/// Checks the pixel values against the calibration convention: raw frames finite (a detector's defective
/// pixels are finite values; NaN or infinity means a broken file or pipeline), dark finite, flood finite and
/// positive in at least half its pixels (non-positive flood pixels are treated as defective downstream).
pub(crate) fn validate_pixels(dir: &Path, acq: &Acquisition) -> Result<(), BundleError> {
    for (k, frame) in acq.frames.iter().enumerate() {
        let bad = frame.data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(invalid(
                &dir.join("frames.npy"),
                format!("frames[{k}]"),
                format!("view {k} has {bad} non-finite (NaN or infinite) pixels"),
            ));
        }
    }
    if let Some(dark) = &acq.dark {
        let bad = dark.data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(invalid(&dir.join("dark.npy"), "dark", format!("{bad} non-finite (NaN or infinite) pixels")));
        }
    }
    if let Some(flood) = &acq.flood {
        let path = dir.join("flood.npy");
        let bad = flood.data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(invalid(&path, "flood", format!("{bad} non-finite (NaN or infinite) pixels")));
        }
        let positive = flood.data.iter().filter(|v| **v > 0.0).count();
        if positive * 2 < flood.data.len() {
            return Err(invalid(
                &path,
                "flood",
                format!(
                    "only {positive} of {} pixels are positive; a flood must be positive where used",
                    flood.data.len()
                ),
            ));
        }
    }
    Ok(())
}
