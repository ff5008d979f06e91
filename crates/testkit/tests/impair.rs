//! The impairment proxies on real 127.0.0.1 sockets: what goes through arrives late,
//! reordered or not at all, as configured, and the counters say what happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use communitas_testkit::impair::{Flow, Impairment, TcpProxy, UdpProxy, UdpStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

const LOCALHOST: &str = "127.0.0.1:0";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A UDP echo server: sends every datagram back, and reports each one's number (its
/// first 4 bytes) in the order they arrived.
async fn udp_echo() -> (SocketAddr, mpsc::Receiver<u32>, Arc<AtomicU64>) {
    let socket = UdpSocket::bind(LOCALHOST).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(10_000);
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            seen.fetch_add(1, Relaxed);
            let _ = tx.try_send(u32::from_be_bytes(buf[..4].try_into().unwrap()));
            socket.send_to(&buf[..n], from).await.unwrap();
        }
    });
    (addr, rx, count)
}

/// Sends datagrams numbered `0..n` to `to`, paced so that no socket buffer overflows
/// (kernel drops would blur the proxy's), and returns when each was sent.
async fn send_numbered(socket: &UdpSocket, to: SocketAddr, n: u32) -> Vec<Instant> {
    let mut sent = Vec::new();
    for i in 0..n {
        let mut datagram = i.to_be_bytes().to_vec();
        datagram.resize(100, 0xAB);
        sent.push(Instant::now());
        socket.send_to(&datagram, to).await.unwrap();
        if i % 20 == 19 {
            tokio::time::sleep(ms(1)).await;
        }
    }
    sent
}

/// Sends `n` numbered datagrams to `to` while receiving the answers (reading at the same
/// time, so that the client's own socket buffer never overflows), until none has come
/// for `quiet`. Returns when each was sent, and each answer's number and arrival.
async fn exchange(
    socket: &UdpSocket,
    to: SocketAddr,
    n: u32,
    quiet: Duration,
) -> (Vec<Instant>, Vec<(u32, Instant)>) {
    tokio::join!(send_numbered(socket, to, n), receive_numbered(socket, quiet))
}

/// Receives numbered datagrams until none has come for `quiet`.
async fn receive_numbered(socket: &UdpSocket, quiet: Duration) -> Vec<(u32, Instant)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(Ok((n, _))) = tokio::time::timeout(quiet, socket.recv_from(&mut buf)).await {
        assert_eq!(n, 100);
        got.push((u32::from_be_bytes(buf[..4].try_into().unwrap()), Instant::now()));
    }
    got
}

/// Waits until nothing is held in the proxy.
async fn settled(proxy: &UdpProxy) -> UdpStats {
    for _ in 0..200 {
        let s = proxy.stats();
        if s.to_target.in_flight() == 0 && s.to_client.in_flight() == 0 {
            return s;
        }
        tokio::time::sleep(ms(10)).await;
    }
    panic!("datagrams still held: {:?}", proxy.stats());
}

#[tokio::test]
async fn udp_without_loss_delivers_every_datagram_in_order_after_twice_the_delay() {
    let (echo, mut order, _) = udp_echo().await;
    let delay = ms(40);
    let proxy = UdpProxy::start(echo, Impairment { delay, ..Impairment::default() }).await.unwrap();
    let alice = UdpSocket::bind(LOCALHOST).await.unwrap();
    let bob = UdpSocket::bind(LOCALHOST).await.unwrap();

    let (sent, got) = exchange(&alice, proxy.local_addr(), 200, ms(500)).await;
    // A second client gets its own replies, not alice's.
    bob.send_to(&[0xFF; 100], proxy.local_addr()).await.unwrap();
    let bob_got = receive_numbered(&bob, ms(500)).await;

    assert_eq!(got.len(), 200, "every datagram came back");
    for (i, (number, at)) in got.iter().enumerate() {
        assert_eq!(*number as usize, i, "no jitter: no reordering");
        let rtt = *at - sent[i];
        assert!(rtt >= 2 * delay, "datagram {i} came back after {rtt:?}");
    }
    assert_eq!(bob_got.len(), 1);
    assert_eq!(bob_got[0].0, 0xFFFF_FFFF);
    let mut echoed = Vec::new();
    while let Ok(n) = order.try_recv() {
        echoed.push(n);
    }
    assert_eq!(echoed.len(), 201);

    let stats = settled(&proxy).await;
    let flow = Flow { received: 201, forwarded: 201, dropped: 0 };
    assert_eq!(stats, UdpStats { to_target: flow, to_client: flow });
    assert_eq!((proxy.forwarded(), proxy.dropped(), proxy.received()), (402, 0, 402));
    proxy.shutdown().await.unwrap();
}

/// Runs 2,000 datagrams through a proxy losing half of them, each way; returns the
/// numbers the echo server saw and the stats.
async fn lossy_run(seed: u64) -> (Vec<u32>, UdpStats, usize) {
    let (echo, mut order, echoed) = udp_echo().await;
    let impairment = Impairment { delay: ms(5), loss: 0.5, seed, ..Impairment::default() };
    let proxy = UdpProxy::start(echo, impairment).await.unwrap();
    let client = UdpSocket::bind(LOCALHOST).await.unwrap();
    let (_, back) = exchange(&client, proxy.local_addr(), 2_000, ms(300)).await;
    let back = back.len();
    let stats = settled(&proxy).await;

    let echoed = echoed.load(Relaxed);
    let mut seen = Vec::new();
    while let Ok(n) = order.try_recv() {
        seen.push(n);
    }
    assert_eq!(seen.len() as u64, echoed);
    // The counters add up, each way.
    assert_eq!(stats.to_target.received, 2_000);
    assert_eq!(stats.to_target.forwarded + stats.to_target.dropped, 2_000);
    assert_eq!(stats.to_target.forwarded, echoed, "everything forwarded reached the server");
    assert_eq!(stats.to_client.received, echoed);
    assert_eq!(stats.to_client.forwarded + stats.to_client.dropped, echoed);
    assert_eq!(stats.to_client.forwarded, back as u64);
    proxy.shutdown().await.unwrap();
    (seen, stats, back)
}

#[tokio::test]
async fn udp_loss_is_near_the_configured_rate_and_repeats_with_the_seed() {
    let (seen, stats, back) = lossy_run(42).await;
    let one_way = seen.len();
    assert!((800..=1_200).contains(&one_way), "{one_way} of 2,000 reached the server (p = 0.5)");
    let returned = stats.to_client.forwarded as f64 / one_way as f64;
    assert!((0.4..=0.6).contains(&returned), "{returned:.3} of the echoes came back");
    assert!((350..=650).contains(&back), "{back} of 2,000 round trips (p = 0.25)");

    // The same seed drops the same datagrams; another seed does not.
    let (again, _, _) = lossy_run(42).await;
    assert_eq!(sorted(seen.clone()), sorted(again));
    let (other, _, _) = lossy_run(43).await;
    assert_ne!(sorted(seen), sorted(other));
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

#[tokio::test]
async fn udp_jitter_reorders_datagrams() {
    let (echo, mut order, _) = udp_echo().await;
    let impairment = Impairment { delay: ms(20), jitter: ms(15), seed: 5, ..Impairment::default() };
    let proxy = UdpProxy::start(echo, impairment).await.unwrap();
    let client = UdpSocket::bind(LOCALHOST).await.unwrap();
    let (sent, got) = exchange(&client, proxy.local_addr(), 200, ms(300)).await;
    assert_eq!(got.len(), 200, "jitter alone loses nothing");

    let mut arrived = Vec::new();
    while let Ok(n) = order.try_recv() {
        arrived.push(n);
    }
    let overtaken = arrived.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(overtaken > 0, "no datagram overtook an earlier one: {arrived:?}");
    // Each round trip is two holds of 5..=35 ms.
    let by_number: HashMap<u32, Instant> = got.into_iter().collect();
    for (i, at) in sent.iter().enumerate() {
        let rtt = by_number[&(i as u32)] - *at;
        assert!(rtt >= ms(10), "datagram {i}: {rtt:?}");
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn udp_shutdown_closes_the_socket() {
    let (echo, _, _) = udp_echo().await;
    let proxy = UdpProxy::start(echo, Impairment::default()).await.unwrap();
    let addr = proxy.local_addr();
    proxy.shutdown().await.unwrap();
    // The port is free again: the actor and its socket are gone.
    UdpSocket::bind(addr).await.unwrap();
}

#[tokio::test]
async fn a_loss_that_is_not_a_probability_is_refused() {
    let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let bad = Impairment { loss: 2.0, ..Impairment::default() };
    let err = UdpProxy::start(target, bad).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(TcpProxy::start(target, bad).await.is_err());
}

/// A TCP echo server that echoes each connection until its end.
async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind(LOCALHOST).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
            });
        }
    });
    addr
}

/// Seeded bytes (xorshift64), so a failure can be replayed.
fn random_bytes(n: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(n);
    out
}

#[tokio::test]
async fn tcp_echo_returns_the_exact_bytes_in_order_and_no_sooner_than_the_delay() {
    let echo = tcp_echo().await;
    let (delay, jitter) = (ms(25), ms(10));
    // Jitter on every chunk, and still the bytes must come back in order.
    let impairment = Impairment { delay, jitter, loss: 0.5, seed: 11 };
    let proxy = TcpProxy::start(echo, impairment).await.unwrap();
    let data = random_bytes(1 << 20, 0x9E37_79B9_7F4A_7C15);

    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let to_send = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&to_send).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut back))
        .await
        .expect("the echo ended in time")
        .unwrap();
    let elapsed = started.elapsed();
    writer.await.unwrap();

    assert_eq!(back.len(), data.len());
    assert!(back == data, "the bytes came back changed or out of order");
    // The last byte goes out and comes back, each way held at least delay - jitter.
    assert!(elapsed >= 2 * (delay - jitter) && elapsed >= delay, "{elapsed:?}");
    let stats = proxy.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.refused, 0);
    assert_eq!(stats.bytes_to_target, 1 << 20, "loss does not apply to TCP");
    assert_eq!(stats.bytes_to_client, 1 << 20);
    assert_eq!(proxy.forwarded_bytes(), 2 << 20);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn tcp_round_trip_takes_at_least_twice_the_delay() {
    let echo = tcp_echo().await;
    let delay = ms(30);
    let proxy = TcpProxy::start(echo, Impairment { delay, ..Impairment::default() }).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(proxy.local_addr()).await.unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        stream.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());
    }
    drop(stream);
    let addr = proxy.local_addr();
    proxy.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn tcp_to_a_closed_port_closes_the_client() {
    // A port that was just free: the proxy's connect is refused.
    let closed = TcpListener::bind(LOCALHOST).await.unwrap().local_addr().unwrap();
    let proxy = TcpProxy::start(closed, Impairment::default()).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    assert_eq!(proxy.stats().refused, 1);
}
