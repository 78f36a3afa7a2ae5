//! The command-line interface as a user runs it.

use std::process::Command;

use crate::support::tomolab;

fn json(args: &[&str]) -> serde_json::Value {
    let out = tomolab(args);
    assert!(out.status.success(), "tomolab {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

#[test]
fn presets_json_lists_the_five_reference_presets() {
    let v = json(&["presets", "--json"]);
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["wide-angle", "narrow-angle", "step-and-shoot", "mammography", "breast-ct"]);
    let views: Vec<u64> = v.as_array().unwrap().iter().map(|p| p["sampling"]["views"].as_u64().unwrap()).collect();
    assert_eq!(&views[..4], &[25, 15, 9, 1]);
}

#[test]
fn wide_angle_plan_has_25_views_over_50_degrees_at_the_reference_geometry() {
    let v = json(&["plan", "--preset", "wide-angle", "--json"]);
    assert_eq!(v["source_to_detector_mm"], 650.0);
    assert_eq!(v["rotation_axis_height_mm"], 50.0);
    let views = v["views"].as_array().unwrap();
    assert_eq!(views.len(), 25);
    let angle = |i: usize| views[i]["angle_deg"].as_f64().unwrap();
    assert!((angle(0) + 25.0).abs() < 1e-9 && (angle(24) - 25.0).abs() < 1e-9);
    // At 0 deg (view 12) the focal spot is 650 mm straight above the detector's chest-wall midpoint.
    assert!(angle(12).abs() < 1e-9);
    let source: Vec<f64> =
        views[12]["pose"]["source_mm"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).collect();
    assert!(source[0].abs() < 1e-9 && source[1].abs() < 1e-9 && (source[2] - 650.0).abs() < 1e-9, "{source:?}");
}

#[test]
fn unknown_preset_is_a_clear_error() {
    let out = tomolab(&["plan", "--preset", "ultra-wide"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown preset `ultra-wide`") && err.contains("wide-angle"), "{err}");
}

#[test]
fn text_output_survives_a_closed_pipe() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tomolab"))
        .args(["plan", "--preset", "breast-ct"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn dose_refuses_bad_requests_with_one_clear_line() {
    let stderr = |args: &[&str]| {
        let out = tomolab(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    let e = stderr(&["dose", "--preset", "breast-ct"]);
    assert!(e.contains("breast-ct") && e.contains("projection"), "{e}");
    let e = stderr(&["dose", "--glandularity", "2"]);
    assert!(e.contains("glandular weight fraction 2 must lie in 0..=1"), "{e}");
    let e = stderr(&["dose", "--thickness-mm", "5"]);
    assert!(e.contains("thickness 5 mm must exceed"), "{e}");
    // A missing file is named once, with its cause once (library errors that print their source inline are not
    // repeated by the error chain).
    let e = stderr(&["dose", "--phantom", "/nonexistent-tomolab-dir"]);
    assert!(e.contains("/nonexistent-tomolab-dir/phantom.mhd"), "{e}");
    assert_eq!(e.matches("os error").count(), 1, "{e}");
}
