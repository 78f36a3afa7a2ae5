//! Files: MetaImage volumes, JSON tables and ground truth, PNG previews.
//!
//! The volume is written as MetaImage (`.mhd` header + `.raw` data, or zlib-compressed `.zraw`),
//! which ITK, 3D Slicer, ImageJ/Fiji and ParaView open. The header is a handful of `key = value`
//! lines, so it is written by hand (no maintained crate exists). `Offset` is the centre of voxel
//! (0, 0, 0), as MetaImage defines it ([`VoxelGrid::first_centre_mm`]).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde::Serialize;

use crate::error::{PhantomError, Result};
use crate::material::{Material, MaterialTable};
use crate::phantom::Phantom;
use crate::truth::GroundTruth;
use tomolab_hal::VoxelGrid;

use crate::volume::LabelVolume;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PhantomError + '_ {
    move |source| PhantomError::Io { path: path.to_path_buf(), source }
}

/// The MetaImage header of a u8 volume on `grid` whose data lives in `data_file` (a bare file
/// name, next to the header); `compressed_size` marks zlib-compressed data of that many bytes.
pub fn metaimage_header(grid: &VoxelGrid, data_file: &str, compressed_size: Option<u64>) -> String {
    let [dx, dy, dz] = grid.voxel_mm;
    let o = grid.first_centre_mm();
    let mut h = String::new();
    h.push_str("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n");
    match compressed_size {
        Some(n) => h.push_str(&format!("CompressedData = True\nCompressedDataSize = {n}\n")),
        None => h.push_str("CompressedData = False\n"),
    }
    h.push_str("TransformMatrix = 1 0 0 0 1 0 0 0 1\n");
    h.push_str(&format!("Offset = {} {} {}\n", o[0], o[1], o[2]));
    h.push_str("CenterOfRotation = 0 0 0\n");
    h.push_str(&format!("ElementSpacing = {dx} {dy} {dz}\n"));
    h.push_str(&format!("DimSize = {} {} {}\n", grid.nx, grid.ny, grid.nz));
    h.push_str("ElementType = MET_UCHAR\n");
    h.push_str(&format!("ElementDataFile = {data_file}\n"));
    h
}

/// Writes `volume` as `<stem>.mhd` + `<stem>.raw` (or `.zraw` if `compress`); returns the header path.
pub fn write_metaimage(stem: &Path, volume: &LabelVolume, compress: bool) -> Result<PathBuf> {
    let mut w = MetaImageWriter::create(stem, volume.grid(), compress)?;
    w.write(&volume.labels)?;
    w.finish()
}

/// A MetaImage written slab by slab: create, `write` the slices in order, `finish`.
#[derive(Debug)]
pub struct MetaImageWriter {
    header: PathBuf,
    data: PathBuf,
    grid: VoxelGrid,
    out: Out,
}

enum Out {
    Raw(BufWriter<File>),
    Zlib(ZlibEncoder<BufWriter<File>>),
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Out::Raw(_) => "Raw",
            Out::Zlib(_) => "Zlib",
        })
    }
}

impl MetaImageWriter {
    /// Opens `<stem>.raw` (or `<stem>.zraw`) for writing.
    pub fn create(stem: &Path, grid: VoxelGrid, compress: bool) -> Result<Self> {
        let header = stem.with_extension("mhd");
        let data = stem.with_extension(if compress { "zraw" } else { "raw" });
        let file = BufWriter::with_capacity(1 << 20, File::create(&data).map_err(io_err(&data))?);
        let out = if compress { Out::Zlib(ZlibEncoder::new(file, Compression::fast())) } else { Out::Raw(file) };
        Ok(Self { header, data, grid, out })
    }

    /// The data file (`.raw` or `.zraw`).
    pub fn data_path(&self) -> &Path {
        &self.data
    }

    /// Appends labels.
    pub fn write(&mut self, labels: &[u8]) -> Result<()> {
        let r = match &mut self.out {
            Out::Raw(w) => w.write_all(labels),
            Out::Zlib(w) => w.write_all(labels),
        };
        r.map_err(io_err(&self.data))
    }

    /// Flushes the data and writes the header; returns the header path.
    pub fn finish(self) -> Result<PathBuf> {
        let compressed = match self.out {
            Out::Raw(mut w) => {
                w.flush().map_err(io_err(&self.data))?;
                None
            }
            Out::Zlib(z) => {
                let mut w = z.finish().map_err(io_err(&self.data))?;
                w.flush().map_err(io_err(&self.data))?;
                Some(w.get_ref().metadata().map_err(io_err(&self.data))?.len())
            }
        };
        let name = self.data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = metaimage_header(&self.grid, &name, compressed);
        std::fs::write(&self.header, text).map_err(io_err(&self.header))?;
        Ok(self.header)
    }
}

/// Reads a u8 MetaImage written by this crate (uncompressed or zlib, identity transform,
/// isotropic spacing).
pub fn read_metaimage(header: &Path) -> Result<LabelVolume> {
    let bad = |reason: String| PhantomError::MetaImage { path: header.to_path_buf(), reason };
    let text = std::fs::read_to_string(header).map_err(io_err(header))?;
    let mut kv = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            kv.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let get = |k: &str| kv.get(k).ok_or_else(|| bad(format!("missing `{k}`")));
    let nums = |k: &str| -> Result<Vec<f64>> {
        get(k)?.split_whitespace().map(|s| s.parse::<f64>().map_err(|e| bad(format!("`{k}`: {e}")))).collect()
    };
    if get("ElementType")? != "MET_UCHAR" {
        return Err(bad("only MET_UCHAR is supported".into()));
    }
    let dims = nums("DimSize")?;
    let spacing = nums("ElementSpacing")?;
    let offset = nums("Offset")?;
    if dims.len() != 3 || spacing.len() != 3 || offset.len() != 3 {
        return Err(bad("DimSize, ElementSpacing and Offset need 3 values".into()));
    }
    if spacing.iter().any(|&s| (s - spacing[0]).abs() > 1e-12 * spacing[0].abs()) {
        return Err(bad("spacing must be isotropic".into()));
    }
    let v = spacing[0];
    let grid = VoxelGrid::cubic(
        [dims[0] as usize, dims[1] as usize, dims[2] as usize],
        v,
        [offset[0] - 0.5 * v, offset[1] - 0.5 * v, offset[2] - 0.5 * v],
    );
    let data = header.with_file_name(get("ElementDataFile")?);
    let file = File::open(&data).map_err(io_err(&data))?;
    let mut labels = Vec::with_capacity(crate::volume::checked_len(&grid)?);
    let compressed = kv.get("CompressedData").is_some_and(|s| s.eq_ignore_ascii_case("true"));
    if compressed {
        flate2::read::ZlibDecoder::new(std::io::BufReader::new(file)).read_to_end(&mut labels)
    } else {
        std::io::BufReader::new(file).read_to_end(&mut labels)
    }
    .map_err(io_err(&data))?;
    LabelVolume::new(grid, labels)
}

/// Writes pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|source| PhantomError::Json { path: path.to_path_buf(), source })?;
    std::fs::write(path, text + "\n").map_err(io_err(path))
}

/// Accumulates the PNG previews while slices stream past.
#[derive(Debug)]
pub struct Previews {
    grid: VoxelGrid,
    mu: [f32; 256],
    centre_k: usize,
    centre: Vec<u8>,
    projection: Vec<f32>,
}

impl Previews {
    /// Ready to receive the slices of `grid` whose labels mean what `table` says.
    pub fn new(grid: VoxelGrid, table: &MaterialTable) -> Self {
        let lookup = table.lookup();
        let mu = std::array::from_fn(|l| lookup[l].preview_mu_per_mm());
        Self { grid, mu, centre_k: grid.nz / 2, centre: Vec::new(), projection: vec![0.0; grid.slice_len()] }
    }

    /// Takes consecutive slices starting at slice `k0`.
    pub fn add(&mut self, k0: usize, labels: &[u8]) {
        let n = self.grid.slice_len();
        for (dk, slice) in labels.chunks(n).enumerate() {
            if k0 + dk == self.centre_k {
                self.centre = slice.to_vec();
            }
            for (p, &l) in self.projection.iter_mut().zip(slice) {
                *p += self.mu[l as usize];
            }
        }
    }

    /// Writes `<dir>/slice_central.png` (labels shaded by attenuation) and `<dir>/projection_summed.png` (sum
    /// of attenuation along z), brighter = more attenuating, both under the previews' one window
    /// ([`tomolab_hal::preview`]).
    /// Image rows run along y (chest wall at the top), columns along x.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let (w, h) = (self.grid.nx, self.grid.ny);
        let slice: Vec<f32> = self.centre.iter().map(|&l| self.mu[l as usize]).collect();
        let mut out = Vec::new();
        for (name, data) in [("slice_central.png", &slice), ("projection_summed.png", &self.projection)] {
            let path = dir.join(name);
            if data.len() == w * h {
                tomolab_hal::preview::write_png(&path, data, w, h)
                    .map_err(|source| PhantomError::Png { path: path.clone(), source })?;
                out.push(path);
            }
        }
        Ok(out)
    }
}

/// What [`write_outputs`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// The ground truth with voxel counts.
    pub truth: GroundTruth,
}

/// Generates `phantom` slab by slab into `dir` (created if missing): `phantom.mhd` + `phantom.raw`
/// (or `.zraw` with `compress`), `materials.json`, `ground_truth.json`, `slice_central.png` and
/// `projection_summed.png`. Memory use is one slab plus the previews, whatever the volume size.
pub fn write_outputs(phantom: &Phantom, dir: &Path, compress: bool) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let grid = phantom.grid();
    let mut writer = MetaImageWriter::create(&dir.join("phantom"), grid, compress)?;
    let mut previews = Previews::new(grid, phantom.materials());
    let mut write_err = None;
    let slices = (16usize << 20).div_ceil(grid.slice_len().max(1)).max(1);
    let truth = phantom.stream(slices, |k0, labels| {
        previews.add(k0, labels);
        writer.write(labels).map_err(|e| {
            let msg = e.to_string();
            write_err = Some(e);
            std::io::Error::other(msg)
        })
    });
    if let Some(e) = write_err {
        return Err(e);
    }
    let truth = truth?;
    let data_path = writer.data_path().to_path_buf();
    let mut files = vec![writer.finish()?, data_path];
    let table_path = dir.join("materials.json");
    write_json(&table_path, phantom.materials())?;
    files.push(table_path);
    let truth_path = dir.join("ground_truth.json");
    write_json(&truth_path, &truth)?;
    files.push(truth_path);
    files.extend(previews.write(dir)?);
    Ok(Written { files, truth })
}

/// Materials used by a table, for reports.
pub fn material_names(table: &MaterialTable) -> Vec<&'static str> {
    table.materials().into_iter().map(Material::name).collect()
}
