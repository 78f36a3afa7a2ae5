//! Seeded fuzz harnesses for the bundle's parsers of external bytes: `acquisition.json` (through
//! [`bundle::parse_metadata`], the load path's parser and validator) and `.npy` headers and data (through
//! [`bundle::decode_npy`], the load path's decoder in front of npyz).
//!
//! Each harness draws its inputs from a ChaCha RNG with a fixed seed: random bytes, mutated valid encodings
//! (bit flips, truncation, splicing, length-field and number edits) and valid ones. Checks: no panic; no hang
//! (work per input is bounded: every input is parsed once, linearly, and the harness finishes); bounded memory;
//! and valid inputs round-trip exactly.
//!
//! Bounded memory: the workspace forbids `unsafe`, so there is no counting allocator. Instead, (1) the
//! decoders allocate only from lengths they have checked (the NPY decoder compares the header's shape and the
//! file length with the manifest before npyz allocates, and the harness checks every decoded array has
//! exactly the declared length), and (2) the long run is done under an address-space limit, so any allocation
//! driven by an input's length field aborts the run:
//! `(ulimit -v 4000000; TOMOLAB_FUZZ_CASES=10000000 cargo test --release -p tomolab-hal fuzz_ -- --nocapture)`.
//! The case count is `TOMOLAB_FUZZ_CASES` (default small for CI).

use std::path::Path;
use std::time::Instant;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tomolab_hal::bundle;

fn cases(default: usize) -> usize {
    std::env::var("TOMOLAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(name: &str, n: usize, start: Instant, extra: &str) {
    let s = start.elapsed().as_secs_f64();
    eprintln!("{name}: {n} inputs in {s:.2} s = {:.0} inputs/s; {extra}", n as f64 / s.max(1e-9));
}

/// A generic byte-level mutation: bit flips, byte sets, truncation, splicing, duplication, deletion.
fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, donor: &[u8]) {
    for _ in 0..rng.random_range(1..=4) {
        if input.is_empty() {
            input.push(rng.random());
            continue;
        }
        let len = input.len();
        match rng.random_range(0..7) {
            0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..len);
                input[i] = [0u8, 0xff, b'"', b'{', b'[', b'-', b'9', b'e', b'\\', b','][rng.random_range(0..10)];
            }
            2 => input.truncate(rng.random_range(0..len)),
            3 => {
                // Splice a chunk of the donor over a random position.
                if !donor.is_empty() {
                    let a = rng.random_range(0..donor.len());
                    let b = (a + rng.random_range(1..64)).min(donor.len());
                    let at = rng.random_range(0..len);
                    input.splice(at..(at + (b - a)).min(len), donor[a..b].iter().copied());
                }
            }
            4 => {
                let a = rng.random_range(0..len);
                let b = (a + rng.random_range(1..256)).min(len);
                let chunk = input[a..b].to_vec();
                let at = rng.random_range(0..len);
                input.splice(at..at, chunk);
            }
            5 => {
                let a = rng.random_range(0..len);
                let b = (a + rng.random_range(1..32)).min(len);
                input.drain(a..b);
            }
            _ => {
                let i = rng.random_range(0..len);
                let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                input.splice(i..i, junk);
            }
        }
    }
}

/// Numbers that stress range checks.
const EXTREME_NUMBERS: &[&str] = &[
    "1e300",
    "-1e300",
    "1e-300",
    "0",
    "-0",
    "-1",
    "1000",
    "360.0001",
    "1e-6",
    "0.02",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "-9223372036854775809",
    "NaN",
    "Infinity",
    "1e999",
    "2.5e-324",
];

/// Replaces one number in a JSON text with an extreme one.
fn edit_number(rng: &mut ChaCha8Rng, input: &mut Vec<u8>) {
    let starts: Vec<usize> = (1..input.len())
        .filter(|&i| (input[i].is_ascii_digit() || input[i] == b'-') && matches!(input[i - 1], b' ' | b':' | b'['))
        .collect();
    if starts.is_empty() {
        return;
    }
    let a = starts[rng.random_range(0..starts.len())];
    let mut b = a + 1;
    while b < input.len() && matches!(input[b], b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+') {
        b += 1;
    }
    let n = EXTREME_NUMBERS[rng.random_range(0..EXTREME_NUMBERS.len())];
    input.splice(a..b, n.bytes());
}

/// A small valid bundle document (3 views keep each parse fast), and its parsed form.
fn valid_metadata() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut acq = super::bundle::sample_acquisition();
    acq.meta.views.truncate(3);
    acq.frames.truncate(3);
    let kept: Vec<f64> = acq.meta.views.iter().map(|v| v.nominal_angle_deg).collect();
    acq.meta.exposures.retain(|e| kept.contains(&e.nominal_angle_deg));
    bundle::save(&acq, dir.path()).unwrap();
    std::fs::read(dir.path().join(bundle::METADATA_FILE)).unwrap()
}

#[test]
fn fuzz_bundle_json() {
    let file = Path::new("acquisition.json");
    let valid = valid_metadata();
    let compact = {
        let v: serde_json::Value = serde_json::from_slice(&valid).unwrap();
        serde_json::to_vec(&v).unwrap()
    };
    let (meta, arrays) = bundle::parse_metadata(&valid, file).expect("the seed document is valid");
    let n = cases(50_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x14_0009_0001);
    let (mut accepted, mut max_views) = (0usize, 0usize);
    let start = Instant::now();
    let mut input = Vec::new();
    for case in 0..n {
        let kind = case % 10;
        input.clear();
        match kind {
            0 => {
                let len = rng.random_range(0..512);
                input.resize(len, 0);
                rng.fill_bytes(&mut input);
            }
            1 => input.extend_from_slice(if rng.random() { &valid } else { &compact }),
            2..=4 => {
                input.extend_from_slice(&compact);
                edit_number(&mut rng, &mut input);
            }
            _ => {
                input.extend_from_slice(if rng.random() { &valid } else { &compact });
                mutate(&mut rng, &mut input, &valid);
            }
        }
        let result = bundle::parse_metadata(&input, file);
        if let Ok((m, _)) = &result {
            // Output bounded by input: every view record takes well over 100 bytes of JSON.
            assert!(
                m.views.len() * 100 <= input.len(),
                "case {case}: {} views from {} bytes",
                m.views.len(),
                input.len()
            );
            max_views = max_views.max(m.views.len());
        }
        match (kind, result) {
            (1, Ok((m, a))) => {
                assert_eq!((m, a), (meta.clone(), arrays.clone()), "case {case}: valid input must round-trip");
                accepted += 1;
            }
            (1, Err(e)) => panic!("case {case}: the valid document was refused: {e}"),
            (_, Ok(_)) => accepted += 1,
            (_, Err(e)) => {
                assert!(e.to_string().contains("acquisition.json"), "case {case}: error must name the file: {e}")
            }
        }
    }
    report(
        "fuzz_bundle_json",
        n,
        start,
        &format!("{accepted} accepted; at most {max_views} views in an accepted input"),
    );
}

/// A valid `.npy` encoding of `shape` with values drawn from `rng`.
fn valid_npy(rng: &mut ChaCha8Rng, shape: &[u64], u16s: bool) -> (Vec<u8>, Vec<f32>) {
    use npyz::WriterBuilder;
    let count = shape.iter().product::<u64>() as usize;
    let mut out = Vec::new();
    let values: Vec<f32> = if u16s {
        let v: Vec<u16> = (0..count).map(|_| rng.random()).collect();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(&mut out).begin_nd().unwrap();
        w.extend(v.iter().copied()).unwrap();
        w.finish().unwrap();
        v.into_iter().map(f32::from).collect()
    } else {
        let v: Vec<f32> = (0..count).map(|_| f32::from_bits(rng.random())).collect();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(&mut out).begin_nd().unwrap();
        w.extend(v.iter().copied()).unwrap();
        w.finish().unwrap();
        v
    };
    (out, values)
}

/// Edits the NPY header: its length field, its shape tuple, its descr, its version.
fn edit_npy_header(rng: &mut ChaCha8Rng, input: &mut Vec<u8>) {
    if input.len() < 12 {
        return;
    }
    match rng.random_range(0..5) {
        0 => {
            let v: u16 = [0, 1, 9, 10, 0x7fff, 0xffff, rng.random()][rng.random_range(0..7)];
            input[8..10].copy_from_slice(&v.to_le_bytes());
        }
        1 => input[6] = [0u8, 1, 2, 3, 4, 255][rng.random_range(0..6)],
        _ => {
            let text = String::from_utf8_lossy(input).into_owned();
            let reps: &[(&str, &str)] = &[
                ("'<f4'", "'<f8'"),
                ("'<f4'", "'>f4'"),
                ("'<u2'", "'<f4'"),
                ("'<f4'", "'|O'"),
                ("False", "True"),
                ("(", "(18446744073709551615, "),
                ("(", "(4294967296, 4294967296, "),
                ("(", "(0, "),
                ("), ", ",), "),
                ("'shape'", "'shapes'"),
            ];
            let (a, b) = reps[rng.random_range(0..reps.len())];
            if let Some(i) = text.find(a) {
                input.splice(i..i + a.len(), b.bytes());
            }
        }
    }
}

#[test]
fn fuzz_npy_header() {
    let file = Path::new("frames.npy");
    let n = cases(100_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x14_0009_0002);
    let mut accepted = 0usize;
    let start = Instant::now();
    let mut input = Vec::new();
    for case in 0..n {
        let shape: Vec<u64> = match rng.random_range(0..3) {
            0 => vec![rng.random_range(0..4), rng.random_range(1..6), rng.random_range(1..6)],
            1 => vec![rng.random_range(1..8), rng.random_range(1..8)],
            _ => vec![rng.random_range(0..3), rng.random_range(0..20), rng.random_range(0..20)],
        };
        let u16s = rng.random_bool(0.3);
        let dtype = if u16s { "<u2" } else { "<f4" };
        let (valid, values) = valid_npy(&mut rng, &shape, u16s);
        let kind = case % 8;
        input.clear();
        match kind {
            0 => {
                let len = rng.random_range(0..256);
                input.resize(len, 0);
                rng.fill_bytes(&mut input);
                if rng.random() && input.len() >= 8 {
                    input[..6].copy_from_slice(b"\x93NUMPY");
                }
            }
            1 => input.extend_from_slice(&valid),
            2..=4 => {
                input.extend_from_slice(&valid);
                edit_npy_header(&mut rng, &mut input);
            }
            _ => {
                input.extend_from_slice(&valid);
                mutate(&mut rng, &mut input, &valid);
            }
        }
        // Sometimes the manifest disagrees with the file.
        let expected: Vec<u64> = if kind != 1 && rng.random_bool(0.1) {
            shape.iter().map(|&d| d + rng.random_range(0..2)).collect()
        } else {
            shape.clone()
        };
        let manifest_dtype = if kind != 1 && rng.random_bool(0.05) { "<f8" } else { dtype };
        let result = bundle::decode_npy(&input, file, "frames", manifest_dtype, &expected);
        let declared = expected.iter().product::<u64>() as usize;
        match (kind, result) {
            (1, Ok(data)) => {
                let same = data.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same && data.len() == values.len(), "case {case}: valid input must round-trip");
                accepted += 1;
            }
            (1, Err(e)) => panic!("case {case}: a valid array was refused: {e}"),
            (_, Ok(data)) => {
                assert_eq!(data.len(), declared, "case {case}: decoded length must equal the declared shape");
                accepted += 1;
            }
            (_, Err(e)) => assert!(e.to_string().contains("frames.npy"), "case {case}: error must name the file: {e}"),
        }
    }
    report("fuzz_npy_header", n, start, &format!("{accepted} accepted"));
}
