//! `run --api`: the local API speaks plain HTTP, so it stays on loopback unless the
//! user forces it elsewhere.

use crate::{communitas, run, stderr};

#[test]
fn a_non_loopback_api_is_refused_at_start_unless_forced() {
    let home = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:0", "192.0.2.1:7700", "[::]:0"] {
        let out = run(communitas(home.path()).args(["run", "--api", addr]));
        assert!(!out.status.success(), "{addr}");
        let err = stderr(&out);
        assert!(err.contains("not a loopback address") && err.contains("--api-insecure"), "{err}");
    }
    // Loopback, or forced: past that check (this home has no identity, so it stops
    // at the keystore instead, before anything listens).
    for args in
        [&["run", "--api", "127.0.0.1:0"][..], &["run", "--api", "0.0.0.0:0", "--api-insecure"]]
    {
        let out = run(communitas(home.path()).args(args));
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(!err.contains("not a loopback address"), "{args:?}: {err}");
    }
    // The help says so.
    let help = run(communitas(home.path()).args(["run", "--help"]));
    assert!(crate::stdout(&help).contains("--api-insecure"));
}
