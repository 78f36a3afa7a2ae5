//! # tomolab-dicom: DICOM out of (and into) tomolab, and the DICOM network verbs
//!
//! DICOM is an I/O layer here, not an algorithm. [`export`] turns what `tomolab exam --out DIR` leaves on disk
//! (the acquisition bundle, `recon/volume.nrrd`, `dose.json`, `ground_truth.json`, `summary.json`, read with
//! the workspace's own readers) into DICOM objects that a validator, a PACS and a viewer accept:
//!
//! - the reconstruction as one **Breast Tomosynthesis Image** ([`bto`]; enhanced multi-frame, one frame per
//!   slice, functional groups for the geometry);
//! - every projection as a **Digital Mammography X-Ray Image For Processing** ([`projection`]);
//! - the synthetic 2D image (or the 2D preset's processed view) as **Digital Mammography X-Ray Image For
//!   Presentation** ([`presentation`]).
//!
//! All objects of one exam share one Study and one Frame of Reference; tomolab's detector frame maps to DICOM
//! patient coordinates by one fixed transform, [`frame::PatientFrame`], applied in one place. UIDs are
//! derived from the exam's seed under the `2.25` root ([`uid`]), so the same exam gives the same UIDs.
//!
//! [`net`] is the network side over dicom-ul: C-ECHO and C-STORE as a service class user (`tomolab dicom
//! send`). Every byte is encoded and decoded by the dicom-rs crates (dicom-object, dicom-encoding, dicom-ul);
//! nothing here writes DICOM by hand.

#![deny(missing_docs)]

pub mod bto;
mod elements;
pub mod error;
pub mod export;
pub mod frame;
pub mod inputs;
pub mod net;
pub mod presentation;
pub mod projection;
mod study;
pub mod uid;

pub use error::DicomError;
pub use export::{ExportOptions, ExportReport, export_exam};
pub use frame::{Laterality, PatientFrame};
pub use inputs::ExamInputs;
pub use uid::UidFactory;

/// The Implementation Class UID of tomolab's DICOM files (a fixed `2.25` UUID UID, PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.15891284983578588507298972306252283522";
/// The Implementation Version Name of tomolab's DICOM files.
pub const IMPLEMENTATION_VERSION_NAME: &str = "TOMOLAB_010";
