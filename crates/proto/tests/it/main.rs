//! Integration tests of the proto crate: one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod fuzz_corpus;
mod session;
mod vectors;
