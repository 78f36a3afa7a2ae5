//! The acquisition bundle: lossless round trip, and named errors for every kind of damage.

use proptest::prelude::*;
use tomolab_hal::bundle::{self, BundleError};
use tomolab_hal::mock::{MockConfig, MockUnit, mock_technique};
use tomolab_hal::sequencer::{FixedDoseRate, Sequencer};
use tomolab_hal::{Acquisition, ExamPlan, Frame, MilliGray, Newtons, PresetName, ScanPreset, TechniqueMode};

/// A real acquisition from the sequencer on the mock, with awkward float values written into the frames.
fn sample_acquisition() -> Acquisition {
    let unit = MockUnit::new(MockConfig::default(), vec![]);
    let preset = ScanPreset::builtin(PresetName::WideAngle);
    let plan = ExamPlan::from_preset(
        &preset,
        TechniqueMode::Manual { technique: mock_technique(1.0) },
        Newtons::new(100.0).unwrap(),
        MilliGray::new(3.0).unwrap(),
    )
    .unwrap();
    let mut seq = Sequencer::new(Default::default()).unwrap();
    let mut acq =
        seq.run(&mut unit.devices(), &plan, &FixedDoseRate { mgd_per_mas: 0.05 }, None, &unit.clock()).unwrap();
    assert!(acq.is_complete(), "{:?}", acq.meta.status);
    // Values that a lossy format would damage: subnormals, negative zero, huge, tiny, non-round.
    let specials = [f32::MIN_POSITIVE / 3.0, -0.0, f32::MAX, 1.0e-30, 0.1, std::f32::consts::PI, -7.25];
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
