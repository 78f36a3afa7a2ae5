//! The acquisition bundle: lossless round trip, and named errors for every kind of damage.

use proptest::prelude::*;
use tomolab_hal::bundle::{self, BundleError};
use tomolab_hal::mock::{MockConfig, MockUnit, mock_technique};
use tomolab_hal::sequencer::{FixedDoseRate, Sequencer};
use tomolab_hal::{Acquisition, ExamPlan, Frame, MilliGray, Newtons, PresetName, ScanPreset, TechniqueMode};

/// A real acquisition from the sequencer on the mock, with awkward float values written into the frames.
pub(crate) fn sample_acquisition() -> Acquisition {
    let unit = MockUnit::new(MockConfig::default(), vec![]);
    let preset = ScanPreset::builtin(PresetName::WideAngle);
    let mut plan = ExamPlan::from_preset(
        &preset,
        TechniqueMode::Manual { technique: mock_technique(1.0) },
        Newtons::new(100.0).unwrap(),
        MilliGray::new(3.0).unwrap(),
    )
    .unwrap();
    plan.support_height_mm = Some(20.0);
    let mut seq = Sequencer::new(Default::default()).unwrap();
    let mut acq =
        seq.run(&mut unit.devices(), &plan, &FixedDoseRate { mgd_per_mas: 0.05 }, None, &unit.clock()).unwrap();
    assert!(acq.is_complete(), "{:?}", acq.meta.status);
    // Values that a lossy format would damage: subnormals, negative zero, huge, tiny, non-round.
    // Huge but finite after scaling: non-finite frames are refused (issue 14 item 9).
    let specials = [f32::MIN_POSITIVE / 3.0, -0.0, f32::MAX / 2.0, 1.0e-30, 0.1, std::f32::consts::PI, -7.25];
    for (k, frame) in acq.frames.iter_mut().enumerate() {
        for (i, v) in frame.data.iter_mut().enumerate() {
            *v = specials[(i + k) % specials.len()] * (1.0 + i as f32 * 1e-3);
        }
    }
    acq
}

fn bits(frames: &[Frame]) -> Vec<u32> {
    frames.iter().flat_map(|f| f.data.iter().map(|v| v.to_bits())).collect()
}

#[test]
fn round_trip_is_bit_for_bit() {
    let acq = sample_acquisition();
    let dir = tempfile::tempdir().unwrap();
    bundle::save(&acq, dir.path()).unwrap();
    let back = bundle::load(dir.path()).unwrap();
    assert_eq!(back.meta, acq.meta);
    assert_eq!(bits(&back.frames), bits(&acq.frames));
    assert_eq!(back.dark, acq.dark);
    assert_eq!(back.flood, acq.flood);
    // Saving the loaded copy again produces identical files.
    let dir2 = tempfile::tempdir().unwrap();
    bundle::save(&back, dir2.path()).unwrap();
    for name in ["acquisition.json", "frames.npy", "dark.npy", "flood.npy"] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            std::fs::read(dir2.path().join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn saving_never_overwrites_a_bundle() {
    let acq = sample_acquisition();
    let dir = tempfile::tempdir().unwrap();
    bundle::save(&acq, dir.path()).unwrap();
    assert!(matches!(bundle::save(&acq, dir.path()), Err(BundleError::Exists { .. })));
}

fn saved() -> (tempfile::TempDir, Acquisition) {
    let acq = sample_acquisition();
    let dir = tempfile::tempdir().unwrap();
    bundle::save(&acq, dir.path()).unwrap();
    (dir, acq)
}

fn load_err(dir: &std::path::Path) -> String {
    bundle::load(dir).expect_err("damaged bundle must not load").to_string()
}

#[test]
fn truncated_array_names_the_file_and_field() {
    let (dir, _) = saved();
    let path = dir.path().join("frames.npy");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("frames.npy") && msg.contains("arrays.frames.crc32"), "{msg}");
}

#[test]
fn missing_array_names_the_file() {
    let (dir, _) = saved();
    std::fs::remove_file(dir.path().join("dark.npy")).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("dark.npy"), "{msg}");
}

#[test]
fn missing_metadata_field_is_named() {
    let (dir, _) = saved();
    let path = dir.path().join("acquisition.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["acquisition"]["views"][3]["exposure"].as_object_mut().unwrap().remove("kvp");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("acquisition.json") && msg.contains("acquisition.views[3].exposure") && msg.contains("kvp"),
        "{msg}"
    );
}

#[test]
fn out_of_range_unit_is_named() {
    let (dir, _) = saved();
    let path = dir.path().join("acquisition.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["acquisition"]["views"][0]["exposure"]["kvp"] = serde_json::json!(-28.0);
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("acquisition.views[0].exposure.kvp") && msg.contains("tube voltage"), "{msg}");
}

#[test]
fn inconsistent_view_count_is_named() {
    let (dir, _) = saved();
    let path = dir.path().join("acquisition.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["acquisition"]["views"].as_array_mut().unwrap().pop();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("arrays.frames.shape"), "{msg}");
}

#[test]
fn wrong_format_version_is_named() {
    let (dir, _) = saved();
    let path = dir.path().join("acquisition.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"format_version\": 1", "\"format_version\": 9");
    std::fs::write(&path, text).unwrap();
    assert!(load_err(dir.path()).contains("format_version"));
}

#[test]
fn uint16_frames_from_a_real_detector_load_exactly() {
    use npyz::WriterBuilder;
    let (dir, acq) = saved();
    let det = acq.meta.detector;
    let n = acq.frames.len();
    let values: Vec<u16> = (0..n * det.pixel_count()).map(|i| (i * 37 % 65536) as u16).collect();
    let path = dir.path().join("frames.npy");
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[n as u64, det.rows as u64, det.cols as u64])
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
    std::fs::write(&path, &out).unwrap();
    let json_path = dir.path().join("acquisition.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    doc["arrays"]["frames"]["crc32"] = serde_json::json!(crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&out));
    doc["arrays"]["frames"]["dtype"] = serde_json::json!("<u2");
    std::fs::write(&json_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let back = bundle::load(dir.path()).unwrap();
    let flat: Vec<f32> = back.frames.iter().flat_map(|f| f.data.iter().copied()).collect();
    assert_eq!(flat, values.iter().map(|&v| f32::from(v)).collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any single flipped byte in any file is either rejected with an error or (in JSON whitespace or a
    /// number's last digit) loads to a valid acquisition; it never panics, and never changes frame data silently.
    #[test]
    fn random_damage_never_panics_or_corrupts_silently(file in 0usize..4, pos in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let (dir, acq) = saved();
        let name = ["acquisition.json", "frames.npy", "dark.npy", "flood.npy"][file];
        let path = dir.path().join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(back) = bundle::load(dir.path()) {
            prop_assert_eq!(name, "acquisition.json", "a damaged array must never load");
            prop_assert_eq!(bits(&back.frames), bits(&acq.frames));
        }
    }
}

// ---- Issue 14 item 9: the CRCs protect the arrays but not the meaning. One test per defect found. ----

mod meaning {
    use std::path::Path;

    use tomolab_hal::bundle::{self, LoadLimits};

    use super::saved;

    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

    fn json(dir: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("acquisition.json")).unwrap()).unwrap()
    }

    fn put_json(dir: &Path, doc: &serde_json::Value) {
        std::fs::write(dir.join("acquisition.json"), serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    }

    /// Rewrites an array file with `edit` applied to its values and recomputes its CRC in the manifest, as a
    /// careless tool would.
    fn rewrite_array(dir: &Path, field: &str, edit: impl FnOnce(&mut Vec<f32>)) {
        use npyz::WriterBuilder;
        let path = dir.join(format!("{field}.npy"));
        let bytes = std::fs::read(&path).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        let shape = npy.shape().to_vec();
        let mut values: Vec<f32> = npy.into_vec().unwrap();
        edit(&mut values);
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut out).begin_nd().unwrap();
        w.extend(values.iter().copied()).unwrap();
        w.finish().unwrap();
        std::fs::write(&path, &out).unwrap();
        let mut doc = json(dir);
        doc["arrays"][field]["crc32"] = serde_json::json!(CRC.checksum(&out));
        put_json(dir, &doc);
    }

    fn refused(dir: &Path, needles: &[&str]) {
        let msg = bundle::load(dir).expect_err("must be refused").to_string();
        for n in needles {
            assert!(msg.contains(n), "`{n}` not in: {msg}");
        }
    }

    /// A frame with +inf pixels (CRC recomputed) loaded silently; raw frames must be finite.
    #[test]
    fn frame_with_infinite_pixels_is_refused_with_view_and_count() {
        let (dir, acq) = saved();
        let npix = acq.meta.detector.pixel_count();
        rewrite_array(dir.path(), "frames", |v| {
            v[3 * npix + 1] = f32::INFINITY;
            v[3 * npix + 2] = f32::INFINITY;
        });
        refused(dir.path(), &["frames.npy", "frames[3]", "view 3 has 2 non-finite"]);
    }

    /// A frame with NaN pixels (CRC recomputed) loaded silently.
    #[test]
    fn frame_with_nan_pixels_is_refused_with_view_and_count() {
        let (dir, _) = saved();
        rewrite_array(dir.path(), "frames", |v| v[0] = f32::NAN);
        refused(dir.path(), &["frames.npy", "frames[0]", "view 0 has 1 non-finite"]);
    }

    /// An all-zero flood (CRC recomputed) loaded silently and gave infinite line integrals.
    #[test]
    fn all_zero_flood_is_refused() {
        let (dir, _) = saved();
        rewrite_array(dir.path(), "flood", |v| v.fill(0.0));
        refused(dir.path(), &["flood.npy", "flood", "positive"]);
    }

    /// An all-NaN dark (CRC recomputed) loaded silently.
    #[test]
    fn all_nan_dark_is_refused() {
        let (dir, _) = saved();
        rewrite_array(dir.path(), "dark", |v| v.fill(f32::NAN));
        refused(dir.path(), &["dark.npy", "dark", "non-finite"]);
    }

    /// One view's mAs changed in the JSON (inconsistent with the exposure log and the technique) loaded.
    #[test]
    fn one_views_mas_changed_is_refused() {
        let (dir, _) = saved();
        let mut doc = json(dir.path());
        doc["acquisition"]["views"][5]["exposure"]["mas"] = serde_json::json!(1.7);
        put_json(dir.path(), &doc);
        refused(dir.path(), &["acquisition.json", "acquisition.views[5].exposure", "exposure log"]);
        // Changing the log entry too is still caught against the technique.
        let mut doc = json(dir.path());
        let angle = doc["acquisition"]["views"][5]["nominal_angle_deg"].clone();
        for e in doc["acquisition"]["exposures"].as_array_mut().unwrap() {
            if e["nominal_angle_deg"] == angle {
                e["record"]["mas"] = serde_json::json!(1.7);
            }
        }
        put_json(dir.path(), &doc);
        refused(dir.path(), &["acquisition.views[5].exposure.mas", "mas_per_view"]);
    }

    /// A source at 1e300 mm loaded.
    #[test]
    fn source_at_1e300_mm_is_refused() {
        let (dir, _) = saved();
        let mut doc = json(dir.path());
        doc["acquisition"]["views"][2]["pose"]["source_mm"][2] = serde_json::json!(1e300);
        put_json(dir.path(), &doc);
        refused(dir.path(), &["acquisition.json", "acquisition.views[2].pose.source_mm"]);
    }

    /// The plan's breast support height is recorded in the bundle; a bundle written before the field existed
    /// (no `support_height_mm` key) still loads, as `None`; a support above the focal spot is refused by name.
    #[test]
    fn support_height_is_recorded_optional_and_range_checked() {
        let (dir, acq) = saved();
        assert_eq!(acq.meta.support_height_mm, Some(20.0));
        assert_eq!(bundle::load(dir.path()).unwrap().meta.support_height_mm, Some(20.0));
        let mut doc = json(dir.path());
        doc["acquisition"]["support_height_mm"] = serde_json::json!(1000.0);
        put_json(dir.path(), &doc);
        refused(dir.path(), &["acquisition.json", "acquisition.support_height_mm", "1000"]);
        doc["acquisition"].as_object_mut().unwrap().remove("support_height_mm");
        put_json(dir.path(), &doc);
        assert_eq!(bundle::load(dir.path()).unwrap().meta.support_height_mm, None);
    }

    /// An angle of 1000 deg loaded.
    #[test]
    fn angle_of_1000_deg_is_refused() {
        let (dir, _) = saved();
        let mut doc = json(dir.path());
        doc["acquisition"]["views"][4]["angle_start_deg"] = serde_json::json!(1000.0);
        put_json(dir.path(), &doc);
        refused(dir.path(), &["acquisition.views[4].angle_start_deg", "1000"]);
    }

    /// A manifest dtype of `<f8` for an `<f4` file loaded (the manifest was not compared with the header).
    #[test]
    fn manifest_dtype_f8_for_an_f4_file_is_refused() {
        let (dir, _) = saved();
        let mut doc = json(dir.path());
        doc["arrays"]["dark"]["dtype"] = serde_json::json!("<f8");
        put_json(dir.path(), &doc);
        refused(dir.path(), &["arrays.dark.dtype", "<f8"]);
        // A supported but wrong dtype is caught against the header.
        doc["arrays"]["dark"]["dtype"] = serde_json::json!("<u2");
        put_json(dir.path(), &doc);
        refused(dir.path(), &["dark.npy"]);
    }

    /// 300 MB of trailing whitespace in the JSON was read whole; the read is bounded by a documented limit.
    #[test]
    fn trailing_whitespace_past_the_json_limit_is_refused() {
        const { assert!(bundle::DEFAULT_MAX_JSON_BYTES < 300_000_000) };
        let (dir, _) = saved();
        let path = dir.path().join("acquisition.json");
        let mut text = std::fs::read(&path).unwrap();
        text.resize(text.len() + (2 << 20), b' ');
        std::fs::write(&path, &text).unwrap();
        let limits = LoadLimits { max_json_bytes: 1 << 20, ..LoadLimits::default() };
        let msg = bundle::load_with_limits(dir.path(), &limits).unwrap_err().to_string();
        assert!(msg.contains("acquisition.json") && msg.contains("more than the 1048576 allowed"), "{msg}");
        // The default limit refuses 300 MB without reading it (a sparse file, so the test stays cheap).
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(300_000_000).unwrap();
        refused(dir.path(), &["acquisition.json", "300000000 bytes"]);
    }

    /// A detector pitch of 1e-6 (or 0.02) in the JSON loaded, then panicked recon with "capacity overflow" (or
    /// tried to allocate 39 GB): the pitch must agree with the poses' pixel steps.
    #[test]
    fn detector_pitch_inconsistent_with_the_poses_is_refused() {
        for pitch in [1e-6, 0.02] {
            let (dir, _) = saved();
            let mut doc = json(dir.path());
            doc["acquisition"]["detector"]["pitch_u_mm"] = serde_json::json!(pitch);
            doc["acquisition"]["geometry"]["detector"]["pitch_u_mm"] = serde_json::json!(pitch);
            put_json(dir.path(), &doc);
            refused(dir.path(), &["acquisition.views[0].pose.u_step_mm", "pitch_u_mm"]);
        }
    }

    /// A FIFO in place of frames.npy hung the loader (and recon) forever.
    #[cfg(unix)]
    #[test]
    fn fifo_in_place_of_frames_is_refused() {
        let (dir, _) = saved();
        let path = dir.path().join("frames.npy");
        std::fs::remove_file(&path).unwrap();
        let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(status.success());
        refused(dir.path(), &["frames.npy", "not a regular file"]);
    }

    /// A symlink to /dev/zero in place of frames.npy was read until out of memory.
    #[cfg(unix)]
    #[test]
    fn symlink_to_dev_zero_is_refused() {
        let (dir, _) = saved();
        let path = dir.path().join("frames.npy");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        refused(dir.path(), &["frames.npy", "not a regular file"]);
    }

    /// A symlink to a regular file is followed (documented): bundles may share calibration files.
    #[cfg(unix)]
    #[test]
    fn symlink_to_a_regular_file_loads() {
        let (dir, _) = saved();
        let other = tempfile::tempdir().unwrap();
        let target = other.path().join("dark.npy");
        std::fs::rename(dir.path().join("dark.npy"), &target).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("dark.npy")).unwrap();
        bundle::load(dir.path()).unwrap();
    }

    /// An array larger than the memory limit is refused from the manifest, before it is read.
    #[test]
    fn pixel_data_above_the_memory_limit_is_refused_before_reading() {
        let (dir, acq) = saved();
        let need = (acq.frames.len() * acq.meta.detector.pixel_count() * 4) as u64;
        let limits = LoadLimits { max_pixel_bytes: need - 1, ..LoadLimits::default() };
        let msg = bundle::load_with_limits(dir.path(), &limits).unwrap_err().to_string();
        assert!(msg.contains("arrays.frames.shape") && msg.contains("limit"), "{msg}");
    }

    /// An array file longer than its manifest's shape (trailing bytes, CRC recomputed) is refused.
    #[test]
    fn array_longer_than_the_manifest_declares_is_refused() {
        let (dir, _) = saved();
        let path = dir.path().join("flood.npy");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &bytes).unwrap();
        let mut doc = json(dir.path());
        doc["arrays"]["flood"]["crc32"] = serde_json::json!(CRC.checksum(&bytes));
        put_json(dir.path(), &doc);
        refused(dir.path(), &["flood.npy", "data"]);
    }
}
