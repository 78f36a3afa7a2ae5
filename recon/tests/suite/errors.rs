//! Bad inputs give errors that name the field at fault, never panics.

use tomolab_recon::{FbpOptions, PreprocessOptions, SartOptions, VolumeOptions, VoxelGrid, fbp, line_integrals, sart};

use super::pipeline::bead_acquisition;

fn message<T: std::fmt::Debug>(r: Result<T, tomolab_recon::ReconError>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn missing_calibration_is_named() {
    let (mut acq, _) = bead_acquisition();
    acq.dark = None;
    assert!(message(line_integrals(&acq, &PreprocessOptions::default())).contains("dark"));
    let (mut acq, _) = bead_acquisition();
    acq.flood = None;
    assert!(message(line_integrals(&acq, &PreprocessOptions::default())).contains("flood"));
    // Explicitly already-normalised data needs neither.
    let options =
        PreprocessOptions { normalisation: tomolab_recon::Normalisation::Transmission, ..PreprocessOptions::default() };
    assert!(line_integrals(&acq, &options).is_ok());
}

#[test]
fn inconsistent_acquisitions_are_refused() {
    let (mut acq, _) = bead_acquisition();
    acq.frames.pop();
    assert!(message(line_integrals(&acq, &PreprocessOptions::default())).contains("frames"));
    let (mut acq, _) = bead_acquisition();
    acq.frames[1].data.truncate(10);
    assert!(message(line_integrals(&acq, &PreprocessOptions::default())).contains("frames[1]"));
    let (mut acq, _) = bead_acquisition();
    acq.meta.views[3].pose.u_step_mm = acq.meta.views[3].pose.v_step_mm;
    assert!(message(line_integrals(&acq, &PreprocessOptions::default())).contains("views[3].pose"));
    let (mut acq, _) = bead_acquisition();
    acq.meta.views[0].pose.source_mm.x = f64::NAN;
    assert!(message(line_integrals(&acq, &PreprocessOptions::default())).contains("views[0].pose"));
}

#[test]
fn bad_options_are_named() {
    let (acq, _) = bead_acquisition();
    let p = line_integrals(&acq, &PreprocessOptions::default()).unwrap();
    let no_thickness = tomolab_recon::tomosynthesis_grid(&p.detector, &p.poses, None, &VolumeOptions::default());
    assert!(message(no_thickness).contains("thickness_mm"));
    let vol = tomolab_recon::tomosynthesis_grid(&p.detector, &p.poses, Some(40.0), &VolumeOptions::default()).unwrap();
    let mut one = p.clone();
    one.poses.truncate(1);
    one.data.truncate(one.pixels());
    assert!(message(fbp(&one, &vol, &FbpOptions::default())).contains("views"));
    let bad = FbpOptions { cutoff: -1.0, ..FbpOptions::default() };
    assert!(message(fbp(&p, &vol, &bad)).contains("cutoff"));
    let bad = SartOptions { relaxation: 3.0, ..SartOptions::default() };
    assert!(message(sart(&p, &vol, &bad, None)).contains("relaxation"));
    let bad = SartOptions { subsets: 99, ..SartOptions::default() };
    assert!(message(sart(&p, &vol, &bad, None)).contains("subsets"));
    let mut short = p.clone();
    short.data.pop();
    assert!(message(fbp(&short, &vol, &FbpOptions::default())).contains("projections.data"));
    let tall = VoxelGrid { min_corner_mm: [vol.min_corner_mm[0], vol.min_corner_mm[1], 700.0], ..vol };
    assert!(message(fbp(&p, &tall, &FbpOptions::default())).contains("source_mm"));
}

/// Issue 14 item 9: a detector pitch of 1e-6 mm in a bundle's JSON (poses unchanged) made the default grid
/// 3e7 voxels wide and `Volume::zeros` panicked with "capacity overflow"; it must be an error naming the pitch.
#[test]
fn grid_from_a_pitch_of_1e_minus_6_is_refused_not_a_capacity_overflow() {
    let (mut acq, _) = bead_acquisition();
    acq.meta.detector.pitch_u_mm = 1e-6;
    let p = line_integrals(&acq, &PreprocessOptions::default()).unwrap();
    let msg = message(tomolab_recon::tomosynthesis_grid(&p.detector, &p.poses, Some(40.0), &VolumeOptions::default()));
    assert!(msg.contains("grid limit") && msg.contains("pitch"), "{msg}");
}

/// Issue 14 item 9: a pitch of 0.02 mm (poses at 0.5 mm) asked for a 39 GB volume and aborted the process.
#[test]
fn grid_from_a_pitch_of_0_02_is_refused_before_allocating() {
    let (mut acq, _) = bead_acquisition();
    acq.meta.detector.pitch_u_mm = 0.02;
    acq.meta.detector.pitch_v_mm = 0.02;
    let p = line_integrals(&acq, &PreprocessOptions::default()).unwrap();
    // The bead acquisition is small; scale the slab so the grid passes 2^30 voxels as the real exam did.
    let options = VolumeOptions { slice_mm: 0.01, ..VolumeOptions::default() };
    let msg = message(tomolab_recon::tomosynthesis_grid(&p.detector, &p.poses, Some(40.0), &options));
    assert!(msg.contains("grid limit"), "{msg}");
}

/// A hand-made grid whose voxel count overflows `usize` is refused by `validate`, not by a panic.
#[test]
fn grid_whose_voxel_count_overflows_is_refused() {
    let g = VoxelGrid::from_first_centre([usize::MAX / 2, 4, 1], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]);
    assert!(message(tomolab_recon::validate_grid(&g)).contains("grid limit"));
    let (acq, _) = bead_acquisition();
    let p = line_integrals(&acq, &PreprocessOptions::default()).unwrap();
    assert!(message(fbp(&p, &g, &FbpOptions::default())).contains("grid limit"));
}

/// Issue 14 item 9 (recon side): a FIFO given as a volume file must be refused, not block forever.
#[cfg(unix)]
#[test]
fn nrrd_fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("volume.nrrd");
    assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
    let msg = message(tomolab_recon::io::read_nrrd(&path));
    assert!(msg.contains("not a regular file"), "{msg}");
}
