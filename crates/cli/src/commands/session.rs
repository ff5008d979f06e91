//! `communitas unlock`, `lock` and `login-link`: the running node's identity and the
//! web UI's sign-in (decision 0013).

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;
use serde_json::json;

use crate::client::Api;
use crate::passphrase::Source;

#[derive(Deserialize)]
struct Identity {
    state: String,
    address: Option<String>,
}

/// Unlocks a node started with `run --locked`.
pub(crate) async fn unlock(home: &Path, passphrase: Source) -> Result<()> {
    let api = Api::for_home(home)?;
    let passphrase = passphrase.read(false)?;
    let identity: Identity =
        api.post("/v1/unlock", &json!({ "passphrase": passphrase.as_str() })).await?;
    println!("unlocked   {}", identity.address.unwrap_or_default());
    Ok(())
}

/// Stops the node and drops its keys; the API stays up for `unlock`.
pub(crate) async fn lock(home: &Path) -> Result<()> {
    let identity: Identity = Api::for_home(home)?.post("/v1/lock", &json!({})).await?;
    println!("{}", identity.state);
    Ok(())
}

/// Prints a fresh one-time link that signs a browser in to the web UI.
pub(crate) async fn login_link(home: &Path) -> Result<()> {
    #[derive(Deserialize)]
    struct Link {
        url: String,
    }
    let link: Link = Api::for_home(home)?.post("/v1/login-links", &json!({})).await?;
    println!("{}", link.url);
    Ok(())
}
