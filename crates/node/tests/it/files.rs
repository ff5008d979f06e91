//! Attachments between in-process nodes: whole, checked, edges, limits, changed sources.

use std::path::{Path, PathBuf};
use std::time::Duration;

use communitas_node::{Attachment, Handle, SendError};
use communitas_store::FileStatus;
use communitas_testkit::{Network, eventually};

/// Deterministic, incompressible-looking bytes (also the hostile tests' files).
pub(crate) fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write(dir: &Path, name: &[u8], data: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    let path = dir.join(std::ffi::OsStr::from_bytes(name));
    std::fs::write(&path, data).unwrap();
    path
}

/// Waits until bob has `count` files from `from`, all in `status`, and returns them.
async fn bob_sees_all(
    bob: &Handle,
    from: communitas_types::Address,
    count: usize,
    status: &str,
) -> Vec<Attachment> {
    eventually(Duration::from_secs(300), || async {
        let history = bob.history(from, 50, None).await.unwrap();
        let files: Vec<Attachment> = history.into_iter().filter_map(|e| e.attachment).collect();
        if files.len() == count && files.iter().all(|f| f.status.as_str() == status) {
            Ok(files)
        } else {
            Err(files.iter().map(|f| (f.status, f.progress)).collect::<Vec<_>>())
        }
    })
    .await
}

/// Waits until bob's one file from `from` reaches `status`.
async fn bob_sees(bob: &Handle, from: communitas_types::Address, status: &str) -> Vec<Attachment> {
    bob_sees_all(bob, from, 1, status).await
}

async fn connected(net: &Network) -> (Handle, Handle) {
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    // Each other's contacts: a stranger's files wait for its request to be accepted.
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_edge_size_arrive_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = connected(&net).await;
    let mib = 1 << 20;
    let cases: Vec<(&[u8], usize)> = vec![
        (b"empty.bin", 0),
        (b"one.bin", 1),
        (b"two-segments.bin", 2 * mib),
        (b"odd \xff\xfe name.dat", 3 * mib + 17),
    ];
    let mut sent = Vec::new();
    for (i, (name, len)) in cases.iter().enumerate() {
        let data = bytes(*len, i as u64);
        let path = write(dir.path(), name, &data);
        let (id, file_id, status) = a.send_file(b.address(), "here you go", path).await.unwrap();
        assert_eq!(status.as_str(), "queued");
        sent.push((id, file_id, data));
    }
    let files = bob_sees_all(&b, a.address(), cases.len(), "done").await;
    for (_, file_id, data) in &sent {
        let got = files.iter().find(|f| f.file_id == *file_id).unwrap();
        assert_eq!(got.size, data.len() as u64);
        assert_eq!(got.blake3, blake3::hash(data).to_hex().to_string());
        let path = b.file_path(*file_id).await.unwrap();
        assert!(path.starts_with(dir.path().join("bob-downloads")), "{path:?}");
        assert_eq!(&std::fs::read(&path).unwrap(), data);
    }
    // The non-UTF-8 name was made safe and readable.
    let odd = files.iter().find(|f| f.size == 3 * mib as u64 + 17).unwrap();
    assert!(odd.path.as_deref().unwrap().ends_with("odd \u{fffd}\u{fffd} name.dat"), "{odd:?}");
    // Bob's history shows the caption; alice's shows her files, fetched once bob's
    // receipts came.
    eventually(Duration::from_secs(30), || async {
        let mine = a.history(b.address(), 50, None).await.unwrap();
        assert!(mine.iter().all(|e| e.text == "here you go"));
        let statuses: Vec<_> = mine.iter().map(|e| e.attachment.as_ref().unwrap().status).collect();
        if statuses.iter().all(|s| *s == FileStatus::Fetched) { Ok(()) } else { Err(statuses) }
    })
    .await;
    // No partial file is left behind.
    let partial = dir.path().join("bob-downloads/.partial");
    assert_eq!(std::fs::read_dir(partial).unwrap().count(), 0);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_file_is_refused_before_any_work_and_nothing_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = connected(&net).await;
    // Sparse: 2 GiB on disk costs nothing, and reading it would take seconds.
    let path = dir.path().join("huge.iso");
    std::fs::File::create(&path).unwrap().set_len(2 << 30).unwrap();
    let started = std::time::Instant::now();
    let err = a.send_file(b.address(), "", path).await.unwrap_err();
    assert!(matches!(err, SendError::File(communitas_node::FileError::TooLarge { .. })), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the file was read: {:?}",
        started.elapsed()
    );
    assert!(a.outbox().await.unwrap().is_empty());
    assert!(a.history(b.address(), 10, None).await.unwrap().is_empty());
    // A directory and a missing path are refused with their own errors.
    let err = a.send_file(b.address(), "", dir.path().to_path_buf()).await.unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let err = a.send_file(b.address(), "", dir.path().join("nope")).await.unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    net.shutdown().await;
}

/// Bob fetches nothing above his auto-download size (0 here) until asked; by then
/// alice has edited the file, and the edit is caught rather than served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_sending_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice"]).await;
    let boot = net.servers[0].handle().dial_addrs().await.unwrap();
    let config = communitas_node::Config {
        files: communitas_node::FilesConfig { auto_download: 0, ..Default::default() },
        ..Default::default()
    };
    let bob =
        communitas_testkit::memory_node_configured(dir.path(), "bob", false, &boot, config).await;
    let (a, b) = (net.users[0].handle(), bob.handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;

    let path = write(dir.path(), b"draft.txt", &bytes(100_000, 7));
    let (_, file_id, _) = a.send_file(b.address(), "", path.clone()).await.unwrap();
    let waiting = bob_sees(&b, a.address(), "too_large").await;
    assert_eq!(waiting[0].progress, 0);
    std::fs::write(&path, bytes(100_000, 8)).unwrap();

    b.fetch_file(file_id).await.unwrap();
    let failed = bob_sees(&b, a.address(), "failed").await;
    assert!(failed[0].error.as_deref().unwrap().contains("changed"), "{failed:?}");
    assert!(b.file_path(file_id).await.is_err());

    // Put back, the original is served again.
    std::fs::write(&path, bytes(100_000, 7)).unwrap();
    b.fetch_file(file_id).await.unwrap();
    bob_sees(&b, a.address(), "done").await;
    assert_eq!(std::fs::read(b.file_path(file_id).await.unwrap()).unwrap(), bytes(100_000, 7));
    bob.shutdown().await;
    net.shutdown().await;
}

/// Bob is away: alice's shards go to the server nodes; alice leaves, holders die,
/// and bob still rebuilds the exact file when he comes back. With 7 servers each keeps
/// 2 shards of every stripe, so 2 dead holders take 4 shards (the parity count) of
/// every stripe with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_shards_survive_the_sender_leaving_and_two_of_seven_holders_dying() {
    stored_case(7, 2, false, (3 << 20) + 5).await;
}

/// A holder whose disk flipped bits in some data shards: bob notices each by its hash,
/// counts it, and takes parity from the other holders instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_stored_shards_are_detected_counted_and_replaced() {
    stored_case(7, 1, true, (3 << 20) + 5).await;
}

/// The same at full size with one shard per holder: a 100 MiB file, 14 servers, 4 of
/// them die. Slow (every server validates every identity record with Argon2, and 140
/// MiB of shards go to 14 databases): run with `--run-ignored all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: 14 servers"]
async fn stored_shards_survive_four_of_fourteen_holders_dying() {
    stored_case(14, 4, false, 100 << 20).await;
}

/// Overwrites up to 3 stored data shards in server `name`'s database with other bytes.
fn corrupt_shards(dir: &Path, name: &str) -> usize {
    let db = rusqlite::Connection::open(dir.join(format!("{name}.db"))).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute(
        "UPDATE shards SET shard = randomblob(size)
         WHERE (file_id, stripe, idx) IN (SELECT file_id, stripe, idx FROM shards WHERE idx < 10 LIMIT 3)",
        [],
    )
    .unwrap()
}

/// `servers` server nodes and alice; bob, whose keys are `seeds`, joins once (so alice
/// can find and add him) and leaves. Returns the network, the address bob's node
/// bootstraps from when he comes back, and his address.
async fn with_bob_away(
    dir: &Path,
    servers: usize,
    seeds: communitas_testkit::Seeds,
) -> (Network, Vec<communitas_net::libp2p::Multiaddr>, communitas_types::Address) {
    let net = Network::start(dir, servers, &["alice"]).await;
    let boot = net.servers[servers - 1].handle().dial_addrs().await.unwrap();
    let bob = communitas_testkit::memory_node_with(dir, "bob", false, &boot, seeds).await;
    let a = net.users[0].handle();
    let bob_address = bob.handle().address();
    eventually(Duration::from_secs(120), || a.add_contact(bob_address, None)).await;
    // Bob accepts alice first: a stranger's files are not fetched (issue 15).
    let b = bob.handle();
    eventually(Duration::from_secs(120), || b.add_contact(a.address(), None)).await;
    bob.shutdown().await;
    (net, boot, bob_address)
}

async fn stored_case(servers: usize, kill: usize, corrupt: bool, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let seeds = communitas_testkit::Seeds::random();
    let (mut net, boot, bob_address) = with_bob_away(dir.path(), servers, seeds).await;
    let a = net.users[0].handle();

    let data = bytes(size, 42);
    let path = write(dir.path(), b"report.pdf", &data);
    let (id, file_id, _) = a.send_file(bob_address, "for when you are back", path).await.unwrap();
    eventually(Duration::from_secs(600), || async {
        let status = a.message_status(id).await.unwrap().map(|s| s.as_str());
        let file = a.file(file_id).await.unwrap();
        if status == Some("stored") && file.status == FileStatus::Stored {
            Ok(())
        } else {
            Err(format!("message {status:?}, file {:?} {}", file.status, file.progress))
        }
    })
    .await;

    let alice = net.users.remove(0);
    alice.shutdown().await;
    for server in net.servers.drain(..kill) {
        server.shutdown().await;
    }
    let corrupted = if corrupt { corrupt_shards(dir.path(), &format!("server{kill}")) } else { 0 };
    assert!(!corrupt || corrupted > 0, "the holder kept no data shard");

    let bob = communitas_testkit::memory_node_with(dir.path(), "bob", false, &boot, seeds).await;
    let b = bob.handle();
    let files = bob_sees(&b, a.address(), "done").await;
    assert_eq!(files[0].file_id, file_id);
    assert_eq!(std::fs::read(b.file_path(file_id).await.unwrap()).unwrap(), data);
    let detected = b.metrics().file_shards_corrupt.get();
    assert_eq!(detected, corrupted as u64, "corrupt shards counted");
    bob.shutdown().await;
    net.shutdown().await;
}

/// Shards a server node keeps, in all (read from its database).
fn shards_kept(dir: &Path, servers: usize) -> i64 {
    (0..servers)
        .map(|i| {
            let db = rusqlite::Connection::open(dir.join(format!("server{i}.db"))).unwrap();
            db.busy_timeout(Duration::from_secs(5)).unwrap();
            db.query_row("SELECT COUNT(*) FROM shards", [], |r| r.get::<_, i64>(0)).unwrap()
        })
        .sum()
}

/// Asks `server` to `Drop` a file's shards over a bare connection (not the sender's).
async fn drop_as_stranger(
    client: &communitas_testkit::BareClient,
    server: communitas_net::libp2p::PeerId,
    file_id: communitas_types::FileId,
) -> communitas_proto::file::wire::Response {
    use communitas_proto::file::wire::{PROTOCOL, Request, Response};
    use futures::{AsyncReadExt as _, AsyncWriteExt as _};

    let protocol = communitas_net::libp2p::StreamProtocol::new(PROTOCOL);
    let mut stream = client.net.streams().open_stream(server, protocol).await.unwrap();
    let body = Request::Drop { file_id }.to_bytes();
    stream.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    stream.flush().await.unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut answer = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer).await.unwrap();
    Response::from_bytes(&answer).unwrap()
}

/// Bob was away, so alice's file went to server nodes. Once bob has it, his receipt
/// makes alice's file `fetched` and her node asks the servers to drop the shards; a
/// stranger asking the same drops nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_shards_are_released_once_the_recipient_has_the_file() {
    use communitas_net::libp2p::multiaddr::Protocol;
    use communitas_proto::file::wire::Response;

    let servers = 3;
    let dir = tempfile::tempdir().unwrap();
    let seeds = communitas_testkit::Seeds::random();
    let (net, boot, bob_address) = with_bob_away(dir.path(), servers, seeds).await;
    let a = net.users[0].handle();

    let data = bytes((3 << 20) + 5, 7);
    let path = write(dir.path(), b"photos.zip", &data);
    let (id, file_id, _) = a.send_file(bob_address, "when you are back", path).await.unwrap();
    eventually(Duration::from_secs(300), || async {
        let file = a.file(file_id).await.unwrap();
        if file.status == FileStatus::Stored { Ok(()) } else { Err((file.status, file.progress)) }
    })
    .await;
    let kept = shards_kept(dir.path(), servers);
    assert_eq!(kept, 4 * 14, "every shard of the 4 stripes is on a server");

    // A stranger cannot drop alice's shards.
    for server in &net.servers {
        let addrs = server.handle().dial_addrs().await.unwrap();
        let Some(Protocol::P2p(peer)) = addrs[0].iter().last() else { panic!("no peer id") };
        let stranger = communitas_testkit::BareClient::start(&addrs);
        assert_eq!(drop_as_stranger(&stranger, peer, file_id).await, Response::Dropped(0));
        stranger.stop().await;
    }
    assert_eq!(shards_kept(dir.path(), servers), kept);

    // Bob comes back and fetches it; alice hears, and the servers let the shards go.
    let bob = communitas_testkit::memory_node_with(dir.path(), "bob", false, &boot, seeds).await;
    let b = bob.handle();
    bob_sees(&b, a.address(), "done").await;
    assert_eq!(std::fs::read(b.file_path(file_id).await.unwrap()).unwrap(), data);
    eventually(Duration::from_secs(60), || async {
        let file = a.file(file_id).await.unwrap();
        let left = shards_kept(dir.path(), servers);
        if file.status == FileStatus::Fetched && left == 0 {
            Ok(())
        } else {
            Err((file.status, left))
        }
    })
    .await;
    assert_eq!(a.message_status(id).await.unwrap().map(|s| s.as_str()), Some("delivered"));
    bob.shutdown().await;
    net.shutdown().await;
}

/// A measurement, not a check (`--run-ignored only stored_upload_time --no-capture`):
/// how long alice's node takes to put a 32 MiB file on 7 server nodes (in-process,
/// memory transport), from `send_file` to `stored`. Figures in docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn stored_upload_time() {
    let servers = 7;
    let dir = tempfile::tempdir().unwrap();
    let seeds = communitas_testkit::Seeds::random();
    let (net, _, bob_address) = with_bob_away(dir.path(), servers, seeds).await;
    let a = net.users[0].handle();
    let data = bytes(32 << 20, 9);
    let path = write(dir.path(), b"big.bin", &data);
    let start = std::time::Instant::now();
    let (_, file_id, _) = a.send_file(bob_address, "", path).await.unwrap();
    eventually(Duration::from_secs(600), || async {
        let file = a.file(file_id).await.unwrap();
        if file.status == FileStatus::Stored { Ok(()) } else { Err((file.status, file.progress)) }
    })
    .await;
    let took = start.elapsed();
    println!("stored_upload_time: 32 MiB on {servers} servers in {:.2} s", took.as_secs_f64());
    net.shutdown().await;
}
