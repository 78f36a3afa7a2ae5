//! The conversion-factor formalism: `MGD = K g c s t(theta)` (Dance et al., Phys Med Biol 45:3225, 2000;
//! tomosynthesis factors as in Dance, Young & van Engen, Phys Med Biol 56:453, 2011).
//!
//! - `K`: incident air kerma at the upper breast surface, free in air (no backscatter), from the spectrum
//!   model at the 0 deg position.
//! - `g`: `data/dose/dance_g_factors.csv`, the published Dance 2000 g table for a 50 % glandular breast
//!   (thickness 20-110 mm, HVL 0.30-0.60 mm Al), bilinear in thickness and HVL.
//! - `s`: `data/dose/s_factors.csv`, the published spectrum factors. W/Al depends on thickness (Dance et al.,
//!   Phys Med Biol 54:4361, 2009) and the published table was not available: `data/dose/mc_s_w_al.csv` holds
//!   our Monte Carlo's W/Al factor against thickness, tied to the published W/Rh factor.
//! - `c`: `data/dose/dance_c_factors.csv`, the published Dance 2000 c table (glandularity 0.1-100 %,
//!   thickness 20-110 mm, HVL 0.30-0.60 mm Al), trilinear.
//! - `t`: `data/dose/mc_t_factors.csv`, computed by this crate's Monte Carlo on the same model breast
//!   (`make_dose_tables` example), because the published Dance 2011 tables could not be obtained. It is a ratio
//!   of Monte Carlo doses, so it carries the Monte Carlo's physics but not its normalisation.
//!
//! Outside the tables' HVL range (HVL more than 0.05 mm Al beyond them) the formalism declines; callers fall
//! back to the Monte Carlo of the model breast.

use std::sync::OnceLock;

use tomolab_hal::technique::{FilterMaterial, Technique};
use tomolab_hal::{ArcGeometry, Target};

use super::beam::ViewBeam;
use crate::error::PhysicsError;
use crate::spectrum::FilterLayer;

const G_CSV: &str = include_str!("../../../data/dose/dance_g_factors.csv");
const S_CSV: &str = include_str!("../../../data/dose/s_factors.csv");
const S_W_AL_CSV: &str = include_str!("../../../data/dose/mc_s_w_al.csv");
const C_CSV: &str = include_str!("../../../data/dose/dance_c_factors.csv");
const T_CSV: &str = include_str!("../../../data/dose/mc_t_factors.csv");

/// How far beyond the tables' HVL range the formalism extrapolates, mm Al.
const HVL_MARGIN: f64 = 0.05;

fn rows(table: &'static str, text: &str) -> Result<Vec<Vec<String>>, PhysicsError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push((n + 1, line.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>()));
    }
    if out.len() < 2 {
        return Err(PhysicsError::Table { table, line: 0, problem: "no data rows".into() });
    }
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

fn number(table: &'static str, s: &str) -> Result<f64, PhysicsError> {
    s.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| PhysicsError::Table {
        table,
        line: 0,
        problem: format!("not a number: {s:?}"),
    })
}

/// Linear interpolation in a sorted axis: (lower index, weight), clamped to the ends.
fn bracket(axis: &[f64], x: f64) -> (usize, f64) {
    if axis.len() == 1 || x <= axis[0] {
        return (0, 0.0);
    }
    let n = axis.len();
    if x >= axis[n - 1] {
        return (n - 2, 1.0);
    }
    let i = axis.partition_point(|&a| a <= x) - 1;
    (i, (x - axis[i]) / (axis[i + 1] - axis[i]))
}

/// Linear interpolation that extrapolates linearly past the ends.
fn bracket_extrapolating(axis: &[f64], x: f64) -> (usize, f64) {
    let n = axis.len();
    let i = axis.partition_point(|&a| a <= x).clamp(1, n - 1) - 1;
    (i, (x - axis[i]) / (axis[i + 1] - axis[i]))
}

/// The embedded tables.
#[derive(Debug, Clone)]
pub struct ConversionTables {
    g_thickness: Vec<f64>,
    g_hvl: Vec<f64>,
    /// g[thickness][hvl].
    g: Vec<Vec<f64>>,
    s: Vec<(String, f64)>,
    s_w_al_thickness: Vec<f64>,
    /// s of W/Al at each thickness.
    s_w_al: Vec<f64>,
    c_thickness: Vec<f64>,
    c_glandularity: Vec<f64>,
    c_hvl: Vec<f64>,
    /// c[thickness][glandularity][hvl].
    c: Vec<Vec<Vec<f64>>>,
    t_thickness: Vec<f64>,
    t_angle: Vec<f64>,
    /// t[thickness][angle].
    t: Vec<Vec<f64>>,
}

fn axis_of(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

fn grid<const N: usize>(table: &'static str, rows: &[Vec<String>]) -> Result<Vec<[f64; N]>, PhysicsError> {
    rows[1..]
        .iter()
        .map(|r| {
            if r.len() < N {
                return Err(PhysicsError::Table { table, line: 0, problem: format!("expected {N} columns in {r:?}") });
            }
            let mut out = [0.0; N];
            for (o, s) in out.iter_mut().zip(r) {
                *o = number(table, s)?;
            }
            Ok(out)
        })
        .collect()
}

impl ConversionTables {
    /// The tables compiled into the binary (parsed once).
    pub fn embedded() -> Result<&'static Self, PhysicsError> {
        static T: OnceLock<Result<ConversionTables, PhysicsError>> = OnceLock::new();
        T.get_or_init(Self::parse).as_ref().map_err(Clone::clone)
    }

    fn parse() -> Result<Self, PhysicsError> {
        // g: thickness_mm, hvl_0.30, ...
        let g_rows = rows("dance_g_factors", G_CSV)?;
        let g_hvl = g_rows[0][1..]
            .iter()
            .map(|h| number("dance_g_factors", h.trim_start_matches("hvl_")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut g_thickness = Vec::new();
        let mut g = Vec::new();
        for r in &g_rows[1..] {
            g_thickness.push(number("dance_g_factors", &r[0])?);
            g.push(r[1..].iter().map(|v| number("dance_g_factors", v)).collect::<Result<Vec<_>, _>>()?);
        }
        // s: target_filter, s, ...
        let s = rows("s_factors", S_CSV)?[1..]
            .iter()
            .map(|r| Ok((r[0].clone(), number("s_factors", &r[1])?)))
            .collect::<Result<Vec<_>, PhysicsError>>()?;
        // s of W/Al: thickness_mm, s
        let s_w_al_flat = grid::<2>("mc_s_w_al", &rows("mc_s_w_al", S_W_AL_CSV)?)?;
        let (s_w_al_thickness, s_w_al): (Vec<f64>, Vec<f64>) = s_w_al_flat.iter().map(|r| (r[0], r[1])).unzip();
        // c: thickness_mm, glandularity, hvl_mm_al, c
        let c_flat = grid::<4>("dance_c_factors", &rows("dance_c_factors", C_CSV)?)?;
        let (c_thickness, c_glandularity, c_hvl) = (
            axis_of(c_flat.iter().map(|r| r[0])),
            axis_of(c_flat.iter().map(|r| r[1])),
            axis_of(c_flat.iter().map(|r| r[2])),
        );
        let mut c = vec![vec![vec![f64::NAN; c_hvl.len()]; c_glandularity.len()]; c_thickness.len()];
        for r in &c_flat {
            let pos = |axis: &[f64], v: f64| axis.iter().position(|&a| a == v).unwrap_or(0);
            c[pos(&c_thickness, r[0])][pos(&c_glandularity, r[1])][pos(&c_hvl, r[2])] = r[3];
        }
        // t: thickness_mm, angle_deg, t
        let t_flat = grid::<3>("mc_t_factors", &rows("mc_t_factors", T_CSV)?)?;
        let (t_thickness, t_angle) = (axis_of(t_flat.iter().map(|r| r[0])), axis_of(t_flat.iter().map(|r| r[1])));
        let mut t = vec![vec![f64::NAN; t_angle.len()]; t_thickness.len()];
        for r in &t_flat {
            let pos = |axis: &[f64], v: f64| axis.iter().position(|&a| a == v).unwrap_or(0);
            t[pos(&t_thickness, r[0])][pos(&t_angle, r[1])] = r[2];
        }
        let complete = g.iter().all(|r| r.len() == g_hvl.len())
            && s_w_al_thickness.len() >= 2
            && s_w_al_thickness.is_sorted()
            && c.iter().flatten().flatten().all(|v| v.is_finite())
            && t.iter().flatten().all(|v| v.is_finite());
        if !complete {
            return Err(PhysicsError::Table { table: "dose tables", line: 0, problem: "incomplete grid".into() });
        }
        Ok(Self {
            g_thickness,
            g_hvl,
            g,
            s,
            s_w_al_thickness,
            s_w_al,
            c_thickness,
            c_glandularity,
            c_hvl,
            c,
            t_thickness,
            t_angle,
            t,
        })
    }

    fn check_hvl(&self, hvl: f64) -> Result<(), PhysicsError> {
        let (lo, hi) = (self.g_hvl[0] - HVL_MARGIN, self.g_hvl[self.g_hvl.len() - 1] + HVL_MARGIN);
        if !(lo..=hi).contains(&hvl) {
            return Err(PhysicsError::invalid(
                "dose formalism",
                format!(
                    "HVL {hvl:.3} mm Al is outside the g table ({:.2}-{:.2} mm Al)",
                    self.g_hvl[0],
                    self.g_hvl[self.g_hvl.len() - 1]
                ),
            ));
        }
        Ok(())
    }

    fn check_thickness(&self, t: f64) -> Result<(), PhysicsError> {
        let (lo, hi) = (self.g_thickness[0], self.g_thickness[self.g_thickness.len() - 1]);
        if !(lo..=hi).contains(&t) {
            return Err(PhysicsError::invalid(
                "dose formalism",
                format!("thickness {t} mm is outside the tables ({lo}-{hi} mm)"),
            ));
        }
        Ok(())
    }

    /// g (mGy/mGy) at a thickness (mm) and HVL (mm Al).
    pub fn g(&self, thickness_mm: f64, hvl_mm_al: f64) -> Result<f64, PhysicsError> {
        self.check_thickness(thickness_mm)?;
        self.check_hvl(hvl_mm_al)?;
        let (i, wi) = bracket(&self.g_thickness, thickness_mm);
        let (j, wj) = bracket_extrapolating(&self.g_hvl, hvl_mm_al);
        let at = |i: usize| self.g[i][j] + wj * (self.g[i][j + 1] - self.g[i][j]);
        Ok(at(i) + wi * (at(i + 1) - at(i)))
    }

    /// c for a glandular weight fraction at a thickness and HVL.
    pub fn c(&self, thickness_mm: f64, glandularity: f64, hvl_mm_al: f64) -> Result<f64, PhysicsError> {
        self.check_thickness(thickness_mm)?;
        if !(0.0..=1.0).contains(&glandularity) {
            return Err(PhysicsError::invalid(
                "dose formalism",
                format!("glandularity {glandularity} must lie in 0..=1"),
            ));
        }
        let (i, wi) = bracket(&self.c_thickness, thickness_mm);
        let (j, wj) = bracket(&self.c_glandularity, glandularity);
        let (k, wk) = bracket(&self.c_hvl, hvl_mm_al);
        let lerp = |a: f64, b: f64, w: f64| a + w * (b - a);
        let at = |i: usize, j: usize| lerp(self.c[i][j][k], self.c[i][j][k + 1], wk);
        let at_t = |i: usize| lerp(at(i, j), at(i, j + 1), wj);
        Ok(lerp(at_t(i), at_t(i + 1), wi))
    }

    /// s for a target/filter pair at a thickness (only W/Al depends on it).
    pub fn s(&self, target: Target, filter: FilterMaterial, thickness_mm: f64) -> Result<f64, PhysicsError> {
        if (target, filter) == (Target::W, FilterMaterial::Al) {
            self.check_thickness(thickness_mm)?;
            let (i, w) = bracket(&self.s_w_al_thickness, thickness_mm);
            return Ok(self.s_w_al[i] + w * (self.s_w_al[i + 1] - self.s_w_al[i]));
        }
        let key = format!("{target:?}/{filter:?}");
        self.s
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| *s)
            .ok_or_else(|| PhysicsError::invalid("dose formalism", format!("no s factor for {key}")))
    }

    /// t at a thickness and projection angle (symmetric in angle).
    pub fn t(&self, thickness_mm: f64, angle_deg: f64) -> Result<f64, PhysicsError> {
        self.check_thickness(thickness_mm)?;
        let a = angle_deg.abs();
        let max = self.t_angle[self.t_angle.len() - 1];
        if a > max {
            return Err(PhysicsError::invalid(
                "dose formalism",
                format!("angle {angle_deg} deg is beyond the t table (+-{max} deg)"),
            ));
        }
        let (i, wi) = bracket(&self.t_thickness, thickness_mm);
        let (j, wj) = bracket(&self.t_angle, a);
        let at = |i: usize| self.t[i][j] + wj * (self.t[i][j + 1] - self.t[i][j]);
        Ok(at(i) + wi * (at(i + 1) - at(i)))
    }
}

/// The factors of one view and the dose they give.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FormalismView {
    /// Incident air kerma at the upper surface for the 0 deg tube position, uGy/mAs.
    pub incident_kerma_ugy_per_mas: f64,
    /// HVL, mm Al.
    pub hvl_mm_al: f64,
    /// Dance factors.
    pub g: f64,
    /// Glandularity factor.
    pub c: f64,
    /// Spectrum factor.
    pub s: f64,
    /// Projection-angle factor.
    pub t: f64,
    /// MGD per mAs, mGy/mAs.
    pub mgd_per_mas: f64,
}

/// The formalism for one unit: its arc, fixed filtration and breast support.
#[derive(Debug, Clone)]
pub struct Formalism {
    /// Gantry geometry.
    pub arc: ArcGeometry,
    /// Window and paddle.
    pub fixed_layers: Vec<FilterLayer>,
    /// Height of the breast support above the detector, mm.
    pub support_height_mm: f64,
}

impl Formalism {
    /// The factors and dose per mAs of a view at `angle_deg` of a breast of `thickness_mm` with glandular
    /// weight fraction `glandularity`.
    pub fn view(
        &self,
        technique: &Technique,
        thickness_mm: f64,
        glandularity: f64,
        angle_deg: f64,
    ) -> Result<FormalismView, PhysicsError> {
        let tables = ConversionTables::embedded()?;
        let top = self.support_height_mm + thickness_mm;
        let beam = ViewBeam::of_technique(&self.arc, 0.0, technique, &self.fixed_layers, top)?;
        let hvl = beam.hvl_mm_al;
        let (g, c) = (tables.g(thickness_mm, hvl)?, tables.c(thickness_mm, glandularity, hvl)?);
        let s = tables.s(technique.target, technique.filter.material, thickness_mm)?;
        let t = tables.t(thickness_mm, angle_deg)?;
        let k = beam.incident_kerma_ugy_per_mas;
        Ok(FormalismView {
            incident_kerma_ugy_per_mas: k,
            hvl_mm_al: hvl,
            g,
            c,
            s,
            t,
            mgd_per_mas: k * 1e-3 * g * c * s * t,
        })
    }
}
