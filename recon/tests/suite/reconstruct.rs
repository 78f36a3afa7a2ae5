//! `reconstruct` is the same computation as the separate calls it replaced (bit for bit), a projector
//! behind the trait plugs into every algorithm, and the standard writers write the CLI's files.

use std::sync::atomic::{AtomicUsize, Ordering};

use tomolab_hal::{DetectorGeometry, ViewPose};
use tomolab_recon::io::writers::{standard_writers, write_all};
use tomolab_recon::io::{TiffScaling, write_nrrd};
use tomolab_recon::{
    Algorithm, FbpOptions, KernelPath, MlemOptions, PreprocessOptions, ProjectorPair, ReconConfig, SartOptions,
    ViewWeight, VolumeOptions, VoxelGrid, VoxelProjector, fbp, fbp_with, line_integrals, mlem, mlem_with, reconstruct,
    sart, sart_with, synthetic_2d, tomosynthesis_volume,
};

use super::pipeline::bead_acquisition;

/// The old path of `tomolab recon`: preprocess, grid, algorithm, each called separately.
fn old_calls(acq: &tomolab_hal::Acquisition) -> (tomolab_recon::Projections, VoxelGrid) {
    let p = line_integrals(acq, &PreprocessOptions::default()).unwrap();
    let grid = tomosynthesis_volume(&acq.meta, &p, &VolumeOptions::default()).unwrap();
    (p, grid)
}

#[test]
fn reconstruct_fbp_equals_the_separate_calls_bit_for_bit() {
    let (acq, _) = bead_acquisition();
    let recon = reconstruct(&acq, &ReconConfig::default()).unwrap();
    let (p, grid) = old_calls(&acq);
    let old = fbp(&p, &grid, &FbpOptions::default()).unwrap();
    assert_eq!(recon.volume.geometry, old.geometry);
    assert!(recon.volume.data.iter().zip(&old.data).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(recon.synthetic_2d.as_deref(), Some(synthetic_2d(&old, 0.5).unwrap().as_slice()));
    assert_eq!((recon.report.views, recon.report.detector_cols), (5, 64));
    assert!(recon.report.iterations.is_none());
}

#[test]
fn reconstruct_sart_and_mlem_equal_the_separate_calls() {
    let (acq, _) = bead_acquisition();
    let (p, grid) = old_calls(&acq);
    let config = ReconConfig { algorithm: Algorithm::Sart, iterations: 2, subsets: 5, ..ReconConfig::default() };
    let recon = reconstruct(&acq, &config).unwrap();
    let options = SartOptions { iterations: 2, subsets: 5, ..SartOptions::default() };
    let (old, report) = sart(&p, &grid, &options, None).unwrap();
    assert_eq!(recon.volume, old);
    let got = recon.report.iterations.unwrap();
    assert_eq!((got.iterations, &got.relative_updates), (report.iterations, &report.relative_updates));
    assert_eq!(got.pass_s.len(), 2, "one time per pass");

    let config = ReconConfig { algorithm: Algorithm::Mlem, iterations: 3, ..ReconConfig::default() };
    let recon = reconstruct(&acq, &config).unwrap();
    let (old, _) = mlem(&p, &grid, &MlemOptions { iterations: 3, ..MlemOptions::default() }, None).unwrap();
    assert_eq!(recon.volume, old);
}

/// A projector that delegates to the voxel-driven one and counts the calls: stands for a new projector.
struct Counting {
    inner: VoxelProjector,
    calls: AtomicUsize,
}

impl ProjectorPair for Counting {
    fn volume(&self) -> &VoxelGrid {
        self.inner.volume()
    }
    fn detector(&self) -> &DetectorGeometry {
        self.inner.detector()
    }
    fn poses(&self) -> &[ViewPose] {
        self.inner.poses()
    }
    fn forward(&self, x: &[f32], views: &[usize], out: &mut [f32]) -> tomolab_recon::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.forward(x, views, out)
    }
    fn back(&self, y: &[f32], views: &[usize], out: &mut [f32]) -> tomolab_recon::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.back(y, views, out)
    }
    fn backproject_weighted(
        &self,
        proj: &[f32],
        views: &[usize],
        weights: &[ViewWeight],
        out: &mut [f32],
    ) -> tomolab_recon::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.backproject_weighted(proj, views, weights, out)
    }
}

#[test]
fn a_projector_behind_the_trait_plugs_into_fbp_sart_and_mlem() {
    let (acq, _) = bead_acquisition();
    let (p, grid) = old_calls(&acq);
    let inner = VoxelProjector::new(grid, p.detector, &p.poses, KernelPath::Auto).unwrap();
    let counting = Counting { inner, calls: AtomicUsize::new(0) };
    assert_eq!(
        fbp_with(&p, &counting, &FbpOptions::default()).unwrap(),
        fbp(&p, &grid, &FbpOptions::default()).unwrap()
    );
    let sart_options = SartOptions { iterations: 1, ..SartOptions::default() };
    assert_eq!(
        sart_with(&p, &counting, &sart_options, None).unwrap().0,
        sart(&p, &grid, &sart_options, None).unwrap().0
    );
    let mlem_options = MlemOptions { iterations: 2, ..MlemOptions::default() };
    assert_eq!(
        mlem_with(&p, &counting as &dyn ProjectorPair, &mlem_options, None).unwrap().0,
        mlem(&p, &grid, &mlem_options, None).unwrap().0
    );
    assert!(counting.calls.load(Ordering::Relaxed) > 10);
    // A projector made for other views is refused, naming it.
    let other = VoxelProjector::new(grid, p.detector, &p.poses[..4], KernelPath::Auto).unwrap();
    let err = fbp_with(&p, &other, &FbpOptions::default()).unwrap_err().to_string();
    assert!(err.contains("projector"), "{err}");
}

#[test]
fn standard_writers_write_the_cli_files() {
    let (acq, _) = bead_acquisition();
    let recon = reconstruct(&acq, &ReconConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recon");
    let written = write_all(&out, &recon, &acq.meta, &standard_writers("bead", 3)).unwrap();
    let names: Vec<String> =
        written.iter().map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned()).collect();
    let nz = recon.geometry().nz;
    let expected = [
        "volume.nrrd".to_owned(),
        "slices.tif".to_owned(),
        "previews/slice_000.png".to_owned(),
        format!("previews/slice_{:03}.png", (nz - 1) / 2),
        format!("previews/slice_{:03}.png", nz - 1),
        "synthetic2d.png".to_owned(),
        "recon.json".to_owned(),
    ];
    assert_eq!(names, expected);
    // The NRRD writer writes what write_nrrd writes; recon.json carries the TIFF map and the source.
    let direct = dir.path().join("direct.nrrd");
    write_nrrd(&direct, &recon.volume).unwrap();
    assert_eq!(std::fs::read(&direct).unwrap(), std::fs::read(out.join("volume.nrrd")).unwrap());
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("recon.json")).unwrap()).unwrap();
    assert_eq!(json["acquisition"], "bead");
    assert_eq!(json["algorithm"], "fbp");
    let scaling: TiffScaling = serde_json::from_value(json["tiff_scaling"].clone()).unwrap();
    assert_eq!(scaling, TiffScaling::for_volume(&recon.volume));
}
