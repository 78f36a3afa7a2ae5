//! The mass SDNR of an exam, from its ground truth: in the reconstruction's in-focus slice (DBT) and in the
//! single projection of a 2D exam (mammography).
//!
//! Regions, for a mass of core radius `r` (half the spiculated core's diameter, or the smallest semi-axis of a
//! smooth mass): the signal is the disc of radius `0.75 r` about the mass centre, the background the ring
//! `1.5 r .. 2.5 r` about it (outside the lobulated core, which reaches at most 1.2 r); SDNR =
//! (mean(signal) - mean(background)) / std(background). In DBT the regions lie in the slice nearest the true
//! depth, in mm of the volume; in 2D they lie in the line-integral image `-ln((frame - dark) / (flood mAs))`
//! about the projection of the centre, scaled by the magnification at the mass's depth. The log image is what
//! the processed mammogram windows linearly, so its SDNR is the processed image's.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use tomolab_hal::Vec3;
use tomolab_phantom::truth::{ObjectSize, TruthObject};
use tomolab_phantom::{GroundTruth, ObjectKind};
use tomolab_recon::metrics::{contrast_profile, disc_values, image_disc_values, sdnr};
use tomolab_recon::{PreprocessOptions, Volume, line_integrals};

/// Signal disc radius as a fraction of the core radius.
const SIGNAL: f64 = 0.75;
/// Background ring, as fractions of the core radius.
const RING: (f64, f64) = (1.5, 2.5);

/// One mass and its SDNR in each image given.
#[derive(Debug, Serialize)]
pub struct MassSdnr {
    /// Ground-truth object id.
    pub id: usize,
    /// Its kind (`spiculated_mass`, `mass`).
    pub kind: ObjectKind,
    /// True centre, mm.
    pub centre_mm: [f64; 3],
    /// Core radius used for the regions, mm.
    pub core_radius_mm: f64,
    /// In the reconstruction, if one was given.
    pub dbt: Option<DbtSdnr>,
    /// In the 2D image, if one was given.
    pub mammogram: Option<f64>,
}

/// A mass in the reconstruction.
#[derive(Debug, Serialize)]
pub struct DbtSdnr {
    /// SDNR in the slice nearest the true depth.
    pub sdnr: f64,
    /// That slice's index and height, mm.
    pub slice: usize,
    /// Height of that slice, mm.
    pub slice_z_mm: f64,
    /// Height of the slice where the disc-minus-ring contrast peaks (where the mass is in focus), mm.
    pub peak_contrast_z_mm: f64,
}

/// Reads an exam's `ground_truth.json`.
pub fn read_truth(exam_dir: &Path) -> anyhow::Result<GroundTruth> {
    let path = exam_dir.join("ground_truth.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The exam's delivered (booked) mean glandular dose, mGy, from `acquisition/acquisition.json`.
pub fn delivered_mgd(exam_dir: &Path) -> anyhow::Result<f64> {
    let path = exam_dir.join("acquisition").join("acquisition.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    doc["acquisition"]["dose"]["delivered_mgd"]
        .as_f64()
        .with_context(|| format!("{}: no acquisition.dose.delivered_mgd", path.display()))
}

/// The masses of a ground truth with their core radii.
pub fn masses(truth: &GroundTruth) -> Vec<(&TruthObject, f64)> {
    truth
        .objects
        .iter()
        .filter_map(|o| match &o.size {
            ObjectSize::Spiculated { diameter_mm, .. } => Some((o, 0.5 * diameter_mm)),
            ObjectSize::Ellipsoid { semi_axes_mm, .. } if o.kind == ObjectKind::Mass => {
                Some((o, semi_axes_mm.iter().copied().fold(f64::INFINITY, f64::min)))
            }
            _ => None,
        })
        .collect()
}

/// A mass in a reconstructed volume.
pub fn in_volume(volume: &Volume, centre_mm: [f64; 3], r_mm: f64) -> anyhow::Result<DbtSdnr> {
    let g = &volume.geometry;
    let iz = ((centre_mm[2] - g.first_centre_mm()[2]) / g.voxel_mm[2]).round();
    if !(0.0..g.nz as f64).contains(&iz) {
        bail!(
            "the mass at z = {:.1} mm is outside the reconstructed slab ({:.1} .. {:.1} mm)",
            centre_mm[2],
            g.slice_z_mm(0),
            g.slice_z_mm(g.nz - 1)
        );
    }
    let iz = iz as usize;
    let (x, y) = (centre_mm[0], centre_mm[1]);
    let signal = disc_values(volume, iz, x, y, 0.0, SIGNAL * r_mm);
    let background = disc_values(volume, iz, x, y, RING.0 * r_mm, RING.1 * r_mm);
    let profile = contrast_profile(volume, x, y, r_mm);
    let peak = (0..profile.len()).max_by(|&a, &b| profile[a].total_cmp(&profile[b])).unwrap_or(iz);
    Ok(DbtSdnr {
        sdnr: sdnr(&signal, &background)?,
        slice: iz,
        slice_z_mm: g.slice_z_mm(iz),
        peak_contrast_z_mm: g.slice_z_mm(peak),
    })
}

/// A mass in the first view of a (2D) acquisition bundle.
pub fn in_projection(acq: &tomolab_hal::Acquisition, centre_mm: [f64; 3], r_mm: f64) -> anyhow::Result<f64> {
    let p = line_integrals(acq, &PreprocessOptions::default()).context("preprocessing the 2D acquisition")?;
    let (Some(pose), det) = (p.poses.first(), p.detector) else { bail!("the 2D acquisition has no view") };
    let c = Vec3::new(centre_mm[0], centre_mm[1], centre_mm[2]);
    let at = pose.project(&det, &c).context("the mass does not project onto the detector")?;
    // Pixel pitch at the mass's depth: the detector pitch over the magnification.
    let magnification = (pose.pixel_position(&det, at.0, at.1) - pose.source_mm).norm() / (c - pose.source_mm).norm();
    let px_mm = pose.u_step_mm.norm() / magnification;
    let image = &p.data[..det.cols * det.rows];
    let signal = image_disc_values(image, det.cols, at, 0.0, SIGNAL * r_mm / px_mm);
    let background = image_disc_values(image, det.cols, at, RING.0 * r_mm / px_mm, RING.1 * r_mm / px_mm);
    Ok(sdnr(&signal, &background)?)
}
