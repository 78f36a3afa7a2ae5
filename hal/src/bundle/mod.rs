//! The acquisition bundle: an open on-disk layout a physicist can read without our code.
//!
//! ```text
//! DIR/acquisition.json   {format, format_version, acquisition: {geometry, views (poses, exposures), dose,
//!                        status, ...}, arrays: {frames, dark, flood}}
//! DIR/frames.npy         float32 [views, rows, cols], raw detector values
//! DIR/dark.npy           float32 [rows, cols] (absent if never acquired)
//! DIR/flood.npy          float32 [rows, cols], open-field signal per mAs, dark-subtracted (absent if never acquired)
//!
//! Line integrals: -ln((frames[k] - dark) / (flood * views[k].exposure.mas)).
//! ```
//!
//! In Python: `json.load(open("acquisition.json"))` and `numpy.load("frames.npy")`. Every array's CRC-32 is in
//! the manifest, so a truncated or altered file is caught on load. Arrays are written first and the JSON last,
//! each through a temporary file and a rename, so a crash never leaves a bundle that looks complete. Saving
//! refuses to overwrite an existing bundle. Loading also accepts uint16 arrays (as real detectors deliver),
//! converting them exactly to float32.
//!
//! # What loading checks
//!
//! The CRCs protect the bytes, not the meaning (a tool can rewrite an array and its CRC), so loading also
//! validates, and every error names the file and the field:
//!
//! - **Files**: only regular files are opened. A FIFO, device, socket or directory in place of a file is
//!   refused (a FIFO would block forever, `/dev/zero` never ends). Symlinks are followed: a link to a regular
//!   file loads (bundles may share calibration files), a link to anything else is refused. The type is checked
//!   before opening and again on the open handle.
//! - **Sizes, before allocating**: `acquisition.json` is read up to [`DEFAULT_MAX_JSON_BYTES`] (64 MiB); an
//!   array is read only if its manifest shape fits the pixel budget ([`DEFAULT_MAX_PIXEL_BYTES`], 8 GiB of
//!   float32 over all arrays, override with [`MAX_PIXEL_BYTES_ENV`] or [`LoadLimits`]), and never beyond
//!   the length its shape and dtype declare plus [`MAX_NPY_HEADER_BYTES`]; the file must hold exactly header
//!   plus declared data.
//! - **Manifest against file**: the manifest `dtype` (`<f4` or `<u2`) must equal the NPY header's `descr`,
//!   and both shapes must equal what the metadata implies.
//! - **Metadata** ([`validate_meta`]): units in range (through the newtypes), detector and arc geometry valid,
//!   angles finite and within one turn, pose coordinates finite and within [`MAX_COORDINATE_MM`], pixel steps
//!   equal to the detector pitch within [`PITCH_TOLERANCE`], every view's exposure present in the exposure
//!   log in order, and a view that ended as planned within [`MAS_TOLERANCE`] of the technique's mAs.
//! - **Pixels**: raw frames must be finite; a frame with NaN or infinite pixels is refused with its view
//!   index and the count (a detector's defective pixels are finite values; non-finite ones mean a broken
//!   file or pipeline). The dark must be finite; the flood finite and positive in at least half its pixels
//!   (non-positive flood pixels are treated as defective by reconstruction, an all-zero flood is refused).
//!
//! Peak memory while loading is about twice the decoded pixel data (file bytes and values).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::acquisition::{Acquisition, AcquisitionMeta};
use crate::devices::Frame;

mod validate;

pub use validate::validate_meta;
pub(crate) use validate::validate_pixels;

/// Name of the metadata file inside a bundle directory.
pub const METADATA_FILE: &str = "acquisition.json";
/// Value of the `format` field.
pub const FORMAT_NAME: &str = "tomolab-acquisition";
/// Current layout version.
pub const FORMAT_VERSION: u32 = 1;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A bundle could not be saved or loaded. Every variant names the file, and the field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{}: cannot {action}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content is malformed or inconsistent with the rest of the bundle.
    #[error("{}: field `{field}`: {problem}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field (a JSON path, or the array's manifest entry).
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The target directory already holds a bundle.
    #[error("{}: already contains an acquisition; refusing to overwrite it", dir.display())]
    Exists {
        /// The directory.
        dir: PathBuf,
    },
}

fn invalid(file: &Path, field: impl Into<String>, problem: impl Into<String>) -> BundleError {
    BundleError::Invalid { file: file.to_owned(), field: field.into(), problem: problem.into() }
}

fn io_err<'a>(file: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> BundleError + 'a {
    move |source| BundleError::Io { file: file.to_owned(), action, source }
}

/// Manifest entry for one array file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayEntry {
    /// File name inside the bundle.
    pub file: String,
    /// NumPy dtype string of the stored array.
    pub dtype: String,
    /// Array shape (C order).
    pub shape: Vec<u64>,
    /// CRC-32 (ISO-HDLC, as zlib.crc32) of the whole .npy file.
    pub crc32: u32,
}

/// The array files of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayManifest {
    /// Raw frames, [views, rows, cols].
    pub frames: ArrayEntry,
    /// Dark frame, [rows, cols].
    pub dark: Option<ArrayEntry>,
    /// Flood frame, [rows, cols].
    pub flood: Option<ArrayEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    format_version: u32,
    acquisition: AcquisitionMeta,
    arrays: ArrayManifest,
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
) -> Result<(), BundleError> {
    let tmp = path.with_extension("tmp");
    let file = fs::File::create(&tmp).map_err(io_err(&tmp, "create"))?;
    let mut out = BufWriter::new(file);
    write(&mut out).map_err(io_err(&tmp, "write"))?;
    let file =
        out.into_inner().map_err(|e| BundleError::Io { file: tmp.clone(), action: "write", source: e.into_error() })?;
    file.sync_all().map_err(io_err(&tmp, "sync"))?;
    fs::rename(&tmp, path).map_err(io_err(path, "rename into place"))
}

fn write_array(
    dir: &Path,
    name: &str,
    shape: &[u64],
    data: impl Iterator<Item = f32>,
) -> Result<ArrayEntry, BundleError> {
    use npyz::WriterBuilder;
    let path = dir.join(name);
    write_atomically(&path, |out| {
        let mut writer = npyz::WriteOptions::new().default_dtype().shape(shape).writer(out).begin_nd()?;
        writer.extend(data)?;
        writer.finish()
    })?;
    let bytes = fs::read(&path).map_err(io_err(&path, "read back"))?;
    Ok(ArrayEntry { file: name.to_owned(), dtype: "<f4".into(), shape: shape.to_vec(), crc32: CRC32.checksum(&bytes) })
}

/// Writes `acquisition` as a new bundle in `dir` (created if missing).
pub fn save(acquisition: &Acquisition, dir: &Path) -> Result<(), BundleError> {
    let meta_path = dir.join(METADATA_FILE);
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    if meta_path.exists() {
        return Err(BundleError::Exists { dir: dir.to_owned() });
    }
    let det = &acquisition.meta.detector;
    let (rows, cols) = (det.rows as u64, det.cols as u64);
    for (i, frame) in acquisition.frames.iter().enumerate() {
        if (frame.rows, frame.cols) != (det.rows, det.cols) || frame.data.len() != det.pixel_count() {
            return Err(invalid(
                &dir.join("frames.npy"),
                format!("frames[{i}]"),
                "frame size differs from the detector",
            ));
        }
    }
    if acquisition.frames.len() != acquisition.meta.views.len() {
        return Err(invalid(&meta_path, "views", "one view record per frame is required"));
    }
    let frames = write_array(
        dir,
        "frames.npy",
        &[acquisition.frames.len() as u64, rows, cols],
        acquisition.frames.iter().flat_map(|f| f.data.iter().copied()),
    )?;
    let single = |name: &str, frame: &Option<Frame>| -> Result<Option<ArrayEntry>, BundleError> {
        frame
            .as_ref()
            .map(|f| write_array(dir, name, &[f.rows as u64, f.cols as u64], f.data.iter().copied()))
            .transpose()
    };
    let dark = single("dark.npy", &acquisition.dark)?;
    let flood = single("flood.npy", &acquisition.flood)?;
    let doc = Document {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        acquisition: acquisition.meta.clone(),
        arrays: ArrayManifest { frames, dark, flood },
    };
    write_atomically(&meta_path, |out| {
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    })
}

/// What loading may read and allocate. Everything is checked before the allocation it guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Largest `acquisition.json` accepted, bytes (default [`DEFAULT_MAX_JSON_BYTES`]).
    pub max_json_bytes: u64,
    /// Largest total of decoded pixel data (frames + dark + flood as float32), bytes (default
    /// [`DEFAULT_MAX_PIXEL_BYTES`]). Loading briefly holds about twice this (file bytes and decoded values).
    pub max_pixel_bytes: u64,
}

/// Default bound on `acquisition.json`: 64 MiB (a 1000-view exam's metadata is well under 2 MiB).
pub const DEFAULT_MAX_JSON_BYTES: u64 = 64 << 20;
/// Default bound on decoded pixel data: 8 GiB (a 25-view 85 um full-field exam is about 1.2 GiB).
pub const DEFAULT_MAX_PIXEL_BYTES: u64 = 8 << 30;
/// Environment variable that overrides [`LoadLimits::max_pixel_bytes`] for [`load`] (bytes, decimal).
pub const MAX_PIXEL_BYTES_ENV: &str = "TOMOLAB_BUNDLE_MAX_PIXEL_BYTES";
/// Largest NPY header accepted, bytes (NumPy itself writes 64..4096).
pub const MAX_NPY_HEADER_BYTES: u64 = 1 << 16;
/// Largest coordinate magnitude accepted in a pose, mm (10 m: no scanner is larger).
pub const MAX_COORDINATE_MM: f64 = 1.0e4;
/// Relative tolerance between a pose's pixel steps and the detector pitch.
pub const PITCH_TOLERANCE: f64 = 0.01;
/// Relative tolerance between a planned view's delivered mAs and the technique's mAs per view.
pub const MAS_TOLERANCE: f64 = 0.05;

impl Default for LoadLimits {
    fn default() -> Self {
        Self { max_json_bytes: DEFAULT_MAX_JSON_BYTES, max_pixel_bytes: DEFAULT_MAX_PIXEL_BYTES }
    }
}

impl LoadLimits {
    /// The defaults, with [`MAX_PIXEL_BYTES_ENV`] applied when it holds a number.
    pub fn from_env() -> Self {
        let mut limits = Self::default();
        if let Some(v) = std::env::var(MAX_PIXEL_BYTES_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            limits.max_pixel_bytes = v;
        }
        limits
    }
}

/// Reads a whole file, refusing anything but a regular file (a FIFO would block forever, `/dev/zero` never
/// ends) and anything larger than `max_len` bytes. Symlinks are followed: a link to a regular file is fine,
/// a link to a device or FIFO is refused. The type is checked before opening and again on the open handle;
/// reading is bounded to `max_len` whatever the file does meanwhile.
fn read_regular(path: &Path, field: &str, max_len: u64) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    let not_regular =
        |kind: &str| invalid(path, field, format!("is a {kind}, not a regular file; refusing to read it"));
    let kind_of = |m: &fs::Metadata| {
        let t = m.file_type();
        if t.is_dir() { "directory" } else { "FIFO, device or socket" }
    };
    let meta = fs::metadata(path).map_err(io_err(path, "read"))?;
    if !meta.is_file() {
        return Err(not_regular(kind_of(&meta)));
    }
    let too_big = |len: u64| invalid(path, field, format!("{len} bytes, more than the {max_len} allowed"));
    if meta.len() > max_len {
        return Err(too_big(meta.len()));
    }
    let file = fs::File::open(path).map_err(io_err(path, "read"))?;
    let meta = file.metadata().map_err(io_err(path, "read"))?;
    if !meta.is_file() {
        return Err(not_regular(kind_of(&meta)));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(max_len)).unwrap_or(0));
    file.take(max_len.saturating_add(1)).read_to_end(&mut bytes).map_err(io_err(path, "read"))?;
    if bytes.len() as u64 > max_len {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn item_size(dtype: &str) -> Option<u64> {
    match dtype {
        "<f4" => Some(4),
        "<u2" => Some(2),
        _ => None,
    }
}

/// Decodes one `.npy` file held in memory, checking its header against the manifest's `dtype` and the shape
/// the metadata implies, and its length against exactly header + data. Allocates at most one value per
/// element of `expected_shape` (plus the input), so the caller bounds memory by bounding the shape.
///
/// `file` and `field` name the array in errors. Public for tools and for the fuzz harness.
pub fn decode_npy(
    bytes: &[u8],
    file: &Path,
    field: &str,
    dtype: &str,
    expected_shape: &[u64],
) -> Result<Vec<f32>, BundleError> {
    let size = item_size(dtype).ok_or_else(|| {
        invalid(file, format!("arrays.{field}.dtype"), format!("`{dtype}` unsupported; use <f4 or <u2"))
    })?;
    let count = expected_shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let data_len = count
        .and_then(|c| c.checked_mul(size))
        .ok_or_else(|| invalid(file, format!("arrays.{field}.shape"), format!("{expected_shape:?} overflows")))?;
    // The preamble: magic, version, header length (u16 in v1, u32 in v2/v3).
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(invalid(file, "header", "not an .npy file (bad magic)"));
    }
    let header_end = match bytes[6] {
        1 => 10 + u64::from(u16::from_le_bytes([bytes[8], bytes[9]])),
        2 | 3 if bytes.len() >= 12 => 12 + u64::from(u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])),
        v => return Err(invalid(file, "header", format!("unsupported .npy version {v}"))),
    };
    if header_end > MAX_NPY_HEADER_BYTES {
        return Err(invalid(file, "header", format!("{header_end} bytes, more than {MAX_NPY_HEADER_BYTES}")));
    }
    let actual_data = (bytes.len() as u64).checked_sub(header_end);
    if actual_data != Some(data_len) {
        return Err(invalid(
            file,
            "data",
            format!(
                "{} data bytes after the header, expected {data_len} ({expected_shape:?} x {size}-byte `{dtype}`)",
                actual_data.map_or_else(|| "no".to_owned(), |d| d.to_string())
            ),
        ));
    }
    let npy = npyz::NpyFile::new(bytes).map_err(|e| invalid(file, "header", e.to_string()))?;
    if npy.shape() != expected_shape {
        return Err(invalid(file, "shape", format!("{:?}, expected {expected_shape:?}", npy.shape())));
    }
    if npy.order() != npyz::Order::C {
        return Err(invalid(file, "fortran_order", "only C-order arrays are supported"));
    }
    let descr = npy.dtype().descr();
    let stored = descr.trim_matches('\'');
    if stored != dtype {
        return Err(invalid(
            file,
            "descr",
            format!("the file holds `{stored}` but the manifest's arrays.{field}.dtype says `{dtype}`"),
        ));
    }
    let data = match dtype {
        "<f4" => npy.into_vec::<f32>(),
        _ => npy.into_vec::<u16>().map(|v| v.into_iter().map(f32::from).collect()),
    }
    .map_err(|e| invalid(file, "data", e.to_string()))?;
    if Some(data.len() as u64) != count {
        return Err(invalid(file, "data", format!("{} values, expected {count:?}", data.len())));
    }
    Ok(data)
}

fn read_array(
    dir: &Path,
    field: &str,
    entry: &ArrayEntry,
    expected_shape: &[u64],
    budget: &mut u64,
) -> Result<Vec<f32>, BundleError> {
    let meta_path = dir.join(METADATA_FILE);
    if entry.file.is_empty() || entry.file.contains(['/', '\\', '\0']) || entry.file.starts_with('.') {
        return Err(invalid(&meta_path, format!("arrays.{field}.file"), "must be a plain file name"));
    }
    if entry.shape != expected_shape {
        return Err(invalid(
            &meta_path,
            format!("arrays.{field}.shape"),
            format!("{:?} is inconsistent with the metadata, which implies {expected_shape:?}", entry.shape),
        ));
    }
    let size = item_size(&entry.dtype).ok_or_else(|| {
        invalid(&meta_path, format!("arrays.{field}.dtype"), format!("`{}` unsupported; use <f4 or <u2", entry.dtype))
    })?;
    let count = expected_shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
    let decoded = count.saturating_mul(4);
    if decoded > *budget {
        return Err(invalid(
            &meta_path,
            format!("arrays.{field}.shape"),
            format!(
                "{expected_shape:?} needs {decoded} bytes in memory, above the remaining limit of {budget} bytes \
                 (raise it with {MAX_PIXEL_BYTES_ENV} or LoadLimits)"
            ),
        ));
    }
    *budget -= decoded;
    let path = dir.join(&entry.file);
    let max_len = count.saturating_mul(size).saturating_add(MAX_NPY_HEADER_BYTES);
    let bytes = read_regular(&path, &format!("arrays.{field}.file"), max_len)?;
    let crc = CRC32.checksum(&bytes);
    if crc != entry.crc32 {
        return Err(invalid(
            &path,
            format!("arrays.{field}.crc32"),
            format!(
                "checksum {crc:#010x} does not match the manifest's {:#010x}: file truncated or altered",
                entry.crc32
            ),
        ));
    }
    decode_npy(&bytes, &path, field, &entry.dtype, expected_shape)
}

/// Parses and validates `acquisition.json` held in memory: syntax, format and version, every unit, and the
/// meaning of the metadata (see [`validate_meta`]). `file` names the file in errors. Public for tools and
/// for the fuzz harness.
pub fn parse_metadata(bytes: &[u8], file: &Path) -> Result<(AcquisitionMeta, ArrayManifest), BundleError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let doc: Document = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        invalid(file, field, e.into_inner().to_string())
    })?;
    if doc.format != FORMAT_NAME {
        return Err(invalid(file, "format", format!("`{}` is not `{FORMAT_NAME}`", doc.format)));
    }
    if doc.format_version != FORMAT_VERSION {
        return Err(invalid(
            file,
            "format_version",
            format!("{} is not supported (expected {FORMAT_VERSION})", doc.format_version),
        ));
    }
    validate_meta(&doc.acquisition, file)?;
    Ok((doc.acquisition, doc.arrays))
}

/// Reads a bundle with the default limits ([`LoadLimits::from_env`]): see [`load_with_limits`]. A directory
/// holding only an interrupted exam's journal loads as the partial acquisition it recorded (see
/// [`crate::journal`]), with status `aborted`.
pub fn load(dir: &Path) -> Result<Acquisition, BundleError> {
    load_with_limits(dir, &LoadLimits::from_env())
}

/// Reads a bundle, checking every checksum, shape, cross-reference and value range, reading only regular
/// files and never more than the manifest declares (nor more than `limits`).
pub fn load_with_limits(dir: &Path, limits: &LoadLimits) -> Result<Acquisition, BundleError> {
    let meta_path = dir.join(METADATA_FILE);
    // An interrupted exam leaves a journal and no metadata file: recover its views, marked incomplete.
    if crate::journal::is_partial(dir) {
        return crate::journal::recover(dir, limits);
    }
    let bytes = read_regular(&meta_path, "file", limits.max_json_bytes)?;
    let (meta, arrays) = parse_metadata(&bytes, &meta_path)?;
    drop(bytes);
    let (rows, cols) = (meta.detector.rows, meta.detector.cols);
    let n = meta.views.len();
    let mut budget = limits.max_pixel_bytes;
    let frame_shape = [n as u64, rows as u64, cols as u64];
    let all = read_array(dir, "frames", &arrays.frames, &frame_shape, &mut budget)?;
    let frames = if rows * cols == 0 {
        Vec::new()
    } else {
        all.chunks_exact(rows * cols).map(|c| Frame { cols, rows, data: c.to_vec() }).collect()
    };
    drop(all);
    let mut single = |field: &str, entry: &Option<ArrayEntry>| -> Result<Option<Frame>, BundleError> {
        entry
            .as_ref()
            .map(|e| {
                read_array(dir, field, e, &[rows as u64, cols as u64], &mut budget).map(|data| Frame {
                    cols,
                    rows,
                    data,
                })
            })
            .transpose()
    };
    let dark = single("dark", &arrays.dark)?;
    let flood = single("flood", &arrays.flood)?;
    let acq = Acquisition { meta, frames, dark, flood };
    validate_pixels(dir, &acq)?;
    Ok(acq)
}
