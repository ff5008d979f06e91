//! Golden vectors of the protocol's wire bodies (`test-vectors/`). They pin the
//! formats: a change that alters them breaks every node already running. To
//! regenerate after a deliberate format change (which also needs a new version
//! byte), run with `COMMUNITAS_WRITE_VECTORS=1`.

use std::path::PathBuf;
use std::time::Duration;

use communitas_proto::presence::{Status, wire};
use serde_json::{Value, json};

pub(crate) fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors").join(name)
}

/// Presence and typing bodies, with their layout, and bodies every decoder refuses.
fn presence_vectors() -> Value {
    let presence: Vec<Value> = [
        (Status::Online, 30_000u32),
        (Status::Away, 500),
        (Status::Busy, 60_000),
        (Status::Offline, 600_000),
    ]
    .into_iter()
    .map(|(status, ms)| {
        let body = wire::encode_presence(status, Duration::from_millis(u64::from(ms)));
        json!({ "status": status, "interval_ms": ms, "body": hex::encode(body) })
    })
    .collect();
    let typing: Vec<Value> = [true, false]
        .into_iter()
        .map(|on| json!({ "typing": on, "body": hex::encode(wire::encode_typing(on)) }))
        .collect();
    json!({
        "note": "Kind::Presence and Kind::Typing bodies, version 1 (inside sealed envelopes)",
        "presence_layout": [
            { "field": "version", "offset": 0, "len": 1 },
            { "field": "status (1 online, 2 away, 3 busy, 4 offline)", "offset": 1, "len": 1 },
            { "field": "heartbeat interval ms (u32 BE, 500..=600000)", "offset": 2, "len": 4 },
        ],
        "typing_layout": [
            { "field": "version", "offset": 0, "len": 1 },
            { "field": "state (0 stopped, 1 typing)", "offset": 1, "len": 1 },
        ],
        "presence": presence,
        "typing": typing,
        "presence_invalid": [
            { "body": "", "why": "empty" },
            { "body": "0101000075", "why": "truncated" },
            { "body": "02010000ea60", "why": "version 2" },
            { "body": "01000000ea60", "why": "status 0" },
            { "body": "01050000ea60", "why": "status 5" },
            { "body": "0101000001f3", "why": "interval 499 ms" },
            { "body": "0101000927c1", "why": "interval 600001 ms" },
            { "body": "010100007530ff", "why": "trailing byte" },
        ],
        "typing_invalid": [
            { "body": "01", "why": "truncated" },
            { "body": "0201", "why": "version 2" },
            { "body": "0102", "why": "state 2" },
            { "body": "010100", "why": "trailing byte" },
        ],
    })
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn presence_vectors_encode_and_decode() {
    let file = path("presence-v1.json");
    let ours = presence_vectors();
    if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
        let pretty = serde_json::to_string_pretty(&ours).unwrap();
        std::fs::write(&file, pretty + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored, ours, "{} differs from the encoder", file.display());

    for v in stored["presence"].as_array().unwrap() {
        let body = wire::decode_presence(&hex::decode(text(&v["body"])).unwrap()).unwrap();
        let status: Status = text(&v["status"]).parse().unwrap();
        let ms = v["interval_ms"].as_u64().unwrap();
        assert_eq!((body.status, body.interval), (status, Duration::from_millis(ms)));
    }
    for v in stored["typing"].as_array().unwrap() {
        let typing = wire::decode_typing(&hex::decode(text(&v["body"])).unwrap()).unwrap();
        assert_eq!(typing, v["typing"].as_bool().unwrap());
    }
    for v in stored["presence_invalid"].as_array().unwrap() {
        let bytes = hex::decode(text(&v["body"])).unwrap();
        assert!(wire::decode_presence(&bytes).is_err(), "accepted: {v}");
    }
    for v in stored["typing_invalid"].as_array().unwrap() {
        let bytes = hex::decode(text(&v["body"])).unwrap();
        assert!(wire::decode_typing(&bytes).is_err(), "accepted: {v}");
    }
}
