//! DICOM export, validation and C-STORE against the real third-party tools (issue 17): dicom3tools' `dciodvfy`
//! validates every exported object (and the BTO against the IHE DBT profile), the BTO read back with
//! dicom-object and with pydicom maps each ground-truth lesion onto the lesion in its pixels, and dcmtk's
//! `storescp` receives an exported exam whose every dataset equals the sent one.
//!
//! The tools are Debian's `dicom3tools` and `dcmtk` (and pydicom from PyPI); `.ci/run` installs them and sets
//! `TOMOLAB_REQUIRE_DICOM_TOOLS=1`, so there they must run. Elsewhere a missing tool prints a notice and the
//! test returns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use dicom_dictionary_std::tags;
use dicom_object::open_file;

use crate::support::tomolab;

/// Whether `tool` runs; panics when it does not and `TOMOLAB_REQUIRE_DICOM_TOOLS` is set.
fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool).args(probe).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        assert!(
            std::env::var_os("TOMOLAB_REQUIRE_DICOM_TOOLS").is_none(),
            "{tool} is required (TOMOLAB_REQUIRE_DICOM_TOOLS is set) but does not run"
        );
        eprintln!("notice: {tool} not installed (apt-get install dcmtk dicom3tools; pip install pydicom); skipping");
    }
    ok
}

/// A 9-view wide-angle exam of a 30 mm fatty breast with two 0.5 mm calcifications (either side of the centre,
/// 4 mm apart in height), noiseless, 0.3 mm pixels, 1 mm slices, exported with `tomolab exam --dicom`. (A 6 mm
/// mass was tried first: its brightest voxel and even its centroid sit up to 2 slices off its centre, DBT's
/// depth resolution for an extended object, so the mm-and-slice check uses point-like lesions.)
const EXAM_TOML: &str = r#"seed = 5
[geometry]
views = 9
detector_pitch_mm = 0.3
[phantom]
thickness_mm = 30
chest_wall_width_mm = 100
nipple_distance_mm = 60
voxel_mm = 0.25
glandular_fraction = 0.05
[[phantom.lesions]]
centre_mm = [-15.0, 25.0, 32.0]
kind = { type = "calcification_cluster", count = 1, min_diameter_mm = 0.5, max_diameter_mm = 0.5, spread_mm = 0.5 }
[[phantom.lesions]]
centre_mm = [15.0, 30.0, 36.0]
kind = { type = "calcification_cluster", count = 1, min_diameter_mm = 0.5, max_diameter_mm = 0.5, spread_mm = 0.5 }
[physics]
noise = false
scatter = false
[technique]
mode = "manual"
target = "w"
filter = "rh"
filter_mm = 0.05
kvp = 28
mas_per_view = 2
[dose]
histories_per_view = 2000
batches = 4
"#;

/// `tomolab exam --quiet` of the config `toml` into `dir/exam`, with `extra` arguments: (the output, the run).
fn run_exam(dir: &Path, toml: &str, extra: &[&str]) -> (PathBuf, std::process::Output) {
    let config = dir.join("exam.toml");
    std::fs::write(&config, toml).unwrap();
    let out = dir.join("exam");
    let mut args = vec!["exam", "--quiet", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = tomolab(&args);
    (out, o)
}

/// The exam above, run once per test binary: (its directory, kept for the binary's life).
fn exam() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap().keep();
        let (out, o) = run_exam(&tmp, EXAM_TOML, &["--dicom"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    })
}

fn dcm_files(dir: &Path) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    f.sort();
    f
}

/// dciodvfy's output lines for `file` (with `-profile` if given): (errors, warnings).
fn dciodvfy(file: &Path, profile: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut cmd = Command::new("dciodvfy");
    if let Some(p) = profile {
        cmd.args(["-profile", p]);
    }
    let o = cmd.arg(file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let lines = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).map(String::from).collect::<Vec<_>>();
    (lines("Error"), lines("Warning"))
}

/// Every exported object passes dciodvfy without an error (warnings listed); the BTO also passes the IHE DBT
/// profile, and the projections the IHE Mammography profile.
#[test]
fn every_exported_object_passes_dciodvfy() {
    if !have("dciodvfy", &["/dev/null"]) {
        return;
    }
    let dir = exam().join("dicom");
    let files = dcm_files(&dir);
    assert_eq!(files.len(), 9 + 2, "9 projections, the volume, the 2D image: {files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut runs = vec![None];
        if name == "volume.dcm" {
            runs.push(Some("IHEDBT"));
        } else {
            runs.push(Some("IHEMammo"));
        }
        for profile in runs {
            let (errors, warnings) = dciodvfy(f, profile);
            for w in &warnings {
                eprintln!("{name} {profile:?}: {w}");
            }
            failures.extend(errors.into_iter().map(|e| format!("{name} {profile:?}: {e}")));
        }
    }
    assert!(failures.is_empty(), "dciodvfy errors:\n{}", failures.join("\n"));
}

/// The BTO's geometry, read from its functional groups: for frame k, patient position of pixel (col, row).
struct BtoGeometry {
    positions: Vec<[f64; 3]>,
    row_dir: [f64; 3],
    col_dir: [f64; 3],
    /// (between rows, between columns), mm.
    spacing: [f64; 2],
    rows: usize,
    cols: usize,
    pixels: Vec<u16>,
}

fn floats(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> Vec<f64> {
    obj.element(tag).unwrap().to_multi_float64().unwrap()
}

fn item_of(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> &dicom_object::InMemDicomObject {
    &obj.element(tag).unwrap().items().unwrap()[0]
}

fn read_bto(path: &Path) -> BtoGeometry {
    let obj = open_file(path).unwrap();
    let shared = item_of(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let iop = floats(item_of(shared, tags::PLANE_ORIENTATION_SEQUENCE), tags::IMAGE_ORIENTATION_PATIENT);
    let spacing = floats(item_of(shared, tags::PIXEL_MEASURES_SEQUENCE), tags::PIXEL_SPACING);
    let per_frame = obj.element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE).unwrap().items().unwrap();
    let positions = per_frame
        .iter()
        .map(|f| {
            let p = floats(item_of(f, tags::PLANE_POSITION_SEQUENCE), tags::IMAGE_POSITION_PATIENT);
            [p[0], p[1], p[2]]
        })
        .collect::<Vec<_>>();
    let rows = obj.element(tags::ROWS).unwrap().to_int::<usize>().unwrap();
    let cols = obj.element(tags::COLUMNS).unwrap().to_int::<usize>().unwrap();
    let bytes = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    let pixels: Vec<u16> = bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    assert_eq!(pixels.len(), rows * cols * positions.len());
    BtoGeometry {
        positions,
        row_dir: [iop[0], iop[1], iop[2]],
        col_dir: [iop[3], iop[4], iop[5]],
        spacing: [spacing[0], spacing[1]],
        rows,
        cols,
        pixels,
    }
}

impl BtoGeometry {
    /// (col, row, frame) of patient point `p` (PS3.3 C.7.6.2.1.1: P = S + col * dc * row_dir + row * dr * col_dir),
    /// frame = the nearest plane along the normal.
    fn index_of(&self, p: [f64; 3]) -> (f64, f64, f64) {
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        let n = [
            self.row_dir[1] * self.col_dir[2] - self.row_dir[2] * self.col_dir[1],
            self.row_dir[2] * self.col_dir[0] - self.row_dir[0] * self.col_dir[2],
            self.row_dir[0] * self.col_dir[1] - self.row_dir[1] * self.col_dir[0],
        ];
        let depth: Vec<f64> = self.positions.iter().map(|s| dot(*s, n)).collect();
        let dz = depth[1] - depth[0];
        let k = (dot(p, n) - depth[0]) / dz;
        let s = self.positions[k.round().clamp(0.0, (self.positions.len() - 1) as f64) as usize];
        let d = [p[0] - s[0], p[1] - s[1], p[2] - s[2]];
        (dot(d, self.row_dir) / self.spacing[1], dot(d, self.col_dir) / self.spacing[0], k)
    }

    fn at(&self, c: usize, r: usize, k: usize) -> u16 {
        self.pixels[(k * self.rows + r) * self.cols + c]
    }
}

/// The ground-truth lesion centres in patient coordinates, by the transform documented in
/// `dicom/src/frame.rs` (re-stated here: (x, y, z)_patient = (-x, -y, z)_tomolab for a CC view).
fn truth_in_patient(exam: &Path) -> Vec<(String, [f64; 3])> {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exam.join("ground_truth.json")).unwrap()).unwrap();
    truth["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let c: Vec<f64> = o["centre_mm"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            (o["kind"].to_string(), [-c[0], -c[1], c[2]])
        })
        .collect()
}

/// Each ground-truth lesion, mapped through the BTO's functional-group geometry, lands on the lesion in the
/// pixels: the brightest voxel within 4 mm / 4 slices of the mapped point is within 1 mm in plane and one
/// slice of it, and stands out of its neighbourhood.
#[test]
fn bto_geometry_maps_ground_truth_lesions_onto_the_lesions_in_its_pixels() {
    let exam = exam();
    let bto = read_bto(&exam.join("dicom").join("volume.dcm"));
    let truth = truth_in_patient(exam);
    assert_eq!(truth.len(), 2, "{truth:?}");
    for (kind, p) in truth {
        let (c, r, k) = bto.index_of(p);
        let (rc, rr) = ((4.0 / bto.spacing[1]) as i64, (4.0 / bto.spacing[0]) as i64);
        let (mut best, mut at, mut sum, mut n) = (0u16, (0i64, 0i64, 0i64), 0.0, 0.0);
        for kk in (k.round() as i64 - 4)..=(k.round() as i64 + 4) {
            for rr_ in (r.round() as i64 - rr)..=(r.round() as i64 + rr) {
                for cc in (c.round() as i64 - rc)..=(c.round() as i64 + rc) {
                    if kk < 0
                        || rr_ < 0
                        || cc < 0
                        || kk as usize >= bto.positions.len()
                        || rr_ as usize >= bto.rows
                        || cc as usize >= bto.cols
                    {
                        continue;
                    }
                    let v = bto.at(cc as usize, rr_ as usize, kk as usize);
                    sum += f64::from(v);
                    n += 1.0;
                    if v > best {
                        (best, at) = (v, (cc, rr_, kk));
                    }
                }
            }
        }
        let in_plane_mm =
            (((at.0 as f64 - c) * bto.spacing[1]).powi(2) + ((at.1 as f64 - r) * bto.spacing[0]).powi(2)).sqrt();
        let slices = (at.2 as f64 - k).abs();
        eprintln!(
            "{kind}: mapped to ({c:.1}, {r:.1}, {k:.2}); peak {best} at {at:?}: {in_plane_mm:.2} mm, {slices:.2} slices; mean {:.0}",
            sum / n
        );
        assert!(in_plane_mm <= 1.0 && slices <= 1.0, "{kind}: peak {in_plane_mm:.2} mm, {slices:.2} slices away");
        assert!(
            f64::from(best) > sum / n + 30.0,
            "{kind}: no lesion at the mapped point (peak {best}, mean {})",
            sum / n
        );
    }
}

/// The same check by a third-party reader: pydicom's functional groups and pixel array.
#[test]
fn pydicom_reads_every_object_and_maps_the_lesions_too() {
    let probe = Command::new("python3").args(["-c", "import pydicom"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("TOMOLAB_REQUIRE_DICOM_TOOLS").is_none(), "pydicom is required");
        eprintln!("notice: pydicom not installed; skipping");
        return;
    }
    let exam = exam();
    let script = r#"
import json, sys, glob, pydicom
import numpy as np
exam = sys.argv[1]
for f in sorted(glob.glob(exam + "/dicom/*.dcm")):
    ds = pydicom.dcmread(f)
    assert ds.pixel_array.size == ds.Rows * ds.Columns * int(getattr(ds, "NumberOfFrames", 1)), f
ds = pydicom.dcmread(exam + "/dicom/volume.dcm")
vol = ds.pixel_array.astype(float)
sh = ds.SharedFunctionalGroupsSequence[0]
iop = np.array([float(v) for v in sh.PlaneOrientationSequence[0].ImageOrientationPatient])
dr, dc = [float(v) for v in sh.PixelMeasuresSequence[0].PixelSpacing]
ipp = np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in ds.PerFrameFunctionalGroupsSequence])
rowd, cold = iop[:3], iop[3:]
normal = np.cross(rowd, cold)
depth = ipp @ normal
truth = json.load(open(exam + "/ground_truth.json"))
for o in truth["objects"]:
    x, y, z = o["centre_mm"]
    p = np.array([-x, -y, z])
    k = (p @ normal - depth[0]) / (depth[1] - depth[0])
    s = ipp[int(round(k))]
    c, r = (p - s) @ rowd / dc, (p - s) @ cold / dr
    kr, rr, cr = int(round(k)), int(round(r)), int(round(c))
    w = vol[max(kr-4,0):kr+5, max(rr-13,0):rr+14, max(cr-13,0):cr+14]
    kk, r2, c2 = np.unravel_index(np.argmax(w), w.shape)
    kk, r2, c2 = kk + max(kr-4,0), r2 + max(rr-13,0), c2 + max(cr-13,0)
    d = np.hypot((c2 - c) * dc, (r2 - r) * dr)
    print(o["kind"], "in-plane mm", round(d, 2), "slices", round(abs(kk - k), 2))
    assert d <= 1.0 and abs(kk - k) <= 1.0, (o["kind"], d, kk, k)
print("ok")
"#;
    let o = Command::new("python3").args(["-c", script, exam.to_str().unwrap()]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    assert!(
        o.status.success() && out.contains("ok"),
        "pydicom check failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Asserts that two data sets hold the same attributes with the same VRs and values, recursing into sequence
/// items (a sequence's or item's encoded length, defined or undefined, is an encoding choice and not compared).
fn same_dataset(x: &dicom_object::InMemDicomObject, y: &dicom_object::InMemDicomObject, at: &str) {
    use dicom_core::value::Value;
    let tags_x: Vec<_> = x.tags().collect();
    let tags_y: Vec<_> = y.tags().collect();
    assert_eq!(tags_x, tags_y, "{at}: attribute sets differ");
    for t in tags_x {
        let (ex, ey) = (x.element(t).unwrap(), y.element(t).unwrap());
        assert_eq!(ex.vr(), ey.vr(), "{at}: {t} VR");
        match (ex.value(), ey.value()) {
            (Value::Sequence(sx), Value::Sequence(sy)) => {
                assert_eq!(sx.items().len(), sy.items().len(), "{at}: {t} items");
                for (k, (ix, iy)) in sx.items().iter().zip(sy.items()).enumerate() {
                    same_dataset(ix, iy, &format!("{at} {t}[{k}]"));
                }
            }
            (vx, vy) => assert!(vx == vy, "{at}: {t} differs: {vx:?} vs {vy:?}"),
        }
    }
}

/// A free loopback port (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child on drop (the test's own storescp).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dcmtk's storescp as `aet` on `port`, storing into `dir` with `.dcm` names (killed when the guard drops).
fn storescp(aet: &str, dir: &Path, port: u16) -> Killed {
    let child = Command::new("storescp")
        .args(["-aet", aet, "-od", dir.to_str().unwrap(), "+xa", "-fe", ".dcm", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killed(child)
}

/// `tomolab dicom send` to dcmtk's storescp: every object is stored, and every received dataset equals the sent
/// one element by element (the file meta group aside). A closed port gives a clear error and exit 1.
#[test]
fn dicom_send_to_storescp_stores_every_object_unchanged() {
    if !have("storescp", &["--version"]) {
        return;
    }
    let sent_dir = exam().join("dicom");
    let recv = tempfile::tempdir().unwrap();
    let port = free_port();
    let _guard = storescp("STORESCP", recv.path(), port);
    let to = format!("STORESCP@127.0.0.1:{port}");
    // storescp needs a moment to listen.
    let mut o = tomolab(&["dicom", "send", sent_dir.to_str().unwrap(), "--to", &to]);
    for _ in 0..50 {
        if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("association failed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        o = tomolab(&["dicom", "send", sent_dir.to_str().unwrap(), "--to", &to]);
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let sent = dcm_files(&sent_dir);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("0000 ")).count(), sent.len(), "{stdout}");
    let received = dcm_files(recv.path());
    assert_eq!(received.len(), sent.len(), "{received:?}");
    let by_uid = |files: &[PathBuf]| {
        let mut m = std::collections::BTreeMap::new();
        for f in files {
            let obj = open_file(f).unwrap();
            m.insert(obj.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_string(), obj);
        }
        m
    };
    let (a, b) = (by_uid(&sent), by_uid(&received));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (uid, x) in &a {
        same_dataset(x, &b[uid], uid);
    }
    // Nothing listens on a fresh port once storescp is gone.
    drop(_guard);
    let closed = tomolab(&[
        "dicom",
        "send",
        sent_dir.to_str().unwrap(),
        "--to",
        &format!("X@127.0.0.1:{}", free_port()),
        "--timeout-s",
        "5",
    ]);
    let err = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(1), "{err}");
    assert!(err.contains("association failed") && err.contains("127.0.0.1"), "{err}");
}

/// Exporting the same exam again gives byte-identical files (UIDs derived from the seed, not drawn); one
/// study and one frame of reference across all objects; a non-empty --out is refused by name and a broken exam
/// directory leaves neither output nor temporary directory behind.
#[test]
fn export_is_deterministic_one_study_and_refuses_bad_directories() {
    let exam = exam();
    let tmp = tempfile::tempdir().unwrap();
    let again = tmp.path().join("again");
    let o = tomolab(&["dicom", "export", exam.to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = dcm_files(&exam.join("dicom"));
    let second = dcm_files(&again);
    assert_eq!(first.len(), second.len());
    let (mut studies, mut frames) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    for (a, b) in first.iter().zip(&second) {
        assert!(std::fs::read(a).unwrap() == std::fs::read(b).unwrap(), "{} differs between exports", a.display());
        let obj = open_file(a).unwrap();
        studies.insert(obj.element(tags::STUDY_INSTANCE_UID).unwrap().to_str().unwrap().into_owned());
        frames.insert(obj.element(tags::FRAME_OF_REFERENCE_UID).unwrap().to_str().unwrap().into_owned());
    }
    assert_eq!((studies.len(), frames.len()), (1, 1), "{studies:?} {frames:?}");
    let o = tomolab(&["dicom", "export", exam.to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&o.stderr));
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let out = tmp.path().join("out");
    let o = tomolab(&["dicom", "export", broken.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("acquisition"), "{}", String::from_utf8_lossy(&o.stderr));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only again/ and broken/: {left:?}");
}

/// The 2D mammography preset exports its one view For Processing and its processed image For Presentation,
/// both without a dciodvfy error (plain and IHE Mammography profile), and no volume.
#[test]
fn a_2d_exam_exports_objects_that_pass_dciodvfy() {
    if !have("dciodvfy", &["/dev/null"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mammo.toml");
    std::fs::write(&config, format!("preset = \"mammography\"\n{}", EXAM_TOML.replace("views = 9", "views = 1")))
        .unwrap();
    let out = tmp.path().join("exam");
    let o =
        tomolab(&["exam", "--quiet", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--dicom"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = dcm_files(&out.join("dicom"));
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["presentation_2d.dcm", "projection_01.dcm"]);
    for f in &files {
        for profile in [None, Some("IHEMammo")] {
            let (errors, _) = dciodvfy(f, profile);
            assert!(errors.is_empty(), "{} {profile:?}: {errors:?}", f.display());
        }
    }
}

/// `tomolab exam --send` exports the exam and C-STOREs every object to the listener (dcmtk's storescp): what
/// arrives is what the exam wrote to `OUT/dicom`, object for object.
#[test]
fn exam_send_stores_the_exported_exam_in_storescp() {
    if !have("storescp", &["--version"]) {
        return;
    }
    let recv = tempfile::tempdir().unwrap();
    let port = free_port();
    let _guard = storescp("PACS", recv.path(), port);
    // Wait until storescp listens (a TCP connect succeeds), at most 5 s.
    let listening = (0..50).any(|_| {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if !up {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        up
    });
    assert!(listening, "storescp did not listen on {port}");
    let tmp = tempfile::tempdir().unwrap();
    let to = format!("PACS@127.0.0.1:{port}");
    let (out, o) = run_exam(tmp.path(), &EXAM_TOML.replace("views = 9", "views = 3"), &["--send", &to]);
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let uids = |files: Vec<PathBuf>| -> std::collections::BTreeSet<String> {
        files
            .iter()
            .map(|f| open_file(f).unwrap().meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_string())
            .collect()
    };
    let sent = uids(dcm_files(&out.join("dicom")));
    assert_eq!(sent.len(), 3 + 2, "3 projections, the volume and the synthetic 2D");
    assert_eq!(uids(dcm_files(recv.path())), sent);
}
