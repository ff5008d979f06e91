//! The API client the CLI commands use to talk to the home's running node.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::daemon::{API_FILE, ApiInfo, TOKEN_FILE};

pub(crate) struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    home: PathBuf,
}

/// The error every command gives when no node answers for the home.
fn no_node(home: &Path) -> anyhow::Error {
    anyhow!("no running node for home {} — start `communitas run`", home.display())
}

impl Api {
    /// The API of the node running for `home`.
    pub(crate) fn for_home(home: &Path) -> Result<Self> {
        let info = std::fs::read_to_string(home.join(API_FILE)).map_err(|_| no_node(home))?;
        let info: ApiInfo = serde_json::from_str(&info).map_err(|_| no_node(home))?;
        let token = std::fs::read_to_string(home.join(TOKEN_FILE)).map_err(|_| no_node(home))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot start the HTTP client")?;
        Ok(Self { base: info.url, token: token.trim().to_owned(), http, home: home.to_owned() })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(self.http.get(self.url(path))).await
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        self.call(self.http.post(self.url(path)).json(body)).await
    }

    /// A GET whose body the caller streams (file content); errors as for `get`.
    pub(crate) async fn get_raw(&self, path: &str) -> Result<reqwest::Response> {
        let response =
            self.http.get(self.url(path)).bearer_auth(&self.token).send().await.map_err(|e| {
                if e.is_connect() {
                    no_node(&self.home)
                } else {
                    anyhow!("the node did not answer: {e}")
                }
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("the node answered {status}"));
        Err(anyhow!(message))
    }

    pub(crate) async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        self.call(self.http.put(self.url(path)).json(body)).await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(self.http.delete(self.url(path))).await
    }

    async fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            if e.is_connect() {
                no_node(&self.home)
            } else {
                anyhow!("the node did not answer: {e}")
            }
        })?;
        let status = response.status();
        let body = response.bytes().await.context("the node's answer was cut off")?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("the node answered {status}"));
            return Err(anyhow!(message));
        }
        serde_json::from_slice(&body).context("the node's answer is not the expected JSON")
    }
}
