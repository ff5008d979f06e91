//! `communitas init`: a new identity in a new home.
//!
//! Order matters for "refuses and changes nothing": every check runs before the first
//! write, and the keystore — whose presence is what makes a home initialised — is
//! written last, atomically, and never over an existing file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use communitas_crypto::keystore::KdfParams;
use communitas_crypto::{Keystore, KeystorePublic, Secrets, derive_address};
use communitas_store::{IdentityRow, Store};
use communitas_types::Timestamp;

use super::Summary;
use crate::Exit;
use crate::home::{self, DATABASE, KEYSTORE};
use crate::passphrase::Source;

pub(crate) fn run(home: &Path, passphrase: Source, name: Option<String>, json: bool) -> Result<()> {
    if home.join(KEYSTORE).symlink_metadata().is_ok() {
        bail!("{} already holds an identity; nothing was changed", home.display());
    }
    check_fresh(home)?;
    if let Some(name) = &name {
        check_name(name)?;
    }
    let passphrase = passphrase.read(true)?;
    communitas_crypto::keystore::check_new_passphrase(&passphrase)
        .map_err(|e| Exit::usage(e.to_string()))?;
    // A node started with `run --locked` holds the home and may be creating the
    // identity from its web UI: one of the two, never both.
    home::create(home)?;
    let Some(_lock) = crate::daemon::try_lock_home(home)? else {
        bail!("a node is running for {}; create the identity in its web UI", home.display());
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (_, public) =
        runtime.block_on(create(home, name, passphrase.as_bytes(), KdfParams::DEFAULT))?;
    Summary::of(&public).print(json)
}

/// Creates an identity in `home`: keys, database, then the keystore (last, atomically).
pub(crate) async fn create(
    home: &Path,
    name: Option<String>,
    passphrase: &[u8],
    kdf: KdfParams,
) -> Result<(Secrets, KeystorePublic)> {
    let secrets = Secrets::generate()?;
    let identity = secrets.identity.public().clone();
    let address = tokio::task::spawn_blocking(move || derive_address(&identity)).await?;
    let created_at = Timestamp::now();
    let keystore = Keystore::create(&secrets, name.clone(), address, created_at, passphrase, kdf)?;
    home::create(home)?;
    let row = IdentityRow {
        address,
        fingerprint: secrets.identity.public().fingerprint(),
        name,
        created_at,
    };
    let path = home.join(DATABASE);
    let made = async {
        let store = Store::open(&path, secrets.storage.clone())
            .with_context(|| format!("cannot create the database {}", path.display()))?;
        store.set_identity(row).await.context("cannot record the identity")?;
        drop(store);
        home::write_new_file(&home.join(KEYSTORE), &keystore.to_bytes())
    };
    if let Err(e) = made.await {
        // A database without its keystore would block every later try (`check_fresh`):
        // nothing is in it yet but the identity row, so it goes.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(home.join(format!("{DATABASE}{suffix}")));
        }
        return Err(e);
    }
    Ok((secrets, keystore.public().clone()))
}

/// A database without a keystore is someone's data: never created over.
pub(crate) fn check_fresh(home: &Path) -> Result<()> {
    if home.join(DATABASE).symlink_metadata().is_ok() {
        bail!(
            "{} holds a database but no keystore; move it away or choose another --home",
            home.display()
        );
    }
    Ok(())
}

/// A display name: the node's rule (`communitas_node::check_name`), one for the CLI,
/// the API and the web UI.
pub(crate) fn check_name(name: &str) -> Result<()> {
    communitas_node::check_name(name)?;
    Ok(())
}
