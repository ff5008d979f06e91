//! Where the passphrase comes from: `--passphrase-file`, else `$COMMUNITAS_PASSPHRASE`,
//! else a prompt on a terminal. With none of these, a usage error (exit 2).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use zeroize::Zeroizing;

use crate::Exit;

/// A passphrase source, resolved lazily so commands that need none never ask.
#[derive(Debug)]
pub(crate) enum Source {
    File(PathBuf),
    Env(Zeroizing<String>),
    Prompt,
}

impl Source {
    pub(crate) fn from_env(file: Option<PathBuf>) -> Self {
        match (file, std::env::var("COMMUNITAS_PASSPHRASE")) {
            (Some(path), _) => Source::File(path),
            (None, Ok(value)) => Source::Env(Zeroizing::new(value)),
            (None, Err(_)) => Source::Prompt,
        }
    }

    /// The passphrase. `confirm` asks twice at a prompt (for a new keystore).
    pub(crate) fn read(self, confirm: bool) -> Result<Zeroizing<String>> {
        let value = match self {
            Source::File(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
                let line = text.strip_suffix('\n').unwrap_or(&text);
                Zeroizing::new(line.strip_suffix('\r').unwrap_or(line).to_owned())
            }
            Source::Env(value) => value,
            Source::Prompt => prompt(confirm)?,
        };
        if value.is_empty() {
            return Err(Exit::usage("the passphrase is empty"));
        }
        Ok(value)
    }
}

fn prompt(confirm: bool) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return Err(Exit::usage(
            "no passphrase: use --passphrase-file FILE, set COMMUNITAS_PASSPHRASE, or run in a terminal",
        ));
    }
    let first = Zeroizing::new(rpassword::prompt_password("Passphrase: ")?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("Passphrase again: ")?);
        if *first != *again {
            return Err(Exit::usage("the two passphrases differ"));
        }
    }
    Ok(first)
}
