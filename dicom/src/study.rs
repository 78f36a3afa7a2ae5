//! What every object of one exam shares: patient, study, series, frame of reference, equipment, SOP common.

use dicom_core::VR;
use dicom_dictionary_std::tags;

use crate::elements::{Ds, Put, code};
use crate::export::ExportOptions;
use crate::frame::PatientFrame;
use crate::inputs::ExamInputs;
use crate::uid::{UidFactory, UidRole};

/// Series numbers of the export (also the series part of instance UIDs).
pub(crate) mod series {
    /// The projections, For Processing.
    pub const PROJECTIONS: u32 = 1;
    /// The tomosynthesis volume.
    pub const VOLUME: u32 = 2;
    /// The 2D image For Presentation.
    pub const PRESENTATION: u32 = 3;
}

/// The shared context of one export.
#[derive(Debug)]
pub(crate) struct Study<'a> {
    pub inputs: &'a ExamInputs,
    pub options: &'a ExportOptions,
    pub uids: UidFactory,
    pub frame: PatientFrame,
    /// Study date YYYYMMDD (UTC) and time HHMMSS.ffffff of the exam's start.
    pub date: String,
    pub time: String,
}

/// Civil date (y, m, d) of a count of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm,
/// "chrono-Compatible Low-Level Date Algorithms", days_from_civil inverse).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Patient's Age (AS, `NNNY`) at `date` of someone born on `birth` (both YYYYMMDD); `000Y` if unparsable.
pub(crate) fn age(birth: &str, date: &str) -> String {
    let parse = |s: &str| -> Option<(i64, i64)> { Some((s.get(0..4)?.parse().ok()?, s.get(4..8)?.parse().ok()?)) };
    let years = match (parse(birth), parse(date)) {
        (Some((by, bmd)), Some((y, md))) => (y - by - i64::from(md < bmd)).clamp(0, 999),
        _ => 0,
    };
    format!("{years:03}Y")
}

/// DICOM DA and TM (UTC) of a Unix time in milliseconds.
pub(crate) fn date_time(unix_ms: u64) -> (String, String) {
    let secs = (unix_ms / 1000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let micros = (unix_ms % 1000) * 1000;
    (format!("{y:04}{m:02}{d:02}"), format!("{:02}{:02}{:02}.{micros:06}", s / 3600, (s / 60) % 60, s % 60))
}

impl<'a> Study<'a> {
    pub fn new(inputs: &'a ExamInputs, options: &'a ExportOptions) -> Self {
        let (date, time) = date_time(inputs.acquisition.meta.started_unix_ms);
        Self {
            inputs,
            options,
            uids: UidFactory::new(inputs.seed, &inputs.fingerprint()),
            frame: PatientFrame::cranio_caudal(options.laterality),
            date,
            time,
        }
    }

    /// Date-time (DT) of the exam start plus `offset_s` seconds (UTC, with offset +0000).
    pub fn datetime_at(&self, offset_s: f64) -> String {
        let ms = self.inputs.acquisition.meta.started_unix_ms + (offset_s.max(0.0) * 1000.0) as u64;
        let (d, t) = date_time(ms);
        format!("{d}{t}+0000")
    }

    /// Patient, General Study, General/Enhanced Series, Frame of Reference, (Enhanced) General Equipment and
    /// SOP Common attributes of instance `instance` (1-based) of `series`.
    pub fn common(&self, ds: &mut Ds, sop_class: &str, series: u32, instance: u32, description: &str) {
        let o = self.options;
        ds.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100")
            .s(tags::SOP_CLASS_UID, VR::UI, sop_class)
            .s(tags::SOP_INSTANCE_UID, VR::UI, &self.uids.uid(UidRole::Instance(series, instance)))
            .s(tags::INSTANCE_CREATION_DATE, VR::DA, &self.date)
            .s(tags::INSTANCE_CREATION_TIME, VR::TM, &self.time)
            // Patient
            .s(tags::PATIENT_NAME, VR::PN, &o.patient_name)
            .s(tags::PATIENT_ID, VR::LO, &o.patient_id)
            .s(tags::PATIENT_BIRTH_DATE, VR::DA, &o.patient_birth_date)
            .s(tags::PATIENT_AGE, VR::AS, &age(&o.patient_birth_date, &self.date))
            .s(tags::PATIENT_SEX, VR::CS, "F")
            // General Study
            .s(tags::STUDY_INSTANCE_UID, VR::UI, &self.uids.uid(UidRole::Study))
            .s(tags::STUDY_DATE, VR::DA, &self.date)
            .s(tags::STUDY_TIME, VR::TM, &self.time)
            .empty(tags::REFERRING_PHYSICIAN_NAME, VR::PN)
            .s(tags::STUDY_ID, VR::SH, &o.study_id)
            .s(tags::ACCESSION_NUMBER, VR::SH, &o.accession_number)
            .s(tags::STUDY_DESCRIPTION, VR::LO, "tomolab simulated exam")
            // General Series
            .s(tags::MODALITY, VR::CS, "MG")
            .s(tags::SERIES_INSTANCE_UID, VR::UI, &self.uids.uid(UidRole::Series(series)))
            .is(tags::SERIES_NUMBER, i64::from(series))
            .s(tags::SERIES_DESCRIPTION, VR::LO, description)
            .s(tags::SERIES_DATE, VR::DA, &self.date)
            .s(tags::SERIES_TIME, VR::TM, &self.time)
            .is(tags::INSTANCE_NUMBER, i64::from(instance))
            .s(tags::CONTENT_DATE, VR::DA, &self.date)
            .s(tags::CONTENT_TIME, VR::TM, &self.time)
            .s(tags::ACQUISITION_DATE_TIME, VR::DT, &self.datetime_at(0.0))
            .s(tags::BODY_PART_EXAMINED, VR::CS, "BREAST")
            .seq(tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new())
            // Frame of Reference
            .s(tags::FRAME_OF_REFERENCE_UID, VR::UI, &self.uids.uid(UidRole::FrameOfReference))
            .empty(tags::POSITION_REFERENCE_INDICATOR, VR::LO)
            // (Enhanced) General Equipment
            .s(tags::MANUFACTURER, VR::LO, "tomolab")
            .s(tags::MANUFACTURER_MODEL_NAME, VR::LO, &format!("tomolab {}", self.inputs.acquisition.meta.preset))
            .s(tags::DEVICE_SERIAL_NUMBER, VR::LO, "SIMULATED")
            .s(tags::SOFTWARE_VERSIONS, VR::LO, env!("CARGO_PKG_VERSION"))
            .s(tags::INSTITUTION_NAME, VR::LO, "tomolab")
            .s(tags::INSTITUTION_ADDRESS, VR::ST, "simulated unit")
            .s(tags::STATION_NAME, VR::SH, "TOMOLAB")
            .s(tags::OPERATORS_NAME, VR::PN, "OPERATOR^TOMOLAB")
            .s(tags::ACQUISITION_DATE, VR::DA, &self.date)
            .s(tags::ACQUISITION_TIME, VR::TM, &self.time)
            .s(tags::DATE_OF_LAST_DETECTOR_CALIBRATION, VR::DA, &self.date)
            .s(tags::TIME_OF_LAST_DETECTOR_CALIBRATION, VR::TM, &self.time);
        // Referenced Performed Procedure Step: none (type 1C in Enhanced Mammography Series, omitted).
    }

    /// The breast as an anatomic region code (SNOMED CT 76752008, PS3.16 CID 4013).
    pub fn breast_code(&self) -> Ds {
        code("76752008", "SCT", "Breast")
    }

    /// The cranio-caudal view code (SNOMED CT 399162004, PS3.16 CID 4014) with an empty modifier sequence.
    pub fn view_code(&self) -> Ds {
        let mut c = code("399162004", "SCT", "cranio-caudal");
        c.seq(tags::VIEW_MODIFIER_CODE_SEQUENCE, Vec::new());
        c
    }

    /// The attributes a Digital Mammography X-Ray Image (For Processing or For Presentation) shares: no lossy
    /// compression or burned-in text, the breast and the cranio-caudal view, no implant, no partial view, not
    /// a QC image, the padding value, and how the pixels were processed.
    pub fn mammography_image(&self, ds: &mut Ds, processing: &str) {
        ds.s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
            .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
            .s(tags::IMAGE_LATERALITY, VR::CS, self.frame.laterality.code())
            .seq(tags::ANATOMIC_REGION_SEQUENCE, vec![self.breast_code()])
            .seq(tags::VIEW_CODE_SEQUENCE, vec![self.view_code()])
            .s(tags::POSITIONER_TYPE, VR::CS, "MAMMOGRAPHIC")
            .s(tags::BREAST_IMPLANT_PRESENT, VR::CS, "NO")
            .s(tags::PARTIAL_VIEW, VR::CS, "NO")
            .s(tags::ACQUISITION_DEVICE_PROCESSING_DESCRIPTION, VR::LO, processing)
            .s(tags::QUALITY_CONTROL_IMAGE, VR::CS, "NO")
            .us(tags::PIXEL_PADDING_VALUE, 65535);
    }
}

#[cfg(test)]
mod tests {
    use super::date_time;

    #[test]
    fn unix_times_convert_to_dicom_dates() {
        // 2000-03-01T00:00:00Z = 951868800 s; 2026-12-02T04:02:45.123Z = 1796184165123 ms.
        assert_eq!(date_time(951_868_800_000), ("20000301".into(), "000000.000000".into()));
        assert_eq!(date_time(1_796_184_165_123), ("20261202".into(), "040245.123000".into()));
        assert_eq!(date_time(0), ("19700101".into(), "000000.000000".into()));
        assert_eq!(super::age("19700101", "20261202"), "056Y");
        assert_eq!(super::age("19701203", "20261202"), "055Y");
    }
}
