//! AAPM TG-195 Case 3: the breast benchmark (Sechopoulos et al., Med Phys 42:5679, 2015), built in the
//! Monte Carlo's own terms and compared with the four reference codes (`data/reference/tg195/`).
//!
//! Frame: millimetres, origin at the centre of the breast's flat chest-wall face at mid-thickness, z up to
//! the source, x lateral (the direction the tomosynthesis source moves), y from the chest wall toward the
//! nipple. TG-195's own axes are (x_TG, y_TG) = (our y, our x); the mirror does not change any dose.
//!
//! - Breast: half cylinder of radius 100 mm, 50 mm thick, flat face at y = 0; a 2 mm skin on the curved side,
//!   top and bottom; inside, a homogeneous 20 % glandular (by weight) tissue of density 0.952 g/cm^3.
//!   Voxelised at `voxel_mm` (voxel centres decide the label).
//! - PMMA paddle and support, 2 mm, x -130..130, y 0..140, above and below the breast; a water body
//!   y -170..0, x -150..150, z -150..150; the world is dry air.
//! - Source 620 mm above the origin (660 mm from the image plane at z = -40 mm), collimated to
//!   x -130..130, y 0..140 on that plane; for tomosynthesis rotated 15 degrees about the y axis (source at
//!   x = -620 sin 15, z = 620 cos 15) with the same field on the plane.
//! - Scored: energy imparted to the breast tissue without skin ("Total body") and to seven 20 x 20 x 10 mm
//!   VOIs, per incident photon.

use rayon::prelude::*;

use tomolab_hal::VoxelGrid;

use super::{Aabb, Estimate, FieldRect, McConfig, McMaterial, McScene, McSource};
use crate::error::PhysicsError;
use crate::ray_tracer::VolumeView;

const REFERENCE_CSV: &str = include_str!("../../../data/reference/tg195/case3_energy_eV_per_photon.csv");
const SPECTRUM_CSV: &str = include_str!("../../../data/reference/tg195/spectrum_30kVp_MoMo.csv");

/// Label of the breast tissue (the "Total body" of TG-195).
pub const TISSUE: u8 = 1;
/// Label of the skin.
pub const SKIN: u8 = 2;

/// The two source positions of Case 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    /// Source above the breast (0 deg).
    Radiography,
    /// Source rotated by 15 deg.
    Tomosynthesis,
}

impl Mode {
    fn reference_name(self) -> &'static str {
        match self {
            Mode::Radiography => "radiography",
            Mode::Tomosynthesis => "tomosynthesis",
        }
    }
}

/// The two beams of Case 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Beam {
    /// Monoenergetic 16.8 keV.
    Mono16_8,
    /// The TG-195 30 kVp Mo/Mo spectrum.
    MoMo30,
}

impl Beam {
    fn reference_name(self) -> &'static str {
        match self {
            Beam::Mono16_8 => "16.8 keV",
            Beam::MoMo30 => "30 kVp",
        }
    }

    /// Energy lines (keV, weight): the spectrum's 0.5 keV bins are spread over 5 lines each.
    pub fn lines(self) -> Result<Vec<(f64, f64)>, PhysicsError> {
        match self {
            Beam::Mono16_8 => Ok(vec![(16.8, 1.0)]),
            Beam::MoMo30 => {
                let mut lines = Vec::new();
                for (n, row) in SPECTRUM_CSV.lines().enumerate().skip(1) {
                    let bad = || PhysicsError::Table { table: "tg195 spectrum", line: n + 1, problem: row.to_string() };
                    let mut f = row.split(',').map(|v| v.trim().parse::<f64>());
                    let (Some(Ok(centre)), Some(Ok(weight))) = (f.next(), f.next()) else { return Err(bad()) };
                    for k in 0..5 {
                        lines.push((centre - 0.25 + (k as f64 + 0.5) * 0.1, weight / 5.0));
                    }
                }
                Ok(lines)
            }
        }
    }
}

/// The VOIs: name, centre (our frame), all 20 x 20 x 10 mm.
pub const VOIS: [(&str, [f64; 3]); 7] = [
    ("VOI 1", [50.0, 50.0, 0.0]),
    ("VOI 2", [0.0, 20.0, 0.0]),
    ("VOI 3", [0.0, 50.0, 0.0]),
    ("VOI 4", [0.0, 80.0, 0.0]),
    ("VOI 5", [-50.0, 50.0, 0.0]),
    ("VOI 6", [0.0, 50.0, -15.0]),
    ("VOI 7", [0.0, 50.0, 15.0]),
];

/// The voxelised breast of Case 3.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// Voxel edge, mm.
    pub voxel_mm: f64,
    grid: tomolab_hal::VoxelGrid,
    labels: Vec<u8>,
}

impl Phantom {
    /// Voxelises the breast at `voxel_mm` (which must divide 1 mm into a whole number of voxels, so every
    /// surface and VOI face lies on a voxel face).
    pub fn new(voxel_mm: f64) -> Result<Self, PhysicsError> {
        let per_mm = 1.0 / voxel_mm;
        if !(voxel_mm > 0.0 && voxel_mm <= 1.0 && (per_mm - per_mm.round()).abs() < 1e-9) {
            return Err(PhysicsError::invalid("tg195 voxel_mm", format!("must be 1/n mm, got {voxel_mm}")));
        }
        let (nx, ny, nz) =
            ((200.0 * per_mm).round() as usize, (100.0 * per_mm).round() as usize, (50.0 * per_mm).round() as usize);
        let mut labels = vec![0u8; nx * ny * nz];
        labels.par_chunks_mut(nx * ny).enumerate().for_each(|(k, slice)| {
            let z = -25.0 + (k as f64 + 0.5) * voxel_mm;
            for j in 0..ny {
                let y = (j as f64 + 0.5) * voxel_mm;
                for i in 0..nx {
                    let x = -100.0 + (i as f64 + 0.5) * voxel_mm;
                    let r = x.hypot(y);
                    slice[j * nx + i] = if r > 100.0 {
                        0
                    } else if r <= 98.0 && z.abs() <= 23.0 {
                        TISSUE
                    } else {
                        SKIN
                    };
                }
            }
        });
        let grid = VoxelGrid::cubic([nx, ny, nz], voxel_mm, [-100.0, 0.0, -25.0]);
        Ok(Self { voxel_mm, grid, labels })
    }

    /// A view for the scene.
    pub fn view(&self) -> VolumeView<'_> {
        VolumeView { grid: self.grid, labels: &self.labels }
    }

    /// Volume of the breast tissue (skin excluded), mm^3.
    pub fn tissue_volume_mm3(&self) -> f64 {
        self.labels.iter().filter(|&&l| l == TISSUE).count() as f64 * self.voxel_mm.powi(3)
    }
}

/// The breast tissue of Case 3: 20 % glandular by weight at 0.952 g/cm^3.
pub fn breast_tissue() -> Result<McMaterial, PhysicsError> {
    McMaterial::mixture("tg195_breast_20", &[("glandular", 0.2), ("adipose", 0.8)], 0.952)
}

/// The Case 3 scene around `phantom`.
pub fn scene(phantom: &Phantom) -> Result<McScene<'_>, PhysicsError> {
    let world = Aabb::new([-400.0, -400.0, -300.0], [400.0, 400.0, 700.0])?;
    let pmma = McMaterial::named("pmma")?;
    let mut scene = McScene::new(world, McMaterial::named("air")?)
        .with_voxels(
            phantom.view(),
            &[(0, McMaterial::named("air")?), (TISSUE, breast_tissue()?), (SKIN, McMaterial::named("skin")?)],
        )?
        .with_box(Aabb::new([-130.0, 0.0, 25.0], [130.0, 140.0, 27.0])?, pmma.clone())?
        .with_box(Aabb::new([-130.0, 0.0, -27.0], [130.0, 140.0, -25.0])?, pmma)?
        .with_box(Aabb::new([-150.0, -170.0, -150.0], [150.0, 0.0, 150.0])?, McMaterial::named("water")?)?;
    for (name, centre) in VOIS {
        scene = scene.with_scoring_box(name, Aabb::centred(centre, [20.0, 20.0, 10.0])?);
    }
    Ok(scene)
}

/// The Case 3 source for `mode` and `beam`.
pub fn source(mode: Mode, beam: Beam) -> Result<McSource, PhysicsError> {
    let angle = match mode {
        Mode::Radiography => 0.0f64,
        Mode::Tomosynthesis => 15.0f64.to_radians(),
    };
    let focal_spot = [-620.0 * angle.sin(), 0.0, 620.0 * angle.cos()];
    let field = FieldRect { z_mm: -40.0, min_xy_mm: [-130.0, 0.0], max_xy_mm: [130.0, 140.0] };
    McSource::new(focal_spot, field, &beam.lines()?)
}

/// One reference row: the four codes' values and their mean, eV per photon.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReferenceRow {
    /// "Total body" or "VOI n".
    pub volume: String,
    /// EGSnrc, Geant4, MCNP, PENELOPE.
    pub codes_ev: [f64; 4],
    /// Mean of the four.
    pub mean_ev: f64,
}

/// The reference rows for one mode and beam.
pub fn reference(mode: Mode, beam: Beam) -> Result<Vec<ReferenceRow>, PhysicsError> {
    let mut rows = Vec::new();
    for (n, line) in REFERENCE_CSV.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = |p: &str| PhysicsError::Table { table: "tg195 reference", line: n + 1, problem: p.to_string() };
        if f.len() < 8 {
            return Err(bad("expected at least 8 columns"));
        }
        if f[0] != beam.reference_name() || f[1] != mode.reference_name() {
            continue;
        }
        let mut codes_ev = [0.0; 4];
        for (c, v) in codes_ev.iter_mut().zip(&f[3..7]) {
            *c = v.trim().parse().map_err(|_| bad("unreadable number"))?;
        }
        rows.push(ReferenceRow { volume: f[2].to_string(), codes_ev, mean_ev: codes_ev.iter().sum::<f64>() / 4.0 });
    }
    if rows.len() != 8 {
        return Err(PhysicsError::invalid(
            "tg195 reference",
            format!("expected 8 rows for {mode:?} {beam:?}, found {}", rows.len()),
        ));
    }
    Ok(rows)
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComparisonRow {
    /// Scored volume.
    pub volume: String,
    /// Ours, eV per incident photon, with its standard error.
    pub ours_ev: Estimate,
    /// The reference codes.
    pub reference: ReferenceRow,
    /// (ours - mean of the four) / mean, per cent.
    pub difference_pct: f64,
}

/// Runs Case 3 for one mode and beam and compares it with the reference codes.
pub fn compare(
    phantom: &Phantom,
    mode: Mode,
    beam: Beam,
    config: &McConfig,
) -> Result<Vec<ComparisonRow>, PhysicsError> {
    let scene = scene(phantom)?;
    let result = super::run(&scene, &source(mode, beam)?, config)?;
    reference(mode, beam)?
        .into_iter()
        .map(|r| {
            let kev = if r.volume == "Total body" {
                result.label(TISSUE)
            } else {
                result
                    .scoring_box(&r.volume)
                    .ok_or_else(|| PhysicsError::invalid("tg195", format!("no scoring box {}", r.volume)))?
            };
            let ours_ev = kev.scaled(1e3);
            let difference_pct = 100.0 * (ours_ev.mean / r.mean_ev - 1.0);
            Ok(ComparisonRow { volume: r.volume.clone(), ours_ev, reference: r, difference_pct })
        })
        .collect()
}
