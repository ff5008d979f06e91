//! Fixed-size identifiers. Each is a newtype so that a message id can never be passed
//! where a mailbox id is expected; all print as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not hex of the right length.
    #[error("expected {expected} hex characters")]
    BadHex {
        /// Hex characters expected.
        expected: usize,
    },
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn to_bytes(&self) -> [u8; $len] {
                self.0
            }

            /// The raw bytes, borrowed.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The first 8 hex characters, for logs.
            pub fn fmt_short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.fmt_short())
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(text.trim(), &mut out)
                    .map_err(|_| IdError::BadHex { expected: 2 * $len })?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; $len]>::deserialize(d).map(Self)
                }
            }
        }
    };
}

hex_id!(
    /// A message id: 128 random bits chosen by the sender.
    MessageId,
    16
);
hex_id!(
    /// The fingerprint of an identity: BLAKE3 of its public keys (see
    /// `communitas_crypto::identity`). Two identities with the same fingerprint have the
    /// same keys.
    Fingerprint,
    32
);
hex_id!(
    /// Where an identity's sealed envelopes are addressed: derived from its public
    /// keys, the only recipient information visible outside an envelope.
    MailboxId,
    32
);
hex_id!(
    /// A file attachment's id: 128 random bits chosen by the sender. Knowing it is
    /// what lets a peer ask for the file's (encrypted) shards.
    FileId,
    16
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_bad_hex_is_refused() {
        let id = MessageId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
        assert_eq!("abc".parse::<MessageId>(), Err(IdError::BadHex { expected: 32 }));
        assert_eq!(format!("{id:?}"), "MessageId(abababab)");
    }
}
