//! `communitas address`: print this identity's four-word address.
//!
//! Read from the keystore's public section without the passphrase (issue 23 item 8):
//! an address is for giving out, and asking for a secret to show it taught users to
//! type the passphrase where it is not needed. The public section is authenticated
//! only by an unlock, so a file altered by someone with write access to the home
//! could show another address here; such a person could as well replace the binary,
//! and every command that uses the keys still unlocks them (and would fail).

use std::path::Path;

use anyhow::Result;

use super::Summary;
use crate::home;

pub(crate) fn run(home: &Path, json: bool) -> Result<()> {
    let keystore = home::read_keystore(home)?;
    Summary::of(keystore.public()).print(json)
}
