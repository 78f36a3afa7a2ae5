//! Integration tests of tomolab-recon: one test binary, modules in `suite/`.

// Helpers outside `#[test]` functions unwrap too: a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used)]

mod suite;
