//! Streaming an exam to disk as it is acquired, so a killed process loses nothing it had acquired.
//!
//! While an exam runs, the bundle directory holds an append-only journal beside raw pixel files:
//!
//! ```text
//! DIR/journal.jsonl   one JSON object per line: a header, then one line per acquired view
//! DIR/frames.raw      float32 little-endian, rows x cols per view, appended view by view
//! DIR/dark.raw        float32 little-endian, rows x cols (written with the first view)
//! DIR/flood.raw       float32 little-endian, rows x cols (written with the first view)
//! ```
//!
//! Order of each write: the pixels are appended and synced first, then the journal line that describes them
//! (with their CRC-32) is appended and synced. A line counts only if it is complete (newline-terminated, valid
//! JSON, next in sequence) and the pixel bytes it describes are present with its CRC, so recovery reads the
//! longest valid prefix whatever instant the process died at. The journal holds no `acquisition.json`; when
//! the exam ends the caller writes the full bundle with [`crate::bundle::save`] and then removes the journal
//! with [`JournalWriter::finish`]. A directory with a journal and no `acquisition.json` therefore holds the
//! leftovers of an interrupted exam: [`crate::bundle::load`] recovers it through [`recover`], with status
//! `aborted` (reason `interrupted`), so it is never taken for a complete acquisition.
//!
//! Recovery is bounded: the journal is read up to [`crate::bundle::LoadLimits::max_json_bytes`], pixel data
//! only up to what the valid lines describe and within [`crate::bundle::LoadLimits::max_pixel_bytes`], and only
//! regular files are opened.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::acquisition::{AbortReason, Acquisition, AcquisitionMeta, ExamStatus, ExposureLogEntry, ViewRecord};
use crate::bundle::{BundleError, LoadLimits};
use crate::devices::Frame;

/// The journal file inside a bundle directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Raw frames, appended per view.
pub const FRAMES_FILE: &str = "frames.raw";
/// Raw dark frame.
pub const DARK_FILE: &str = "dark.raw";
/// Raw flood frame.
pub const FLOOD_FILE: &str = "flood.raw";
/// Every file the journal writes (and [`remove`] deletes).
pub const FILES: [&str; 4] = [JOURNAL_FILE, FRAMES_FILE, DARK_FILE, FLOOD_FILE];
/// Value of the header's `format` field.
pub const FORMAT_NAME: &str = "tomolab-journal";
/// Current journal version.
pub const FORMAT_VERSION: u32 = 1;
/// Largest `label` accepted in the header, bytes.
pub const MAX_LABEL_BYTES: usize = 1 << 20;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A raw calibration file's CRC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
enum Entry {
    Header {
        format: String,
        format_version: u32,
        /// What produced the exam (the CLI stores its effective configuration), for resume checks.
        label: String,
    },
    View {
        index: usize,
        /// The metadata so far, without views and exposures (those come line by line).
        head: Box<AcquisitionMeta>,
        view: Box<ViewRecord>,
        /// Exposures logged since the previous line (a pre-shot, then this view's).
        exposures: Vec<ExposureLogEntry>,
        /// CRC-32 of this view's bytes in `frames.raw`.
        crc32: u32,
        /// Calibration files, on the first line only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dark: Option<RawEntry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flood: Option<RawEntry>,
    },
}

fn invalid(file: &Path, field: impl Into<String>, problem: impl Into<String>) -> BundleError {
    BundleError::Invalid { file: file.to_owned(), field: field.into(), problem: problem.into() }
}

fn io_err<'a>(file: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> BundleError + 'a {
    move |source| BundleError::Io { file: file.to_owned(), action, source }
}

fn le_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes the journal of one exam. Implements [`crate::sequencer::ViewObserver`].
#[derive(Debug)]
pub struct JournalWriter {
    dir: PathBuf,
    journal: fs::File,
    frames: fs::File,
    views: usize,
    exposures: usize,
}

impl JournalWriter {
    /// Starts a journal in `dir` (created if missing). Refuses a directory that already holds a bundle or a
    /// journal. `label` is stored in the header (see [`label`]).
    pub fn create(dir: &Path, label: &str) -> Result<Self, BundleError> {
        fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        if dir.join(crate::bundle::METADATA_FILE).exists() || dir.join(JOURNAL_FILE).exists() {
            return Err(BundleError::Exists { dir: dir.to_owned() });
        }
        if label.len() > MAX_LABEL_BYTES {
            return Err(invalid(&dir.join(JOURNAL_FILE), "label", "longer than 1 MiB"));
        }
        let path = dir.join(FRAMES_FILE);
        let frames = fs::File::create(&path).map_err(io_err(&path, "create"))?;
        let path = dir.join(JOURNAL_FILE);
        let journal =
            fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(io_err(&path, "create"))?;
        let mut writer = Self { dir: dir.to_owned(), journal, frames, views: 0, exposures: 0 };
        writer.append(&Entry::Header {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            label: label.to_owned(),
        })?;
        Ok(writer)
    }

    fn append(&mut self, entry: &Entry) -> Result<(), BundleError> {
        let path = self.dir.join(JOURNAL_FILE);
        let mut line = serde_json::to_vec(entry).map_err(|e| invalid(&path, "entry", e.to_string()))?;
        line.push(b'\n');
        self.journal.write_all(&line).map_err(io_err(&path, "append to"))?;
        self.journal.sync_data().map_err(io_err(&path, "sync"))
    }

    fn write_raw(&self, name: &str, frame: &Frame) -> Result<RawEntry, BundleError> {
        let path = self.dir.join(name);
        let bytes = le_bytes(&frame.data);
        let mut file = fs::File::create(&path).map_err(io_err(&path, "create"))?;
        file.write_all(&bytes).map_err(io_err(&path, "write"))?;
        file.sync_data().map_err(io_err(&path, "sync"))?;
        Ok(RawEntry { crc32: CRC32.checksum(&bytes) })
    }

    /// Records the newest view of `meta` (its last view record), with its frame; on the first view also the
    /// calibration frames.
    pub fn record_view(
        &mut self,
        meta: &AcquisitionMeta,
        frame: &Frame,
        dark: Option<&Frame>,
        flood: Option<&Frame>,
    ) -> Result<(), BundleError> {
        let path = self.dir.join(JOURNAL_FILE);
        let Some(view) = meta.views.last() else {
            return Err(invalid(&path, "views", "record_view called with no view"));
        };
        if meta.views.len() != self.views + 1 {
            return Err(invalid(
                &path,
                "views",
                format!("view {} recorded after {} views", meta.views.len() - 1, self.views),
            ));
        }
        let (dark, flood) = if self.views == 0 {
            (
                dark.map(|d| self.write_raw(DARK_FILE, d)).transpose()?,
                flood.map(|f| self.write_raw(FLOOD_FILE, f)).transpose()?,
            )
        } else {
            (None, None)
        };
        let bytes = le_bytes(&frame.data);
        let frames_path = self.dir.join(FRAMES_FILE);
        self.frames.write_all(&bytes).map_err(io_err(&frames_path, "append to"))?;
        self.frames.sync_data().map_err(io_err(&frames_path, "sync"))?;
        let head = AcquisitionMeta { views: Vec::new(), exposures: Vec::new(), ..meta.clone() };
        let exposures = meta.exposures.get(self.exposures..).unwrap_or_default().to_vec();
        self.append(&Entry::View {
            index: self.views,
            head: Box::new(head),
            view: Box::new(*view),
            exposures,
            crc32: CRC32.checksum(&bytes),
            dark,
            flood,
        })?;
        self.views += 1;
        self.exposures = meta.exposures.len();
        Ok(())
    }

    /// Views recorded so far.
    pub fn views(&self) -> usize {
        self.views
    }

    /// Removes the journal files: call once the full bundle has been saved in the same directory.
    pub fn finish(self) -> Result<(), BundleError> {
        let dir = self.dir.clone();
        drop(self);
        remove(&dir)
    }
}

impl crate::sequencer::ViewObserver for JournalWriter {
    fn on_view(
        &mut self,
        meta: &AcquisitionMeta,
        frame: &Frame,
        dark: Option<&Frame>,
        flood: Option<&Frame>,
    ) -> Result<(), String> {
        self.record_view(meta, frame, dark, flood).map_err(|e| format!("streaming the view to disk: {e}"))
    }
}

/// Whether `dir` holds a journal.
pub fn exists(dir: &Path) -> bool {
    dir.join(JOURNAL_FILE).exists()
}

/// Whether `dir` holds only the leftovers of an interrupted exam: a journal and no `acquisition.json`.
pub fn is_partial(dir: &Path) -> bool {
    exists(dir) && !dir.join(crate::bundle::METADATA_FILE).exists()
}

/// Deletes the journal's files from `dir` (missing ones are fine); nothing else is touched.
pub fn remove(dir: &Path) -> Result<(), BundleError> {
    for name in FILES {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BundleError::Io { file: path, action: "remove", source: e }),
        }
    }
    Ok(())
}

/// Opens a regular file (symlinks followed; FIFOs, devices and directories refused).
fn open_regular(path: &Path) -> Result<(fs::File, u64), BundleError> {
    let file = fs::File::open(path).map_err(io_err(path, "read"))?;
    let meta = file.metadata().map_err(io_err(path, "read"))?;
    if !meta.is_file() {
        return Err(invalid(path, "file", "is not a regular file; refusing to read it"));
    }
    Ok((file, meta.len()))
}

fn read_bounded(path: &Path, max_len: u64) -> Result<Vec<u8>, BundleError> {
    let (file, len) = open_regular(path)?;
    if len > max_len {
        return Err(invalid(path, "file", format!("{len} bytes, more than the {max_len} allowed")));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max_len).read_to_end(&mut bytes).map_err(io_err(path, "read"))?;
    Ok(bytes)
}

/// The valid prefix of a journal's lines: the header's label and the view lines in sequence.
fn parse(bytes: &[u8], path: &Path) -> Result<(String, Vec<Entry>), BundleError> {
    let mut lines = bytes.split_inclusive(|&b| b == b'\n').take_while(|l| l.ends_with(b"\n"));
    let header = lines.next().ok_or_else(|| invalid(path, "header", "the journal is empty"))?;
    let label = match serde_json::from_slice::<Entry>(header) {
        Ok(Entry::Header { format, format_version, label }) => {
            if format != FORMAT_NAME || format_version != FORMAT_VERSION {
                return Err(invalid(
                    path,
                    "header.format",
                    format!("`{format}` version {format_version}, expected `{FORMAT_NAME}` version {FORMAT_VERSION}"),
                ));
            }
            label
        }
        Ok(_) => return Err(invalid(path, "header", "the first line is not a header")),
        Err(e) => return Err(invalid(path, "header", e.to_string())),
    };
    let mut views = Vec::new();
    for line in lines {
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry @ Entry::View { index, .. }) if index == views.len() => views.push(entry),
            // A torn or out-of-sequence line ends the valid prefix.
            _ => break,
        }
    }
    Ok((label, views))
}

/// The label stored in the journal's header (the CLI stores its effective configuration there).
pub fn label(dir: &Path) -> Result<String, BundleError> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = read_bounded(&path, LoadLimits::default().max_json_bytes)?;
    Ok(parse(&bytes, &path)?.0)
}

fn read_calibration(
    dir: &Path,
    name: &str,
    entry: Option<RawEntry>,
    cols: usize,
    rows: usize,
    budget: &mut u64,
) -> Result<Option<Frame>, BundleError> {
    let Some(entry) = entry else { return Ok(None) };
    let path = dir.join(name);
    let len = (cols as u64).saturating_mul(rows as u64).saturating_mul(4);
    if len > *budget {
        return Err(invalid(&path, "shape", format!("{cols}x{rows} needs {len} bytes, above the limit")));
    }
    *budget -= len;
    let bytes = read_bounded(&path, len)?;
    if bytes.len() as u64 != len || CRC32.checksum(&bytes) != entry.crc32 {
        return Err(invalid(&path, "crc32", "truncated or altered (length or checksum differs from the journal)"));
    }
    let data = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Some(Frame { cols, rows, data }))
}

/// Recovers the partial acquisition of an interrupted exam from `dir`'s journal: every view whose line and
/// pixels are complete, with status `aborted` (reason `interrupted`). The metadata is validated as a bundle's
/// is ([`crate::bundle::validate_meta`]), and so are the pixels.
pub fn recover(dir: &Path, limits: &LoadLimits) -> Result<Acquisition, BundleError> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = read_bounded(&path, limits.max_json_bytes)?;
    let (_, entries) = parse(&bytes, &path)?;
    drop(bytes);
    let mut meta: Option<AcquisitionMeta> = None;
    let mut calibration = (None, None);
    let mut crcs = Vec::new();
    for entry in entries {
        if let Entry::View { head, view, exposures, crc32, dark, flood, index } = entry {
            let mut m = *head;
            if let Some(prev) = meta.take() {
                m.views = prev.views;
                m.exposures = prev.exposures;
            }
            if index == 0 {
                calibration = (dark, flood);
            }
            m.views.push(*view);
            m.exposures.extend(exposures);
            crcs.push(crc32);
            meta = Some(m);
        }
    }
    let Some(mut meta) = meta else {
        return Err(invalid(&path, "views", "the interrupted exam recorded no view; nothing to recover"));
    };
    let (cols, rows) = (meta.detector.cols, meta.detector.rows);
    let frame_bytes = (cols as u64).saturating_mul(rows as u64).saturating_mul(4);
    let mut budget = limits.max_pixel_bytes;
    // Only views whose pixels are all there, with the journal's CRC, count.
    let frames_path = dir.join(FRAMES_FILE);
    let (mut file, len) = open_regular(&frames_path)?;
    let complete = usize::try_from(len / frame_bytes.max(1)).unwrap_or(usize::MAX).min(crcs.len());
    let total = frame_bytes.saturating_mul(complete as u64);
    if total > budget {
        return Err(invalid(&frames_path, "views", format!("{total} bytes of frames, above the limit of {budget}")));
    }
    budget -= total;
    let mut frames = Vec::with_capacity(complete);
    let mut buf = vec![0u8; usize::try_from(frame_bytes).unwrap_or(0)];
    file.rewind().map_err(io_err(&frames_path, "read"))?;
    for crc in &crcs[..complete] {
        file.read_exact(&mut buf).map_err(io_err(&frames_path, "read"))?;
        if CRC32.checksum(&buf) != *crc {
            break;
        }
        let data = buf.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        frames.push(Frame { cols, rows, data });
    }
    let n = frames.len();
    meta.views.truncate(n);
    // Exposures after the last recovered view were logged with views that did not survive; keep the log up to
    // and including the last recovered view's exposure.
    let mut seen = 0;
    let keep = meta
        .exposures
        .iter()
        .position(|e| {
            if e.purpose == crate::acquisition::ExposurePurpose::View {
                seen += 1;
            }
            seen > n
        })
        .unwrap_or(meta.exposures.len());
    meta.exposures.truncate(keep);
    meta.status = ExamStatus::Aborted {
        reason: AbortReason::Interrupted {
            message: format!(
                "recovered from the journal in {} after the exam stopped without finishing ({n} views recorded)",
                dir.display()
            ),
        },
        views_acquired: n,
    };
    crate::bundle::validate_meta(&meta, &path)?;
    let dark = read_calibration(dir, DARK_FILE, calibration.0, cols, rows, &mut budget)?;
    let flood = read_calibration(dir, FLOOD_FILE, calibration.1, cols, rows, &mut budget)?;
    let acq = Acquisition { meta, frames, dark, flood };
    crate::bundle::validate_pixels(dir, &acq)?;
    Ok(acq)
}

/// Number of views a journal holds in its valid prefix (without reading pixels), for progress and tests.
pub fn views_recorded(dir: &Path) -> Result<usize, BundleError> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = read_bounded(&path, LoadLimits::default().max_json_bytes)?;
    Ok(parse(&bytes, &path)?.1.len())
}
