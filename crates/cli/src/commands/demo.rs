//! `communitas demo`: the first command of the README.
//!
//! The network layer (issue 3) is not built yet, so there is no local network to
//! start. Rather than pretend, the demo shows what exists — two identities, their
//! addresses and safety number, a message sealed by alice and opened by bob — and
//! then says plainly what it cannot do yet.

use anyhow::Result;
use communitas_crypto::{Envelope, Identity, Kind, Letter, SafetyNumber, derive_address, random};
use communitas_types::{MessageId, Timestamp};

pub(crate) fn run() -> Result<()> {
    println!("Communitas demo — local, no network yet\n");
    let alice = Identity::generate()?;
    let bob = Identity::generate()?;
    let alice_address = derive_address(alice.public());
    let bob_address = derive_address(bob.public());
    println!("alice  {alice_address}");
    println!("bob    {bob_address}");
    println!("safety number (same on both sides):");
    println!("       {}\n", SafetyNumber::new(alice.public(), bob.public()));

    let text = "hi bob 👋";
    let envelope = Envelope::seal(
        &alice,
        bob.public(),
        Letter {
            message_id: MessageId::from_bytes(random::bytes()?),
            timestamp: Timestamp::now(),
            kind: Kind::Text,
            body: text.as_bytes(),
        },
    )?;
    let wire = envelope.to_bytes();
    let opened = Envelope::from_bytes(&wire)?.open(&bob)?;
    let sender = derive_address(&opened.sender);
    println!(
        "alice sealed {:?} into a {}-byte envelope (X-Wing + XChaCha20-Poly1305);",
        text,
        wire.len()
    );
    println!("bob opened it: {:?}, signed by {sender}", String::from_utf8_lossy(&opened.body));
    println!(
        "carol cannot: {}\n",
        Envelope::from_bytes(&wire)?
            .open(&Identity::generate()?)
            .err()
            .map_or_else(String::new, |e| e.to_string())
    );
    println!("Not built yet: the peer-to-peer network (issue 3). Nodes cannot reach each other,");
    println!(
        "so there is no local network, no web UI and no login URL to open. This demo ends here."
    );
    Ok(())
}
