//! Server role: one-time prekeys held for mailbox owners' devices (decision 0064) —
//! handed out once each, oldest first, within their limits, swept at expiry.

use communitas_store::{Deposited, HeldLimits, PrekeyDeposit, Store};
use communitas_types::{MailboxId, Timestamp};

use super::key;

const LIMITS: HeldLimits =
    HeldLimits { per_kind: 3, devices_per_mailbox: 2, max_total_bytes: 10_000 };
const MAILBOX: MailboxId = MailboxId::from_bytes([1; 32]);

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_780_000_000_000 + ms)
}

/// `ids` of `kind` for `device`, each prekey 100 bytes naming its id; good until 1000.
fn deposit(device: u8, kind: u8, ids: &[u32]) -> PrekeyDeposit {
    PrekeyDeposit {
        mailbox: MAILBOX,
        device: [device; 32],
        prekeys: ids.iter().map(|&id| (kind, id, vec![id as u8; 100])).collect(),
        now: at(0),
        expires_at: at(1000),
    }
}

#[tokio::test]
async fn each_prekey_is_handed_out_once_oldest_first_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), key()).unwrap();

    // Four X25519 keys offered, three kept (per kind); one ML-KEM key; a repeated id
    // is not held twice.
    assert_eq!(
        store.deposit_prekeys(deposit(7, 1, &[1, 2, 3, 4]), LIMITS).await.unwrap(),
        Deposited::Held(3, 0)
    );
    assert_eq!(
        store.deposit_prekeys(deposit(7, 2, &[9]), LIMITS).await.unwrap(),
        Deposited::Held(3, 1)
    );
    assert_eq!(
        store.deposit_prekeys(deposit(7, 2, &[9]), LIMITS).await.unwrap(),
        Deposited::Held(3, 1)
    );
    // An empty deposit only asks how many are held.
    assert_eq!(
        store.deposit_prekeys(deposit(7, 1, &[]), LIMITS).await.unwrap(),
        Deposited::Held(3, 1)
    );

    let claim = || store.claim_prekeys(MAILBOX, [7; 32], at(10));
    assert_eq!(claim().await.unwrap(), vec![vec![1; 100], vec![9; 100]], "one of each kind");
    assert_eq!(claim().await.unwrap(), vec![vec![2; 100]], "the ML-KEM key went once");
    assert_eq!(claim().await.unwrap(), vec![vec![3; 100]]);
    assert!(claim().await.unwrap().is_empty(), "nothing is handed out twice");
    assert!(store.claim_prekeys(MAILBOX, [8; 32], at(10)).await.unwrap().is_empty());

    // Expired ones are not handed out, and the sweep drops them.
    store.deposit_prekeys(deposit(7, 1, &[5]), LIMITS).await.unwrap();
    assert!(store.claim_prekeys(MAILBOX, [7; 32], at(1000)).await.unwrap().is_empty());
    store.expire(at(1000)).await.unwrap();
    assert!(store.claim_prekeys(MAILBOX, [7; 32], at(10)).await.unwrap().is_empty(), "swept");
}

#[tokio::test]
async fn a_mailbox_holds_keys_for_a_few_devices_and_the_server_a_bounded_amount() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), key()).unwrap();
    store.deposit_prekeys(deposit(1, 1, &[1]), LIMITS).await.unwrap();
    store.deposit_prekeys(deposit(2, 1, &[1]), LIMITS).await.unwrap();
    // A third device of the same mailbox is refused; the first two still top up.
    assert_eq!(store.deposit_prekeys(deposit(3, 1, &[1]), LIMITS).await.unwrap(), Deposited::Full);
    assert_eq!(
        store.deposit_prekeys(deposit(1, 1, &[2]), LIMITS).await.unwrap(),
        Deposited::Held(2, 0)
    );
    assert!(store.claim_prekeys(MAILBOX, [3; 32], at(10)).await.unwrap().is_empty());

    // Server-wide bytes: 3 × 100 held; a deposit that would pass 10,000 takes nothing.
    let mut big = deposit(1, 2, &[1]);
    big.prekeys = vec![(2, 1, vec![0; 9_701])];
    assert_eq!(store.deposit_prekeys(big, LIMITS).await.unwrap(), Deposited::Full);
    assert_eq!(
        store.deposit_prekeys(deposit(1, 2, &[]), LIMITS).await.unwrap(),
        Deposited::Held(2, 0)
    );
}
