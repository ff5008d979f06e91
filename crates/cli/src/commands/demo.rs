//! `communitas demo`: a local network with two users, ready to chat, in one command.
//!
//! Three server nodes and two user nodes, alice and bob, run in this process on
//! 127.0.0.1, with homes in a temporary folder. Each user node serves its API and
//! writes its `api.json`, so the ordinary CLI works against it from another terminal
//! (`communitas --home <alice's home> send <bob> hi`). The users add each other as
//! contacts before the demo reports ready. Ctrl-C stops everything and deletes the
//! folder.

use std::time::Duration;

use anyhow::{Context, Result};
use communitas_crypto::keystore::KdfParams;
use communitas_net::libp2p::Multiaddr;

use crate::commands::{init, testnet};
use crate::daemon::{self, Running};

const PASSPHRASE: &[u8] = b"demo";

pub(crate) fn run() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        daemon::init_logging("warn");
        let dir = tempfile::Builder::new().prefix("communitas-demo-").tempdir()?;
        println!("Starting a local Communitas network (3 server nodes, alice, bob) on 127.0.0.1…");
        let (servers, dial) = testnet::start(dir.path(), 3, None).await?;
        let alice = user(dir.path(), "alice", &dial).await?;
        let bob = user(dir.path(), "bob", &dial).await?;
        let (a, b) = (unlocked(&alice)?, unlocked(&bob)?);
        meet(&a, &b).await?;

        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "communitas".into());
        let alice_home = dir.path().join("alice");
        let bob_home = dir.path().join("bob");
        println!();
        println!("alice  {}", a.address());
        println!("       home {}", alice_home.display());
        println!("       api  {} (token in {}/api-token)", alice.url, alice_home.display());
        println!("       web  {}", alice.login_url.as_deref().unwrap_or("(no login link)"));
        println!("bob    {}", b.address());
        println!("       home {}", bob_home.display());
        println!("       api  {} (token in {}/api-token)", bob.url, bob_home.display());
        println!("       web  {}", bob.login_url.as_deref().unwrap_or("(no login link)"));
        println!();
        println!("They are contacts of each other. In another terminal, try:");
        println!("  {exe} --home {} send {} \"hi bob\"", alice_home.display(), b.address());
        println!("  {exe} --home {} history {}", bob_home.display(), a.address());
        println!();
        if let Some(join) = dial.first() {
            // A third user joins with `init`, then `run --bootstrap` this address.
            println!("Others join the network with:  run --bootstrap {join}");
        }
        println!("Or open the two web links in a browser (each works once) and chat there;");
        println!("`{exe} --home <home> login-link` prints a new link.");
        println!(
            "Their passphrase is \"{}\" (to try Lock and unlock).",
            String::from_utf8_lossy(PASSPHRASE)
        );
        println!("Ctrl-C stops the demo and deletes its folder.");
        daemon::wait_for_signal().await?;
        eprintln!("communitas: stopping the demo");
        alice.stop().await;
        bob.stop().await;
        for s in servers {
            s.shutdown().await;
        }
        Ok(())
    })
}

async fn user(dir: &std::path::Path, name: &str, bootstrap: &[Multiaddr]) -> Result<Running> {
    let home = dir.join(name);
    let (secrets, public) =
        init::create(&home, Some(name.into()), PASSPHRASE, KdfParams::DEFAULT).await?;
    let listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    let config = daemon::node_config(listen, bootstrap.to_vec(), false, false);
    Running::start(&home, secrets, public, config, "127.0.0.1:0".parse()?).await
}

fn unlocked(user: &Running) -> Result<communitas_node::Handle> {
    user.handle().context("a demo user's node is not running")
}

/// Each adds the other once both identity records are in the DHT.
async fn meet(a: &communitas_node::Handle, b: &communitas_node::Handle) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ab = a.add_contact(b.address(), Some("bob".into())).await;
        let ba = b.add_contact(a.address(), Some("alice".into())).await;
        match (ab, ba) {
            (Ok(_), Ok(_)) => return Ok(()),
            (Err(e), _) | (_, Err(e)) if tokio::time::Instant::now() > deadline => {
                return Err(e).context("alice and bob could not find each other in 30 s");
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
