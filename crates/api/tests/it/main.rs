//! The API over real HTTP on 127.0.0.1, in front of real nodes (memory transport).
//! One test binary (ARCHITECTURE §14).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod consent;
mod contacts;

use std::time::Duration;

use communitas_api::State;
use communitas_testkit::{Network, eventually};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-0123456789";

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None, Some(TOKEN)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body), Some(TOKEN)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(body), Some(TOKEN)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None, Some(TOKEN)).await
    }
}

async fn serve(node: communitas_node::Handle, shutdown: CancellationToken) -> Api {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let base = format!("http://{local}");
    tokio::spawn(communitas_api::serve(listener, State::new(node, TOKEN.into(), shutdown, local)));
    Api { base, http: reqwest::Client::builder().no_proxy().build().unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_guards_validates_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (alice, bob) = (net.users[0].handle(), net.users[1].handle());
    let shutdown = CancellationToken::new();
    let api = serve(alice.clone(), shutdown.clone()).await;

    // Access.
    for token in [None, Some("wrong")] {
        let (status, body) = api.call(reqwest::Method::GET, "/v1/status", None, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let rebound = api
        .http
        .get(format!("{}/v1/status", api.base))
        .bearer_auth(TOKEN)
        .header("host", "evil.example:80");
    let response = rebound.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let (status, body) = api.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["address"], alice.address().to_string());

    // Validation: typed errors with stable codes, nothing queued.
    let bob_address = bob.address().to_string();
    let (status, body) =
        api.post("/v1/messages", json!({ "to": "abacus zebbra zone zoom", "text": "x" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_address"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"zebbra\"") && message.contains("\"zebra\""), "{message}");
    let (status, body) = api.post("/v1/messages", json!({ "to": bob_address })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = api.post("/v1/messages", json!({ "to": bob_address, "text": "" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty_message"))
    );
    let long = "é".repeat(40_000);
    let (status, body) = api.post("/v1/messages", json!({ "to": bob_address, "text": long })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("message_too_long"))
    );
    let (status, body) = api.get("/v1/nothing-here").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(api.get("/v1/outbox").await.1, json!([]));

    // Live events over the WebSocket.
    let mut request =
        format!("{}/v1/events", api.base.replacen("http", "ws", 1)).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut events, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    eventually(Duration::from_secs(20), || alice.add_contact(bob.address(), Some("bob".into())))
        .await;
    let (status, queued) =
        api.post("/v1/messages", json!({ "to": bob_address, "text": "hello over the API" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = queued["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    while !seen.contains(&"delivered".to_owned()) {
        let frame = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        if event["type"] == "status_changed" && event["id"] == id.as_str() {
            seen.push(event["status"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ["queued", "sent", "delivered"]);
    let (_, history) = api.get(&format!("/v1/conversations/{bob_address}/messages?limit=10")).await;
    assert_eq!(history[0]["text"], "hello over the API");
    let (_, contacts) = api.get("/v1/contacts").await;
    assert_eq!(contacts[0]["name"], "bob");
    let (_, safety) = api.get(&format!("/v1/contacts/{bob_address}/safety-number")).await;
    assert_eq!(safety["safety_number"].as_str().unwrap().len(), 71);
    let (_, metrics) = api.call(reqwest::Method::GET, "/metrics", None, Some(TOKEN)).await;
    assert!(metrics.as_str().unwrap().contains("communitas_messages_delivered_total 1"));
    // (After the metrics: the read receipt below is a delivered message too.)
    // Bob answers: one unread message in alice's conversation list until she reads it.
    eventually(Duration::from_secs(20), || bob.add_contact(alice.address(), None)).await;
    bob.send_text(alice.address(), "hi alice").await.unwrap();
    let received = async {
        while let Some(frame) = events.next().await {
            let event: Value = serde_json::from_str(frame.unwrap().to_text().unwrap()).unwrap();
            if event["type"] == "message_received" {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), received).await.expect("bob's message");
    let (_, conversations) = api.get("/v1/conversations").await;
    assert_eq!(conversations[0]["peer"], bob_address.as_str());
    assert_eq!(conversations[0]["unread"], 1);
    api.post(&format!("/v1/conversations/{bob_address}/read"), json!({})).await;
    let (_, conversations) = api.get("/v1/conversations").await;
    assert_eq!(conversations[0]["unread"], 0);
    // The read receipt went out; it is not a message the user sent, so the count of
    // delivered messages stays at one.
    eventually(Duration::from_secs(20), || async {
        let (_, outbox) = api.get("/v1/outbox").await;
        if outbox == json!([]) { Ok(()) } else { Err(outbox) }
    })
    .await;
    let (_, metrics) = api.call(reqwest::Method::GET, "/metrics", None, Some(TOKEN)).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("communitas_messages_delivered_total 1\n"), "{metrics}");

    shutdown.cancel();
    net.shutdown().await;
}

/// Every path the OpenAPI document lists is routed, and every routed path is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice"]).await;
    let shutdown = CancellationToken::new();
    let api = serve(net.users[0].handle(), shutdown.clone()).await;
    let (status, doc) = api.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    // The web UI's passphrase rule is typed from this constant (issue 23 item 6).
    assert_eq!(
        doc["components"]["schemas"]["Identity"]["properties"]["passphrase_min_chars"]["const"],
        communitas_crypto::keystore::MIN_PASSPHRASE_CHARS
    );
    assert_eq!(
        api.get("/v1/identity").await.1["passphrase_min_chars"],
        communitas_crypto::keystore::MIN_PASSPHRASE_CHARS
    );
    let address = net.users[0].handle().address().to_string();
    for (path, ops) in paths {
        let concrete = path.replace("{address}", &address).replace("{id}", &"0".repeat(32));
        for method in ops.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let body = (method == reqwest::Method::POST).then(|| json!({}));
            let (_, answer) = api.call(method.clone(), &concrete, body, Some(TOKEN)).await;
            assert_ne!(
                answer["error"]["message"], "no such route",
                "{method} {path} is documented but not routed"
            );
        }
    }
    let routed = include_str!("../../src/routes.rs");
    for line in routed.lines().filter(|l| l.trim_start().starts_with(".route(\"")) {
        let path = line.split('"').nth(1).unwrap();
        assert!(paths.contains_key(path), "{path} is routed but not documented");
    }
    shutdown.cancel();
    net.shutdown().await;
}

/// Over the send rate: 429 with a Retry-After header, and the node keeps going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_over_the_rate_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice"]).await;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let base = format!("http://{local}");
    let state =
        State::new(net.users[0].handle(), TOKEN.into(), shutdown.clone(), local).with_send_rate(1);
    tokio::spawn(communitas_api::serve(listener, state));
    let api = Api { base, http: reqwest::Client::builder().no_proxy().build().unwrap() };
    // Invalid sends still spend the budget: the limit is on requests, before any work.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let response = api
            .http
            .post(format!("{}/v1/messages", api.base))
            .bearer_auth(TOKEN)
            .json(&json!({ "to": "abacus abacus abacus abacus", "text": "x" }))
            .send()
            .await
            .unwrap();
        let retry_after =
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        codes.push((response.status().as_u16(), retry_after));
    }
    assert_eq!(codes[0].0, 404, "unknown_address, within the burst");
    assert_eq!(codes[3].0, 429);
    assert_eq!(codes[3].1.as_deref(), Some("1"));
    let (status, _) = api.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "other routes are not limited");
    shutdown.cancel();
    net.shutdown().await;
}

/// Presence, typing, read and settings routes: bad input gets a typed error and
/// changes nothing (issue 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_routes_refuse_bad_input_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let bob = net.users[1].handle().address().to_string();
    let shutdown = CancellationToken::new();
    let api = serve(net.users[0].handle(), shutdown.clone()).await;
    let put = |path: &'static str, body: Value| {
        let api = &api;
        async move { api.call(reqwest::Method::PUT, path, Some(body), Some(TOKEN)).await }
    };

    let (status, body) = api.get("/v1/presence").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("online")));
    let (status, body) = put("/v1/presence", json!({ "status": "sleepy" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown presence status"));
    assert_eq!(api.get("/v1/presence").await.1["status"], "online", "unchanged");
    let (status, body) = put("/v1/presence", json!({ "status": "busy" })).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("busy")));
    assert_eq!(api.get("/v1/presence").await.1["status"], "busy");

    // Not a contact (yet): typed 404s; not an address: 400 naming the word.
    let (status, body) = api.get(&format!("/v1/presence/{bob}")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_a_contact"))
    );
    let path = format!("/v1/conversations/{bob}/typing");
    let (status, body) = api.post(&path, json!({ "typing": true })).await;
    assert_eq!(body["error"]["code"], "not_a_contact", "{status}");
    let (status, body) = api.get("/v1/presence/not-four-real-words").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_address"))
    );
    let (_, body) = api.post(&path, json!({ "typing": "yes" })).await;
    assert_eq!(body["error"]["code"], "invalid_request");

    // A contact now: its presence is known, reading an empty conversation reads 0.
    let (alice, bob_address) = (net.users[0].handle(), net.users[1].handle().address());
    eventually(Duration::from_secs(20), || alice.add_contact(bob_address, None)).await;
    let (status, body) = api.get(&format!("/v1/presence/{bob}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(["online", "offline"].contains(&body["status"].as_str().unwrap()), "{body}");
    let (status, body) = api.post(&format!("/v1/conversations/{bob}/read"), json!({})).await;
    assert_eq!((status, body["read"].as_u64()), (StatusCode::OK, Some(0)));

    // Settings: on by default; a bad value changes nothing; off sticks.
    assert_eq!(api.get("/v1/settings").await.1["read_receipts"], true);
    let (status, _) = put("/v1/settings", json!({ "read_receipts": "maybe" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/v1/settings").await.1["read_receipts"], true);
    assert_eq!(
        put("/v1/settings", json!({ "read_receipts": false })).await.1["read_receipts"],
        false
    );
    assert_eq!(api.get("/v1/settings").await.1["read_receipts"], false);

    shutdown.cancel();
    net.shutdown().await;
}

/// A streamed upload the node refuses leaves nothing in the uploads folder; one it
/// accepts is kept there, to be served to the recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (alice, bob) = (net.users[0].handle(), net.users[1].handle());
    let shutdown = CancellationToken::new();
    let api = serve(alice.clone(), shutdown.clone()).await;
    let uploads = dir.path().join("alice-uploads");
    let kept = || std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    let upload = |to: String, body: Vec<u8>| {
        let url = format!("{}/v1/files/upload?to={to}&name=notes.txt", api.base);
        let request = api.http.post(url).bearer_auth(TOKEN).body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    // To herself: refused after the body arrived; the copy goes.
    let own = alice.address().to_string().replace(' ', "%20");
    let (status, body) = upload(own, b"to me".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("own_address"))
    );
    assert_eq!(kept(), 0, "a refused upload left a file");

    // Cut off half-way (the client goes away): the partial copy goes too.
    {
        use tokio::io::AsyncWriteExt as _;
        let host = api.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST /v1/files/upload?to={}&name=half.bin HTTP/1.1\r\nHost: {host}\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n",
            bob.address()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[7u8; 40_000]).await.unwrap();
        eventually(Duration::from_secs(10), || async {
            if kept() == 1 { Ok(()) } else { Err("the upload has not started") }
        })
        .await;
        drop(stream);
    }
    eventually(Duration::from_secs(10), || async {
        if kept() == 0 { Ok(()) } else { Err("a cut-off upload left a file") }
    })
    .await;

    // To bob: kept while it is offered.
    eventually(Duration::from_secs(20), || alice.add_contact(bob.address(), None)).await;
    let (status, body) = upload(bob.address().to_string(), b"for bob".to_vec()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(kept(), 1);
    shutdown.cancel();
    net.shutdown().await;
}

/// The Host must be exactly the API's own address with its port (DNS rebinding
/// through `127.attacker.example` is refused), and a web session cannot make the node
/// read a local path by name: only the bearer token can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_own_host_and_only_the_token_may_name_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (alice, bob) = (net.users[0].handle(), net.users[1].handle());
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let state = State::new(alice.clone(), TOKEN.into(), shutdown.clone(), local);
    let code_link = state.login_url().unwrap();
    tokio::spawn(communitas_api::serve(listener, state));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{local}");
    let port = local.port();

    let with_host = |path: &str, host: &str| {
        http.get(format!("{base}{path}")).bearer_auth(TOKEN).header("host", host.to_owned())
    };
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")]
    {
        let response = with_host("/v1/status", &host).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    for host in [
        format!("127.attacker.example:{port}"),
        format!("127.0.0.2:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
    ] {
        for path in ["/v1/status", "/", "/login?code=x"] {
            let response = with_host(path, &host).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{host} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_host", "{host} {path}");
        }
    }

    // A web session, from a login link.
    let login = http.get(code_link).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie =
        login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    // The page token comes in the redirect's fragment, which only our page reads.
    let location = login.headers()["location"].to_str().unwrap().to_owned();
    let page = location.strip_prefix("/#page=").expect("a page token").to_owned();
    assert_eq!(page.len(), 64);
    // The cookie alone (as a program on another local port collects it) is no session,
    // nor is it with a wrong token; with its page's token it is, as a header or, where
    // a browser cannot add one (file links, the event stream), as `?page=`.
    let cookie_only = http.get(format!("{base}/v1/status")).header("cookie", &cookie);
    assert_eq!(cookie_only.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong = http
        .get(format!("{base}/v1/status"))
        .header("cookie", &cookie)
        .header("x-communitas-page", "0".repeat(64));
    assert_eq!(wrong.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let session_get = http
        .get(format!("{base}/v1/status"))
        .header("cookie", &cookie)
        .header("x-communitas-page", &page);
    assert_eq!(session_get.send().await.unwrap().status(), StatusCode::OK);
    let by_query = http.get(format!("{base}/v1/status?page={page}")).header("cookie", &cookie);
    assert_eq!(by_query.send().await.unwrap().status(), StatusCode::OK);

    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"not for web pages").unwrap();
    let request = json!({ "to": bob.address().to_string(), "path": secret.display().to_string() });
    let by_session = http
        .post(format!("{base}/v1/files"))
        .header("cookie", &cookie)
        .header("x-communitas-page", &page)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(by_session.status(), StatusCode::FORBIDDEN);
    let body: Value = by_session.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_required");
    assert!(alice.outbox().await.unwrap().is_empty(), "nothing was sent");
    // The token still may (bob is not a contact yet: found through the DHT).
    let api =
        Api { base: base.clone(), http: reqwest::Client::builder().no_proxy().build().unwrap() };
    let (status, body) = eventually(Duration::from_secs(20), || async {
        let (status, body) = api.post("/v1/files", request.clone()).await;
        if status == StatusCode::ACCEPTED { Ok((status, body)) } else { Err((status, body)) }
    })
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The session's event stream lives as long as the session: logout ends it.
    let mut request = format!("ws://{local}/v1/events?page={page}").into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut events, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let logout = http
        .post(format!("{base}/v1/logout"))
        .header("cookie", &cookie)
        .header("x-communitas-page", &page);
    assert_eq!(logout.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                None
                | Some(Err(_))
                | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => {
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session's logout");

    shutdown.cancel();
    net.shutdown().await;
}
