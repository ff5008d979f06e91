//! `send` and `history`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Exit;
use crate::client::Api;

#[derive(Deserialize)]
struct Queued {
    id: String,
    status: String,
}

/// Statuses after which waiting longer changes nothing.
const FINAL: [&str; 3] = ["delivered", "read", "failed"];

pub(crate) async fn send(
    home: &Path,
    to: &str,
    text: &str,
    wait: Option<u64>,
    json: bool,
) -> Result<()> {
    let api = Api::for_home(home)?;
    let mut queued: Queued = api.post("/v1/messages", &json!({ "to": to, "text": text })).await?;
    if let Some(secs) = wait {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let path = format!("/v1/messages/{}", queued.id);
        while !FINAL.contains(&queued.status.as_str()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            queued = api.get(&path).await?;
        }
    }
    if json {
        println!("{}", json!({ "id": queued.id, "status": queued.status }));
    } else {
        println!("{}", queued.id);
    }
    match (wait, queued.status.as_str()) {
        (None, _) | (Some(_), "delivered" | "read") => Ok(()),
        (Some(_), "failed") => Err(Exit::with_code(
            4,
            format!(
                "message {} failed: it will not be retried (see `communitas outbox --dead`)",
                queued.id
            ),
        )),
        (Some(secs), status) => Err(Exit::with_code(
            3,
            format!(
                "not delivered within {secs} s, but queued (status: {status}): it stays in the \
                 outbox and will be delivered when {to} is reachable; do not send it again"
            ),
        )),
    }
}

pub(crate) async fn history(home: &Path, peer: &str, limit: u32, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let peer = peer.parse::<communitas_types::Address>().map_err(|e| Exit::usage(e.to_string()))?;
    let entries: Vec<Value> =
        api.get(&format!("/v1/conversations/{peer}/messages?limit={limit}")).await?;
    if json {
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(());
    }
    for e in &entries {
        let when = e["timestamp"].as_u64().map(format_time).unwrap_or_default();
        if let Some(line) = e["system"].as_str() {
            println!("{when} · {}", system_line(line));
            continue;
        }
        let arrow = if e["direction"] == "out" { "→" } else { "←" };
        let status = if e["direction"] == "out" {
            format!("  [{}]", e["status"].as_str().unwrap_or(""))
        } else {
            String::new()
        };
        let file = &e["attachment"];
        let file = if file.is_object() {
            format!(
                "  [file {} {} bytes, {}, id {}]",
                file["name"].as_str().unwrap_or(""),
                file["size"],
                file["status"].as_str().unwrap_or(""),
                file["file_id"].as_str().unwrap_or("")
            )
        } else {
            String::new()
        };
        println!("{when} {arrow} {}{file}{status}", e["text"].as_str().unwrap_or(""));
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) from unix milliseconds.
fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A system line (history's `system` code) in words.
fn system_line(code: &str) -> String {
    match code {
        "session_reset" => "the contact's device had lost the session: a new one was started and \
                            what it had not received was sent again"
            .to_owned(),
        other => format!("({other})"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_time(1_780_000_000_000), "2026-05-28 20:26:40");
        assert_eq!(super::format_time(951_782_400_000), "2000-02-29 00:00:00");
    }
}
