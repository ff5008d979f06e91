//! Hostile peers against real nodes on real sockets (TCP on 127.0.0.1): during each
//! attack a contact's text and a 4 MiB file still arrive. Times are printed, not
//! asserted, beyond a generous bound.

use std::path::Path;
use std::time::{Duration, Instant};

use communitas_net::libp2p::StreamProtocol;
use communitas_node::Handle;
use communitas_testkit::attack::StreamHoarder;
use communitas_testkit::{Network, Transport, dial_addrs, eventually};

use super::files::bytes;

/// The bound on a 4 MiB file and a text during an attack (they take about a second).
const BUDGET: Duration = Duration::from_secs(60);
const FILE_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/file/1");

/// Alice sends bob a 4 MiB file and a text; returns when both arrived (the file
/// byte-identical, the text delivered), with the time each took.
async fn file_and_text(a: &Handle, b: &Handle, dir: &Path, seed: u64) -> (Duration, Duration) {
    let data = bytes(4 << 20, seed);
    let path = dir.join(format!("four-{seed}.bin"));
    std::fs::write(&path, &data).unwrap();
    let started = Instant::now();
    let (_, file_id, _) = a.send_file(b.address(), "", path).await.unwrap();
    let (text_id, _) = a.send_text(b.address(), &format!("text {seed}")).await.unwrap();
    let text_took = std::sync::Mutex::new(None);
    let file_took = eventually(BUDGET, || async {
        if text_took.lock().unwrap().is_none()
            && a.message_status(text_id).await.unwrap().is_some_and(|s| s.as_str() == "delivered")
        {
            *text_took.lock().unwrap() = Some(started.elapsed());
        }
        let history = b.history(a.address(), 50, None).await.unwrap();
        let done = history
            .iter()
            .filter_map(|e| e.attachment.as_ref())
            .any(|f| f.file_id == file_id && f.status.as_str() == "done");
        if done { Ok(started.elapsed()) } else { Err("file not done yet") }
    })
    .await;
    let text_took = text_took.into_inner().unwrap();
    let text_took = match text_took {
        Some(t) => t,
        None => {
            eventually(BUDGET, || async {
                match a.message_status(text_id).await.unwrap().map(|s| s.as_str()) {
                    Some("delivered") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
            started.elapsed()
        }
    };
    let got = std::fs::read(b.file_path(file_id).await.unwrap()).unwrap();
    assert!(got == data, "the file arrived different");
    (file_took, text_took)
}

fn refused(node: &Handle, what: &str) -> u64 {
    let text = node.metrics().encode();
    let key = format!("communitas_refused_total{{what=\"{what}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

/// A peer holding 300 idle `/communitas/file/1` streams on alice's node (opening a
/// new one whenever she closes one) does not keep her from serving bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_file_streams_from_one_peer_do_not_stop_a_contact_s_file() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start_on(dir.path(), 1, &["alice", "bob"], Transport::Sockets).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    assert!(dial_addrs(&a).await.iter().all(|m| m.to_string().contains("/tcp/")));

    // The first transfer also pays for finding and dialling alice: warm up first.
    let (file_cold, text_cold) = file_and_text(&a, &b, dir.path(), 0).await;
    println!("cold (first contact): 4 MiB file {file_cold:?}, text {text_cold:?}");
    let (file_before, text_before) = file_and_text(&a, &b, dir.path(), 1).await;
    println!("without the attack: 4 MiB file {file_before:?}, text {text_before:?}");

    let hoarder = StreamHoarder::start(
        a.peer_id(),
        dial_addrs(&a).await,
        Transport::Sockets,
        FILE_PROTOCOL,
        300,
    )
    .await;
    // The attack is on: all 300 streams were opened at least once.
    eventually(Duration::from_secs(30), || async {
        if hoarder.opened() >= 300 { Ok(()) } else { Err(hoarder.opened()) }
    })
    .await;
    let (file_during, text_during) = file_and_text(&a, &b, dir.path(), 2).await;
    println!(
        "during the attack (300 idle streams, {} opened so far, {} open): 4 MiB file \
         {file_during:?}, text {text_during:?}",
        hoarder.opened(),
        hoarder.open()
    );
    let per_peer = refused(&a, "file_streams_per_peer");
    let first_frame = refused(&a, "file_stream_first_frame_timeout");
    println!("alice refused: file_streams_per_peer {per_peer}, first-frame timeouts {first_frame}");
    // She turned the hoarder away for its share, not for the global cap.
    assert!(per_peer > 0, "the per-peer limit never applied");
    assert_eq!(refused(&a, "file_streams_full"), 0);
    hoarder.stop().await;
    net.shutdown().await;
}
