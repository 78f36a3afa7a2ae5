//! A seeded fuzz harness for the NRRD reader (`io::read_nrrd`), the parser of volumes from outside (exam
//! directories, `tomolab metrics`, the DICOM export): random bytes, byte-level mutations of a valid file
//! (bit flips, truncation, splicing, deletion) and header-field edits (sizes, spacings, origin, type, encoding,
//! huge and non-finite numbers).
//!
//! Checks: no panic; every accepted file gives a volume whose grid passes `validate_grid` and whose data has
//! exactly `nx * ny * nz` values, read from a file of exactly that many bytes after the header; a claimed size
//! beyond the grid limit is refused before anything is allocated for it (the reader compares the header with
//! the file length first). Valid inputs round-trip exactly. The case count is `TOMOLAB_FUZZ_CASES`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tomolab_recon::io::{read_nrrd, write_nrrd};
use tomolab_recon::{Volume, VoxelGrid, validate_grid};

fn cases(default: usize) -> usize {
    std::env::var("TOMOLAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn valid_file(dir: &std::path::Path) -> (Vec<u8>, Volume) {
    let geometry = VoxelGrid::from_first_centre([4, 3, 2], [0.5, 0.25, 1.0], [-1.0, 2.0, 20.5]);
    let data = (0..geometry.len()).map(|i| i as f32 * 0.01 - 0.05).collect();
    let volume = Volume { geometry, data };
    let path = dir.join("valid.nrrd");
    write_nrrd(&path, &volume).unwrap();
    (std::fs::read(&path).unwrap(), volume)
}

/// One header line of the valid file replaced by a hostile value.
fn edit_header(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
    let header = std::str::from_utf8(&bytes[..split]).unwrap();
    let numbers = ["0", "-1", "1e308", "NaN", "inf", "18446744073709551615", "4294967296", "0.5", "2", "1e-300", ""];
    let which = rng.random_range(0..6);
    let mut pick = || numbers[rng.random_range(0..numbers.len())];
    let replacement = match which {
        0 => format!("sizes: {} {} {}", pick(), pick(), pick()),
        1 => format!("space directions: ({},0,0) (0,{},0) (0,0,{})", pick(), pick(), pick()),
        2 => format!("space origin: ({},{},{})", pick(), pick(), pick()),
        3 => "type: double".to_owned(),
        4 => "encoding: gzip".to_owned(),
        _ => "dimension: 2".to_owned(),
    };
    let key = replacement.split(':').next().unwrap().to_owned();
    let mut lines: Vec<String> = header.lines().map(str::to_owned).collect();
    match lines.iter_mut().find(|l| l.starts_with(&key)) {
        Some(line) => *line = replacement,
        None => lines.push(replacement),
    }
    let mut out = lines.join("\n").into_bytes();
    out.extend_from_slice(&bytes[split..]);
    out
}

fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=3) {
        if input.is_empty() {
            input.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..input.len());
        match rng.random_range(0..4) {
            0 => input[at] ^= 1 << rng.random_range(0..8),
            1 => input.truncate(at),
            2 => {
                input.remove(at);
            }
            _ => {
                let chunk: Vec<u8> = input[at..].iter().take(16).copied().collect();
                input.splice(at..at, chunk);
            }
        }
    }
}

#[test]
fn fuzz_read_nrrd_never_panics_and_accepts_only_consistent_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let (valid, volume) = valid_file(dir.path());
    let path = dir.path().join("case.nrrd");
    let mut rng = ChaCha8Rng::seed_from_u64(0x4e52_5244);
    let (mut accepted, mut refused) = (0usize, 0usize);
    for case in 0..cases(3000) {
        let bytes = match case % 4 {
            0 => (0..rng.random_range(0..256)).map(|_| rng.random()).collect(),
            1 => edit_header(&mut rng, &valid),
            2 => {
                let mut b = valid.clone();
                mutate(&mut rng, &mut b);
                b
            }
            _ => {
                let mut b = edit_header(&mut rng, &valid);
                mutate(&mut rng, &mut b);
                b
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        match read_nrrd(&path) {
            Ok(v) => {
                accepted += 1;
                validate_grid(&v.geometry).unwrap_or_else(|e| panic!("case {case}: accepted an invalid grid: {e}"));
                assert_eq!(v.data.len(), v.geometry.len(), "case {case}");
                let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
                assert_eq!(bytes.len() - split - 2, 4 * v.geometry.len(), "case {case}: data length");
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    std::fs::write(&path, &valid).unwrap();
    assert_eq!(read_nrrd(&path).unwrap(), volume, "the valid file round-trips");
    eprintln!("fuzz_read_nrrd: {accepted} accepted, {refused} refused");
    assert!(refused > accepted, "most mutations must be refused ({accepted} accepted)");
}
