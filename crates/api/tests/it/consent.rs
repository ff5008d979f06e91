//! Message requests and blocks over the API (issue 15): listed, accepted, declined,
//! blocked and unblocked, with stable error codes for what does not exist.

use std::time::Duration;

use communitas_testkit::{Network, eventually};
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::serve;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_blocks_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (alice, bob) = (net.users[0].handle(), net.users[1].handle());
    let shutdown = CancellationToken::new();
    let api = serve(bob.clone(), shutdown.clone()).await;
    let alice_address = alice.address().to_string();

    // Nothing yet, and what does not exist says so.
    assert_eq!(api.get("/v1/requests").await, (StatusCode::OK, json!([])));
    let (status, body) = api.post(&format!("/v1/requests/{alice_address}/accept"), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_such_request"))
    );
    let (status, body) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/blocks/{alice_address}"),
            None,
            Some(super::TOKEN),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_blocked"))
    );
    let (status, body) = api.post("/v1/blocks", json!({ "address": "not an address" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_address"))
    );
    let (status, body) = api.post("/v1/blocks", json!({ "address": bob.address() })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("own_address"))
    );
    assert_eq!(api.get("/v1/blocks").await.1, json!([]), "state unchanged");

    // Alice writes: a request with its first message and safety number.
    eventually(Duration::from_secs(20), || alice.add_contact(bob.address(), None)).await;
    alice.send_text(bob.address(), "hello stranger").await.unwrap();
    let list = eventually(Duration::from_secs(20), || async {
        let (_, list) = api.get("/v1/requests").await;
        if list.as_array().is_some_and(|l| !l.is_empty()) { Ok(list) } else { Err(list) }
    })
    .await;
    let request = &list[0];
    assert_eq!(request["address"], alice_address.as_str());
    assert_eq!(request["first_text"], "hello stranger");
    assert_eq!(request["count"], 1);
    assert!(request["first_at"].as_u64().unwrap() > 0);
    assert_eq!(request["safety_number"].as_str().unwrap().len(), 71);
    assert_eq!(api.get("/v1/conversations").await.1, json!([]));

    // Decline and block: gone, and listed as blocked.
    let (status, body) =
        api.post(&format!("/v1/requests/{alice_address}/decline?block=true"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["blocked"], true);
    assert_eq!(api.get("/v1/requests").await.1, json!([]));
    let (_, blocks) = api.get("/v1/blocks").await;
    assert_eq!(blocks[0]["address"], alice_address.as_str());
    let (status, body) =
        api.post("/v1/messages", json!({ "to": alice_address, "text": "x" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("blocked")));
    let (status, body) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/blocks/{alice_address}"),
            None,
            Some(super::TOKEN),
        )
        .await;
    assert_eq!((status, body["unblocked"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(api.get("/v1/blocks").await.1, json!([]));

    // Unblocked, she writes again; accepting makes her a contact.
    alice.send_text(bob.address(), "second try").await.unwrap();
    eventually(Duration::from_secs(20), || async {
        let (_, list) = api.get("/v1/requests").await;
        if list.as_array().is_some_and(|l| !l.is_empty()) { Ok(()) } else { Err(list) }
    })
    .await;
    let (status, contact) =
        api.post(&format!("/v1/requests/{alice_address}/accept"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert_eq!(contact["address"], alice_address.as_str());
    // The name she publishes is saved with her (issue 23 item 3).
    assert_eq!(contact["name"], "alice");
    let (_, contacts) = api.get("/v1/contacts").await;
    assert_eq!(contacts[0]["address"], alice_address.as_str());
    let (_, history) = api.get(&format!("/v1/conversations/{alice_address}/messages")).await;
    assert_eq!(history[0]["text"], "second try");
    let (_, metrics) = api.call(reqwest::Method::GET, "/metrics", None, Some(super::TOKEN)).await;
    assert!(metrics.as_str().unwrap().contains("communitas_requests_opened_total 2"), "{metrics}");

    shutdown.cancel();
    net.shutdown().await;
}
