//! Solid primitives that objects are built from, each with a bounding box and an inside test on
//! voxel centres, and their rasterization into one z slice.

use tomolab_hal::VoxelGrid;

/// 3-vector helpers.
pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
pub(crate) fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = norm(a);
    if n > 0.0 { scale(a, 1.0 / n) } else { [0.0, 0.0, 1.0] }
}

/// Two unit vectors completing `w` to an orthonormal basis.
pub(crate) fn basis(w: [f64; 3]) -> ([f64; 3], [f64; 3]) {
    let w = normalize(w);
    let helper = if w[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
    let u = normalize(cross(helper, w));
    (u, cross(w, u))
}

/// An axis-aligned box in mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Aabb {
    pub min: [f64; 3],
    pub max: [f64; 3],
}

impl Aabb {
    pub fn around(c: [f64; 3], r: f64) -> Self {
        Self { min: sub(c, [r; 3]), max: add(c, [r; 3]) }
    }
    pub fn union(self, o: Aabb) -> Self {
        let mut out = self;
        for a in 0..3 {
            out.min[a] = out.min[a].min(o.min[a]);
            out.max[a] = out.max[a].max(o.max[a]);
        }
        out
    }
    pub fn translate(self, d: [f64; 3]) -> Self {
        Self { min: add(self.min, d), max: add(self.max, d) }
    }
    pub fn corners(&self) -> [[f64; 3]; 8] {
        let (a, b) = (self.min, self.max);
        [
            [a[0], a[1], a[2]],
            [b[0], a[1], a[2]],
            [a[0], b[1], a[2]],
            [b[0], b[1], a[2]],
            [a[0], a[1], b[2]],
            [b[0], a[1], b[2]],
            [a[0], b[1], b[2]],
            [b[0], b[1], b[2]],
        ]
    }
    pub fn intersects(&self, o: &Aabb) -> bool {
        (0..3).all(|a| self.min[a] <= o.max[a] && o.min[a] <= self.max[a])
    }
}

/// A solid primitive in design coordinates (mm).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// Ellipsoid with semi-axes along the orthonormal `axes`; points below `z_min` are cut off
    /// (a lens or dome when `z_min` is the centre height).
    Ellipsoid { centre: [f64; 3], axes: [[f64; 3]; 3], semi: [f64; 3], z_min: f64 },
    /// A sphere whose radius varies with direction: `r(d) = radius * (1 + sum a_i exp((d.w_i - 1) / s_i^2))`.
    Lobulated { centre: [f64; 3], radius: f64, bumps: Vec<([f64; 3], f64, f64)> },
    /// A segment from `a` to `b` whose radius tapers linearly from `ra` to `rb` (a spicule, a fibre).
    Tapered { a: [f64; 3], b: [f64; 3], ra: f64, rb: f64 },
}

impl Shape {
    /// A sphere.
    pub fn sphere(centre: [f64; 3], radius: f64) -> Shape {
        Shape::Ellipsoid {
            centre,
            axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            semi: [radius; 3],
            z_min: f64::NEG_INFINITY,
        }
    }

    /// A conservative bounding box.
    pub fn bbox(&self) -> Aabb {
        match self {
            Shape::Ellipsoid { centre, axes, semi, z_min } => {
                let mut half = [0.0; 3];
                for (a, h) in half.iter_mut().enumerate() {
                    *h = (0..3).map(|m| (axes[m][a] * semi[m]).powi(2)).sum::<f64>().sqrt();
                }
                let mut b = Aabb { min: sub(*centre, half), max: add(*centre, half) };
                b.min[2] = b.min[2].max(*z_min);
                b
            }
            Shape::Lobulated { centre, radius, bumps } => {
                let amp: f64 = bumps.iter().map(|b| b.1.max(0.0)).sum();
                Aabb::around(*centre, radius * (1.0 + amp))
            }
            Shape::Tapered { a, b, ra, rb } => Aabb::around(*a, *ra).union(Aabb::around(*b, *rb)),
        }
    }

    /// Whether the point lies inside.
    pub fn contains(&self, p: [f64; 3]) -> bool {
        match self {
            Shape::Ellipsoid { centre, axes, semi, z_min } => {
                if p[2] < *z_min {
                    return false;
                }
                let d = sub(p, *centre);
                (0..3).map(|m| (dot(d, axes[m]) / semi[m]).powi(2)).sum::<f64>() <= 1.0
            }
            Shape::Lobulated { centre, radius, bumps } => {
                let d = sub(p, *centre);
                let r = norm(d);
                if r == 0.0 {
                    return true;
                }
                let dir = scale(d, 1.0 / r);
                let f: f64 = bumps.iter().map(|(w, a, s)| a * ((dot(dir, *w) - 1.0) / (s * s)).exp()).sum();
                r <= radius * (1.0 + f)
            }
            Shape::Tapered { a, b, ra, rb } => {
                let d = sub(*b, *a);
                let len2 = dot(d, d);
                let t = if len2 > 0.0 { (dot(sub(p, *a), d) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let c = add(*a, scale(d, t));
                let r = ra + (rb - ra) * t;
                let q = sub(p, c);
                dot(q, q) <= r * r
            }
        }
    }

    /// A point that is certainly inside or on the shape (used to give tiny shapes a voxel).
    pub fn anchor(&self) -> [f64; 3] {
        match self {
            Shape::Ellipsoid { centre, .. } | Shape::Lobulated { centre, .. } => *centre,
            Shape::Tapered { a, b, .. } => scale(add(*a, *b), 0.5),
        }
    }

    /// Whether any voxel centre of `grid` falls inside the shape.
    pub fn hits_voxel_centre(&self, grid: &VoxelGrid) -> bool {
        // Most shapes contain the voxel centre nearest to their anchor; try that first.
        if let Some([i, j, k]) = grid.world_to_voxel(self.anchor()) {
            if self.contains(grid.voxel_centre(i, j, k)) {
                return true;
            }
        }
        let b = self.bbox();
        let (Some((i0, i1)), Some((j0, j1)), Some((k0, k1))) = (
            grid.index_range(0, b.min[0], b.max[0]),
            grid.index_range(1, b.min[1], b.max[1]),
            grid.index_range(2, b.min[2], b.max[2]),
        ) else {
            return false;
        };
        (k0..=k1).any(|k| (j0..=j1).any(|j| (i0..=i1).any(|i| self.contains(grid.voxel_centre(i, j, k)))))
    }
}

/// A labelled object as rasterized: its parts, and whether tiny parts that miss every voxel
/// centre still get the voxel containing their anchor (so every calcification shows up).
#[derive(Debug, Clone)]
pub(crate) struct Rasterized {
    pub label: u8,
    pub parts: Vec<Shape>,
    /// Per part: the voxel that must carry the label although no voxel centre is inside.
    pub forced: Vec<Option<[usize; 3]>>,
    pub bbox: Aabb,
}

impl Rasterized {
    pub fn new(label: u8, parts: Vec<Shape>, grid: &VoxelGrid) -> Self {
        let forced = parts
            .iter()
            .map(|s| if s.hits_voxel_centre(grid) { None } else { grid.world_to_voxel(s.anchor()) })
            .collect();
        let bbox = parts.iter().map(Shape::bbox).reduce(Aabb::union).unwrap_or(Aabb { min: [0.0; 3], max: [0.0; 3] });
        Self { label, parts, forced, bbox }
    }

    /// Writes the label into z slice `k` (`out` holds that slice) wherever a part covers a voxel
    /// centre and `may_write(current label)` allows it.
    pub fn rasterize_slice(&self, grid: &VoxelGrid, k: usize, out: &mut [u8], may_write: impl Fn(u8) -> bool) {
        let z = grid.centre_along(2, k);
        if z < self.bbox.min[2] || z > self.bbox.max[2] {
            return;
        }
        for (shape, forced) in self.parts.iter().zip(&self.forced) {
            if let Some([i, j, kk]) = *forced {
                if kk == k {
                    let idx = j * grid.nx + i;
                    if may_write(out[idx]) {
                        out[idx] = self.label;
                    }
                }
                continue;
            }
            let b = shape.bbox();
            if z < b.min[2] || z > b.max[2] {
                continue;
            }
            let (Some((i0, i1)), Some((j0, j1))) =
                (grid.index_range(0, b.min[0], b.max[0]), grid.index_range(1, b.min[1], b.max[1]))
            else {
                continue;
            };
            for j in j0..=j1 {
                let y = grid.centre_along(1, j);
                let row = &mut out[j * grid.nx..(j + 1) * grid.nx];
                for (i, v) in row.iter_mut().enumerate().take(i1 + 1).skip(i0) {
                    if *v != self.label && may_write(*v) && shape.contains([grid.centre_along(0, i), y, z]) {
                        *v = self.label;
                    }
                }
            }
        }
    }
}
