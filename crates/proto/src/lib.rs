//! Communitas' sans-IO protocol pieces (ARCHITECTURE §2): pure functions and state,
//! no tokio, no sockets, no SQLite, so they are tested with vectors and properties.
//!
//! - [`mod@file`]: the attachment pipeline (ARCHITECTURE §7) — fixed-size segments, each
//!   sealed with XChaCha20-Poly1305 under a per-file key, cut into Reed-Solomon data
//!   and parity shards, every shard named by its BLAKE3 hash — the manifest that
//!   describes a file, and the frames of `/communitas/file/1`.

#![deny(missing_docs)]

pub mod file;
