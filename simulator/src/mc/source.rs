//! The X-ray source of a Monte Carlo run: an isotropic point focal spot collimated to a rectangle on a plane of
//! constant z, with a discrete energy distribution.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::material::{ENERGY_MAX_KEV, ENERGY_MIN_KEV};
use super::scene::McScene;
use crate::error::PhysicsError;
use crate::spectrum::Spectrum;

/// The collimated field: a rectangle on the plane `z = z_mm`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldRect {
    /// Height of the plane, mm.
    pub z_mm: f64,
    /// Minimum x, y, mm.
    pub min_xy_mm: [f64; 2],
    /// Maximum x, y, mm.
    pub max_xy_mm: [f64; 2],
}

/// A point source emitting isotropically into a rectangular field.
#[derive(Debug, Clone)]
pub struct McSource {
    focal_spot_mm: [f64; 3],
    field: FieldRect,
    energies_kev: Vec<f64>,
    /// Normalised cumulative weights.
    cumulative: Vec<f64>,
    /// Axis of the bounding cone, its basis and its cosine half-angle.
    axis: [[f64; 3]; 3],
    cos_max: f64,
    /// Photons the tube emits into the field per mAs (0 if the source has no absolute output).
    photons_per_mas: f64,
}

/// Solid angle of the rectangle `[x0, x1] x [y0, y1]` seen from height `h` above the point (0, 0), sr.
fn rectangle_solid_angle(h: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    let f = |a: f64, b: f64| (a * b / (h * (a * a + b * b + h * h).sqrt())).atan();
    f(x1, y1) - f(x0, y1) - f(x1, y0) + f(x0, y0)
}

fn normalise(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|c| c / n)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

impl McSource {
    /// A source with energies `lines` (keV, relative weight).
    pub fn new(focal_spot_mm: [f64; 3], field: FieldRect, lines: &[(f64, f64)]) -> Result<Self, PhysicsError> {
        if !focal_spot_mm.iter().all(|v| v.is_finite()) {
            return Err(PhysicsError::invalid("mc source", "focal spot must be finite"));
        }
        let [x0, y0] = field.min_xy_mm;
        let [x1, y1] = field.max_xy_mm;
        if !(x1 > x0 && y1 > y0 && field.z_mm.is_finite() && focal_spot_mm[2] > field.z_mm) {
            return Err(PhysicsError::invalid("mc source", "field needs max > min and must lie below the focal spot"));
        }
        if lines.is_empty() {
            return Err(PhysicsError::invalid("mc source", "needs at least one energy"));
        }
        let mut energies_kev = Vec::with_capacity(lines.len());
        let mut cumulative = Vec::with_capacity(lines.len());
        let mut sum = 0.0;
        for &(e, w) in lines {
            if !((ENERGY_MIN_KEV..=ENERGY_MAX_KEV).contains(&e) && w.is_finite() && w >= 0.0) {
                return Err(PhysicsError::invalid(
                    "mc source",
                    format!(
                        "energy {e} keV must lie in {ENERGY_MIN_KEV}..={ENERGY_MAX_KEV} with a weight >= 0, got {w}"
                    ),
                ));
            }
            sum += w;
            energies_kev.push(e);
            cumulative.push(sum);
        }
        if sum <= 0.0 {
            return Err(PhysicsError::invalid("mc source", "energy weights sum to zero"));
        }
        cumulative.iter_mut().for_each(|c| *c /= sum);
        let s = focal_spot_mm;
        let corners =
            [[x0, y0], [x0, y1], [x1, y0], [x1, y1]].map(|[x, y]| normalise([x - s[0], y - s[1], field.z_mm - s[2]]));
        let centre = normalise([(x0 + x1) / 2.0 - s[0], (y0 + y1) / 2.0 - s[1], field.z_mm - s[2]]);
        let cos_max =
            corners.iter().map(|c| c[0] * centre[0] + c[1] * centre[1] + c[2] * centre[2]).fold(1.0, f64::min);
        let helper = if centre[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
        let e1 = normalise(cross(centre, helper));
        let e2 = cross(centre, e1);
        Ok(Self {
            focal_spot_mm,
            field,
            energies_kev,
            cumulative,
            axis: [centre, e1, e2],
            cos_max: cos_max - 1e-12,
            photons_per_mas: 0.0,
        })
    }

    /// The tube's output: `spectrum` (already filtered by window, filter and any paddle) as the energy
    /// distribution, and its fluence per mAs scaled to photons per mAs emitted into the field.
    pub fn from_spectrum(spectrum: &Spectrum, focal_spot_mm: [f64; 3], field: FieldRect) -> Result<Self, PhysicsError> {
        let lines: Vec<(f64, f64)> = spectrum.samples().collect();
        let mut source = Self::new(focal_spot_mm, field, &lines)?;
        let per_sr = spectrum.fluence_per_mm2_per_mas() * spectrum.distance_mm().powi(2);
        source.photons_per_mas = per_sr * source.solid_angle_sr();
        Ok(source)
    }

    /// Solid angle of the field seen from the focal spot, sr.
    pub fn solid_angle_sr(&self) -> f64 {
        let s = self.focal_spot_mm;
        let f = &self.field;
        rectangle_solid_angle(
            s[2] - f.z_mm,
            f.min_xy_mm[0] - s[0],
            f.max_xy_mm[0] - s[0],
            f.min_xy_mm[1] - s[1],
            f.max_xy_mm[1] - s[1],
        )
    }

    /// Photons emitted into the field per mAs (0 for a source built from relative weights only).
    pub fn photons_per_mas(&self) -> f64 {
        self.photons_per_mas
    }

    /// Mean energy of the distribution, keV.
    pub fn mean_energy_kev(&self) -> f64 {
        let mut prev = 0.0;
        self.energies_kev
            .iter()
            .zip(&self.cumulative)
            .map(|(e, c)| {
                let w = c - prev;
                prev = *c;
                e * w
            })
            .sum()
    }

    /// Focal spot, mm.
    pub fn focal_spot_mm(&self) -> [f64; 3] {
        self.focal_spot_mm
    }

    pub(crate) fn validate(&self, scene: &McScene<'_>) -> Result<(), PhysicsError> {
        if !scene.world.contains(&self.focal_spot_mm) {
            return Err(PhysicsError::invalid("mc source", "the focal spot must lie inside the world"));
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn sample_energy(&self, u: f64) -> f64 {
        let i = self.cumulative.partition_point(|&c| c < u).min(self.energies_kev.len() - 1);
        self.energies_kev[i]
    }

    /// A direction uniform in solid angle over the field (rejection from the bounding cone).
    pub(crate) fn sample_ray(&self, rng: &mut ChaCha8Rng) -> ([f64; 3], [f64; 3]) {
        let [a, e1, e2] = self.axis;
        let s = self.focal_spot_mm;
        let f = &self.field;
        loop {
            let cos = 1.0 - rng.random::<f64>() * (1.0 - self.cos_max);
            let sin = (1.0 - cos * cos).max(0.0).sqrt();
            let (sp, cp) = (std::f64::consts::TAU * rng.random::<f64>()).sin_cos();
            let d = [0, 1, 2].map(|k| cos * a[k] + sin * (cp * e1[k] + sp * e2[k]));
            if d[2] >= 0.0 {
                continue;
            }
            let t = (f.z_mm - s[2]) / d[2];
            let (x, y) = (s[0] + t * d[0], s[1] + t * d[1]);
            if x >= f.min_xy_mm[0] && x <= f.max_xy_mm[0] && y >= f.min_xy_mm[1] && y <= f.max_xy_mm[1] {
                return (s, d);
            }
        }
    }
}
