//! `communitas passphrase`: change the keystore's passphrase (decision 0014).
//!
//! The keystore is re-encrypted under the new passphrase and replaces the old file
//! atomically. If a node runs for the home (locked or not: it holds the home's lock),
//! the node does it through `POST /v1/passphrase`, under the same turn lock as
//! unlocking; otherwise this command does it, holding the home's lock so no node
//! starts meanwhile. Either way a wrong current passphrase changes nothing.

use std::path::Path;

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::json;

use crate::client::Api;
use crate::daemon;
use crate::home::{self, KEYSTORE};
use crate::passphrase::Source;

/// Changes the passphrase of `home`'s keystore from `old`'s to `new`'s.
pub(crate) fn run(home: &Path, old: Source, new: Source) -> Result<()> {
    // No identity: say so before asking for anything or touching the home.
    home::read_keystore(home)?;
    // Both asked for first: the home's lock is never held while someone types.
    let old = old.read(false)?;
    let new = new.read(true)?;
    communitas_crypto::keystore::check_new_passphrase(&new)
        .map_err(|e| crate::Exit::usage(e.to_string()))?;
    match daemon::try_lock_home(home)? {
        Some(_lock) => rekey_file(home, old.as_bytes(), new.as_bytes())?,
        None => crate::client(|| through_node(home, &old, &new))?,
    }
    println!("passphrase changed");
    Ok(())
}

/// The running node changes it: it owns the keystore while it runs.
async fn through_node(home: &Path, old: &str, new: &str) -> Result<()> {
    #[derive(Deserialize)]
    struct Changed {
        changed: bool,
    }
    let answer: Changed =
        Api::for_home(home)?.post("/v1/passphrase", &json!({ "old": old, "new": new })).await?;
    if !answer.changed {
        bail!("the node did not change the passphrase");
    }
    Ok(())
}

/// Re-encrypts the keystore of `home` under `new` and replaces the file. Blocking
/// (Argon2id twice). A wrong `old` is a [`KeystoreError::WrongPassphrase`] in the
/// error chain, and the file is left untouched.
///
/// The caller makes sure nobody else writes the keystore meanwhile: the home's lock
/// without a node, the API's turn lock within one.
///
/// [`KeystoreError::WrongPassphrase`]: communitas_crypto::KeystoreError::WrongPassphrase
pub(crate) fn rekey_file(home: &Path, old: &[u8], new: &[u8]) -> Result<()> {
    let keystore = home::read_keystore(home)?;
    let rekeyed = keystore.rekey(old, new)?;
    home::replace_file(&home.join(KEYSTORE), &rekeyed.to_bytes())
}
