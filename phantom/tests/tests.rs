//! Integration tests of tomolab-phantom (one binary; modules in `it/`).

mod it;
