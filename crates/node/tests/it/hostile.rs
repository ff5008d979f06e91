//! Hostile peers against real nodes on real sockets (TCP on 127.0.0.1): during each
//! attack a contact's text and a 4 MiB file still arrive. Times are printed, not
//! asserted, beyond a generous bound.

use std::path::Path;
use std::time::{Duration, Instant};

use communitas_net::libp2p::StreamProtocol;
use communitas_node::Handle;
use communitas_proto::file::wire::{DATA_MASK, Refusal, Request, Response};
use communitas_proto::file::{SHARDS, UploadKey, encode_stripe};
use communitas_testkit::attack::{FileClient, StreamHoarder};
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
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
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

/// The puts of one stripe of a file whose key is `key`: `(index, request)` pairs,
/// signed with `signer`'s upload key (the file's own, or a squatter's).
fn stripe_puts(key: &[u8; 32], signer: &UploadKey, data: &[u8]) -> Vec<Request> {
    let file_id = UploadKey::from_file_key(key).file_id();
    let size = data.len() as u64;
    let encoded = encode_stripe(key, file_id, size, 0, data).unwrap();
    let signature = signer.sign_stripe(file_id, 0, &encoded.hashes);
    (0..SHARDS)
        .map(|index| Request::Put {
            file_id,
            stripe: 0,
            index,
            hashes: encoded.hashes.clone(),
            upload: signer.public(),
            signature,
            shard: encoded.shards[usize::from(index)].clone(),
        })
        .collect()
}

/// A peer that learned a file's id puts junk shards under it on a server node before
/// the sender does (shard squatting, issue 16 item 2): every squatting put is refused,
/// the sender's puts are then stored, and a fetch gets the sender's bytes. Meanwhile a
/// contact's text and 4 MiB file flow between two users of the same network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squatted_shard_slots_stay_the_sender_s() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start_on(dir.path(), 1, &["alice", "bob"], Transport::Sockets).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let server = net.servers[0].handle();
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;

    let file_key = [0x42; 32];
    let data = bytes(300 << 10, 9);
    let real = stripe_puts(&file_key, &UploadKey::from_file_key(&file_key), &data);
    // The squatter's junk: its own upload key (which does not hash to the id), and the
    // sender's public key with the squatter's signature.
    let junk = bytes(300 << 10, 10);
    let own_key = stripe_puts(&file_key, &UploadKey::from_file_key(&[0x66; 32]), &junk);
    let borrowed: Vec<Request> = own_key
        .iter()
        .cloned()
        .map(|mut put| {
            if let Request::Put { upload, .. } = &mut put {
                *upload = UploadKey::from_file_key(&file_key).public();
            }
            put
        })
        .collect();

    let mut squatter =
        FileClient::connect(server.peer_id(), dial_addrs(&server).await, Transport::Sockets).await;
    let squatting = tokio::spawn(async move {
        let mut refused = 0;
        for round in 0..20 {
            let puts = if round % 2 == 0 { &own_key } else { &borrowed };
            for put in puts {
                match squatter.ask(put).await {
                    Ok(Response::Refused(Refusal::Invalid)) => refused += 1,
                    other => panic!("a squatting put was answered {other:?}"),
                }
            }
        }
        squatter.stop().await;
        refused
    });
    let (file_during, text_during) = file_and_text(&a, &b, dir.path(), 3).await;
    println!("during shard squatting: 4 MiB file {file_during:?}, text {text_during:?}");
    let refused_puts = squatting.await.unwrap();
    assert_eq!(refused_puts, 20 * usize::from(SHARDS));
    assert!(refused(&server, "shard_put_unauthorized") >= refused_puts as u64);

    // The sender (any peer holding the file key) still gets every slot.
    let mut sender =
        FileClient::connect(server.peer_id(), dial_addrs(&server).await, Transport::Sockets).await;
    for put in &real {
        assert_eq!(sender.ask(put).await, Ok(Response::Stored));
    }
    let file_id = UploadKey::from_file_key(&file_key).file_id();
    let got = sender.ask(&Request::Get { file_id, stripe: 0, mask: DATA_MASK }).await.unwrap();
    let Response::Shards { hashes, shards } = got else { panic!("no shards: {got:?}") };
    let Request::Put { hashes: real_hashes, .. } = &real[0] else { unreachable!() };
    assert_eq!(&hashes, real_hashes, "the held hashes are the sender's");
    for (index, shard) in shards {
        let Request::Put { shard: sent, .. } = &real[usize::from(index)] else { unreachable!() };
        assert_eq!(&shard, sent, "shard {index} is the sender's");
    }
    sender.stop().await;
    net.shutdown().await;
}
