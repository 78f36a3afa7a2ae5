//! FDK (Feldkamp, Davis & Kress 1984) for full-circle cone-beam scans, such as the breast-CT preset.
//!
//! Per view: weight each pixel by the cosine between its ray and the detector normal, ramp-filter rows
//! along u at the pitch scaled to the isocentre (the volume centre), then backproject with the distance
//! weight `(D_so / U)^2` and the view's angular share `dbeta / 2`. The angles come from the poses (sources
//! around the isocentre, in the plane of u and the detector normal), so a non-uniform circle is integrated
//! correctly; the scan must cover a full circle (no short-scan weighting).

use rayon::prelude::*;
use tomolab_hal::Vec3;

use crate::error::{Result, invalid};
use crate::fbp::{RowFilter, Window, source_angles};
use crate::geometry::{Projections, ViewMatrix, Volume, validate_pose};
use crate::projector::{GeneralProjector, ProjectorPair, ViewWeight};
use tomolab_hal::VoxelGrid;

/// FDK settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FdkOptions {
    /// Apodization window.
    pub window: Window,
    /// Window cutoff, fraction of Nyquist.
    pub cutoff: f64,
}

impl Default for FdkOptions {
    fn default() -> Self {
        Self { window: Window::Hann, cutoff: 1.0 }
    }
}

/// The point closest (least squares) to every central ray (source to detector centre): the isocentre.
pub fn isocentre(projections: &Projections) -> Result<Vec3> {
    let mut a = nalgebra::Matrix3::<f64>::zeros();
    let mut b = Vec3::zeros();
    for p in &projections.poses {
        let d = (p.detector_centre_mm - p.source_mm).normalize();
        let proj = nalgebra::Matrix3::identity() - d * d.transpose();
        a += proj;
        b += proj * p.source_mm;
    }
    a.lu().solve(&b).ok_or_else(|| invalid("views", "central rays do not define an isocentre (all parallel?)"))
}

/// A cubic grid around the isocentre covering the detector's field of view, at the pitch scaled to the
/// isocentre (or `voxel_mm`).
pub fn default_ct_volume(projections: &Projections, voxel_mm: Option<f64>) -> Result<VoxelGrid> {
    projections.validate()?;
    let iso = isocentre(projections)?;
    let p = &projections.poses[0];
    let n = p.detector_normal();
    let sid = n.dot(&(p.source_mm - p.detector_centre_mm)).abs();
    let sod = n.dot(&(p.source_mm - iso)).abs();
    let det = &projections.detector;
    let scale = sod / sid;
    let voxel = voxel_mm.unwrap_or(det.pitch_u_mm * scale);
    if !(voxel.is_finite() && voxel > 0.0) {
        return Err(invalid("voxel_mm", format!("must be positive, got {voxel}")));
    }
    // Field of view radius in the axial plane: the half-width at the isocentre, shrunk for the cone.
    let half_width = det.width_mm() / 2.0 * scale;
    let radius = half_width * sod / (sod + half_width).max(1e-9);
    let n_axial = ((2.0 * radius / voxel).floor() as usize).max(1);
    let n_axis = ((det.height_mm() * scale / voxel).floor() as usize).max(1);
    let v_axis = p.v_step_mm.normalize();
    // The rotation axis is along v; map sizes onto world axes by its dominant component.
    let (nx, ny, nz) = if v_axis.y.abs() >= v_axis.x.abs().max(v_axis.z.abs()) {
        (n_axial, n_axis, n_axial)
    } else if v_axis.x.abs() >= v_axis.z.abs() {
        (n_axis, n_axial, n_axial)
    } else {
        (n_axial, n_axial, n_axis)
    };
    let half = |n: usize| (n as f64 - 1.0) / 2.0 * voxel;
    let g =
        VoxelGrid::from_first_centre([nx, ny, nz], [voxel; 3], [iso.x - half(nx), iso.y - half(ny), iso.z - half(nz)]);
    crate::geometry::validate_grid(&g)?;
    Ok(g)
}

/// Reconstructs a full-circle scan by FDK, backprojecting with the general voxel-driven kernel.
pub fn fdk(projections: &Projections, volume: &VoxelGrid, options: &FdkOptions) -> Result<Volume> {
    projections.validate()?;
    crate::geometry::validate_grid(volume)?;
    check_fdk(projections, volume, options)?;
    let projector = GeneralProjector::new(*volume, projections.detector, &projections.poses)?;
    fdk_with(projections, &projector, options)
}

/// The angles of the sources around the volume centre, checked to cover a full circle.
fn check_fdk(projections: &Projections, volume: &VoxelGrid, options: &FdkOptions) -> Result<Vec<f64>> {
    if !(options.cutoff.is_finite() && options.cutoff > 0.0) {
        return Err(invalid("options.cutoff", format!("must be positive, got {}", options.cutoff)));
    }
    let nviews = projections.views();
    if nviews < 8 {
        return Err(invalid("views", format!("FDK needs a full circle of views, got {nviews}")));
    }
    for (k, p) in projections.poses.iter().enumerate() {
        validate_pose(p).map_err(|e| invalid(format!("views[{k}].pose"), e))?;
    }
    let centre = volume.centre();
    let angles = source_angles(projections, &centre, 0);
    let coverage = (angles[nviews - 1] - angles[0]).abs() * nviews as f64 / (nviews as f64 - 1.0);
    if coverage < 1.9 * std::f64::consts::PI {
        return Err(invalid(
            "views",
            format!("FDK needs a full circle; the sources cover {:.0} deg", coverage.to_degrees()),
        ));
    }
    Ok(angles)
}

/// FDK backprojecting through any projector, on its volume grid.
pub fn fdk_with<P: ProjectorPair + ?Sized>(
    projections: &Projections,
    projector: &P,
    options: &FdkOptions,
) -> Result<Volume> {
    projections.validate()?;
    crate::fbp::check_projector(projections, projector)?;
    let volume = projector.volume();
    let angles = check_fdk(projections, volume, options)?;
    let nviews = projections.views();
    let centre = volume.centre();
    // Angular share of each view: half the distance to its neighbours (circularly).
    let tau_turn = 2.0 * std::f64::consts::PI;
    let sign = (angles[nviews - 1] - angles[0]).signum();
    let dbeta: Vec<f64> = (0..nviews)
        .map(|k| {
            let prev = if k == 0 { angles[nviews - 1] - sign * tau_turn } else { angles[k - 1] };
            let next = if k + 1 == nviews { angles[0] + sign * tau_turn } else { angles[k + 1] };
            ((next - prev) / 2.0).abs()
        })
        .collect();
    let total: f64 = dbeta.iter().sum();
    let det = &projections.detector;
    let p0 = &projections.poses[0];
    let n0 = p0.detector_normal();
    let sid = n0.dot(&(p0.source_mm - p0.detector_centre_mm)).abs();
    let sod = n0.dot(&(p0.source_mm - centre)).abs();
    let tau = det.pitch_u_mm * sod / sid;
    let filter = RowFilter::ramp(det.cols, tau, 1.0, options.window, options.cutoff, None, None);
    let npix = projections.pixels();
    let mut filtered = projections.data.clone();
    filtered.par_chunks_mut(npix).zip(projections.poses.par_iter()).for_each(|(image, pose)| {
        let n = pose.detector_normal();
        let dist = n.dot(&(pose.source_mm - pose.detector_centre_mm)).abs();
        for (r, row) in image.chunks_mut(det.cols).enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                let ray = pose.pixel_position(det, c as f64, r as f64) - pose.source_mm;
                *v *= (dist / ray.norm()) as f32;
            }
        }
    });
    filter.apply(&mut filtered, det.cols);
    let views: Vec<usize> = (0..nviews).collect();
    let weights: Vec<ViewWeight> = (0..nviews)
        .map(|k| {
            let m = ViewMatrix::new(&projections.poses[k], det);
            let (_, _, w_ref) = m.project(&centre);
            // Normalise the angular weights to exactly one turn.
            ViewWeight::Distance { scale: (dbeta[k] * tau_turn / total / 2.0) as f32, w_ref }
        })
        .collect();
    let mut out = Volume::zeros(*volume);
    projector.backproject_weighted(&filtered, &views, &weights, &mut out.data)?;
    Ok(out)
}
