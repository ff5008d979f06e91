//! Communitas' cryptography: identity keys, the four-word address, safety numbers,
//! sealed envelopes, the keystore and at-rest encryption.
//!
//! Pure functions over bytes: no IO, no async, no clock. Randomness comes from the OS
//! through [`random`] at the few places that need it (key generation, per-message KEM
//! randomness and nonces), and each of those has a deterministic twin for tests and
//! golden vectors.
//!
//! Primitives (ARCHITECTURE §3–4): Ed25519 signatures, X-Wing (X25519 + ML-KEM-768)
//! key encapsulation, XChaCha20-Poly1305, BLAKE3 and Argon2id. Sessions (decision
//! 0050) add [`prekey`] bundles, the PQXDH-shaped [`handshake`], and the [`dh`]
//! (X25519) and [`mlkem`] (ML-KEM-768) wrappers the ratchet in `proto` uses.
//!
//! ```
//! use communitas_crypto::{Envelope, Identity, Kind, Letter};
//! use communitas_types::{MessageId, Timestamp};
//!
//! let alice = Identity::generate()?;
//! let bob = Identity::generate()?;
//! let letter = Letter {
//!     message_id: MessageId::from_bytes([1; 16]),
//!     timestamp: Timestamp::now(),
//!     kind: Kind::Text,
//!     body: "hi bob".as_bytes(),
//! };
//! let wire = Envelope::seal(&alice, bob.public(), letter)?.to_bytes();
//! let opened = Envelope::from_bytes(&wire)?.open(&bob)?;
//! assert_eq!(opened.body, b"hi bob");
//! assert_eq!(&opened.sender, alice.public());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod address;
pub mod at_rest;
pub mod dh;
pub mod envelope;
#[doc(hidden)]
pub mod fuzz;
pub mod handshake;
pub mod identity;
pub mod keystore;
pub mod mlkem;
pub mod payload;
pub mod prekey;
pub mod random;
pub mod record;
pub mod safety;

pub use address::derive_address;
pub use envelope::{Envelope, Letter, OpenError, Opened, SealError};
pub use identity::{DeviceKey, Identity, PublicIdentity};
pub use keystore::{Keystore, KeystoreError, KeystorePublic, Secrets};
pub use payload::Kind;
pub use prekey::{OneTimeKey, OneTimePrekey, PrekeyBundle, PrekeyId};
pub use record::{Device, IdentityRecord, RecordSet};
pub use safety::SafetyNumber;
