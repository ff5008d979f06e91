//! `communitas bench load` over real processes, small: the load generator and the
//! server's limits must keep working, so the benchmark cannot silently rot.

use serde_json::Value;

fn bench_load(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::communitas(dir.path());
    cmd.args(["bench", "load", "--json", "--rate", "40", "--duration", "3"]);
    cmd.args(extra);
    let out = crate::run(&mut cmd);
    assert!(out.status.success(), "bench load failed: {}", crate::stderr(&out));
    serde_json::from_str(crate::stdout(&out).trim()).unwrap()
}

/// Twenty users through one server node: every message is delivered once, over
/// both paths (relayed circuits and mailboxes), and the server's figures are read.
#[test]
fn twenty_users_lose_nothing_through_one_server() {
    let f = bench_load(&["--users", "20"]);
    assert_eq!(f["joined"], 20, "{f}");
    assert_eq!(f["relayed_pairs"], 20, "{f}");
    let all = &f["all"];
    assert_eq!(all["sent"], 120, "{f}");
    assert_eq!(all["lost"], 0, "{f}");
    assert_eq!(all["refused"], 0, "{f}");
    assert_eq!(all["delivered"], all["sent"], "{f}");
    assert_eq!(f["duplicates"], 0, "{f}");
    for path in ["relayed", "mailbox"] {
        assert!(f[path]["delivered"].as_u64().unwrap() > 0, "no {path} deliveries: {f}");
        assert!(f[path]["p99_ms"].as_f64().unwrap() > 0.0, "{f}");
    }
    assert!(f["server"]["peak_rss_mib"].as_f64().unwrap() > 1.0, "{f}");
    assert_eq!(f["server"]["metrics"]["communitas_connected_peers"], 20.0, "{f}");
}

/// More users than the server accepts: the extra ones are refused at connection
/// (counted in the server's /metrics), and no message of those that joined is lost.
#[test]
fn users_beyond_the_connection_limit_are_refused_and_nothing_is_lost() {
    let f = bench_load(&["--users", "30", "--server-max-connections", "20"]);
    let joined = f["joined"].as_u64().unwrap();
    assert!((2..=20).contains(&joined), "{f}");
    let refused = f["server"]["metrics"]["communitas_refused_total{what=\"connection_limit\"}"]
        .as_f64()
        .unwrap();
    assert!(refused >= (30 - joined) as f64, "{f}");
    assert_eq!(f["all"]["lost"], 0, "{f}");
    assert_eq!(f["all"]["delivered"], f["all"]["sent"], "{f}");
}
