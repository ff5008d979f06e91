//! `communitas`: the command-line tool (and, as the network lands, the daemon).
//!
//! Every command prints its result on stdout (`--json` where a script would read it)
//! and, on failure, one clear line on stderr with a non-zero exit code:
//! 1 for a failed operation, 2 for a usage problem (including no passphrase source).

mod commands;
mod home;
mod passphrase;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A serverless, end-to-end encrypted, post-quantum messenger.
#[derive(Parser, Debug)]
#[command(name = "communitas", version, about)]
struct Cli {
    /// The folder holding this identity's keystore and database
    /// [default: $COMMUNITAS_HOME, else the platform data folder].
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,

    /// Read the passphrase from this file (one line) instead of
    /// $COMMUNITAS_PASSPHRASE or a terminal prompt.
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new identity in the home folder and print its four-word address.
    Init {
        /// A display name for this identity.
        #[arg(long)]
        name: Option<String>,
        /// Print {"address","fingerprint","peer_id"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print this identity's four-word address.
    Address {
        /// Print {"address","fingerprint","peer_id"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a local demonstration with two users, alice and bob.
    Demo,
}

/// An error that ends the program with a given exit code and one line of text.
#[derive(Debug)]
pub(crate) struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    /// A usage problem: exit code 2.
    pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self { code: 2, message: message.into() })
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (home, passphrase) = (cli.home_dir(), cli.passphrase());
    let result = match cli.command {
        Command::Init { name, json } => commands::init::run(&home, passphrase, name, json),
        Command::Address { json } => commands::address::run(&home, passphrase, json),
        Command::Demo => commands::demo::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error.downcast_ref::<Exit>().map_or(1, |e| e.code);
            // One line: the outermost context and its causes, joined.
            let text: Vec<String> = error.chain().map(ToString::to_string).collect();
            eprintln!("communitas: {}", text.join(": "));
            ExitCode::from(code)
        }
    }
}

impl Cli {
    fn home_dir(&self) -> PathBuf {
        home::resolve(self.home.clone())
    }

    fn passphrase(&self) -> passphrase::Source {
        passphrase::Source::from_env(self.passphrase_file.clone())
    }
}
