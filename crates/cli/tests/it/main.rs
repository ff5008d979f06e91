//! The `communitas` binary, run as a user runs it. One test binary (ARCHITECTURE §14).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod catchup;
mod chaos;
mod consent;
mod daemon;
mod files;
mod identity;
mod load;
mod names;
mod network;
mod order;
mod passphrase;
mod presence;
mod replication;
mod unlock;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A `communitas` command with a clean environment: no passphrase, no home from the
/// caller's shell, stdin not a terminal. `COMMUNITAS_TEST_BIN=PATH` runs another build
/// of the binary (a release build, or an older one for a paired figure).
pub fn communitas(home: &Path) -> Command {
    let bin = std::env::var_os("COMMUNITAS_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_communitas").into());
    let mut cmd = Command::new(bin);
    cmd.arg("--home").arg(home);
    cmd.env_remove("COMMUNITAS_PASSPHRASE")
        .env_remove("COMMUNITAS_NEW_PASSPHRASE")
        .env_remove("COMMUNITAS_HOME");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs it and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("communitas runs")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}
