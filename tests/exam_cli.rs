//! `tomolab exam` and `tomolab recon` as a batch runner sees them (issue 14, items 11 and 12): documented exit
//! codes for complete, usage, refused, aborted and failed; each view streamed to disk so a `kill -9` leaves a
//! partial bundle that loads and reconstructs with a warning; leftovers and foreign directories are refused,
//! `--resume` and `--overwrite` work.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::tomolab;

/// A quick exam: a 30 mm breast without lesions, 0.6 mm pixels, 0.5 mm voxels, no noise, manual technique.
fn small_toml(views: usize, extra: &str) -> String {
    format!(
        "seed = 3\n[geometry]\nviews = {views}\ndetector_pitch_mm = 0.6\n[phantom]\nthickness_mm = 30\n\
         chest_wall_width_mm = 100\nnipple_distance_mm = 60\nvoxel_mm = 0.5\nlesions = []\n[physics]\nnoise = false\n\
         scatter = false\n[technique]\nmode = \"manual\"\ntarget = \"w\"\nfilter = \"rh\"\nfilter_mm = 0.05\n\
         kvp = 28\nmas_per_view = 2\n[dose]\nhistories_per_view = 2000\nbatches = 4\n{extra}"
    )
}

fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tomolab exam` exited 0 on aborted and refused exams: now 0 complete, 1 failed, 2 usage/config, 3 refused,
/// 4 aborted.
#[test]
fn exam_exit_codes_tell_complete_refused_aborted_failed_and_usage_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &str, more: &[&str]| {
        let config = write_config(tmp.path(), &format!("{name}.toml"), &small_toml(3, extra));
        let out = tmp.path().join(name);
        let mut args = vec!["exam", "--quiet", "--no-recon", "--config", &config, "--out", out.to_str().unwrap()];
        args.extend_from_slice(more);
        tomolab(&args)
    };
    let o = run("complete", "", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run("refused", "[safety]\ndose_budget_mgd = 0.001\n", &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let o = run("aborted", "[faults]\nswitch_release_at = 1\n", &[]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let o = run("config", "[safety]\ncompression_force_n = -5\n", &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("safety.compression_force_n"), "{}", stderr(&o));
    let o = run("estimate", "", &["--force"]);
    assert_eq!(code(&o), 0, "--force on a small exam: {}", stderr(&o));
    let big = write_config(tmp.path(), "big.toml", "[geometry]\ndetector_pitch_mm = 0.02\nviews = 1000\n");
    let o = tomolab(&["exam", "--config", &big, "--out", tmp.path().join("big").to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    // A failure that is no one's usage error: the output cannot be created.
    let config = write_config(tmp.path(), "ok.toml", &small_toml(3, ""));
    let o = tomolab(&["exam", "--quiet", "--config", &config, "--out", "/dev/null/exam"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = tomolab(&["exam", "--no-such-flag"]);
    assert_eq!(code(&o), 2);
}

/// `tomolab exam --out` and `tomolab recon --out` overwrote a non-empty directory that was not theirs.
#[test]
fn exam_and_recon_refuse_a_foreign_non_empty_out() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.tex"), "precious").unwrap();
    let config = write_config(tmp.path(), "c.toml", &small_toml(3, ""));
    let o = tomolab(&["exam", "--quiet", "--config", &config, "--out", foreign.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = tomolab(&["exam", "--quiet", "--overwrite", "--config", &config, "--out", foreign.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "--overwrite never touches a directory that is not an exam's: {}", stderr(&o));
    assert_eq!(std::fs::read_to_string(foreign.join("thesis.tex")).unwrap(), "precious");
    let exam = tmp.path().join("exam");
    let o = tomolab(&["exam", "--quiet", "--no-recon", "--config", &config, "--out", exam.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let acq = exam.join("acquisition");
    let o = tomolab(&["recon", acq.to_str().unwrap(), "--out", foreign.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
    // An earlier reconstruction may be replaced.
    let r = tmp.path().join("r");
    for _ in 0..2 {
        let o = tomolab(&["recon", acq.to_str().unwrap(), "--out", r.to_str().unwrap(), "--algorithm", "FBP"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // A complete exam is not overwritten without --overwrite.
    let o = tomolab(&["exam", "--quiet", "--no-recon", "--config", &config, "--out", exam.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("already holds an exam"), "{}", stderr(&o));
}

/// `kill -9` mid-exam lost every view (frames were held in memory to the end) and the leftovers blocked a
/// rerun with "already holds an exam".
#[test]
fn killed_exam_leaves_a_partial_bundle_that_loads_reconstructs_and_is_resumable() {
    use tomolab_hal::ExamStatus;
    use tomolab_hal::acquisition::AbortReason;
    let tmp = tempfile::tempdir().unwrap();
    // 100 step-and-shoot views at 0.3 mm: long enough to be killed after its second view.
    let long = small_toml(100, "").replace("mas_per_view = 2", "mas_per_view = 0.05").replace("= 0.6", "= 0.3");
    let config = write_config(tmp.path(), "long.toml", &format!("preset = \"step-and-shoot\"\n{long}"));
    let out = tmp.path().join("exam");
    let acq = out.join("acquisition");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tomolab"))
        .args(["exam", "--quiet", "--config", &config, "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (by polling the journal, never by timing) until two views are on disk.
    loop {
        if tomolab_hal::journal::views_recorded(&acq).unwrap_or(0) >= 2 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the exam ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let partial = tomolab_hal::bundle::load(&acq).unwrap();
    assert!(!partial.is_complete());
    assert!(partial.frames.len() >= 2 && partial.frames.len() < 100, "{}", partial.frames.len());
    assert_eq!(partial.frames.len(), partial.meta.views.len());
    assert!(partial.dark.is_some() && partial.flood.is_some());
    match &partial.meta.status {
        ExamStatus::Aborted { reason: AbortReason::Interrupted { .. }, views_acquired } => {
            assert_eq!(*views_acquired, partial.frames.len());
        }
        other => panic!("{other:?}"),
    }

    // A torn tail (half a frame, half a journal line, as a kill mid-write leaves) costs only that view.
    let torn = tmp.path().join("torn");
    std::fs::create_dir(&torn).unwrap();
    for f in std::fs::read_dir(&acq).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), torn.join(f.file_name())).unwrap();
    }
    let raw = torn.join(tomolab_hal::journal::FRAMES_FILE);
    let len = std::fs::metadata(&raw).unwrap().len();
    let frame_bytes = (partial.meta.detector.pixel_count() * 4) as u64;
    std::fs::OpenOptions::new().write(true).open(&raw).unwrap().set_len(len - frame_bytes / 2).unwrap();
    let mut journal = std::fs::OpenOptions::new().append(true).open(torn.join("journal.jsonl")).unwrap();
    std::io::Write::write_all(&mut journal, b"{\"event\":\"view\",\"index\":").unwrap();
    let shorter = tomolab_hal::bundle::load(&torn).unwrap();
    assert_eq!(shorter.frames.len(), partial.frames.len() - 1);
    assert_eq!(shorter.frames[..], partial.frames[..partial.frames.len() - 1]);

    let r = tmp.path().join("recon");
    let o = tomolab(&["recon", acq.to_str().unwrap(), "--out", r.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning") && stderr(&o).contains("incomplete"), "{}", stderr(&o));
    assert!(r.join("volume.nrrd").exists());

    let o = tomolab(&["exam", "--quiet", "--config", &config, "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("leftovers") && e.contains("--resume") && e.contains("--overwrite"), "{e}");

    // Resume needs the same configuration and seed.
    let o =
        tomolab(&["exam", "--quiet", "--resume", "--seed", "4", "--config", &config, "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot resume"), "{}", stderr(&o));
    let o = tomolab(&["exam", "--quiet", "--resume", "--config", &config, "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 4, "a resumed exam is incomplete: {}", stderr(&o));
    let saved = tomolab_hal::bundle::load(&acq).unwrap();
    assert!(acq.join("acquisition.json").exists() && !acq.join("journal.jsonl").exists());
    assert_eq!(saved.frames, partial.frames);
    assert!(!saved.is_complete());
    assert!(out.join("recon/volume.nrrd").exists() && out.join("summary.json").exists());

    let small = write_config(tmp.path(), "small.toml", &small_toml(3, ""));
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o =
        tomolab(&["exam", "--quiet", "--overwrite", "--no-recon", "--config", &small, "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let fresh = tomolab_hal::bundle::load(&acq).unwrap();
    assert!(fresh.is_complete() && fresh.frames.len() == 3);
    assert!(!out.join("recon").exists(), "the old reconstruction was removed");
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine", "--overwrite kept a foreign file");
}

/// `tomolab exam --preset mammography` exited 1 ("FBP needs at least two views"): a 2D exam is not
/// reconstructed; it writes the processed image (log, shared window) beside the raw frame.
#[test]
fn a_2d_mammography_exam_completes_with_its_processed_image() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "mammo.toml", &format!("preset = \"mammography\"\n{}", small_toml(1, "")));
    let out = tmp.path().join("exam");
    let o = tomolab(&["exam", "--config", &config, "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("a 2D exam"), "{}", String::from_utf8_lossy(&o.stdout));
    let acq = tomolab_hal::bundle::load(&out.join("acquisition")).unwrap();
    assert_eq!(acq.frames.len(), 1);
    let image = image::open(out.join("mammogram.png")).unwrap().to_luma8();
    assert_eq!((image.width() as usize, image.height() as usize), (acq.meta.detector.cols, acq.meta.detector.rows));
    // The window spans the range, and the breast (attenuating: 20 mm from the chest wall, on the central
    // column) is bright against the open field (the far corner of the panel).
    let (lo, hi) = image.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    assert!(lo < 20 && hi > 235, "window {lo}..{hi}");
    let pitch = acq.meta.detector.pitch_v_mm;
    let breast = image.get_pixel(image.width() / 2, (20.0 / pitch) as u32)[0];
    let open = image.get_pixel(0, image.height() - 1)[0];
    assert!(breast > open.saturating_add(100), "breast {breast}, open field {open}");
    assert!(!out.join("recon").exists());
    // The anti-scatter grid: reported with its Bucky factor, and the flood behind it carries its primary
    // transmission against the same unit's flood without a grid (one 0 deg view of the wide-angle preset).
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let grid = &summary["anti_scatter_grid"];
    // This small exam has scatter off: SPR 0, so the Bucky factor is 1 / T_p.
    let (bucky, tp) = (grid["bucky_factor"].as_f64().unwrap(), grid["grid"]["primary_transmission"].as_f64().unwrap());
    assert_eq!(grid["spr_without_grid"].as_f64(), Some(0.0));
    assert!((bucky - 1.0 / tp).abs() < 1e-12 && (0.6..0.9).contains(&tp), "Bucky factor {bucky}, T_p {tp}");
    let config = write_config(tmp.path(), "dbt.toml", &format!("preset = \"wide-angle\"\n{}", small_toml(2, "")));
    let out_dbt = tmp.path().join("no-grid");
    let o = tomolab(&["exam", "--config", &config, "--out", out_dbt.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let no_grid = tomolab_hal::bundle::load(&out_dbt.join("acquisition")).unwrap();
    let sum = |f: &tomolab_hal::Frame| f.data.iter().map(|&v| f64::from(v)).sum::<f64>();
    let ratio = sum(acq.flood.as_ref().unwrap()) / sum(no_grid.flood.as_ref().unwrap());
    assert!((ratio - tp).abs() < 0.01 * tp, "flood ratio {ratio} against T_p {tp}");
    let no_grid_summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dbt.join("summary.json")).unwrap()).unwrap();
    assert!(no_grid_summary["anti_scatter_grid"].is_null());
}
