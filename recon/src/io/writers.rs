//! Output writers: each takes a [`Reconstruction`] and the acquisition's metadata and writes one format
//! into an output directory, so a new format (DICOM next) is one more [`ReconWriter`].
//!
//! [`standard_writers`] is what `tomolab recon` and `tomolab exam` write, in this order: `volume.nrrd`,
//! `slices.tif`, `previews/slice_NNN.png`, `synthetic2d.png`, then `recon.json` last, so a directory
//! holding `recon.json` holds a complete reconstruction.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tomolab_hal::AcquisitionMeta;

use super::{TiffScaling, write_nrrd, write_preview_png, write_tiff_stack};
use crate::error::{Result, io_error};
use crate::iterative::IterationReport;
use crate::pipeline::{Algorithm, Reconstruction};
use tomolab_hal::VoxelGrid;

/// One output format.
pub trait ReconWriter {
    /// Writes this format's files into `dir` (which exists) and returns their paths.
    ///
    /// # Contract
    /// Existing files of the same names are replaced; on error, files already written may remain.
    fn write(&self, dir: &Path, recon: &Reconstruction, meta: &AcquisitionMeta) -> Result<Vec<PathBuf>>;
}

/// `volume.nrrd`: float32 with spacing and origin ([`write_nrrd`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NrrdVolume;

impl ReconWriter for NrrdVolume {
    fn write(&self, dir: &Path, recon: &Reconstruction, _meta: &AcquisitionMeta) -> Result<Vec<PathBuf>> {
        let path = dir.join("volume.nrrd");
        write_nrrd(&path, &recon.volume)?;
        Ok(vec![path])
    }
}

/// `slices.tif`: one 16-bit page per slice ([`write_tiff_stack`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TiffSlices;

impl ReconWriter for TiffSlices {
    fn write(&self, dir: &Path, recon: &Reconstruction, _meta: &AcquisitionMeta) -> Result<Vec<PathBuf>> {
        let path = dir.join("slices.tif");
        write_tiff_stack(&path, &recon.volume)?;
        Ok(vec![path])
    }
}

/// `previews/slice_NNN.png`: `count` slices spread evenly from the first to the last (the middle one when
/// `count` is 1), each windowed by [`write_preview_png`]. The `previews` directory is made even for 0.
#[derive(Debug, Clone, Copy)]
pub struct SlicePreviews {
    /// Number of previews (at most one per slice).
    pub count: usize,
}

impl Default for SlicePreviews {
    fn default() -> Self {
        Self { count: 5 }
    }
}

impl SlicePreviews {
    /// The slice indices previewed in a volume of `nz` slices.
    pub fn slices(&self, nz: usize) -> Vec<usize> {
        let n = self.count.min(nz);
        (0..n).map(|i| if n == 1 { nz / 2 } else { (i * (nz - 1)) / (n - 1) }).collect()
    }
}

impl ReconWriter for SlicePreviews {
    fn write(&self, dir: &Path, recon: &Reconstruction, _meta: &AcquisitionMeta) -> Result<Vec<PathBuf>> {
        let previews = dir.join("previews");
        std::fs::create_dir_all(&previews).map_err(|e| io_error(&previews, "create", e))?;
        let g = recon.geometry();
        let mut written = Vec::new();
        for iz in self.slices(g.nz) {
            let path = previews.join(format!("slice_{iz:03}.png"));
            write_preview_png(&path, recon.volume.slice(iz), g.nx, g.ny)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// `synthetic2d.png`, when the reconstruction has a synthetic 2D image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Synthetic2dPng;

impl ReconWriter for Synthetic2dPng {
    fn write(&self, dir: &Path, recon: &Reconstruction, _meta: &AcquisitionMeta) -> Result<Vec<PathBuf>> {
        let Some(image) = &recon.synthetic_2d else { return Ok(Vec::new()) };
        let g = recon.geometry();
        let path = dir.join("synthetic2d.png");
        write_preview_png(&path, image, g.nx, g.ny)?;
        Ok(vec![path])
    }
}

/// `recon.json`: the source, algorithm, sizes, grid, TIFF scaling, timings and iteration report.
#[derive(Debug, Clone, Default)]
pub struct ReconJson {
    /// What was reconstructed, as the user named it (for example the bundle's path).
    pub source: String,
}

#[derive(Serialize)]
struct Summary<'a> {
    acquisition: &'a str,
    algorithm: Algorithm,
    views: usize,
    detector_cols: usize,
    detector_rows: usize,
    volume: VoxelGrid,
    tiff_scaling: TiffScaling,
    preprocess_s: f64,
    reconstruct_s: f64,
    iterations: Option<&'a IterationReport>,
}

impl ReconWriter for ReconJson {
    fn write(&self, dir: &Path, recon: &Reconstruction, _meta: &AcquisitionMeta) -> Result<Vec<PathBuf>> {
        let r = &recon.report;
        let summary = Summary {
            acquisition: &self.source,
            algorithm: recon.algorithm(),
            views: r.views,
            detector_cols: r.detector_cols,
            detector_rows: r.detector_rows,
            volume: *recon.geometry(),
            tiff_scaling: TiffScaling::for_volume(&recon.volume),
            preprocess_s: r.preprocess_s,
            reconstruct_s: r.reconstruct_s,
            iterations: r.iterations.as_ref(),
        };
        let path = dir.join("recon.json");
        let json = serde_json::to_string_pretty(&summary).map_err(|e| io_error(&path, "serialise", e))?;
        std::fs::write(&path, json + "\n").map_err(|e| io_error(&path, "write", e))?;
        Ok(vec![path])
    }
}

/// The writers of `tomolab recon` and `tomolab exam`, in order (`recon.json` last).
pub fn standard_writers(source: &str, previews: usize) -> Vec<Box<dyn ReconWriter>> {
    vec![
        Box::new(NrrdVolume),
        Box::new(TiffSlices),
        Box::new(SlicePreviews { count: previews }),
        Box::new(Synthetic2dPng),
        Box::new(ReconJson { source: source.to_owned() }),
    ]
}

/// Creates `dir` if needed and runs every writer in order; returns every file written.
pub fn write_all(
    dir: &Path,
    recon: &Reconstruction,
    meta: &AcquisitionMeta,
    writers: &[Box<dyn ReconWriter>],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "create", e))?;
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.write(dir, recon, meta)?);
    }
    Ok(written)
}
