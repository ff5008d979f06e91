//! `communitas address`: print this identity's four-word address.
//!
//! Unlocks the keystore even though the address is in its public section: the
//! public section is only authenticated by the passphrase, and a wrong passphrase
//! must fail here as on every command.

use std::path::Path;

use anyhow::Result;

use super::Summary;
use crate::home;
use crate::passphrase::Source;

pub(crate) fn run(home: &Path, passphrase: Source, json: bool) -> Result<()> {
    let keystore = home::read_keystore(home)?;
    let passphrase = passphrase.read(false)?;
    keystore.unlock(passphrase.as_bytes())?;
    Summary::of(keystore.public()).print(json)
}
