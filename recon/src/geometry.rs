//! Geometry: the voxel grid, the projection stack with its per-view poses, and the projective map between them.
//!
//! The volume is a regular grid of voxels aligned with the world axes (x along tube travel, y chest wall to
//! nipple, z up); slices are planes of constant z. Everything about the scanner comes from the per-view
//! [`ViewPose`]s: nothing here assumes an arc, a preset or a stationary detector.

use tomolab_hal::{DetectorGeometry, Vec3, ViewPose, VoxelGrid};

use crate::error::{Result, invalid};

/// Largest reconstruction grid accepted by default, voxels: 2^30 (4 GiB as f32; algorithms hold a few
/// arrays of this size). Override with the environment variable [`MAX_VOXELS_ENV`].
pub const DEFAULT_MAX_VOXELS: usize = 1 << 30;
/// Environment variable overriding [`DEFAULT_MAX_VOXELS`] (a decimal voxel count).
pub const MAX_VOXELS_ENV: &str = "TOMOLAB_RECON_MAX_VOXELS";

/// The grid-size limit in force: [`MAX_VOXELS_ENV`] if set to a number, else [`DEFAULT_MAX_VOXELS`].
pub fn max_voxels() -> usize {
    std::env::var(MAX_VOXELS_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_VOXELS)
}

/// Number of voxels along one axis for `extent_mm / voxel_mm`, refusing counts that are not finite or
/// would exceed the grid limit, before anything is cast or allocated.
fn axis_count(field: &str, extent_mm: f64, voxel_mm: f64) -> Result<usize> {
    let n = (extent_mm / voxel_mm).round().max(1.0);
    if !n.is_finite() || n > max_voxels() as f64 {
        return Err(invalid(
            field,
            format!(
                "{extent_mm} mm at {voxel_mm} mm voxels is {n} voxels, above the grid limit of {} \
                 (check the detector pitch and voxel size, or raise {MAX_VOXELS_ENV})",
                max_voxels()
            ),
        ));
    }
    Ok(n as usize)
}

/// Checks that a reconstruction grid is usable: at least one voxel per axis, positive finite voxel sizes, a
/// finite origin and no more voxels than [`max_voxels`].
pub fn validate_grid(grid: &VoxelGrid) -> Result<()> {
    if grid.nx == 0 || grid.ny == 0 || grid.nz == 0 {
        return Err(invalid(
            "volume.nx/ny/nz",
            format!("must all be at least 1, got {}x{}x{}", grid.nx, grid.ny, grid.nz),
        ));
    }
    for (i, v) in grid.voxel_mm.iter().enumerate() {
        if !(v.is_finite() && *v > 0.0) {
            return Err(invalid(format!("volume.voxel_mm[{i}]"), format!("must be positive and finite, got {v}")));
        }
    }
    if grid.min_corner_mm.iter().any(|o| !o.is_finite()) {
        return Err(invalid("volume.min_corner_mm", "must be finite"));
    }
    let limit = max_voxels();
    let total = grid.nx.checked_mul(grid.ny).and_then(|n| n.checked_mul(grid.nz));
    if total.is_none_or(|t| t > limit) {
        return Err(invalid(
            "volume.nx/ny/nz",
            format!(
                "{}x{}x{} voxels exceeds the grid limit of {limit} (raise it with {MAX_VOXELS_ENV})",
                grid.nx, grid.ny, grid.nz
            ),
        ));
    }
    Ok(())
}

/// A volume: its grid and its values (attenuation, 1/mm, unless stated otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// The grid.
    pub geometry: VoxelGrid,
    /// Values, in the grid's order (slice by slice, rows along y).
    pub data: Vec<f32>,
}

impl Volume {
    /// A volume of zeros.
    pub fn zeros(geometry: VoxelGrid) -> Self {
        Self { geometry, data: vec![0.0; geometry.len()] }
    }

    /// Slice `iz` as a row-major `ny` x `nx` image.
    pub fn slice(&self, iz: usize) -> &[f32] {
        let n = self.geometry.slice_len();
        &self.data[iz * n..(iz + 1) * n]
    }

    /// Value at voxel `(ix, iy, iz)`.
    pub fn at(&self, ix: usize, iy: usize, iz: usize) -> f32 {
        let g = &self.geometry;
        self.data[(iz * g.ny + iy) * g.nx + ix]
    }
}

/// A stack of projection images (line integrals, unless stated otherwise) with their per-view poses.
#[derive(Debug, Clone, PartialEq)]
pub struct Projections {
    /// The pixel grid of every view.
    pub detector: DetectorGeometry,
    /// One pose per view.
    pub poses: Vec<ViewPose>,
    /// Values, view after view, each row-major `rows` x `cols`.
    pub data: Vec<f32>,
}

impl Projections {
    /// Number of views.
    pub fn views(&self) -> usize {
        self.poses.len()
    }

    /// Pixels per view.
    pub fn pixels(&self) -> usize {
        self.detector.pixel_count()
    }

    /// View `k`'s image.
    pub fn view(&self, k: usize) -> &[f32] {
        let n = self.pixels();
        &self.data[k * n..(k + 1) * n]
    }

    /// Checks sizes and poses.
    pub fn validate(&self) -> Result<()> {
        self.detector.validate().map_err(|e| invalid(e.field, e.problem))?;
        if self.poses.is_empty() {
            return Err(invalid("views", "at least one view is required"));
        }
        if self.data.len() != self.views() * self.pixels() {
            return Err(invalid(
                "projections.data",
                format!("{} values, expected {} views x {} pixels", self.data.len(), self.views(), self.pixels()),
            ));
        }
        for (k, pose) in self.poses.iter().enumerate() {
            validate_pose(pose).map_err(|p| invalid(format!("views[{k}].pose"), p))?;
        }
        Ok(())
    }

    /// Keeps only the pixel rectangle `cols` x `rows` starting at (`col0`, `row0`), adjusting each pose's
    /// detector centre so that every kept pixel stays where it was.
    pub fn crop(&self, col0: usize, row0: usize, cols: usize, rows: usize) -> Result<Self> {
        let det = &self.detector;
        if cols == 0 || rows == 0 || col0 + cols > det.cols || row0 + rows > det.rows {
            return Err(invalid(
                "crop",
                format!("{cols}x{rows} at ({col0}, {row0}) does not fit the {}x{} detector", det.cols, det.rows),
            ));
        }
        let new_det = DetectorGeometry { cols, rows, ..*det };
        let poses = self
            .poses
            .iter()
            .map(|p| ViewPose {
                detector_centre_mm: p.pixel_position(
                    det,
                    col0 as f64 + (cols as f64 - 1.0) / 2.0,
                    row0 as f64 + (rows as f64 - 1.0) / 2.0,
                ),
                ..*p
            })
            .collect();
        let mut data = Vec::with_capacity(self.views() * cols * rows);
        for k in 0..self.views() {
            let view = self.view(k);
            for r in row0..row0 + rows {
                data.extend_from_slice(&view[r * det.cols + col0..r * det.cols + col0 + cols]);
            }
        }
        Ok(Self { detector: new_det, poses, data })
    }
}

/// Checks that a pose is finite and non-degenerate; returns the problem otherwise.
pub(crate) fn validate_pose(pose: &ViewPose) -> std::result::Result<(), String> {
    let all = [pose.source_mm, pose.detector_centre_mm, pose.u_step_mm, pose.v_step_mm];
    if all.iter().any(|v| v.iter().any(|c| !c.is_finite())) {
        return Err("non-finite coordinate".into());
    }
    let n = pose.u_step_mm.cross(&pose.v_step_mm);
    if n.norm() < 1e-12 {
        return Err("u_step_mm and v_step_mm are parallel or zero".into());
    }
    let dist = n.normalize().dot(&(pose.source_mm - pose.detector_centre_mm)).abs();
    if dist < 1e-6 {
        return Err("the source lies in the detector plane".into());
    }
    Ok(())
}

/// The projective map of one view: `(col * w, row * w, w) = M (x, y, z, 1)`.
///
/// `w` is proportional to the distance of the point from the source along the detector normal (positive for
/// points between the source and the detector side), so ratios of `w` give magnification ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewMatrix {
    /// Rows of the 3x4 matrix.
    pub m: [[f64; 4]; 3],
}

impl ViewMatrix {
    /// The map for `pose` on `detector`.
    pub fn new(pose: &ViewPose, detector: &DetectorGeometry) -> Self {
        let s = pose.source_mm;
        let c = pose.detector_centre_mm;
        let (u, v) = (pose.u_step_mm, pose.v_step_mm);
        let n = u.cross(&v);
        // Dual basis of (u, v) inside the detector plane.
        let (uu, uv, vv) = (u.dot(&u), u.dot(&v), v.dot(&v));
        let det = uu * vv - uv * uv;
        let ud = (u * vv - v * uv) / det;
        let vd = (v * uu - u * uv) / det;
        let d = (c - s).dot(&n); // signed source-to-plane distance times |n|
        let c0 = (detector.cols as f64 - 1.0) / 2.0;
        let r0 = (detector.rows as f64 - 1.0) / 2.0;
        // w = n.(X - S); a * w = ud.(S - C) w + d ud.(X - S); col = a + c0.
        let row_for = |dual: &Vec3, centre_index: f64| -> [f64; 4] {
            let k = dual.dot(&(s - c)) + centre_index;
            let lin = n * k + dual * d;
            [lin.x, lin.y, lin.z, -k * n.dot(&s) - d * dual.dot(&s)]
        };
        let m0 = row_for(&ud, c0);
        let m1 = row_for(&vd, r0);
        let m2 = [n.x, n.y, n.z, -n.dot(&s)];
        // Orient so that w > 0 on the detector side of the source.
        let sign = if d >= 0.0 { 1.0 } else { -1.0 };
        let scale = |r: [f64; 4]| r.map(|x| x * sign);
        Self { m: [scale(m0), scale(m1), scale(m2)] }
    }

    /// Fractional (col, row) of a point and its `w`.
    pub fn project(&self, p: &Vec3) -> (f64, f64, f64) {
        let e = |r: &[f64; 4]| r[0] * p.x + r[1] * p.y + r[2] * p.z + r[3];
        let w = e(&self.m[2]);
        (e(&self.m[0]) / w, e(&self.m[1]) / w, w)
    }
}

/// How to choose the reconstruction grid for a tomosynthesis scan.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VolumeOptions {
    /// In-plane voxel size, mm. Default: the detector pitch scaled to the mid-breast plane of the most nearly
    /// perpendicular view.
    pub voxel_xy_mm: Option<f64>,
    /// Slice spacing, mm (default 1).
    pub slice_mm: f64,
    /// Thickness of the reconstructed slab, mm. Default: the compressed thickness from the acquisition.
    pub thickness_mm: Option<f64>,
    /// Height of the breast support above the detector surface, mm (default 0: the breast lies on the cover).
    pub support_height_mm: f64,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        Self { voxel_xy_mm: None, slice_mm: 1.0, thickness_mm: None, support_height_mm: 0.0 }
    }
}

/// Index of the view whose source lies closest to the detector normal through the detector centre.
pub fn central_view(poses: &[ViewPose]) -> Option<usize> {
    let off_axis = |p: &ViewPose| {
        let n = p.detector_normal();
        let d = p.source_mm - p.detector_centre_mm;
        (d - n * d.dot(&n)).norm() / d.dot(&n).abs().max(1e-9)
    };
    (0..poses.len()).min_by(|&a, &b| off_axis(&poses[a]).total_cmp(&off_axis(&poses[b])))
}

/// The default tomosynthesis grid for these projections: the detector footprint of the central view over
/// the slab `support_height_mm .. support_height_mm + thickness`, in slices of `slice_mm`.
///
/// `compressed_thickness_mm` is the acquisition's compressed thickness, used when `options.thickness_mm`
/// is unset; without either, the call fails naming both.
pub fn tomosynthesis_grid(
    detector: &DetectorGeometry,
    poses: &[ViewPose],
    compressed_thickness_mm: Option<f64>,
    options: &VolumeOptions,
) -> Result<VoxelGrid> {
    let k = central_view(poses).ok_or_else(|| invalid("views", "at least one view is required"))?;
    let pose = &poses[k];
    validate_pose(pose).map_err(|p| invalid(format!("views[{k}].pose"), p))?;
    let thickness = options.thickness_mm.or(compressed_thickness_mm).ok_or_else(|| {
        invalid("options.thickness_mm", "not given and the acquisition has no compression record (meta.compression)")
    })?;
    if !(thickness.is_finite() && thickness > 0.0) {
        return Err(invalid("thickness_mm", format!("must be positive and finite, got {thickness}")));
    }
    if !(options.slice_mm.is_finite() && options.slice_mm > 0.0) {
        return Err(invalid("options.slice_mm", format!("must be positive and finite, got {}", options.slice_mm)));
    }
    if !options.support_height_mm.is_finite() {
        return Err(invalid("options.support_height_mm", "must be finite"));
    }
    let nz = axis_count("options.slice_mm", thickness, options.slice_mm)?;
    let z0 = options.support_height_mm + options.slice_mm / 2.0;
    let z_mid = options.support_height_mm + thickness / 2.0;
    let n = pose.detector_normal();
    let h_source = n.dot(&(pose.source_mm - pose.detector_centre_mm));
    let h_mid = z_mid - pose.detector_centre_mm.z;
    if h_mid >= h_source {
        return Err(invalid("thickness_mm", "the slab reaches the focal spot"));
    }
    let magnification = h_source / (h_source - h_mid);
    let pitch = detector.pitch_u_mm.min(detector.pitch_v_mm);
    let voxel = options.voxel_xy_mm.unwrap_or(pitch / magnification);
    if !(voxel.is_finite() && voxel > 0.0) {
        return Err(invalid("options.voxel_xy_mm", format!("must be positive and finite, got {voxel}")));
    }
    // Footprint: the bounding box of the central view's detector corners in x and y.
    let (c_max, r_max) = (detector.cols as f64 - 0.5, detector.rows as f64 - 0.5);
    let corners =
        [(-0.5, -0.5), (c_max, -0.5), (-0.5, r_max), (c_max, r_max)].map(|(c, r)| pose.pixel_position(detector, c, r));
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &corners {
        xmin = xmin.min(p.x);
        xmax = xmax.max(p.x);
        ymin = ymin.min(p.y);
        ymax = ymax.max(p.y);
    }
    let voxel_field =
        if options.voxel_xy_mm.is_some() { "options.voxel_xy_mm" } else { "detector.pitch_u_mm/pitch_v_mm" };
    let nx = axis_count(voxel_field, xmax - xmin, voxel)?;
    let ny = axis_count(voxel_field, ymax - ymin, voxel)?;
    let total = nx.checked_mul(ny).and_then(|n| n.checked_mul(nz));
    if total.is_none_or(|t| t > max_voxels()) {
        return Err(invalid(
            voxel_field,
            format!(
                "{voxel} mm voxels over the {:.1} x {:.1} x {thickness} mm slab give {nx}x{ny}x{nz} voxels, \
                     above the grid limit of {} (raise it with {MAX_VOXELS_ENV})",
                xmax - xmin,
                ymax - ymin,
                max_voxels()
            ),
        ));
    }
    let cx = (xmin + xmax) / 2.0;
    let cy = (ymin + ymax) / 2.0;
    let geometry = VoxelGrid::from_first_centre(
        [nx, ny, nz],
        [voxel, voxel, options.slice_mm],
        [cx - (nx as f64 - 1.0) / 2.0 * voxel, cy - (ny as f64 - 1.0) / 2.0 * voxel, z0],
    );
    validate_grid(&geometry)?;
    Ok(geometry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tomolab_hal::{ArcGeometry, DetectorMaterial, DetectorMotion};

    #[test]
    fn view_matrix_matches_pose_project() {
        let detector = DetectorGeometry {
            cols: 64,
            rows: 48,
            pitch_u_mm: 0.5,
            pitch_v_mm: 0.4,
            material: DetectorMaterial::ASe,
            layer_thickness_mm: 0.2,
        };
        for motion in [DetectorMotion::Stationary, DetectorMotion::RotatesWithTube] {
            let arc = ArcGeometry {
                source_to_detector_mm: 650.0,
                rotation_axis_height_mm: 50.0,
                detector,
                detector_motion: motion,
            };
            for angle in [-25.0, 0.0, 13.0, 120.0] {
                let pose = arc.pose_at(angle);
                let m = ViewMatrix::new(&pose, &detector);
                let p = Vec3::new(3.0, 7.0, 20.0);
                let (c, r) = pose.project(&detector, &p).unwrap();
                let (c2, r2, w) = m.project(&p);
                assert!((c - c2).abs() < 1e-9 && (r - r2).abs() < 1e-9, "{c} {c2} {r} {r2}");
                assert!(w > 0.0);
            }
        }
    }
}
