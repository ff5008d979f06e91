//! Sealed envelopes: round trips and every way of tampering (issue 2, item 5).

use communitas_crypto::envelope::{self, MAX_LEN};
use communitas_crypto::{Envelope, Kind, Letter, OpenError};
use communitas_types::{DecodeError, MessageId, Timestamp};
use proptest::prelude::*;

use super::identity;

fn letter(body: &[u8], kind: Kind) -> Letter<'_> {
    Letter {
        message_id: MessageId::from_bytes([0x11; 16]),
        timestamp: Timestamp::from_millis(1_780_000_000_000),
        kind,
        body,
    }
}

fn sealed_text(text: &str) -> Vec<u8> {
    Envelope::seal(&identity(1), identity(2).public(), letter(text.as_bytes(), Kind::Text))
        .unwrap()
        .to_bytes()
}

/// Parses and opens as bob; the one path a node takes for bytes off the network.
fn open_as_bob(bytes: &[u8]) -> Result<communitas_crypto::Opened, OpenError> {
    Envelope::from_bytes(bytes)?.open(&identity(2))
}

#[test]
fn text_in_many_scripts_round_trips_byte_for_byte() {
    let text = "héllo 👋🏽 مرحبا שלום 你好 こんにちは 🇺🇦\u{200f}";
    let opened = open_as_bob(&sealed_text(text)).unwrap();
    assert_eq!(opened.body, text.as_bytes());
    assert_eq!(&opened.sender, identity(1).public());
    assert_eq!(opened.kind, Kind::Text);
    assert_eq!(opened.message_id, MessageId::from_bytes([0x11; 16]));
}

#[test]
fn nothing_outside_the_ciphertext_names_the_sender() {
    let alice = identity(1);
    let bytes = sealed_text("hi");
    let visible = &bytes[..envelope::HEADER_LEN];
    let pk = alice.public().to_bytes();
    for needle in [&pk[..32], &pk[32..64], alice.public().fingerprint().as_bytes()] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "sender key material in clear");
    }
    assert!(visible.starts_with(&[envelope::VERSION]));
}

#[test]
fn wrong_recipient_key_is_refused() {
    let bytes = sealed_text("for bob");
    let env = Envelope::from_bytes(&bytes).unwrap();
    assert_eq!(env.open(&identity(3)), Err(OpenError::WrongMailbox));
    // Carol rewrites the mailbox id to hers: the header is authenticated, and the KEM
    // ciphertext is for bob's key, so decryption fails.
    let mut forged = bytes.clone();
    forged[1..33].copy_from_slice(identity(3).public().mailbox_id().as_bytes());
    assert_eq!(Envelope::from_bytes(&forged).unwrap().open(&identity(3)), Err(OpenError::Decrypt));
}

#[test]
fn unknown_version_is_a_typed_error() {
    let mut bytes = sealed_text("v");
    for version in [0u8, 2, 255] {
        bytes[0] = version;
        assert_eq!(
            Envelope::from_bytes(&bytes),
            Err(DecodeError::UnsupportedVersion { what: "envelope", got: version, min: 1, max: 1 })
        );
    }
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    let big = vec![1u8; MAX_LEN + 1];
    assert_eq!(
        Envelope::from_bytes(&big),
        Err(DecodeError::TooLong { field: "input", len: MAX_LEN + 1, max: MAX_LEN })
    );
}

#[test]
fn bodies_over_the_limit_are_refused_at_seal() {
    let text = vec![b'a'; communitas_crypto::payload::MAX_TEXT_LEN + 1];
    let err = Envelope::seal(&identity(1), identity(2).public(), letter(&text, Kind::Text));
    assert!(matches!(err, Err(communitas_crypto::SealError::TooLarge { max: 65536, .. })));
    let exact = vec![b'a'; communitas_crypto::payload::MAX_TEXT_LEN];
    let env =
        Envelope::seal(&identity(1), identity(2).public(), letter(&exact, Kind::Text)).unwrap();
    assert_eq!(open_as_bob(&env.to_bytes()).unwrap().body.len(), exact.len());
    // The largest non-text body fills the envelope exactly to its limit.
    let max = vec![0u8; envelope::MAX_BODY_LEN];
    let env = Envelope::seal(&identity(1), identity(2).public(), letter(&max, Kind::File)).unwrap();
    assert_eq!(env.to_bytes().len(), MAX_LEN);
    let over = vec![0u8; envelope::MAX_BODY_LEN + 1];
    assert!(Envelope::seal(&identity(1), identity(2).public(), letter(&over, Kind::File)).is_err());
}

#[test]
fn invalid_utf8_text_is_refused_at_seal() {
    let err = Envelope::seal(&identity(1), identity(2).public(), letter(&[0xff, 0xfe], Kind::Text));
    assert_eq!(err.unwrap_err(), communitas_crypto::SealError::TextNotUtf8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trip(body in proptest::collection::vec(any::<u8>(), 0..2048), kind in 1u8..=9) {
        let kind = Kind::from_u8(kind).unwrap();
        let body = if kind == Kind::Text { String::from_utf8_lossy(&body).into_owned().into_bytes() } else { body };
        let env = Envelope::seal(&identity(1), identity(2).public(), letter(&body, kind)).unwrap();
        let opened = open_as_bob(&env.to_bytes()).unwrap();
        prop_assert_eq!(opened.body, body);
        prop_assert_eq!(opened.kind, kind);
    }

    #[test]
    fn any_bit_flip_is_refused(seed in any::<u64>()) {
        let bytes = sealed_text("tamper with me");
        let bit = usize::try_from(seed % (bytes.len() as u64 * 8)).unwrap();
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(open_as_bob(&bad).is_err(), "flip of bit {} accepted", bit);
    }

    #[test]
    fn any_truncation_is_refused(cut in 0usize..1400) {
        let bytes = sealed_text("truncate me");
        let len = bytes.len().saturating_sub(cut + 1);
        prop_assert!(open_as_bob(&bytes[..len]).is_err());
    }

    #[test]
    fn any_extension_is_refused(extra in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut bytes = sealed_text("extend me");
        bytes.extend_from_slice(&extra);
        prop_assert!(open_as_bob(&bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = open_as_bob(&bytes);
    }
}
