//! The reconstruction as one Breast Tomosynthesis Image object (SOP class 1.2.840.10008.5.1.4.1.1.13.1.3,
//! PS3.3 A.55): enhanced multi-frame, one frame per slice, MONOCHROME2, Modality MG.
//!
//! # Integer scale
//!
//! The IOD fixes Rescale Slope 1 and Intercept 0 (PS3.3 C.8.21.3.x, Pixel Value Transformation in the BTO
//! functional groups), so the attenuation is stored in a fixed integer scale, [`BtoScale`]: stored value
//! `= round(mu / 1e-4 mm^-1) + 1000`, clamped to 0..=65535 (16 bits stored, unsigned). So 1000 is zero
//! attenuation, one step is 1e-4 /mm, and the range is -0.1 .. 6.45 /mm (breast tissue at mammographic energies
//! is about 0.05-0.1 /mm, a calcification about 1-3 /mm). The same mapping is machine-readable in the Real World
//! Value Mapping functional group (slope 1e-4, intercept -0.1, unit UCUM `/mm`).
//!
//! # Geometry
//!
//! Frame `k` is slice `k` of the volume (increasing height above the detector); its rows run along tomolab's y
//! and its columns along x, so (via [`crate::frame::PatientFrame`]) Image Orientation (Patient) is
//! `[-1, 0, 0, 0, -1, 0]` and the frame normal points superior, toward the source. Image Position (Patient) of
//! frame `k` is the patient position of the centre of voxel (0, 0, k). Pixel Spacing is (dy, dx), Slice
//! Thickness and Spacing Between Slices dz.
//!
//! # Memory
//!
//! The header (every attribute but Pixel Data) is built with dicom-object and written first; the Pixel Data
//! element header is encoded by dicom-encoding's Explicit VR Little Endian encoder, and the 16-bit values are
//! converted and written one slice at a time, so no second copy of the volume is ever held.

use std::io::Write;
use std::path::Path;

use dicom_core::VR;
use dicom_core::header::{DataElementHeader, Length};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::encode::Encode;
use dicom_encoding::encode::explicit_le::ExplicitVRLittleEndianEncoder;
use nalgebra::Vector3;
use tomolab_recon::Volume;

use crate::elements::{Ds, Put, code, item};
use crate::error::{DicomError, Result};
use crate::study::{Study, series};
use crate::uid::UidRole;

/// The Breast Tomosynthesis Image Storage SOP class.
pub const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.13.1.3";

/// The documented integer scale of the stored attenuation (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BtoScale;

impl BtoScale {
    /// Attenuation per stored step, 1/mm.
    pub const STEP_PER_MM: f64 = 1e-4;
    /// Stored value of zero attenuation.
    pub const OFFSET: f64 = 1000.0;

    /// The stored value of attenuation `mu_per_mm` (clamped to the 16-bit range).
    pub fn stored(mu_per_mm: f32) -> u16 {
        let v = (f64::from(mu_per_mm) / Self::STEP_PER_MM + Self::OFFSET).round();
        if v.is_nan() { Self::OFFSET as u16 } else { v.clamp(0.0, 65535.0) as u16 }
    }

    /// The attenuation (1/mm) of a stored value.
    pub fn attenuation(stored: u16) -> f64 {
        (f64::from(stored) - Self::OFFSET) * Self::STEP_PER_MM
    }
}

/// Image Type and Frame Type: an original tomosynthesis volume.
const IMAGE_TYPE: [&str; 4] = ["ORIGINAL", "PRIMARY", "TOMOSYNTHESIS", "NONE"];

/// The Common CT/MR Image Description attributes (PS3.3 C.8.16.2.1) of the X-Ray 3D image and its frames.
fn image_description(ds: &mut Ds) {
    ds.s(tags::PIXEL_PRESENTATION, VR::CS, "MONOCHROME").s(tags::VOLUMETRIC_PROPERTIES, VR::CS, "VOLUME").s(
        tags::VOLUME_BASED_CALCULATION_TECHNIQUE,
        VR::CS,
        "TOMOSYNTHESIS",
    );
}

/// The window of the volume: its 0.5th and 99.5th percentile (on a strided sample), in stored values.
fn window(volume: &Volume) -> (f64, f64) {
    let stride = (volume.data.len() / 1_000_000).max(1);
    let mut sample: Vec<u16> = volume.data.iter().step_by(stride).map(|&v| BtoScale::stored(v)).collect();
    sample.sort_unstable();
    let at = |q: f64| f64::from(sample[((sample.len() - 1) as f64 * q) as usize]);
    let (lo, hi) = (at(0.005), at(0.995));
    ((lo + hi) / 2.0, (hi - lo).max(2.0))
}

/// The shared functional groups (one item).
fn shared_groups(study: &Study, volume: &Volume, window: (f64, f64)) -> Ds {
    let g = &volume.geometry;
    let f = &study.frame;
    let row = f.direction(&Vector3::x());
    let col = f.direction(&Vector3::y());
    let mut measures = item();
    measures
        .ds(tags::PIXEL_SPACING, &[g.voxel_mm[1], g.voxel_mm[0]])
        .ds(tags::SLICE_THICKNESS, &[g.voxel_mm[2]])
        .ds(tags::SPACING_BETWEEN_SLICES, &[g.voxel_mm[2]]);
    let mut orientation = item();
    orientation.ds(tags::IMAGE_ORIENTATION_PATIENT, &[row.x, row.y, row.z, col.x, col.y, col.z]);
    let mut anatomy = item();
    anatomy.seq(tags::ANATOMIC_REGION_SEQUENCE, vec![study.breast_code()]).s(
        tags::FRAME_LATERALITY,
        VR::CS,
        f.laterality.code(),
    );
    let mut transform = item();
    transform.ds(tags::RESCALE_INTERCEPT, &[0.0]).ds(tags::RESCALE_SLOPE, &[1.0]).s(tags::RESCALE_TYPE, VR::LO, "US");
    let mut voi = item();
    voi.ds(tags::WINDOW_CENTER, &[window.0]).ds(tags::WINDOW_WIDTH, &[window.1]).s(
        tags::VOILUT_FUNCTION,
        VR::CS,
        "LINEAR",
    );
    let mut rwv = item();
    rwv.us(tags::REAL_WORLD_VALUE_FIRST_VALUE_MAPPED, 0)
        .us(tags::REAL_WORLD_VALUE_LAST_VALUE_MAPPED, 65535)
        .fd(tags::REAL_WORLD_VALUE_INTERCEPT, &[-BtoScale::OFFSET * BtoScale::STEP_PER_MM])
        .fd(tags::REAL_WORLD_VALUE_SLOPE, &[BtoScale::STEP_PER_MM])
        .s(tags::LUT_EXPLANATION, VR::LO, "linear attenuation coefficient")
        .s(tags::LUT_LABEL, VR::SH, "MU_PER_MM")
        .seq(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![code("/mm", "UCUM", "/mm")]);
    let mut shared = item();
    shared
        .seq(tags::PIXEL_MEASURES_SEQUENCE, vec![measures])
        .seq(tags::PLANE_ORIENTATION_SEQUENCE, vec![orientation])
        .seq(tags::FRAME_ANATOMY_SEQUENCE, vec![anatomy])
        .seq(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, vec![transform])
        .seq(tags::FRAME_VOILUT_SEQUENCE, vec![voi])
        .seq(tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE, vec![rwv]);
    shared
}

/// The per-frame functional groups of frame `k` (slice `k`).
fn frame_groups(study: &Study, volume: &Volume, k: usize, acquisition_s: f64) -> Ds {
    let p = study.frame.point(&volume.geometry.position(0.0, 0.0, k as f64));
    let mut content = item();
    content
        .ul(tags::DIMENSION_INDEX_VALUES, &[k as u32 + 1])
        .s(tags::FRAME_ACQUISITION_DATE_TIME, VR::DT, &study.datetime_at(0.0))
        .s(tags::FRAME_REFERENCE_DATE_TIME, VR::DT, &study.datetime_at(0.0))
        .fd(tags::FRAME_ACQUISITION_DURATION, &[acquisition_s * 1000.0]);
    let mut frame_type = item();
    frame_type.strs(tags::FRAME_TYPE, VR::CS, &IMAGE_TYPE);
    image_description(&mut frame_type);
    let mut position = item();
    position.ds(tags::IMAGE_POSITION_PATIENT, &[p.x, p.y, p.z]);
    let mut groups = item();
    groups
        .seq(tags::FRAME_CONTENT_SEQUENCE, vec![content])
        .seq(tags::PLANE_POSITION_SEQUENCE, vec![position])
        .seq(tags::X_RAY3_D_FRAME_TYPE_SEQUENCE, vec![frame_type]);
    groups
}

/// The dimension organisation: one dimension, the frame's Image Position (Patient).
fn dimensions(study: &Study, ds: &mut Ds) {
    let uid = study.uids.uid(UidRole::DimensionOrganization);
    let mut org = item();
    org.s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &uid);
    let mut index = item();
    index.s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &uid).put(dicom_core::DataElement::new(
        tags::DIMENSION_INDEX_POINTER,
        VR::AT,
        dicom_core::PrimitiveValue::Tags([tags::IMAGE_POSITION_PATIENT].into_iter().collect()),
    ));
    index.put(dicom_core::DataElement::new(
        tags::FUNCTIONAL_GROUP_POINTER,
        VR::AT,
        dicom_core::PrimitiveValue::Tags([tags::PLANE_POSITION_SEQUENCE].into_iter().collect()),
    ));
    index.s(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, "slice position");
    ds.seq(tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]).seq(tags::DIMENSION_INDEX_SEQUENCE, vec![index]).s(
        tags::DIMENSION_ORGANIZATION_TYPE,
        VR::CS,
        "3D",
    );
}

/// Builds the header (every attribute but Pixel Data) of the BTO.
pub(crate) fn header(study: &Study, volume: &Volume, acquisition: Ds, sources: Vec<Ds>) -> Ds {
    let g = &volume.geometry;
    let acq = &study.inputs.acquisition;
    let exam_s = acq.meta.views.last().map_or(0.0, |v| (v.time_since_start + v.exposure.duration).as_secs_f64());
    let mut ds = item();
    study.common(&mut ds, SOP_CLASS, series::VOLUME, 1, "tomosynthesis reconstruction");
    image_description(&mut ds);
    ds.strs(tags::IMAGE_TYPE, VR::CS, &IMAGE_TYPE)
        .grey16(g.ny, g.nx)
        .s(tags::CONTENT_QUALIFICATION, VR::CS, "RESEARCH")
        .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
        .s(tags::RECOGNIZABLE_VISUAL_FEATURES, VR::CS, "NO")
        .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
        .s(tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY")
        .is(tags::NUMBER_OF_FRAMES, g.nz as i64)
        .seq(tags::VIEW_CODE_SEQUENCE, vec![study.view_code()])
        .seq(tags::ANATOMIC_REGION_SEQUENCE, vec![study.breast_code()])
        .s(tags::POSITIONER_TYPE, VR::CS, "MAMMOGRAPHIC")
        .s(tags::BREAST_IMPLANT_PRESENT, VR::CS, "NO")
        .s(tags::PARTIAL_VIEW, VR::CS, "NO")
        .s(tags::ACQUISITION_DEVICE_PROCESSING_DESCRIPTION, VR::LO, "tomolab reconstruction")
        .seq(tags::X_RAY3_D_ACQUISITION_SEQUENCE, vec![acquisition])
        .seq(tags::CONTRIBUTING_SOURCES_SEQUENCE, sources)
        .s(tags::PRESENTATION_INTENT_TYPE, VR::CS, "FOR PRESENTATION");
    dimensions(study, &mut ds);
    let w = window(volume);
    ds.seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared_groups(study, volume, w)]);
    let frames = (0..g.nz).map(|k| frame_groups(study, volume, k, exam_s)).collect();
    ds.seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frames);
    ds
}

/// Writes `ds` (every attribute but Pixel Data) as a Part 10 file to `out`, then Pixel Data from `frames`
/// (16-bit values, streamed one chunk at a time); `pixels` is the total count.
pub(crate) fn write_streamed<W: Write>(
    ds: Ds,
    mut out: W,
    what: &str,
    pixels: usize,
    mut frames: impl FnMut(&mut dyn FnMut(&[u16]) -> std::io::Result<()>) -> std::io::Result<()>,
) -> Result<()> {
    let file = ds
        .with_meta(
            dicom_object::meta::FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(crate::IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(crate::IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| DicomError::encode(what, e))?;
    file.write_all(&mut out).map_err(|e| DicomError::encode(what, e))?;
    let bytes = u32::try_from(pixels * 2)
        .map_err(|_| DicomError::encode(what, format!("{pixels} pixels exceed the 4 GiB Pixel Data limit")))?;
    let header = DataElementHeader::new(tags::PIXEL_DATA, VR::OW, Length(bytes));
    ExplicitVRLittleEndianEncoder::default()
        .encode_element_header(&mut out, header)
        .map_err(|e| DicomError::encode(what, e))?;
    let mut buf = Vec::new();
    let io = |e: std::io::Error| DicomError::encode(what, e);
    frames(&mut |values: &[u16]| {
        buf.clear();
        buf.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&buf)
    })
    .map_err(io)?;
    out.flush().map_err(io)
}

/// Writes the BTO of `volume` to `path`.
pub(crate) fn write(study: &Study, volume: &Volume, acquisition: Ds, sources: Vec<Ds>, path: &Path) -> Result<()> {
    let g = volume.geometry;
    if g.nx > 65535 || g.ny > 65535 {
        return Err(DicomError::encode("breast tomosynthesis image", "Rows/Columns above 65535"));
    }
    let ds = header(study, volume, acquisition, sources);
    let file = std::fs::File::create(path).map_err(|e| DicomError::io(path, "create", e))?;
    let out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut slice = vec![0u16; g.nx * g.ny];
    write_streamed(ds, out, "breast tomosynthesis image", g.len(), |sink| {
        for k in 0..g.nz {
            for (s, &v) in slice.iter_mut().zip(volume.slice(k)) {
                *s = BtoScale::stored(v);
            }
            sink(&slice)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::BtoScale;

    #[test]
    fn the_integer_scale_round_trips_within_half_a_step_and_clamps() {
        for mu in [0.0f32, 0.05, 0.08, 1.2, -0.05, 6.4] {
            let back = BtoScale::attenuation(BtoScale::stored(mu));
            assert!((back - f64::from(mu)).abs() <= 0.5e-4 + 1e-9, "{mu} -> {back}");
        }
        assert_eq!(BtoScale::stored(0.0), 1000);
        assert_eq!(BtoScale::stored(-1.0), 0);
        assert_eq!(BtoScale::stored(100.0), 65535);
        assert_eq!(BtoScale::stored(f32::NAN), 1000);
    }
}
