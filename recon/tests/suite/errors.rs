//! Bad inputs give errors that name the field at fault, never panics.

use tomolab_recon::{
    FbpOptions, PreprocessOptions, SartOptions, VolumeGeometry, VolumeOptions, fbp, line_integrals, sart,
};

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
    let no_thickness = VolumeGeometry::for_tomosynthesis(&p.detector, &p.poses, None, &VolumeOptions::default());
    assert!(message(no_thickness).contains("thickness_mm"));
    let vol = VolumeGeometry::for_tomosynthesis(&p.detector, &p.poses, Some(40.0), &VolumeOptions::default()).unwrap();
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
    let tall = VolumeGeometry { origin_mm: [vol.origin_mm[0], vol.origin_mm[1], 700.0], ..vol };
    assert!(message(fbp(&p, &tall, &FbpOptions::default())).contains("source_mm"));
}
