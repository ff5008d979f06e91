//! Hostile peers against real nodes on real sockets (TCP on 127.0.0.1): during each
//! attack a contact's text and a 4 MiB file still arrive. Times are printed, not
//! asserted, beyond a generous bound.

use std::path::Path;
use std::time::{Duration, Instant};

use communitas_net::libp2p::StreamProtocol;
use communitas_node::Handle;
use communitas_proto::file::wire::{DATA_MASK, Refusal, Request, Response};
use communitas_proto::file::{SHARDS, UploadKey, encode_stripe};
use communitas_testkit::attack::{FileClient, FrameAttack, Frames, StreamHoarder};
use communitas_testkit::{Network, Transport, dial_addrs, eventually};

use super::files::bytes;

/// The bound on a 4 MiB file and a text during an attack (they take about a second).
const BUDGET: Duration = Duration::from_secs(60);
const FILE_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/file/1");
const MSG_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/msg/1");
const MBOX_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/mbox/1");
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/kad/1.0.0");
const IDENTIFY_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/id/1.0.0");
/// What the test process (both nodes, the server and the attackers) may grow by during
/// an attack.
const RSS_BOUND_MIB: u64 = 256;

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

/// The resident set of this process, in MiB (every node of the test runs in it).
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Alice sends bob `n` texts one after another, each once the last was delivered;
/// returns each one's send-to-delivered time, sorted.
async fn text_latencies(a: &Handle, b: &Handle, n: usize, tag: &str) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let (id, _) = a.send_text(b.address(), &format!("{tag} {i}")).await.unwrap();
        eventually(BUDGET, || async {
            match a.message_status(id).await.unwrap().map(|s| s.as_str()) {
                Some("delivered") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        took.push(started.elapsed());
    }
    took.sort();
    took
}

/// The `q`-quantile of sorted `times` (nearest rank).
fn quantile(times: &[Duration], q: f64) -> Duration {
    let rank = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len());
    times[rank - 1]
}

/// Legitimate traffic before and during an attack: 20 texts (p50/p99) and a 4 MiB
/// file with a text, and the process's RSS. Panics if the attack keeps a text or the
/// file from arriving within [`BUDGET`] or RSS grows past [`RSS_BOUND_MIB`].
struct Figures {
    texts: Vec<Duration>,
    file: Duration,
    rss: u64,
}

async fn measure(a: &Handle, b: &Handle, dir: &Path, seed: u64) -> Figures {
    let texts = text_latencies(a, b, 20, &format!("round {seed}")).await;
    let (file, _) = file_and_text(a, b, dir, seed).await;
    Figures { texts, file, rss: rss_mib() }
}

fn report(attack: &str, before: &Figures, during: &Figures) {
    println!(
        "{attack}: texts p50 {:?} -> {:?}, p99 {:?} -> {:?}; 4 MiB file {:?} -> {:?}; \
         RSS {} MiB -> {} MiB",
        quantile(&before.texts, 0.5),
        quantile(&during.texts, 0.5),
        quantile(&before.texts, 0.99),
        quantile(&during.texts, 0.99),
        before.file,
        during.file,
        before.rss,
        during.rss,
    );
    assert!(
        during.rss <= before.rss + RSS_BOUND_MIB,
        "{attack}: RSS grew from {} to {} MiB",
        before.rss,
        during.rss
    );
}

/// Alice and bob, contacts, on real TCP, warmed up (found, dialled, one file sent),
/// with the figures of a quiet round.
async fn quiet_pair(dir: &Path) -> (Network, Figures) {
    let net = Network::start_on(dir, 1, &["alice", "bob"], Transport::Sockets).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    file_and_text(&a, &b, dir, 100).await;
    let before = measure(&a, &b, dir, 101).await;
    (net, before)
}

/// Idle streams on every other protocol a node serves (msg and mbox at bob, who
/// receives; Kademlia and identify at both): each protocol's own per-connection cap and
/// deadline hold them, and alice's texts and file still reach bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_on_msg_mbox_kad_and_identify_do_not_stop_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let (net, before) = quiet_pair(dir.path()).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let mut hoarders = Vec::new();
    for (target, protocol) in [
        (&b, MSG_PROTOCOL),
        (&b, MBOX_PROTOCOL),
        (&b, KAD_PROTOCOL),
        (&b, IDENTIFY_PROTOCOL),
        (&a, KAD_PROTOCOL),
        (&a, IDENTIFY_PROTOCOL),
    ] {
        let addrs = dial_addrs(target).await;
        hoarders.push(
            StreamHoarder::start(target.peer_id(), addrs, Transport::Sockets, protocol, 100).await,
        );
    }
    eventually(Duration::from_secs(30), || async {
        let opened: usize = hoarders.iter().map(|h| h.opened()).sum();
        if opened >= 600 { Ok(()) } else { Err(opened) }
    })
    .await;
    let during = measure(&a, &b, dir.path(), 102).await;
    report("idle streams (600 on msg, mbox, kad, identify)", &before, &during);
    // The message streams end at their deadline (10 s) and are counted.
    eventually(Duration::from_secs(30), || async {
        let unfinished = refused(&b, "msg_frame_unfinished");
        if unfinished > 0 { Ok(()) } else { Err("no msg stream timed out") }
    })
    .await;
    for hoarder in hoarders {
        hoarder.stop().await;
    }
    net.shutdown().await;
}

/// Frames that never finish (declared 200 KB, one byte every 500 ms) on msg and mbox
/// at bob and on the file protocol at alice, 100 streams each: each stream ends at its
/// deadline and holds only the bytes that arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_frames_do_not_stop_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let (net, before) = quiet_pair(dir.path()).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let slow = Frames::Slow { declare: 200_000, every: Duration::from_millis(500) };
    let mut attacks = Vec::new();
    for (target, protocol) in [(&b, MSG_PROTOCOL), (&b, MBOX_PROTOCOL), (&a, FILE_PROTOCOL)] {
        let addrs = dial_addrs(target).await;
        attacks.push(
            FrameAttack::start(target.peer_id(), addrs, Transport::Sockets, protocol, 100, slow)
                .await,
        );
    }
    eventually(Duration::from_secs(30), || async {
        let opened: usize = attacks.iter().map(|h| h.opened()).sum();
        if opened >= 300 { Ok(()) } else { Err(opened) }
    })
    .await;
    let during = measure(&a, &b, dir.path(), 103).await;
    report("slow frames (300 streams on msg, mbox, file)", &before, &during);
    eventually(Duration::from_secs(40), || async {
        let counts = [
            refused(&b, "msg_frame_unfinished"),
            refused(&b, "mbox_frame_unfinished"),
            refused(&a, "file_stream_first_frame_timeout"),
        ];
        if counts.iter().all(|&n| n > 0) { Ok(()) } else { Err(counts) }
    })
    .await;
    for attack in attacks {
        attack.stop().await;
    }
    net.shutdown().await;
}

/// Oversize frames (a declared 4 GiB) and a flood of garbage requests (well framed,
/// 2 KB of noise, a new stream as soon as one ends) on msg, mbox, file and Kademlia:
/// refused as bad frames or invalid requests, counted, and alice's texts and file
/// still reach bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_and_garbage_floods_do_not_stop_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let (net, before) = quiet_pair(dir.path()).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let garbage = Frames::Garbage { bytes: 2000 };
    let mut attacks = Vec::new();
    for (target, protocol, streams, frames) in [
        (&b, MSG_PROTOCOL, 20, Frames::Oversize),
        (&b, MBOX_PROTOCOL, 20, Frames::Oversize),
        (&a, FILE_PROTOCOL, 20, Frames::Oversize),
        (&b, MSG_PROTOCOL, 8, garbage),
        (&b, MBOX_PROTOCOL, 8, garbage),
        (&a, FILE_PROTOCOL, 8, garbage),
        (&b, KAD_PROTOCOL, 8, garbage),
    ] {
        let addrs = dial_addrs(target).await;
        attacks.push(
            FrameAttack::start(
                target.peer_id(),
                addrs,
                Transport::Sockets,
                protocol,
                streams,
                frames,
            )
            .await,
        );
    }
    eventually(Duration::from_secs(30), || async {
        let closed: usize = attacks.iter().map(|h| h.closed()).sum();
        if closed >= 500 { Ok(()) } else { Err(closed) }
    })
    .await;
    let during = measure(&a, &b, dir.path(), 104).await;
    let streams: usize = attacks.iter().map(|h| h.opened()).sum();
    report(&format!("oversize frames and garbage floods ({streams} streams)"), &before, &during);
    let counts = [
        refused(&b, "msg_bad_frame"),
        refused(&b, "mbox_bad_frame"),
        refused(&a, "file_bad_frame"),
        refused(&a, "file_bad_request"),
    ];
    println!("refused: msg, mbox, file bad frames, file bad requests: {counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "a refusal was not counted: {counts:?}");
    for attack in attacks {
        attack.stop().await;
    }
    net.shutdown().await;
}

/// One peer floods dave's mailbox at the server (dave is offline) with 1,200
/// well-formed envelopes: it gets its share (a tenth of the mailbox, decision 0044) and
/// is then refused, another peer's deposit for dave is still stored, and meanwhile
/// alice's texts and file reach bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_flood_from_one_peer_gets_a_tenth_of_the_mailbox() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::mbox::{MboxRequest, MboxResponse, Refusal as MboxRefusal};
    use communitas_testkit::BareClient;
    use communitas_types::{MessageId, Timestamp};

    const FLOOD: u32 = 1_200;
    const SHARE: u32 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let (net, before) = quiet_pair(dir.path()).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let server = net.servers[0].handle();
    let server_addrs = dial_addrs(&server).await;
    // Offline: nobody fetches (and so empties) this mailbox during the test.
    let dave = Identity::generate().unwrap();
    let to = dave.public().clone();
    let sender = Identity::generate().unwrap();
    let envelope = move |n: u32| {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        let letter = Letter {
            message_id: MessageId::from_bytes(id),
            timestamp: Timestamp::now(),
            kind: Kind::Text,
            body: b"flood",
        };
        Envelope::seal(&sender, &to, letter).unwrap().to_bytes()
    };
    let envelopes: Vec<Vec<u8>> = (0..=FLOOD).map(envelope).collect();

    let mallory = BareClient::start_on(&server_addrs, Transport::Sockets);
    let server_peer = server.peer_id();
    let flood_envelopes = envelopes[..FLOOD as usize].to_vec();
    let flood = {
        let net = mallory.net.clone();
        tokio::spawn(async move {
            let (mut stored, mut over, mut other) = (0u32, 0u32, 0u32);
            for envelope in flood_envelopes {
                match net.mailbox(server_peer, MboxRequest::Put { envelope }).await {
                    Ok(MboxResponse::Stored) => stored += 1,
                    Ok(MboxResponse::Refused(MboxRefusal::SenderOverQuota)) => over += 1,
                    _ => other += 1,
                }
            }
            (stored, over, other)
        })
    };
    let during = measure(&a, &b, dir.path(), 105).await;
    let (stored, over, other) = flood.await.unwrap();
    report(&format!("mailbox flood ({FLOOD} puts for dave from one peer)"), &before, &during);
    println!("flood: stored {stored}, over its share {over}, other answers {other}");
    assert_eq!(stored, SHARE, "one peer gets a tenth of dave's mailbox");
    assert_eq!(over + other, FLOOD - SHARE);
    assert!(over > 0 && refused(&server, "mailbox_sender_quota") >= u64::from(over));

    // Dave's mailbox still takes another sender's envelope.
    let carol = BareClient::start_on(&server_addrs, Transport::Sockets);
    let last = envelopes[FLOOD as usize].clone();
    let answer = carol.net.mailbox(server_peer, MboxRequest::Put { envelope: last }).await;
    assert_eq!(answer.unwrap(), MboxResponse::Stored);
    mallory.stop().await;
    carol.stop().await;
    net.shutdown().await;
}
