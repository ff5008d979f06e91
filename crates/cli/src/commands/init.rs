//! `communitas init`: a new identity in a new home.
//!
//! Order matters for "refuses and changes nothing": every check runs before the first
//! write, and the keystore — whose presence is what makes a home initialised — is
//! written last, atomically, and never over an existing file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use communitas_crypto::keystore::{KdfParams, MAX_NAME_LEN};
use communitas_crypto::{Keystore, Secrets, derive_address};
use communitas_store::{IdentityRow, Store};
use communitas_types::Timestamp;

use super::Summary;
use crate::home::{self, DATABASE, KEYSTORE};
use crate::passphrase::Source;

pub(crate) fn run(home: &Path, passphrase: Source, name: Option<String>, json: bool) -> Result<()> {
    if home.join(KEYSTORE).symlink_metadata().is_ok() {
        bail!("{} already holds an identity; nothing was changed", home.display());
    }
    if home.join(DATABASE).symlink_metadata().is_ok() {
        bail!(
            "{} holds a database but no keystore; move it away or choose another --home",
            home.display()
        );
    }
    if let Some(name) = &name {
        check_name(name)?;
    }
    let passphrase = passphrase.read(true)?;

    let secrets = Secrets::generate()?;
    let address = derive_address(secrets.identity.public());
    let created_at = Timestamp::now();
    let keystore = Keystore::create(
        &secrets,
        name.clone(),
        address,
        created_at,
        passphrase.as_bytes(),
        KdfParams::DEFAULT,
    )?;

    home::create(home)?;
    let row = IdentityRow {
        address,
        fingerprint: secrets.identity.public().fingerprint(),
        name,
        created_at,
    };
    record_identity(&home.join(DATABASE), &secrets, row)?;
    home::write_new_file(&home.join(KEYSTORE), &keystore.to_bytes())?;
    Summary::of(keystore.public()).print(json)
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        bail!("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        bail!("the name is {} bytes, the limit is {MAX_NAME_LEN}", name.len());
    }
    if name.chars().any(char::is_control) {
        bail!("the name contains control characters");
    }
    Ok(())
}

fn record_identity(path: &Path, secrets: &Secrets, row: IdentityRow) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async {
        let store = Store::open(path, secrets.storage.clone())
            .with_context(|| format!("cannot create the database {}", path.display()))?;
        store.set_identity(row).await.context("cannot record the identity")
    })
}
