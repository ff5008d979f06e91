use proptest::prelude::*;

use super::*;

fn id(n: u8) -> MessageId {
    MessageId::from_bytes([n; 16])
}

fn address(n: u8) -> Address {
    Address::from_bytes([n; 6])
}

/// Golden bodies, one per type, field by field. These pin version 1: every node
/// already running reads exactly these bytes.
#[test]
fn golden_bodies() {
    let cases = [
        (
            Receipt::new(Kind::Delivered, vec![id(0x11)]).unwrap(),
            concat!(
                "01",                               // version 1
                "01",                               // type 1: delivered
                "0001",                             // count 1 (u16 big-endian)
                "11111111111111111111111111111111", // message id
            ),
        ),
        (
            Receipt::new(Kind::Read, vec![id(0xa0), id(0x0b)]).unwrap(),
            concat!(
                "01",                               // version 1
                "02",                               // type 2: read
                "0002",                             // count 2
                "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0", // first id
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", // second id
            ),
        ),
        (
            Receipt::new(Kind::Fetched, vec![id(0xff)]).unwrap(),
            concat!(
                "01",                               // version 1
                "03",                               // type 3: fetched
                "0001",                             // count 1
                "ffffffffffffffffffffffffffffffff", // message id
            ),
        ),
        (
            Receipt::new(Kind::Delivered, vec![]).unwrap(),
            concat!("01", "01", "0000"), // an empty receipt is well-formed
        ),
    ];
    for (receipt, golden) in cases {
        assert_eq!(hex::encode(receipt.to_bytes()), golden, "{receipt:?}");
        assert_eq!(Receipt::from_bytes(&hex::decode(golden).unwrap()), Ok(receipt));
    }
}

#[test]
fn lying_counts_are_refused() {
    let two = Receipt::new(Kind::Delivered, vec![id(1), id(2)]).unwrap().to_bytes();
    // Says three, carries two.
    let mut more = two.clone();
    more[2..4].copy_from_slice(&3u16.to_be_bytes());
    assert!(matches!(Receipt::from_bytes(&more), Err(DecodeError::Truncated { .. })));
    // Says one, carries two.
    let mut fewer = two.clone();
    fewer[2..4].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(Receipt::from_bytes(&fewer), Err(DecodeError::TrailingBytes { count: 16 }));
    // Says more than a receipt may hold: refused on the count, before any id is read.
    let mut huge = two;
    huge[2..4].copy_from_slice(&1025u16.to_be_bytes());
    assert_eq!(
        Receipt::from_bytes(&huge),
        Err(DecodeError::TooLong { field: "receipt", len: 1025, max: MAX_IDS })
    );
}

#[test]
fn bad_headers_and_sizes_are_refused() {
    let good = Receipt::new(Kind::Read, vec![id(9)]).unwrap().to_bytes();
    let mut version = good.clone();
    version[0] = 2;
    assert!(matches!(
        Receipt::from_bytes(&version),
        Err(DecodeError::UnsupportedVersion { got: 2, .. })
    ));
    for kind in [0u8, 4, 255] {
        let mut bad = good.clone();
        bad[1] = kind;
        assert_eq!(
            Receipt::from_bytes(&bad),
            Err(DecodeError::InvalidValue { field: "receipt type" })
        );
    }
    // A body longer than the longest receipt is refused whole.
    let long = vec![0u8; MAX_LEN + 1];
    assert!(matches!(Receipt::from_bytes(&long), Err(DecodeError::TooLong { field: "input", .. })));
    // The longest receipt is accepted.
    let full = Receipt::new(Kind::Delivered, vec![id(3); MAX_IDS]).unwrap();
    assert_eq!(full.encoded_len(), MAX_LEN);
    assert_eq!(Receipt::from_bytes(&full.to_bytes()), Ok(full));
    assert_eq!(
        Receipt::new(Kind::Delivered, vec![id(3); MAX_IDS + 1]),
        Err(TooMany { count: MAX_IDS + 1, max: MAX_IDS })
    );
}

#[test]
fn long_lists_are_cut_at_max_ids() {
    let ids: Vec<_> = (0..2500u32).map(|n| MessageId::from_bytes([n as u8; 16])).collect();
    let chunks: Vec<_> = Receipt::chunks(Kind::Read, &ids).collect();
    let sizes: Vec<_> = chunks.iter().map(|r| r.ids().len()).collect();
    assert_eq!(sizes, [1024, 1024, 452]);
    assert!(chunks.iter().all(|r| r.kind() == Kind::Read));
    // In order, nothing lost or repeated.
    let joined: Vec<_> = chunks.iter().flat_map(|r| r.ids().iter().copied()).collect();
    assert_eq!(joined, ids);
    // Exactly MAX_IDS is one receipt; none is none.
    assert_eq!(Receipt::chunks(Kind::Delivered, &ids[..MAX_IDS]).count(), 1);
    assert_eq!(Receipt::chunks(Kind::Delivered, &[]).count(), 0);
}

#[test]
fn each_type_asks_for_its_steps() {
    let ids = vec![id(1), id(2)];
    let steps = |kind| Receipt::new(kind, ids.clone()).unwrap().steps().collect::<Vec<_>>();
    assert_eq!(
        steps(Kind::Delivered),
        [Step::Mark(id(1), Mark::Delivered), Step::Mark(id(2), Mark::Delivered)]
    );
    assert_eq!(steps(Kind::Read), [Step::Mark(id(1), Mark::Read), Step::Mark(id(2), Mark::Read)]);
    // Fetched: release every file first, then mark every message delivered.
    assert_eq!(
        steps(Kind::Fetched),
        [
            Step::Release(id(1)),
            Step::Release(id(2)),
            Step::Mark(id(1), Mark::Delivered),
            Step::Mark(id(2), Mark::Delivered),
        ]
    );
}

#[test]
fn only_the_recipient_may_mark() {
    let (bob, mallory) = (address(2), address(3));
    assert!(may_mark(bob, bob, true));
    // Someone else naming our message to bob.
    assert!(!may_mark(mallory, bob, true));
    // A message bob sent us is not ours to mark.
    assert!(!may_mark(bob, bob, false));
}

fn any_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Delivered), Just(Kind::Read), Just(Kind::Fetched)]
}

proptest! {
    #[test]
    fn round_trips(kind in any_kind(), raw in proptest::collection::vec(any::<[u8; 16]>(), 0..40)) {
        let receipt = Receipt::new(kind, raw.into_iter().map(MessageId::from_bytes).collect())
            .unwrap();
        let bytes = receipt.to_bytes();
        prop_assert_eq!(bytes.len(), receipt.encoded_len());
        prop_assert_eq!(Receipt::from_bytes(&bytes), Ok(receipt));
    }

    #[test]
    fn damaged_bodies_never_panic(
        kind in any_kind(),
        n in 0usize..8,
        cut in any::<usize>(),
        flip in any::<(usize, u8)>(),
    ) {
        let bytes = Receipt::new(kind, vec![id(7); n]).unwrap().to_bytes();
        let cut = cut % (bytes.len() + 1);
        // Every strict prefix is refused.
        if cut < bytes.len() {
            prop_assert!(Receipt::from_bytes(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        let at = flip.0 % flipped.len();
        flipped[at] ^= flip.1;
        let _ = Receipt::from_bytes(&flipped);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Receipt::from_bytes(&bytes);
    }
}
