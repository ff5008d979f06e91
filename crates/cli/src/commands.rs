//! One module per subcommand.

pub(crate) mod address;
pub(crate) mod bench;
pub(crate) mod bench_file;
pub(crate) mod bench_flood;
pub(crate) mod bench_presence;
pub(crate) mod change_passphrase;
pub(crate) mod contacts;
pub(crate) mod demo;
pub(crate) mod files;
pub(crate) mod init;
pub(crate) mod load;
pub(crate) mod messages;
pub(crate) mod presence;
pub(crate) mod requests;
pub(crate) mod run;
pub(crate) mod session;
pub(crate) mod testnet;

use communitas_crypto::KeystorePublic;
use serde::Serialize;

/// What `init` and `address` print.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    address: String,
    fingerprint: String,
    peer_id: String,
}

impl Summary {
    pub(crate) fn of(public: &KeystorePublic) -> Self {
        Self {
            address: public.address.to_string(),
            fingerprint: public.identity.fingerprint().to_string(),
            peer_id: public.peer_id.to_string(),
        }
    }

    /// The address alone, or the JSON object.
    pub(crate) fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!("{}", self.address);
        }
        Ok(())
    }
}
