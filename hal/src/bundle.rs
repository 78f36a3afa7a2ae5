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

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::acquisition::{Acquisition, AcquisitionMeta};
use crate::devices::Frame;

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

fn read_array(dir: &Path, field: &str, entry: &ArrayEntry, expected_shape: &[u64]) -> Result<Vec<f32>, BundleError> {
    if entry.file.contains(['/', '\\']) || entry.file.starts_with('.') {
        return Err(invalid(&dir.join(METADATA_FILE), format!("arrays.{field}.file"), "must be a plain file name"));
    }
    let path = dir.join(&entry.file);
    let bytes = fs::read(&path).map_err(io_err(&path, "read"))?;
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
    if entry.shape != expected_shape {
        return Err(invalid(
            &dir.join(METADATA_FILE),
            format!("arrays.{field}.shape"),
            format!("{:?} is inconsistent with the metadata, which implies {expected_shape:?}", entry.shape),
        ));
    }
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| invalid(&path, "header", e.to_string()))?;
    if npy.shape() != expected_shape {
        return Err(invalid(&path, "shape", format!("{:?}, expected {expected_shape:?}", npy.shape())));
    }
    if npy.order() != npyz::Order::C {
        return Err(invalid(&path, "fortran_order", "only C-order arrays are supported"));
    }
    let descr = npy.dtype().descr();
    let data = match descr.as_str() {
        "'<f4'" => npy.into_vec::<f32>(),
        "'<u2'" => npy.into_vec::<u16>().map(|v| v.into_iter().map(f32::from).collect()),
        other => return Err(invalid(&path, "descr", format!("dtype {other} unsupported; use <f4 or <u2"))),
    }
    .map_err(|e| invalid(&path, "data", e.to_string()))?;
    let expected_len: u64 = expected_shape.iter().product();
    if data.len() as u64 != expected_len {
        return Err(invalid(&path, "data", format!("{} values, expected {expected_len}", data.len())));
    }
    Ok(data)
}

/// Reads a bundle, checking every checksum, shape and cross-reference.
pub fn load(dir: &Path) -> Result<Acquisition, BundleError> {
    let meta_path = dir.join(METADATA_FILE);
    let text = fs::read_to_string(&meta_path).map_err(io_err(&meta_path, "read"))?;
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    let doc: Document = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        invalid(&meta_path, field, e.into_inner().to_string())
    })?;
    if doc.format != FORMAT_NAME {
        return Err(invalid(&meta_path, "format", format!("`{}` is not `{FORMAT_NAME}`", doc.format)));
    }
    if doc.format_version != FORMAT_VERSION {
        return Err(invalid(
            &meta_path,
            "format_version",
            format!("{} is not supported (expected {FORMAT_VERSION})", doc.format_version),
        ));
    }
    let meta = doc.acquisition;
    meta.detector.validate().map_err(|e| invalid(&meta_path, e.field, e.problem))?;
    for (i, view) in meta.views.iter().enumerate() {
        let p = &view.pose;
        let finite = [p.source_mm, p.detector_centre_mm, p.u_step_mm, p.v_step_mm]
            .iter()
            .all(|v| v.iter().all(|c| c.is_finite()));
        if !finite {
            return Err(invalid(&meta_path, format!("acquisition.views[{i}].pose"), "non-finite coordinate"));
        }
    }
    let (rows, cols) = (meta.detector.rows, meta.detector.cols);
    let n = meta.views.len();
    let frame_shape = [n as u64, rows as u64, cols as u64];
    let all = read_array(dir, "frames", &doc.arrays.frames, &frame_shape)?;
    let frames = all.chunks_exact(rows * cols).map(|c| Frame { cols, rows, data: c.to_vec() }).collect();
    let single = |field: &str, entry: &Option<ArrayEntry>| -> Result<Option<Frame>, BundleError> {
        entry
            .as_ref()
            .map(|e| read_array(dir, field, e, &[rows as u64, cols as u64]).map(|data| Frame { cols, rows, data }))
            .transpose()
    };
    let dark = single("dark", &doc.arrays.dark)?;
    let flood = single("flood", &doc.arrays.flood)?;
    Ok(Acquisition { meta, frames, dark, flood })
}
