//! Where a passphrase comes from: `--passphrase-file`, else `$COMMUNITAS_PASSPHRASE`,
//! else a prompt on a terminal. With none of these, a usage error (exit 2).
//!
//! `communitas passphrase` also reads a new one (decision 0014) the same way:
//! `--new-passphrase-file`, else `$COMMUNITAS_NEW_PASSPHRASE`, else a prompt, asked twice.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use zeroize::Zeroizing;

use crate::Exit;

/// Which passphrase a source gives: they differ only in names and prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// The keystore's passphrase (for `passphrase`, the current one).
    Current,
    /// The one `passphrase` changes it to.
    New,
}

impl Which {
    fn var(self) -> &'static str {
        match self {
            Which::Current => "COMMUNITAS_PASSPHRASE",
            Which::New => "COMMUNITAS_NEW_PASSPHRASE",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Which::Current => "--passphrase-file",
            Which::New => "--new-passphrase-file",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Which::Current => "passphrase",
            Which::New => "new passphrase",
        }
    }

    fn prompt(self) -> &'static str {
        match self {
            Which::Current => "Passphrase: ",
            Which::New => "New passphrase: ",
        }
    }

    fn prompt_again(self) -> &'static str {
        match self {
            Which::Current => "Passphrase again: ",
            Which::New => "New passphrase again: ",
        }
    }
}

/// A passphrase source, resolved lazily so commands that need none never ask.
#[derive(Debug)]
pub(crate) struct Source {
    which: Which,
    from: From,
}

#[derive(Debug)]
enum From {
    File(PathBuf),
    Env(Zeroizing<String>),
    Prompt,
}

impl Source {
    /// The keystore's passphrase: `file` (`--passphrase-file`), else the environment.
    pub(crate) fn from_env(file: Option<PathBuf>) -> Self {
        Self::resolve(file, Which::Current)
    }

    /// A new passphrase: `file` (`--new-passphrase-file`), else the environment.
    pub(crate) fn new_from_env(file: Option<PathBuf>) -> Self {
        Self::resolve(file, Which::New)
    }

    fn resolve(file: Option<PathBuf>, which: Which) -> Self {
        let from = match (file, std::env::var(which.var())) {
            (Some(path), _) => From::File(path),
            (None, Ok(value)) => From::Env(Zeroizing::new(value)),
            (None, Err(_)) => From::Prompt,
        };
        Self { which, from }
    }

    /// The passphrase. `confirm` asks twice at a prompt (for a new keystore or a new
    /// passphrase).
    pub(crate) fn read(self, confirm: bool) -> Result<Zeroizing<String>> {
        let value = match self.from {
            From::File(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
                let line = text.strip_suffix('\n').unwrap_or(&text);
                Zeroizing::new(line.strip_suffix('\r').unwrap_or(line).to_owned())
            }
            From::Env(value) => value,
            From::Prompt => prompt(self.which, confirm)?,
        };
        if value.is_empty() {
            return Err(Exit::usage(format!("the {} is empty", self.which.noun())));
        }
        Ok(value)
    }
}

fn prompt(which: Which, confirm: bool) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return Err(Exit::usage(format!(
            "no {}: use {} FILE, set {}, or run in a terminal",
            which.noun(),
            which.flag(),
            which.var()
        )));
    }
    let first = Zeroizing::new(rpassword::prompt_password(which.prompt())?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password(which.prompt_again())?);
        if *first != *again {
            return Err(Exit::usage("the two passphrases differ"));
        }
    }
    Ok(first)
}
