//! Virtual time: every `now` is a plain number of milliseconds, so the 30-day window
//! and the 5-minute clock skew are tested at their edges, to the millisecond.

use communitas_crypto::{Identity, Letter};
use communitas_types::{FileId, MessageId};

use super::*;
use crate::receipts::{Kind as ReceiptKind, Receipt};

/// An arbitrary "now": 2027-01-15, far from the epoch so the TTL can be subtracted.
const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const MS: Duration = Duration::from_millis(1);

fn alice() -> Identity {
    Identity::from_seed_bytes([1; 32], [101; 32])
}

fn bob() -> Identity {
    Identity::from_seed_bytes([2; 32], [102; 32])
}

fn letter(kind: Kind, timestamp: Timestamp, body: &[u8]) -> Opened {
    Opened {
        sender: alice().public().clone(),
        message_id: MessageId::from_bytes([7; 16]),
        timestamp,
        kind,
        body: body.to_vec(),
    }
}

fn text_at(timestamp: Timestamp) -> Opened {
    letter(Kind::Text, timestamp, b"hi")
}

fn manifest() -> Manifest {
    Manifest {
        file_id: FileId::from_bytes([1; 16]),
        key: [2; 32],
        size: 0,
        blake3: [3; 32],
        name: b"a.txt".to_vec(),
        media_type: "text/plain".into(),
        source: vec![0, 36, 8, 1],
        caption: "look".into(),
        digests: vec![[4; 32]; usize::try_from(crate::file::stripe_count(0)).unwrap()],
    }
}

#[test]
fn the_window_is_exact_to_the_millisecond() {
    // Exactly the TTL old: refused (its seen id may already be gone).
    let edge = NOW.saturating_sub(MESSAGE_TTL);
    assert!(matches!(decide(&text_at(edge), NOW), Err(Rejected::Stale)));
    // One millisecond younger: accepted.
    assert!(matches!(decide(&text_at(edge.saturating_add(MS)), NOW), Ok(Plan::Record(_))));
    // Exactly 5 minutes ahead: accepted; one millisecond more: refused.
    let ahead = NOW.saturating_add(MAX_CLOCK_AHEAD);
    assert!(matches!(decide(&text_at(ahead), NOW), Ok(Plan::Record(_))));
    assert!(matches!(decide(&text_at(ahead.saturating_add(MS)), NOW), Err(Rejected::Stale)));
    // Now is fine, and so is anything in between.
    assert!(is_fresh(NOW, NOW));
    assert!(is_fresh(NOW.saturating_sub(Duration::from_secs(29 * 24 * 3600)), NOW));
    // The same letter, judged a day later, has aged out.
    let old = NOW.saturating_sub(MESSAGE_TTL).saturating_add(Duration::from_secs(3600));
    assert!(is_fresh(old, NOW));
    assert!(!is_fresh(old, NOW.saturating_add(Duration::from_secs(24 * 3600))));
}

#[test]
fn the_window_applies_to_every_kind() {
    let stale = NOW.saturating_sub(MESSAGE_TTL);
    let receipt = Receipt::new(ReceiptKind::Delivered, vec![]).unwrap().to_bytes();
    for (kind, body) in [
        (Kind::Text, b"hi".to_vec()),
        (Kind::Receipt, receipt),
        (Kind::Presence, vec![]),
        (Kind::System, vec![]),
    ] {
        let refusal = Refusal::from(decide(&letter(kind, stale, &body), NOW).unwrap_err());
        assert_eq!(refusal.answer(), Answer::Rejected(Rejection::Stale), "{kind:?}");
    }
}

#[test]
fn the_seen_id_is_kept_for_the_ttl_from_the_senders_clock() {
    let sent = NOW.saturating_sub(Duration::from_secs(3600));
    let Ok(Plan::Record(record)) = decide(&text_at(sent), NOW) else { panic!("not recorded") };
    assert_eq!(record.seen_until(), sent.saturating_add(MESSAGE_TTL));
}

#[test]
fn a_new_message_is_shown_and_a_duplicate_only_acknowledged() {
    let reply = |inserted| {
        let Ok(Plan::Record(record)) = decide(&text_at(NOW), NOW) else { panic!("not recorded") };
        record.committed(inserted)
    };
    let new = reply(Inserted::New);
    assert_eq!(new.answer, Answer::Delivered);
    assert!(new.show);
    assert!(new.acknowledge);
    assert_eq!(new.apply, None);
    // The duplicate: answered and acknowledged the same, but not shown twice.
    let again = reply(Inserted::Duplicate);
    assert_eq!(again.answer, Answer::Delivered);
    assert!(!again.show);
    assert!(again.acknowledge);
}

#[test]
fn texts_and_files_go_to_history() {
    let Ok(Plan::Record(text)) = decide(&text_at(NOW), NOW) else { panic!("text") };
    assert!(text.file().is_none());
    assert_eq!(text.text(b"hi \xff"), "hi \u{fffd}");

    let file = letter(Kind::File, NOW, &manifest().to_bytes());
    let Ok(Plan::Record(record)) = decide(&file, NOW) else { panic!("file") };
    assert_eq!(record.file(), Some(&manifest()));
    // A file message shows its caption, not the manifest's bytes.
    assert_eq!(record.text(&file.body), "look");

    let broken = letter(Kind::File, NOW, b"\x01not a manifest");
    let refused = decide(&broken, NOW).unwrap_err();
    assert!(matches!(refused, Rejected::BadManifest(_)));
    assert_eq!(refused.rejection(), Rejection::Invalid);
}

#[test]
fn receipts_are_applied_once_and_never_acknowledged() {
    let receipt = Receipt::new(ReceiptKind::Read, vec![MessageId::from_bytes([9; 16])]).unwrap();
    let plan = || {
        let opened = letter(Kind::Receipt, NOW, &receipt.to_bytes());
        let Ok(Plan::Receipt(plan)) = decide(&opened, NOW) else { panic!("not a receipt") };
        plan
    };
    assert_eq!(plan().receipt(), &receipt);
    assert_eq!(plan().seen_until(), NOW.saturating_add(MESSAGE_TTL));
    let first = plan().committed(Inserted::New);
    assert_eq!(first.apply, Some(receipt.clone()));
    assert_eq!(first.answer, Answer::Delivered);
    assert!(!first.show);
    assert!(!first.acknowledge);
    // A replay is answered but not applied again.
    let replay = plan().committed(Inserted::Duplicate);
    assert_eq!(replay.apply, None);
    assert_eq!(replay.answer, Answer::Delivered);

    let mut lying = receipt.to_bytes();
    lying[3] = 2; // claims two ids, carries one
    let refused = decide(&letter(Kind::Receipt, NOW, &lying), NOW).unwrap_err();
    assert!(matches!(refused, Rejected::BadReceipt(_)));
    assert_eq!(refused.rejection(), Rejection::Invalid);
}

#[test]
fn presence_and_typing_go_to_presence_and_other_kinds_are_ignored() {
    for kind in [Kind::Presence, Kind::Typing] {
        // The body is the presence driver's to judge.
        assert!(matches!(decide(&letter(kind, NOW, b"?"), NOW), Ok(Plan::Presence)), "{kind:?}");
    }
    for kind in [Kind::System, Kind::Unknown(77)] {
        assert!(matches!(decide(&letter(kind, NOW, b"?"), NOW), Ok(Plan::Ignore)), "{kind:?}");
    }
}

#[test]
fn opening_checks_the_recipient() {
    let (alice, bob) = (alice(), bob());
    let letter = Letter {
        message_id: MessageId::from_bytes([3; 16]),
        timestamp: NOW,
        kind: Kind::Text,
        body: b"hello",
    };
    let sealed = Envelope::seal_deterministic(&alice, bob.public(), letter, &[5; 64], [6; 24])
        .unwrap()
        .to_bytes();
    let opened = open(&sealed, &bob).unwrap();
    assert_eq!(opened.sender, *alice.public());
    assert_eq!(opened.body, b"hello");
    // Not ours: refused as for another recipient.
    let refused = open(&sealed, &alice).unwrap_err();
    assert_eq!(Refusal::from(refused).answer(), Answer::Rejected(Rejection::WrongRecipient));
    // Garbage, and a tampered byte: invalid.
    assert_eq!(open(b"junk", &bob).unwrap_err().rejection(), Rejection::Invalid);
    let mut tampered = sealed;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(open(&tampered, &bob).unwrap_err().rejection(), Rejection::Invalid);
}

#[test]
fn a_failure_on_the_way_is_busy_never_rejected() {
    for busy in [Busy::Store, Busy::NewSenders, Busy::ShuttingDown, Busy::Presence] {
        assert_eq!(Refusal::from(busy).answer(), Answer::Busy);
    }
    assert_eq!(Rejected::OldPresence.rejection(), Rejection::Stale);
    assert_eq!(Rejected::NotAContact.rejection(), Rejection::Invalid);
}

#[test]
fn presence_is_heard_inside_its_window_with_a_body_that_decodes() {
    use crate::presence::{STALE, Status, wire};
    let online = wire::encode_presence(Status::Away, Duration::from_secs(30));
    let heard_at = |kind, at, body: &[u8]| heard(&letter(kind, at, body), NOW);
    let Ok(Body::Presence(body)) = heard_at(Kind::Presence, NOW, &online) else {
        panic!("a fresh presence update is heard")
    };
    assert_eq!(body.status, Status::Away);
    assert_eq!(
        heard_at(Kind::Typing, NOW, &wire::encode_typing(true)).unwrap(),
        Body::Typing(true)
    );
    // Exactly the window old is still heard; a millisecond more is stale.
    let edge = NOW.saturating_sub(STALE);
    assert!(heard_at(Kind::Presence, edge, &online).is_ok());
    let old = heard_at(Kind::Typing, edge.saturating_sub(MS), &wire::encode_typing(false));
    assert!(matches!(old, Err(Rejected::OldPresence)));
    assert_eq!(old.unwrap_err().rejection(), Rejection::Stale);
    // A body of the other kind does not decode as this one.
    let crossed = heard_at(Kind::Typing, NOW, &online).unwrap_err();
    assert!(matches!(crossed, Rejected::BadTyping(_)));
    assert!(matches!(heard_at(Kind::Presence, NOW, b"\x01"), Err(Rejected::BadPresence(_))));
    assert_eq!(crossed.rejection(), Rejection::Invalid);
}
