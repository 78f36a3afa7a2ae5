//! exam.toml validation (issue 14, item 10): every section checked before any heavy work, errors name the key,
//! enum values case-insensitive, resource estimate; and the seeded fuzz harness of exam.toml parsing.

use rand::{Rng, SeedableRng};
use tomolab::exam::{ConfigError, ExamConfig, Resolution, TechniqueConfig};
use tomolab_hal::PresetName;
use tomolab_hal::technique::{FilterMaterial, Target};

fn err(text: &str) -> ConfigError {
    ExamConfig::parse_toml(text, None, None).expect_err(text)
}

/// A pitch of 0.00025 mm tried to allocate 9.3 TB and 1e-9 panicked: the pitch had no lower bound.
#[test]
fn exam_toml_refuses_a_detector_pitch_below_the_bound_before_allocating() {
    for pitch in ["0.00025", "1e-9", "0", "-0.1", "nan", "inf"] {
        let e = err(&format!("[geometry]\ndetector_pitch_mm = {pitch}\n"));
        assert_eq!(e.key, "geometry.detector_pitch_mm", "{pitch}: {e}");
        assert!(e.to_string().contains("geometry.detector_pitch_mm"), "{e}");
    }
}

/// `geometry.views` and `dose.histories_per_view` had no upper bound, and 0 histories was refused only after
/// the whole exam had run (every exposure delivered, then thrown away).
#[test]
fn exam_toml_bounds_views_and_histories_before_the_first_exposure() {
    assert_eq!(err("[geometry]\nviews = 100000000\n").key, "geometry.views");
    assert_eq!(err("[geometry]\nviews = 0\n").key, "geometry.views");
    assert_eq!(err("[dose]\nhistories_per_view = 0\n").key, "dose.histories_per_view");
    assert_eq!(err("[dose]\nhistories_per_view = 10000000000000\n").key, "dose.histories_per_view");
    assert_eq!(err("[dose]\nbatches = 0\n").key, "dose.batches");
    // A config built in code is validated too, before the phantom is built.
    let mut c = ExamConfig::defaults(PresetName::WideAngle, Resolution::Fast);
    c.dose.histories_per_view = 0;
    let e = tomolab::exam::prepare_exam(&c, None).expect_err("0 histories");
    assert!(e.to_string().contains("dose.histories_per_view"), "{e}");
}

/// `arc_start_deg = -400` and `window_be_mm = -1` were errors that did not name their key.
#[test]
fn exam_toml_range_errors_name_their_key() {
    assert_eq!(err("[geometry]\narc_start_deg = -400\n").key, "geometry.arc_start_deg");
    assert_eq!(err("[physics]\nwindow_be_mm = -1\n").key, "physics.window_be_mm");
    assert_eq!(err("[safety]\ndose_budget_mgd = 1e9\n").key, "safety.dose_budget_mgd");
    let e = err(
        "[technique]\nmode = \"manual\"\ntarget = \"W\"\nfilter = \"Rh\"\nfilter_mm = -1\nkvp = 28\nmas_per_view = 2\n",
    );
    assert_eq!(e.key, "technique.filter_mm");
    let e = err("[phantom]\nthickness_mm = 500\n");
    assert!(e.key == "phantom" && e.to_string().contains("thickness_mm"), "{e}");
    let e = err("[safety]\ndose_budget_mgd = \"3 mGy\"\n");
    assert!(e.to_string().contains("dose_budget_mgd"), "{e}");
}

/// Enum values needed their exact spelling ("Rh", not "rh").
#[test]
fn exam_toml_enum_values_are_case_insensitive() {
    let c = ExamConfig::parse_toml(
        "preset = \"Narrow-Angle\"\nresolution = \"FAST\"\n[technique]\nmode = \"MANUAL\"\ntarget = \"w\"\n\
         filter = \"rh\"\nfilter_mm = 0.05\nkvp = 28\nmas_per_view = 2\n",
        None,
        None,
    )
    .unwrap();
    assert_eq!((c.preset, c.resolution), (PresetName::NarrowAngle, Resolution::Fast));
    assert!(matches!(c.technique, TechniqueConfig::Manual { target: Target::W, filter: FilterMaterial::Rh, .. }));
    let e = err(
        "[technique]\nmode = \"manual\"\ntarget = \"tungsten\"\nfilter = \"rh\"\nfilter_mm = 0.05\nkvp = 28\nmas_per_view = 2\n",
    );
    assert!(e.to_string().contains("tungsten"), "{e}");
}

/// The estimate passes the default clinical exam and refuses what would exhaust memory.
#[test]
fn exam_estimate_refuses_past_the_documented_limit() {
    for preset in PresetName::ALL {
        for resolution in [Resolution::Fast, Resolution::Clinical] {
            let c = ExamConfig::defaults(preset, resolution);
            c.estimate().check().unwrap_or_else(|e| panic!("{preset} {resolution:?}: {e}"));
        }
    }
    let c = ExamConfig::parse_toml("[geometry]\ndetector_pitch_mm = 0.02\nviews = 1000\n", None, None).unwrap();
    let why = c.estimate().check().unwrap_err();
    assert!(why.contains("GiB") && why.contains("--force"), "{why}");
}

/// `tomolab exam --print-config` output parses back to the same config.
#[test]
fn printed_config_round_trips() {
    for resolution in [Resolution::Fast, Resolution::Clinical] {
        let c = ExamConfig::defaults(PresetName::WideAngle, resolution);
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(ExamConfig::parse_toml(&text, None, None).unwrap(), c);
    }
}

fn fuzz_cases(default: u64) -> u64 {
    std::env::var("TOMOLAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Seeded fuzz of exam.toml parsing and validation: random bytes, mutated valid configs (bit flips,
/// truncation, splicing, numeric edits), valid ones. No panic; an error on well-formed TOML names a key;
/// valid inputs round-trip.
#[test]
fn fuzz_exam_toml() {
    let base = toml::to_string_pretty(&ExamConfig::defaults(PresetName::WideAngle, Resolution::Fast)).unwrap();
    let base = base.as_bytes();
    let numbers = ["0", "-1", "1e-9", "1e300", "-400", "nan", "inf", "18446744073709551615", "\"x\"", "[]", "true"];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x70_6d_6c);
    let cases = fuzz_cases(20_000);
    let started = std::time::Instant::now();
    let (mut parsed, mut valid) = (0u64, 0u64);
    for case in 0..cases {
        let input: Vec<u8> = match case % 5 {
            0 => (0..rng.random_range(0..200)).map(|_| rng.random()).collect(),
            1 => {
                let mut v = base.to_vec();
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..v.len());
                    v[i] ^= 1 << rng.random_range(0..8);
                }
                v
            }
            2 => base[..rng.random_range(0..base.len())].to_vec(),
            3 => {
                // Replace one value with an extreme one.
                let text = String::from_utf8_lossy(base).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                let k = rng.random_range(0..lines.len());
                let mut out = String::new();
                for (i, l) in lines.iter().enumerate() {
                    match (i == k, l.split_once(" = ")) {
                        (true, Some((key, _))) => {
                            out.push_str(key);
                            out.push_str(" = ");
                            out.push_str(numbers[rng.random_range(0..numbers.len())]);
                        }
                        _ => out.push_str(l),
                    }
                    out.push('\n');
                }
                out.into_bytes()
            }
            _ => {
                let (a, b) = (rng.random_range(0..base.len()), rng.random_range(0..base.len()));
                let mut v = base[..a.min(b)].to_vec();
                v.extend_from_slice(&base[a.max(b)..]);
                v.extend_from_slice(&base[..rng.random_range(0..base.len() / 4)]);
                v
            }
        };
        let Ok(text) = std::str::from_utf8(&input) else { continue };
        let well_formed = toml::from_str::<toml::Table>(text).is_ok();
        parsed += u64::from(well_formed);
        match ExamConfig::parse_toml(text, None, None) {
            Ok(c) => {
                valid += 1;
                let back = toml::to_string_pretty(&c).unwrap();
                assert_eq!(ExamConfig::parse_toml(&back, None, None).unwrap(), c, "round trip of {text:?}");
                let _ = c.estimate().check();
            }
            Err(e) if well_formed => {
                assert!(!e.key.is_empty() && e.to_string().contains(&e.key), "no key in `{e}` for {text:?}");
            }
            Err(_) => {}
        }
    }
    let s = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz_exam_toml: {cases} inputs ({parsed} well-formed TOML, {valid} valid configs) in {s:.2} s, {:.0} inputs/s",
        cases as f64 / s
    );
}

/// `[recon]` is the reconstruction of the exam: its keys are checked like every other section's.
#[test]
fn exam_toml_recon_section_is_validated_by_key() {
    assert_eq!(err("[recon]\nalgoritm = \"sart\"\n").key, "recon.algoritm");
    assert_eq!(err("[recon]\nrelaxation = nan\n").key, "recon.relaxation");
    assert_eq!(err("[recon]\nslice_mm = -1\n").key, "recon.slice_mm");
    let c = ExamConfig::parse_toml("[recon]\nalgorithm = \"SART\"\niterations = 3\n", None, None).unwrap();
    assert_eq!((c.recon.algorithm, c.recon.iterations), (tomolab_recon::Algorithm::Sart, 3));
    // The support height follows the phantom's unless given.
    let c = ExamConfig::parse_toml("[phantom]\nsupport_height_mm = 12\n", None, None).unwrap();
    assert_eq!(c.recon.support_height_mm, 12.0);
    let c = ExamConfig::parse_toml("[recon]\nsupport_height_mm = 5\n", None, None).unwrap();
    assert_eq!(c.recon.support_height_mm, 5.0);
}
