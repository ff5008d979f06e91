//! In-process multi-node tests over libp2p's memory transport (real Noise and Yamux,
//! no sockets). One test binary (ARCHITECTURE §14).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod consent;
mod files;
mod hostile;
mod memory;
mod modules;
mod sessions;
