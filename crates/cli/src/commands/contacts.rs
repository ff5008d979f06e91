//! `contacts add|list|rename|remove|verify`, `name`, `status`, `outbox`.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::Exit;
use crate::client::Api;

fn parse(address: &str) -> Result<communitas_types::Address> {
    address.parse().map_err(|e: communitas_types::AddressError| Exit::usage(e.to_string()))
}

pub(crate) async fn add(
    home: &Path,
    address: &str,
    name: Option<String>,
    json: bool,
) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let contact: Value =
        api.post("/v1/contacts", &json!({ "address": address, "name": name })).await?;
    if json {
        println!("{contact}");
    } else {
        println!("added {}{}", address, name_suffix(&contact));
    }
    Ok(())
}

fn name_suffix(contact: &Value) -> String {
    contact["name"].as_str().map(|n| format!(" ({n})")).unwrap_or_default()
}

pub(crate) async fn list(home: &Path, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let contacts: Vec<Value> = api.get("/v1/contacts").await?;
    if json {
        println!("{}", serde_json::to_string(&contacts)?);
        return Ok(());
    }
    for c in &contacts {
        let verified = if c["verified"] == true { "verified" } else { "not verified" };
        println!("{}{}  {verified}", c["address"].as_str().unwrap_or(""), name_suffix(c));
    }
    Ok(())
}

pub(crate) async fn rename(
    home: &Path,
    address: &str,
    name: Option<String>,
    json: bool,
) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let contact: Value =
        api.put(&format!("/v1/contacts/{address}"), &json!({ "name": name })).await?;
    if json {
        println!("{contact}");
    } else if contact["name"].is_string() {
        println!("renamed {address}{}", name_suffix(&contact));
    } else {
        println!("{address} has no name now");
    }
    Ok(())
}

pub(crate) async fn remove(home: &Path, address: &str, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let answer: Value = api.delete(&format!("/v1/contacts/{address}")).await?;
    if json {
        println!("{answer}");
    } else {
        println!("removed {address}; the conversation is kept");
    }
    Ok(())
}

/// `name`: shows our display name, or sets it (`clear`: none).
pub(crate) async fn name(home: &Path, name: Option<String>, clear: bool, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let profile: Value = if name.is_some() || clear {
        api.put("/v1/profile", &json!({ "name": name })).await?
    } else {
        api.get("/v1/profile").await?
    };
    if json {
        println!("{profile}");
    } else {
        match profile["name"].as_str() {
            Some(name) => println!("{name}"),
            None => println!("(no name)"),
        }
    }
    Ok(())
}

pub(crate) async fn verify(home: &Path, address: &str, confirm: bool, json: bool) -> Result<()> {
    let address = parse(address)?;
    let api = Api::for_home(home)?;
    let answer: Value = if confirm {
        api.post(&format!("/v1/contacts/{address}/verify"), &json!({})).await?
    } else {
        api.get(&format!("/v1/contacts/{address}/safety-number")).await?
    };
    if json {
        println!("{answer}");
    } else {
        println!("{}", answer["safety_number"].as_str().unwrap_or(""));
        if confirm {
            println!("{address} is marked verified");
        } else {
            println!("compare with {address}; if they match, run again with --confirm");
        }
    }
    Ok(())
}

pub(crate) async fn status(home: &Path, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let status: Value = api.get("/v1/status").await?;
    if json {
        println!("{status}");
        return Ok(());
    }
    println!("address    {}", status["address"].as_str().unwrap_or(""));
    println!("peer id    {}", status["peer_id"].as_str().unwrap_or(""));
    // Full addresses, `/p2p/<peer id>` included: what another node's --bootstrap takes.
    let peer_id = status["peer_id"].as_str().unwrap_or("");
    for addr in status["listen_addrs"].as_array().into_iter().flatten() {
        let addr = addr.as_str().unwrap_or("");
        if addr.contains("/p2p/") || peer_id.is_empty() {
            println!("listening  {addr}");
        } else {
            println!("listening  {addr}/p2p/{peer_id}");
        }
    }
    println!("peers      {}", status["connected_peers"]);
    for p in status["peers"].as_array().into_iter().flatten() {
        let (id, kind) =
            (p["peer_id"].as_str().unwrap_or(""), p["connection"].as_str().unwrap_or(""));
        println!("  {id}  {kind}");
    }
    println!("outbox     {}", status["outbox"]);
    println!("version    {}", status["version"].as_str().unwrap_or(""));
    Ok(())
}

pub(crate) async fn outbox(home: &Path, dead: bool, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let rows: Vec<Value> = api.get(if dead { "/v1/outbox/dead" } else { "/v1/outbox" }).await?;
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    // Names where the recipient is a contact; best effort (the list is what matters).
    let contacts: Vec<Value> = api.get("/v1/contacts").await.unwrap_or_default();
    let name_of = |address: &str| {
        contacts
            .iter()
            .find(|c| c["address"] == address)
            .and_then(|c| c["name"].as_str())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    };
    for r in &rows {
        let why =
            r.get("reason").or_else(|| r.get("last_error")).and_then(Value::as_str).unwrap_or("");
        let to = r["to"].as_str().unwrap_or("");
        // A receipt has no text of the user's.
        let what = match r["preview"].as_str() {
            Some(text) => format!("\"{text}\""),
            None => "(receipt)".to_owned(),
        };
        let why = if why.is_empty() { String::new() } else { format!("  {why}") };
        println!(
            "{}  to {to}{}  {what}  attempts {}{why}",
            r["id"].as_str().unwrap_or(""),
            name_of(to),
            r["attempts"]
        );
    }
    Ok(())
}

pub(crate) async fn retry(home: &Path, id: &str) -> Result<()> {
    let api = Api::for_home(home)?;
    let answer: Value = api.post(&format!("/v1/outbox/{id}/retry"), &json!({})).await?;
    println!("{} queued again", answer["id"].as_str().unwrap_or(id));
    Ok(())
}
