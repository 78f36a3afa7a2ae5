//! The breast surface: a half ellipse with a half-circle periphery, the skin shell and the nipple.

use super::BreastParams;

/// The breast surface (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outline {
    /// Half the chest-wall width at mid-thickness (mm).
    pub a_mm: f64,
    /// Chest wall to nipple base at mid-thickness (mm).
    pub b_mm: f64,
    /// Edge radius = thickness / 2 (mm).
    pub r_mm: f64,
    /// Height of mid-thickness above the detector (mm).
    pub zc_mm: f64,
    /// Skin thickness (mm).
    pub skin_mm: f64,
    /// Nipple semi-axes (x, y, z) in mm, centred at the nipple base; `None` for no nipple.
    pub nipple_mm: Option<[f64; 3]>,
}

impl Outline {
    /// The outline of `p`.
    pub fn of(p: &BreastParams) -> Outline {
        let r = 0.5 * p.thickness_mm;
        let nipple = p.nipple.then(|| {
            let rad = (0.1 * r).clamp(3.0, 5.0);
            [rad, 5.0, rad.min(r - p.skin_mm - 1.0).max(1.0)]
        });
        Outline {
            a_mm: 0.5 * p.chest_wall_width_mm,
            b_mm: p.nipple_distance_mm,
            r_mm: r,
            zc_mm: p.support_height_mm + r,
            skin_mm: p.skin_mm,
            nipple_mm: nipple,
        }
    }

    /// Half-width along x of the surface shrunk by `inset_mm`, at (y, z); `None` where it has none.
    pub fn half_width(&self, y: f64, z: f64, inset_mm: f64) -> Option<f64> {
        let dz = z - self.zc_mm;
        let rr = self.r_mm - inset_mm;
        let h2 = rr * rr - dz * dz;
        if h2 < 0.0 || y < 0.0 {
            return None;
        }
        let e = h2.sqrt();
        let aa = self.a_mm - self.r_mm + e;
        let bb = self.b_mm - self.r_mm + e;
        if y > bb {
            return None;
        }
        let t = y / bb;
        Some(aa * (1.0 - t * t).sqrt())
    }

    /// Whether `p` lies inside the breast surface (skin included).
    pub fn inside_outer(&self, p: [f64; 3]) -> bool {
        self.half_width(p[1], p[2], 0.0).is_some_and(|h| p[0].abs() <= h)
    }

    /// Whether `p` lies inside the skin (breast tissue proper).
    pub fn inside_interior(&self, p: [f64; 3]) -> bool {
        self.half_width(p[1], p[2], self.skin_mm).is_some_and(|h| p[0].abs() <= h)
    }

    /// Half-width along x of the nipple at (y, z).
    pub fn nipple_half_width(&self, y: f64, z: f64) -> Option<f64> {
        let [sx, sy, sz] = self.nipple_mm?;
        let dy = (y - self.b_mm) / sy;
        let dz = (z - self.zc_mm) / sz;
        let h = 1.0 - dy * dy - dz * dz;
        (h >= 0.0 && y >= self.b_mm - sy).then(|| sx * h.sqrt())
    }

    /// Bounding box of breast and nipple in mm.
    pub fn bbox(&self) -> ([f64; 3], [f64; 3]) {
        let front = self.b_mm + self.nipple_mm.map_or(0.0, |n| n[1]);
        ([-self.a_mm, 0.0, self.zc_mm - self.r_mm], [self.a_mm, front, self.zc_mm + self.r_mm])
    }
}
