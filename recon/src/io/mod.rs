//! Outputs: a 16-bit TIFF stack of slices, an NRRD volume with spacing and origin, and PNG previews.
//!
//! - **NRRD** (`.nrrd`, attached header, raw little-endian float32): `space directions` carry the voxel
//!   size and `space origin` the centre of voxel (0, 0, 0) in the scanner frame (mm). 3D Slicer, ITK,
//!   pynrrd and ParaView read it as is. [`read_nrrd`] reads back the files written here.
//! - **TIFF**: one 16-bit page per slice; the linear map to attenuation is in each page's
//!   ImageDescription as `mu_per_mm = offset + scale * value`, with the voxel size.
//! - **PNG**: 8-bit greyscale previews, windowed between two percentiles ([`write_preview_png`]: the one
//!   windowing rule of every tomolab preview).
//!
//! [`writers`] packages these as [`writers::ReconWriter`]s that take a
//! [`Reconstruction`](crate::pipeline::Reconstruction) and the acquisition's metadata.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::error::{Result, invalid, io_error};
use crate::geometry::Volume;
use tomolab_hal::VoxelGrid;

pub mod writers;

/// The linear map from 16-bit TIFF values to attenuation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TiffScaling {
    /// Attenuation of value 0, 1/mm.
    pub offset: f32,
    /// Attenuation per unit value, 1/mm.
    pub scale: f32,
}

impl TiffScaling {
    /// The map [`write_tiff_stack`] uses: 0 at the volume's smallest finite value, 65535 at its largest.
    pub fn for_volume(volume: &Volume) -> Self {
        let (lo, hi) = volume
            .data
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| if v.is_finite() { (a.min(v), b.max(v)) } else { (a, b) });
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        let scale = if hi > lo { (hi - lo) / 65535.0 } else { 1.0 };
        Self { offset: lo, scale }
    }
}

/// Writes every slice as a page of a 16-bit TIFF; values map linearly from the volume's range
/// ([`TiffScaling::for_volume`]).
pub fn write_tiff_stack(path: &Path, volume: &Volume) -> Result<TiffScaling> {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;
    let g = &volume.geometry;
    let scaling = TiffScaling::for_volume(volume);
    let (lo, scale) = (scaling.offset, scaling.scale);
    let file = fs::File::create(path).map_err(|e| io_error(path, "create", e))?;
    let mut enc = TiffEncoder::new(BufWriter::new(file)).map_err(|e| io_error(path, "write", e))?;
    let mut page = vec![0u16; g.slice_len()];
    for iz in 0..g.nz {
        for (p, &v) in page.iter_mut().zip(volume.slice(iz)) {
            *p = if v.is_finite() { ((v - lo) / scale).round().clamp(0.0, 65535.0) as u16 } else { 0 };
        }
        let desc = format!(
            "tomolab slice {iz}: mu_per_mm = {lo:e} + {scale:e} * value; z_mm = {}; voxel_mm = {} {} {}",
            g.slice_z_mm(iz),
            g.voxel_mm[0],
            g.voxel_mm[1],
            g.voxel_mm[2]
        );
        let mut image =
            enc.new_image::<colortype::Gray16>(g.nx as u32, g.ny as u32).map_err(|e| io_error(path, "write", e))?;
        image.encoder().write_tag(Tag::ImageDescription, desc.as_str()).map_err(|e| io_error(path, "write", e))?;
        image.write_data(&page).map_err(|e| io_error(path, "write", e))?;
    }
    Ok(scaling)
}

/// Writes the volume as an NRRD file with attached header (float32, raw, little endian).
pub fn write_nrrd(path: &Path, volume: &Volume) -> Result<()> {
    let g = &volume.geometry;
    let file = fs::File::create(path).map_err(|e| io_error(path, "create", e))?;
    let mut out = BufWriter::new(file);
    let origin = g.first_centre_mm();
    let header = format!(
        "NRRD0004\n# tomolab reconstruction: attenuation in 1/mm; scanner frame (x tube travel, y chest wall to nipple, z up), mm\n\
         type: float\ndimension: 3\nspace dimension: 3\nsizes: {} {} {}\n\
         space directions: ({},0,0) (0,{},0) (0,0,{})\nspace origin: ({},{},{})\nspace units: \"mm\" \"mm\" \"mm\"\n\
         kinds: domain domain domain\nendian: little\nencoding: raw\n\n",
        g.nx, g.ny, g.nz, g.voxel_mm[0], g.voxel_mm[1], g.voxel_mm[2], origin[0], origin[1], origin[2]
    );
    let write = |out: &mut BufWriter<fs::File>| -> std::io::Result<()> {
        out.write_all(header.as_bytes())?;
        for chunk in volume.data.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.write_all(&bytes)?;
        }
        out.flush()
    };
    write(&mut out).map_err(|e| io_error(path, "write", e))
}

/// Reads an NRRD file of the form [`write_nrrd`] writes (float32, raw, little endian, axis-aligned).
///
/// Only a regular file is read (a FIFO or device is refused; symlinks are followed), and at most a 64 KiB
/// header plus the grid limit ([`crate::geometry::max_voxels`]) of float32 data.
pub fn read_nrrd(path: &Path) -> Result<Volume> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, "read", e))?;
    if !meta.is_file() {
        return Err(invalid(path.display().to_string(), "not a regular file (FIFO, device or directory)"));
    }
    let max_len = (crate::geometry::max_voxels() as u64).saturating_mul(4).saturating_add(64 << 10);
    if meta.len() > max_len {
        return Err(invalid(
            path.display().to_string(),
            format!("{} bytes, more than the {max_len} allowed", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(max_len.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(|e| io_error(path, "read", e))?;
    if bytes.len() as u64 > max_len {
        return Err(invalid(path.display().to_string(), format!("more than the {max_len} bytes allowed")));
    }
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(|| invalid(path.display().to_string(), "no NRRD header end"))?;
    let header =
        std::str::from_utf8(&bytes[..split]).map_err(|_| invalid(path.display().to_string(), "header is not UTF-8"))?;
    if !header.starts_with("NRRD") {
        return Err(invalid(path.display().to_string(), "not an NRRD file"));
    }
    let field = |name: &str| -> Result<&str> {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(str::trim))
            .ok_or_else(|| invalid(format!("{}: {name}", path.display()), "missing"))
    };
    let bad = |name: &str, problem: &str| invalid(format!("{}: {name}", path.display()), problem.to_owned());
    if field("type")? != "float" || field("encoding")? != "raw" || field("endian")? != "little" {
        return Err(bad("type/encoding/endian", "only float, raw, little endian is supported"));
    }
    let nums = |s: &str| -> Vec<f64> {
        s.split(|c: char| c == '(' || c == ')' || c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .filter_map(|t| t.parse().ok())
            .collect()
    };
    let sizes = nums(field("sizes")?);
    let dirs = nums(field("space directions")?);
    let origin = nums(field("space origin")?);
    if sizes.len() != 3 || dirs.len() != 9 || origin.len() != 3 {
        return Err(bad("sizes/space directions/space origin", "expected a 3D axis-aligned volume"));
    }
    if sizes.iter().any(|&n| !(n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64)) {
        return Err(bad("sizes", "must be three positive integers"));
    }
    let geometry = VoxelGrid::from_first_centre(
        [sizes[0] as usize, sizes[1] as usize, sizes[2] as usize],
        [dirs[0], dirs[4], dirs[8]],
        [origin[0], origin[1], origin[2]],
    );
    crate::geometry::validate_grid(&geometry)?;
    let raw = &bytes[split + 2..];
    if raw.len() != geometry.len() * 4 {
        return Err(bad("data", &format!("{} bytes, expected {}", raw.len(), geometry.len() * 4)));
    }
    let data = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Volume { geometry, data })
}

/// Writes an 8-bit greyscale PNG of a row-major `cols` x `rows` image under the one windowing rule of
/// tomolab's previews ([`tomolab_hal::preview`]: 0.5th to 99.5th percentile), with recon's errors.
pub fn write_preview_png(path: &Path, image: &[f32], cols: usize, rows: usize) -> Result<()> {
    if image.len() != cols * rows || cols == 0 {
        return Err(invalid("image", format!("{} values for a {cols}x{rows} image", image.len())));
    }
    tomolab_hal::preview::write_png(path, image, cols, rows).map_err(|e| io_error(path, "write PNG", e))
}
