//! `communitas`: the command-line tool and the daemon.
//!
//! Every command prints its result on stdout (`--json` where a script would read it)
//! and, on failure, one clear line on stderr with a non-zero exit code: 1 for a failed
//! operation, 2 for a usage problem (including no passphrase source), 3 when
//! `send --wait` ran out of time with the message safely queued (it will still be
//! delivered), 4 when the message failed for good.
//!
//! `init`, `address` and `run` open the keystore, and `passphrase` rewrites it when no
//! node runs; the other user commands talk to the home's running node through its API
//! (`<home>/api.json` and `<home>/api-token`).

mod client;
mod commands;
mod daemon;
mod home;
mod passphrase;

use std::path::{Path, PathBuf};
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
    /// Show your display name, or change it (published to whoever looks you up).
    Name {
        /// The new name.
        name: Option<String>,
        /// Clear the name instead.
        #[arg(long, conflicts_with = "name")]
        clear: bool,
        /// Print {"address","name"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print this identity's four-word address (no passphrase needed).
    Address {
        /// Print {"address","fingerprint","peer_id"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run this identity's node (until Ctrl-C or SIGTERM).
    Run(commands::run::RunArgs),
    /// Send a text message, or a file with a caption.
    Send {
        /// The recipient's four-word address.
        address: String,
        /// The message (the caption, with --file; may be empty).
        text: String,
        /// Attach this file (up to the node's --max-file-size, 1 GiB by default).
        /// With --wait, waits until the recipient has fetched it.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        /// Wait up to SECS for the delivery receipt: exit 3 if it does not come (the
        /// message stays queued and will still be delivered), 4 if the message failed.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
        /// Print {"id","status"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a conversation, oldest first.
    History {
        /// The other person's four-word address.
        address: String,
        /// How many of the latest messages.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Manage contacts.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Message requests: strangers who wrote to you, not yet accepted (lists them
    /// without a subcommand).
    Requests {
        #[command(subcommand)]
        action: Option<RequestsCommand>,
        /// Print a JSON array of {address, first_at, count, ...}.
        #[arg(long)]
        json: bool,
    },
    /// Block an address (a contact, a request or anyone): what it sends is dropped,
    /// and it hears nothing more from you.
    Block {
        /// The four-word address.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unblock an address.
    Unblock {
        /// The four-word address.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List blocked addresses.
    Blocked {
        /// Print a JSON array of {address, blocked_at}.
        #[arg(long)]
        json: bool,
    },
    /// Received and sent files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Your presence status, and your contacts' (end-to-end encrypted, contacts only).
    #[command(subcommand)]
    Presence(PresenceCommand),
    /// Mark a conversation read (sends a read receipt unless they are turned off).
    Read {
        /// The other person's four-word address.
        address: String,
        /// Print {"read"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tell a contact you are typing (shown for 6 s), or that you stopped.
    Typing {
        /// The contact's four-word address.
        address: String,
        /// Stopped typing.
        #[arg(long)]
        stop: bool,
    },
    /// Show or change your settings.
    Settings {
        /// Send read receipts: on (the default) or off.
        #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
        read_receipts: Option<bool>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unlock a node started with `run --locked` (the passphrase as for `init`).
    Unlock,
    /// Lock the running node: it stops and forgets its keys until unlocked again.
    Lock,
    /// Change the passphrase (the current one as for `unlock`; through the running
    /// node if there is one).
    Passphrase {
        /// Read the new passphrase from this file (one line) instead of
        /// $COMMUNITAS_NEW_PASSPHRASE or a terminal prompt (asked twice).
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Print a new one-time link that signs a browser in to the node's web UI.
    LoginLink,
    /// Show the running node's state.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List messages waiting to be delivered, or given up on (`--dead`).
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxCommand>,
        /// List dead letters instead.
        #[arg(long)]
        dead: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run N server nodes on 127.0.0.1 for a local network (until Ctrl-C).
    Testnet {
        /// How many server nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// First port (TCP and QUIC); the others follow. Default: any free ports.
        #[arg(long)]
        base_port: Option<u16>,
    },
    /// Start a local network with two users, alice and bob, ready to chat.
    Demo,
    /// Benchmarks on real processes (results belong in docs/benchmarks.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Send → delivered latency and sustained messages per second, alice to bob.
    Latency(commands::bench::LatencyArgs),
    /// One file, alice to bob, direct: seconds, MB/s, peak RSS of each node.
    File(commands::bench_file::FileArgs),
    /// Presence: a status change to the contact's events; SIGKILL → offline; restart → back.
    Presence(commands::bench_presence::PresenceArgs),
    /// Many light users on one server node: delivery p50/p99, server RSS and CPU,
    /// refused and lost messages.
    Load(commands::load::LoadArgs),
    /// First contacts from many fresh identities at bob: alice's latency against a
    /// quiet run, a real stranger's request latency, bob's CPU.
    Flood(commands::bench_flood::FloodArgs),
}

#[derive(Subcommand, Debug)]
enum RequestsCommand {
    /// List message requests (the default).
    List {
        /// Print a JSON array of {address, first_at, count, ...}.
        #[arg(long)]
        json: bool,
    },
    /// Accept a request: they become a contact, their messages the conversation.
    Accept {
        /// The four-word address.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decline a request: deleted with its messages.
    Decline {
        /// The four-word address.
        address: String,
        /// Block the address too.
        #[arg(long)]
        block: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ContactsCommand {
    /// Look up an address and pin its keys as a contact.
    Add {
        /// The four-word address.
        address: String,
        /// What to call them.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List contacts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename a contact (or clear its name with --clear).
    Rename {
        /// The four-word address.
        address: String,
        /// What to call them.
        #[arg(required_unless_present = "clear")]
        name: Option<String>,
        /// Clear the name instead: the address shows.
        #[arg(long, conflicts_with = "name")]
        clear: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a contact. The conversation is kept; if they write again, it is a
    /// message request.
    Remove {
        /// The four-word address.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the safety number to compare with a contact.
    Verify {
        /// The four-word address.
        address: String,
        /// Mark the contact verified (after comparing).
        #[arg(long)]
        confirm: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum FilesCommand {
    /// Fetch a received file (if it is not yet) and print where it is, or copy it.
    Get {
        /// The file id (from `history --json` or `send --file`).
        id: String,
        /// Copy it here (never over an existing file).
        #[arg(long, value_name = "PATH")]
        out: Option<std::path::PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a file's state.
    Show {
        /// The file id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum PresenceCommand {
    /// Set your status: online, away, busy or offline (appear offline).
    Set {
        /// online, away, busy or offline.
        status: String,
    },
    /// A contact's status and when you last heard from them.
    Get {
        /// The contact's four-word address.
        address: String,
        /// Print {"status","last_seen"} as JSON (last_seen: unix ms or null).
        #[arg(long)]
        json: bool,
    },
    /// Your status and every contact's.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("expected on or off, not {text:?}")),
    }
}

#[derive(Subcommand, Debug)]
enum OutboxCommand {
    /// Put a dead letter back in the outbox.
    Retry {
        /// The message id.
        id: String,
    },
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
        Self::with_code(2, message)
    }

    /// Any exit code.
    pub(crate) fn with_code(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self { code, message: message.into() })
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// glibc's malloc raises its mmap threshold each time a large block is freed, after
/// which megabyte buffers come from per-thread arenas and stay there: a node moving
/// 1 MiB file stripes between threads peaked at ~150 MiB instead of ~85 MiB
/// (`bench file`, docs/benchmarks.md). A fixed threshold of 1 MiB keeps stripe-sized
/// buffers mapped and returned on free; smaller ones stay in the heap (a 64 KiB
/// threshold cost ~10% of message throughput in munmap and TLB shootdowns). The variable is read only at process start, so a node that
/// does not have it yet replaces itself (same pid, same arguments) with one that does.
fn fix_malloc_threshold(command: &Command) {
    use std::os::unix::process::CommandExt as _;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if !matches!(command, Command::Run(_) | Command::Demo) || std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    // Returns only if the exec failed; then run as we are.
    let error = std::process::Command::new(exe).args(args).env(VAR, "1048576").exec();
    eprintln!("communitas: note: cannot set {VAR}: {error}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    fix_malloc_threshold(&cli.command);
    let home = home::resolve(cli.home.clone());
    let passphrase = passphrase::Source::from_env(cli.passphrase_file.clone());
    match dispatch(cli.command, &home, passphrase) {
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

fn dispatch(command: Command, home: &Path, passphrase: passphrase::Source) -> anyhow::Result<()> {
    use commands::{contacts, messages, presence};
    match command {
        Command::Init { name, json } => commands::init::run(home, passphrase, name, json),
        Command::Address { json } => commands::address::run(home, json),
        Command::Run(args) => commands::run::run(home, passphrase, args),
        Command::Testnet { nodes, base_port } => commands::testnet::run(nodes, base_port),
        Command::Demo => commands::demo::run(),
        Command::Bench(BenchCommand::Latency(args)) => commands::bench::latency(args),
        Command::Bench(BenchCommand::File(args)) => commands::bench_file::file(args),
        Command::Bench(BenchCommand::Presence(args)) => commands::bench_presence::presence(args),
        Command::Bench(BenchCommand::Load(args)) => commands::load::load(args),
        Command::Bench(BenchCommand::Flood(args)) => commands::bench_flood::flood(args),
        Command::Send { address, text, file: None, wait, json } => {
            client(|| messages::send(home, &address, &text, wait, json))
        }
        Command::Send { address, text, file: Some(file), wait, json } => {
            client(|| commands::files::send(home, &address, &text, &file, wait, json))
        }
        Command::Files(FilesCommand::Get { id, out, json }) => {
            client(|| commands::files::get(home, &id, out.as_deref(), json))
        }
        Command::Files(FilesCommand::Show { id, json }) => {
            client(|| commands::files::show(home, &id, json))
        }
        Command::History { address, limit, json } => {
            client(|| messages::history(home, &address, limit, json))
        }
        Command::Contacts(ContactsCommand::Add { address, name, json }) => {
            client(|| contacts::add(home, &address, name, json))
        }
        Command::Contacts(ContactsCommand::List { json }) => client(|| contacts::list(home, json)),
        Command::Contacts(ContactsCommand::Rename { address, name, clear: _, json }) => {
            client(|| contacts::rename(home, &address, name, json))
        }
        Command::Contacts(ContactsCommand::Remove { address, json }) => {
            client(|| contacts::remove(home, &address, json))
        }
        Command::Name { name, clear, json } => client(|| contacts::name(home, name, clear, json)),
        Command::Contacts(ContactsCommand::Verify { address, confirm, json }) => {
            client(|| contacts::verify(home, &address, confirm, json))
        }
        Command::Status { json } => client(|| contacts::status(home, json)),
        Command::Requests { action: None, json }
        | Command::Requests { action: Some(RequestsCommand::List { json }), .. } => {
            client(|| commands::requests::list(home, json))
        }
        Command::Requests { action: Some(RequestsCommand::Accept { address, json }), .. } => {
            client(|| commands::requests::accept(home, &address, json))
        }
        Command::Requests {
            action: Some(RequestsCommand::Decline { address, block, json }),
            ..
        } => client(|| commands::requests::decline(home, &address, block, json)),
        Command::Block { address, json } => {
            client(|| commands::requests::block(home, &address, json))
        }
        Command::Unblock { address, json } => {
            client(|| commands::requests::unblock(home, &address, json))
        }
        Command::Blocked { json } => client(|| commands::requests::blocked(home, json)),
        Command::Unlock => client(|| commands::session::unlock(home, passphrase)),
        Command::Lock => client(|| commands::session::lock(home)),
        Command::Passphrase { new_passphrase_file } => commands::change_passphrase::run(
            home,
            passphrase,
            passphrase::Source::new_from_env(new_passphrase_file),
        ),
        Command::LoginLink => client(|| commands::session::login_link(home)),
        Command::Presence(PresenceCommand::Set { status }) => {
            client(|| presence::set(home, &status))
        }
        Command::Presence(PresenceCommand::Get { address, json }) => {
            client(|| presence::get(home, &address, json))
        }
        Command::Presence(PresenceCommand::List { json }) => client(|| presence::list(home, json)),
        Command::Read { address, json } => client(|| presence::read(home, &address, json)),
        Command::Typing { address, stop } => client(|| presence::typing(home, &address, stop)),
        Command::Settings { read_receipts, json } => {
            client(|| presence::settings(home, read_receipts, json))
        }
        Command::Outbox { action: Some(OutboxCommand::Retry { id }), .. } => {
            client(|| contacts::retry(home, &id))
        }
        Command::Outbox { action: None, dead, json } => {
            client(|| contacts::outbox(home, dead, json))
        }
    }
}

/// Runs an API client command on a small runtime.
pub(crate) fn client<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: impl FnOnce() -> F,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f())
}
