//! Contacts renamed and removed, and our own name changed, over the API (issue 23
//! item 3), each told to every client as an event.

use std::time::Duration;

use communitas_testkit::{Network, eventually};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use super::{TOKEN, serve};

/// The next event of `kind` on the stream, within 10 s.
async fn next_event<S>(events: &mut S, kind: &str) -> Value
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    let found = async {
        while let Some(frame) = events.next().await {
            let event: Value = serde_json::from_str(frame.unwrap().to_text().unwrap()).unwrap();
            if event["type"] == kind {
                return event;
            }
        }
        panic!("the stream ended");
    };
    tokio::time::timeout(Duration::from_secs(10), found).await.expect(kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_renamed_and_removed_and_our_name_changes() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (alice, bob) = (net.users[0].handle(), net.users[1].handle());
    let shutdown = CancellationToken::new();
    let api = serve(alice.clone(), shutdown.clone()).await;
    let bob_address = bob.address().to_string();
    let mut request =
        format!("{}/v1/events", api.base.replacen("http", "ws", 1)).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut events, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    // Added without a name: the one bob publishes is kept.
    let contact = eventually(Duration::from_secs(20), || async {
        let (status, contact) = api.post("/v1/contacts", json!({ "address": bob_address })).await;
        if status == StatusCode::CREATED { Ok(contact) } else { Err(contact) }
    })
    .await;
    assert_eq!(contact["name"], "bob");
    let event = next_event(&mut events, "contact").await;
    assert_eq!(
        (event["address"].as_str(), event["change"].as_str()),
        (Some(&*bob_address), Some("added"))
    );
    alice.send_text(bob.address(), "before the removal").await.unwrap();

    // Renamed; a bad name is refused with a typed error and changes nothing.
    let path = format!("/v1/contacts/{bob_address}");
    let (status, renamed) = api.put(&path, json!({ "name": "Robert" })).await;
    assert_eq!((status, renamed["name"].as_str()), (StatusCode::OK, Some("Robert")));
    let event = next_event(&mut events, "contact").await;
    assert_eq!(event["change"], "renamed");
    for bad in ["", "   ", "two\nlines", &"x".repeat(129)] {
        let (status, body) = api.put(&path, json!({ "name": bad })).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_name")),
            "{bad:?}"
        );
    }
    let (status, body) =
        api.post("/v1/contacts", json!({ "address": bob_address, "name": "a\tb" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_name"))
    );
    assert_eq!(api.get("/v1/contacts").await.1[0]["name"], "Robert");
    let (status, cleared) = api.put(&path, json!({ "name": null })).await;
    assert_eq!((status, &cleared["name"]), (StatusCode::OK, &Value::Null));
    assert_eq!(next_event(&mut events, "contact").await["change"], "renamed");

    // Removed: the contact goes, the conversation stays.
    let (status, body) = api.delete(&path).await;
    assert_eq!((status, body["removed"].as_bool()), (StatusCode::OK, Some(true)));
    let event = next_event(&mut events, "contact").await;
    assert_eq!(event["change"], "removed");
    assert_eq!(api.get("/v1/contacts").await.1, json!([]));
    let (_, history) = api.get(&format!("/v1/conversations/{bob_address}/messages")).await;
    assert_eq!(history[0]["text"], "before the removal");
    let (status, body) = api.delete(&path).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_a_contact"))
    );
    let (status, body) = api.put(&path, json!({ "name": "x" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_a_contact"))
    );

    // Our own name: changed, told, and published (bob adding alice now finds it).
    assert_eq!(api.get("/v1/profile").await.1["name"], "alice");
    let (status, body) = api.put("/v1/profile", json!({ "name": "two\nlines" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_name"))
    );
    let (status, body) = api.put("/v1/profile", json!({ "name": "Alice L." })).await;
    assert_eq!((status, body["name"].as_str()), (StatusCode::OK, Some("Alice L.")));
    assert_eq!(next_event(&mut events, "profile").await["name"], "Alice L.");
    assert_eq!(api.get("/v1/profile").await.1["name"], "Alice L.");
    assert_eq!(alice.name().as_deref(), Some("Alice L."));
    let seen = eventually(Duration::from_secs(20), || async {
        let contact = bob.add_contact(alice.address(), None).await.map_err(|e| e.to_string())?;
        if contact.name.as_deref() == Some("Alice L.") {
            Ok(contact)
        } else {
            // Not the new record yet: forget it and look again.
            bob.remove_contact(alice.address()).await.map_err(|e| e.to_string())?;
            Err(format!("{:?}", contact.name))
        }
    })
    .await;
    assert_eq!(seen.name.as_deref(), Some("Alice L."));

    shutdown.cancel();
    net.shutdown().await;
}
