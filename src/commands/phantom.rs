//! `tomolab phantom`: generate a breast or QA phantom and write it to a directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use tomolab_phantom::io::write_outputs;
use tomolab_phantom::{
    AccreditationParams, BeadParams, BreastParams, CalcMaterial, LesionSpec, Phantom, SlabMaterial, SlabParams,
};

/// Which phantom to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Anthropomorphic compressed breast (CC) with optional lesions.
    Breast,
    /// Uniform slab.
    Slab,
    /// Bead phantom (small high-contrast spheres at known heights) for ASF and MTF.
    Beads,
    /// Accreditation-style phantom: fibres, speck groups and masses of graded size.
    Accreditation,
}

/// Arguments of `tomolab phantom`.
///
/// Writes `phantom.mhd` + `phantom.raw` (MetaImage, u8 labels), `materials.json` (label ->
/// material), `ground_truth.json` and PNG previews (`slice_central.png`, `projection_summed.png`)
/// into `--out`. Flags override the defaults, or the `--params` JSON file when given.
#[derive(Debug, clap::Args)]
pub struct PhantomArgs {
    /// Which phantom.
    #[arg(long, value_enum, default_value_t = Kind::Breast)]
    kind: Kind,
    /// Compressed breast or phantom thickness in mm [breast 50, slab/beads/accreditation 45].
    #[arg(long, allow_negative_numbers = true)]
    thickness_mm: Option<f64>,
    /// Glandular volume fraction, 0-1 (breast; breast-equivalent slab) [0.2].
    #[arg(long, allow_negative_numbers = true)]
    glandular_fraction: Option<f64>,
    /// Seed of every random draw [0].
    #[arg(long)]
    seed: Option<u64>,
    /// Voxel edge in mm [0.1].
    #[arg(long, allow_negative_numbers = true)]
    voxel_mm: Option<f64>,
    /// Height of the breast support above the detector in mm [20].
    #[arg(long, allow_negative_numbers = true)]
    support_height_mm: Option<f64>,
    /// Slab and bead-phantom background material [pmma].
    #[arg(long, value_enum)]
    material: Option<SlabMaterial>,
    /// A lesion to insert (breast; repeatable). `spiculated:DIAM:SPICULES:LENGTH`,
    /// `mass:A,B,C` (semi-axes) or `calc:COUNT:MIN:MAX:SPREAD[:oxalate]` (mm), optionally followed
    /// by `@X,Y,Z` (centre in mm); without a centre it goes to a random spot in glandular tissue.
    #[arg(long = "lesion", value_name = "SPEC", allow_hyphen_values = true)]
    lesions: Vec<String>,
    /// JSON file with the full parameters of the chosen kind (fields not given take defaults).
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,
    /// zlib-compress the volume (`phantom.zraw`).
    #[arg(long)]
    compress: bool,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
}

fn read_params<T: serde::de::DeserializeOwned + Default>(path: Option<&Path>) -> anyhow::Result<T> {
    match path {
        None => Ok(T::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
        }
    }
}

fn floats(s: &str, what: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().with_context(|| format!("{what}: `{x}` is not a number")))
        .collect::<anyhow::Result<_>>()?;
    if v.len() != n {
        bail!("{what}: expected {n} comma-separated numbers, got `{s}`");
    }
    Ok(v)
}

/// Parses one `--lesion` spec.
fn parse_lesion(spec: &str) -> anyhow::Result<LesionSpec> {
    let (body, centre) = match spec.split_once('@') {
        Some((b, c)) => (b, Some(floats(c, "--lesion centre", 3)?)),
        None => (spec, None),
    };
    let parts: Vec<&str> = body.split(':').collect();
    let num = |i: usize, what: &str| -> anyhow::Result<f64> {
        let s = parts.get(i).with_context(|| format!("--lesion `{spec}`: missing {what}"))?;
        s.trim().parse::<f64>().with_context(|| format!("--lesion `{spec}`: {what} `{s}` is not a number"))
    };
    let count = |i: usize, what: &str| -> anyhow::Result<u32> {
        let s = parts.get(i).with_context(|| format!("--lesion `{spec}`: missing {what}"))?;
        s.trim().parse::<u32>().with_context(|| format!("--lesion `{spec}`: {what} `{s}` is not a whole number"))
    };
    let lesion = match parts[0] {
        "spiculated" => {
            LesionSpec::spiculated(num(1, "diameter")?, count(2, "spicule count")?, num(3, "spicule length")?)
        }
        "mass" => {
            let axes = floats(parts.get(1).copied().unwrap_or(""), "--lesion mass semi-axes", 3)?;
            LesionSpec::mass([axes[0], axes[1], axes[2]])
        }
        "calc" => {
            let material = match parts.get(5).map(|s| s.trim()) {
                None | Some("hydroxyapatite") => CalcMaterial::Hydroxyapatite,
                Some("oxalate") | Some("calcium_oxalate") => CalcMaterial::CalciumOxalate,
                Some(m) => bail!("--lesion `{spec}`: unknown calcification material `{m}` (hydroxyapatite, oxalate)"),
            };
            LesionSpec::calcifications(
                count(1, "count")?,
                num(2, "min diameter")?,
                num(3, "max diameter")?,
                num(4, "spread")?,
                material,
            )
        }
        other => bail!("--lesion `{spec}`: unknown lesion type `{other}` (spiculated, mass, calc)"),
    };
    Ok(match centre {
        Some(c) => lesion.at([c[0], c[1], c[2]]),
        None => lesion,
    })
}

fn apply_slab(args: &PhantomArgs, s: &mut SlabParams) {
    if let Some(v) = args.thickness_mm {
        s.thickness_mm = v;
    }
    if let Some(v) = args.glandular_fraction {
        s.glandular_fraction = v;
    }
    if let Some(v) = args.voxel_mm {
        s.voxel_mm = v;
    }
    if let Some(v) = args.support_height_mm {
        s.support_height_mm = v;
    }
    if let Some(m) = args.material {
        s.material = m;
    }
}

fn build(args: &PhantomArgs) -> anyhow::Result<Phantom> {
    if args.kind != Kind::Breast && !args.lesions.is_empty() {
        bail!("--lesion applies to --kind breast only");
    }
    let params = args.params.as_deref();
    let phantom = match args.kind {
        Kind::Breast => {
            let mut p: BreastParams = read_params(params)?;
            if let Some(v) = args.thickness_mm {
                p.thickness_mm = v;
            }
            if let Some(v) = args.glandular_fraction {
                p.glandular_fraction = v;
            }
            if let Some(v) = args.seed {
                p.seed = v;
            }
            if let Some(v) = args.voxel_mm {
                p.voxel_mm = v;
            }
            if let Some(v) = args.support_height_mm {
                p.support_height_mm = v;
            }
            for l in &args.lesions {
                p.lesions.push(parse_lesion(l)?);
            }
            Phantom::breast(&p)?
        }
        Kind::Slab => {
            let mut p: SlabParams = read_params(params)?;
            apply_slab(args, &mut p);
            Phantom::slab(&p)?
        }
        Kind::Beads => {
            let mut p: BeadParams = read_params(params)?;
            apply_slab(args, &mut p.slab);
            Phantom::beads(&p)?
        }
        Kind::Accreditation => {
            let mut p: AccreditationParams = read_params(params)?;
            if let Some(v) = args.thickness_mm {
                p.thickness_mm = v;
            }
            if let Some(v) = args.voxel_mm {
                p.voxel_mm = v;
            }
            if let Some(v) = args.support_height_mm {
                p.support_height_mm = v;
            }
            Phantom::accreditation(&p)?
        }
    };
    Ok(phantom)
}

/// Generates the phantom and writes its files.
pub fn run(args: &PhantomArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let phantom = build(args).context("invalid phantom parameters")?;
    let g = phantom.grid();
    println!(
        "{} phantom: {} x {} x {} voxels of {} mm ({:.0} MB of labels), minimum corner {:?} mm",
        phantom.ground_truth().phantom,
        g.nx,
        g.ny,
        g.nz,
        g.cubic_voxel_mm(),
        g.len() as f64 / 1e6,
        g.min_corner_mm
    );
    let written = write_outputs(&phantom, &args.out, args.compress)
        .with_context(|| format!("writing the phantom to {}", args.out.display()))?;
    if let Some(b) = &written.truth.breast {
        if let Some(m) = b.glandular_fraction_measured {
            println!("glandular fraction: requested {:.4}, measured {m:.4}", b.glandular_fraction_requested);
        }
    }
    for o in &written.truth.objects {
        println!(
            "  object {:>3} label {:>3} {:<22} {:<15} centre ({:.1}, {:.1}, {:.1}) mm, {} voxels",
            o.id,
            o.label,
            o.kind.name(),
            o.material.name(),
            o.centre_mm[0],
            o.centre_mm[1],
            o.centre_mm[2],
            o.voxel_count.unwrap_or(0)
        );
    }
    for f in &written.files {
        println!("wrote {}", f.display());
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tomolab_phantom::LesionKind;

    #[test]
    fn lesion_specs_parse() {
        let l = parse_lesion("spiculated:8:12:5@1,40,45").unwrap();
        assert_eq!(l.centre_mm, Some([1.0, 40.0, 45.0]));
        assert!(matches!(l.kind, LesionKind::SpiculatedMass { spicule_count: 12, .. }));
        let l = parse_lesion("calc:10:0.1:0.3:6:oxalate").unwrap();
        assert!(matches!(l.kind, LesionKind::CalcificationCluster { material: CalcMaterial::CalciumOxalate, .. }));
        assert!(parse_lesion("mass:1,2").is_err());
        assert!(parse_lesion("blob:3").is_err());
    }
}
