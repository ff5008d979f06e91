//! `requests [list|accept|decline]`, `block`, `unblock`, `blocked` (issue 15): message
//! requests from strangers, and the block list.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::Exit;
use crate::client::Api;

fn parse(address: &str) -> Result<communitas_types::Address> {
    address.parse().map_err(|e: communitas_types::AddressError| Exit::usage(e.to_string()))
}

/// Lists the requests: as JSON, an array of `{address, first_at, last_at, count,
/// dropped, expires_at, first_text, first_is_file, safety_number, name}` (`name`: what
/// the stranger calls itself, unverified, or null).
pub(crate) async fn list(home: &Path, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let requests: Vec<Value> = api.get("/v1/requests").await?;
    if json {
        println!("{}", serde_json::to_string(&requests)?);
        return Ok(());
    }
    if requests.is_empty() {
        println!("no message requests");
    }
    for r in &requests {
        let first = r["first_text"].as_str().unwrap_or("");
        let file = if r["first_is_file"] == true { " [file]" } else { "" };
        println!(
            "{}  {} message(s)  \"{}\"{file}",
            r["address"].as_str().unwrap_or(""),
            r["count"],
            first.chars().take(60).collect::<String>()
        );
        if let Some(name) = r["name"].as_str() {
            // Its own claim: shown as such, never as who it is.
            println!("  calls itself \"{name}\" (unverified)");
        }
        println!("  safety number {}", r["safety_number"].as_str().unwrap_or(""));
    }
    Ok(())
}

pub(crate) async fn accept(home: &Path, address: &str, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let contact: Value = api.post(&format!("/v1/requests/{address}/accept"), &json!({})).await?;
    if json {
        println!("{contact}");
    } else {
        println!("accepted {address}: now a contact");
    }
    Ok(())
}

pub(crate) async fn decline(home: &Path, address: &str, block: bool, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let path = format!("/v1/requests/{address}/decline?block={block}");
    let answer: Value = api.post(&path, &json!({})).await?;
    if json {
        println!("{answer}");
    } else if block {
        println!("declined and blocked {address}");
    } else {
        println!("declined {address}");
    }
    Ok(())
}

pub(crate) async fn block(home: &Path, address: &str, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let answer: Value = api.post("/v1/blocks", &json!({ "address": address })).await?;
    if json {
        println!("{answer}");
    } else {
        println!("blocked {address}");
    }
    Ok(())
}

pub(crate) async fn unblock(home: &Path, address: &str, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let answer: Value = api.delete(&format!("/v1/blocks/{address}")).await?;
    if json {
        println!("{answer}");
    } else {
        println!("unblocked {address}");
    }
    Ok(())
}

/// Lists blocked addresses: as JSON, an array of `{address, blocked_at}`.
pub(crate) async fn blocked(home: &Path, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let list: Vec<Value> = api.get("/v1/blocks").await?;
    if json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    for b in &list {
        println!("{}", b["address"].as_str().unwrap_or(""));
    }
    Ok(())
}
