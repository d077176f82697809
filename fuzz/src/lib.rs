//! The fuzz targets' bodies, as a library the targets in `fuzz_targets/` call (and the root
//! crate's `tests/fuzz_corpus.rs` includes, to replay the corpus on stable).
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "fuzz bodies assert properties"
)]

pub mod bodies;
