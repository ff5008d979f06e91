//! `presence set|get|list`, `read`, `typing`, `settings` (issue 6).

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::Exit;
use crate::client::Api;

fn parse(address: &str) -> Result<communitas_types::Address> {
    address.parse().map_err(|e: communitas_types::AddressError| Exit::usage(e.to_string()))
}

/// Validated here so that a typo is a usage error (exit 2) before any node is asked.
fn status(text: &str) -> Result<communitas_node::presence::Status> {
    text.parse().map_err(|e: communitas_node::presence::UnknownStatus| Exit::usage(e.to_string()))
}

fn last_seen(v: &Value) -> String {
    match v["last_seen"].as_u64() {
        Some(ms) => {
            let ago = communitas_types::Timestamp::now().as_millis().saturating_sub(ms) / 1000;
            format!("last seen {ago} s ago")
        }
        None => "never seen".into(),
    }
}

pub(crate) async fn set(home: &Path, text: &str) -> Result<()> {
    let new = status(text)?;
    let api = Api::for_home(home)?;
    let answer: Value = api.put("/v1/presence", &json!({ "status": new })).await?;
    println!("{}", answer["status"].as_str().unwrap_or(new.as_str()));
    Ok(())
}

pub(crate) async fn get(home: &Path, address: &str, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let presence: Value = api.get(&format!("/v1/presence/{address}")).await?;
    if json {
        println!("{presence}");
    } else {
        println!("{}  {}", presence["status"].as_str().unwrap_or("?"), last_seen(&presence));
    }
    Ok(())
}

pub(crate) async fn list(home: &Path, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let all: Value = api.get("/v1/presence").await?;
    if json {
        println!("{all}");
        return Ok(());
    }
    println!("you  {}", all["status"].as_str().unwrap_or("?"));
    for c in all["contacts"].as_array().into_iter().flatten() {
        let address = c["address"].as_str().unwrap_or("");
        println!("{address}  {}  {}", c["status"].as_str().unwrap_or("?"), last_seen(c));
    }
    Ok(())
}

pub(crate) async fn read(home: &Path, address: &str, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let answer: Value = api.post(&format!("/v1/conversations/{address}/read"), &json!({})).await?;
    if json {
        println!("{answer}");
    } else {
        println!("{} message(s) marked read", answer["read"].as_u64().unwrap_or(0));
    }
    Ok(())
}

pub(crate) async fn typing(home: &Path, address: &str, stop: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let path = format!("/v1/conversations/{address}/typing");
    let _: Value = api.post(&path, &json!({ "typing": !stop })).await?;
    Ok(())
}

pub(crate) async fn settings(home: &Path, read_receipts: Option<bool>, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let settings: Value = match read_receipts {
        Some(on) => api.put("/v1/settings", &json!({ "read_receipts": on })).await?,
        None => api.get("/v1/settings").await?,
    };
    if json {
        println!("{settings}");
    } else {
        let on = if settings["read_receipts"] == true { "on" } else { "off" };
        println!("read receipts  {on}");
    }
    Ok(())
}
