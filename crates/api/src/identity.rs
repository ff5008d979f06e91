//! The identity behind the API (decision 0013): a node may start locked, and the web
//! UI or the CLI then creates the identity (first run) or unlocks it; a running node
//! can be locked again. While no identity is unlocked, every route that needs the node
//! answers 423 `locked`. The passphrase can be changed whether the node is locked or
//! not (decision 0014): only the keystore file changes.
//!
//! The API does not know where keys live: whoever runs it hands it a [`Keyring`].
//! Create, unlock, lock and changing the passphrase take turns (one Argon2 at a time,
//! bounded memory), and a wrong passphrase is answered after
//! [`WRONG_PASSPHRASE_DELAY`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State as AxumState;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use communitas_crypto::keystore::MIN_PASSPHRASE_CHARS;
use communitas_node::Handle;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::State;
use crate::error::ApiError;
use crate::routes::body;

/// How long a wrong passphrase waits before it is answered: guesses cost time on top
/// of Argon2's own cost.
pub const WRONG_PASSPHRASE_DELAY: Duration = Duration::from_secs(1);
/// The longest passphrase accepted, in bytes.
const MAX_PASSPHRASE: usize = 1024;

/// What the API asks of whoever owns the identity's keys.
pub trait Keyring: Send + Sync + 'static {
    /// Whether there is an identity to unlock.
    fn exists(&self) -> bool;
    /// Creates the identity (first run) and starts its node.
    fn create(
        &self,
        name: Option<String>,
        passphrase: Zeroizing<String>,
    ) -> BoxFuture<'_, Result<Handle, KeyringError>>;
    /// Unlocks the identity and starts its node.
    fn unlock(&self, passphrase: Zeroizing<String>) -> BoxFuture<'_, Result<Handle, KeyringError>>;
    /// Stops the running node and drops its keys.
    fn lock(&self) -> BoxFuture<'_, ()>;
    /// Re-encrypts the keystore under `new`, replacing the file atomically; `old`
    /// must open it ([`KeyringError::WrongPassphrase`] otherwise, and nothing
    /// changes). The node, running or not, is left as it is.
    fn change_passphrase(
        &self,
        old: Zeroizing<String>,
        new: Zeroizing<String>,
    ) -> BoxFuture<'_, Result<(), KeyringError>>;
}

/// Why an identity could not be created or unlocked, or its passphrase changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The passphrase does not open the keystore.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A name or passphrase that cannot be used; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// First run asked for, but there is an identity already.
    #[error("this node already has an identity; unlock it instead")]
    Exists,
    /// Unlock, lock or a passphrase change asked for, but there is no identity yet.
    #[error("this node has no identity yet; create one first")]
    Missing,
    /// Anything else (disk, database, network start-up); logged in full.
    #[error("{0}")]
    Failed(String),
}

/// The unlocked node, and a token that ends its event streams when it is locked.
#[derive(Clone)]
struct Open {
    node: Handle,
    locked: CancellationToken,
}

/// Whether there is a node to serve, and how to get one.
pub(crate) struct Gate {
    keyring: Option<Arc<dyn Keyring>>,
    open: RwLock<Option<Open>>,
    turn: tokio::sync::Mutex<()>,
}

impl Gate {
    pub(crate) fn new(keyring: Option<Arc<dyn Keyring>>, node: Option<Handle>) -> Self {
        let open = node.map(|node| Open { node, locked: CancellationToken::new() });
        Self { keyring, open: RwLock::new(open), turn: tokio::sync::Mutex::new(()) }
    }

    fn current(&self) -> Option<Open> {
        self.open.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set(&self, open: Option<Open>) -> Option<Open> {
        let mut slot = self.open.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut slot, open)
    }

    /// The node, or 423 while there is none.
    pub(crate) fn node(&self) -> Result<Handle, ApiError> {
        self.current().map(|o| o.node).ok_or(ApiError::Locked)
    }

    /// The node and a token cancelled when it is locked (for event streams).
    pub(crate) fn node_until_locked(&self) -> Result<(Handle, CancellationToken), ApiError> {
        self.current().map(|o| (o.node, o.locked)).ok_or(ApiError::Locked)
    }

    fn view(&self) -> serde_json::Value {
        match self.current() {
            Some(Open { node, .. }) => {
                json!({ "state": "unlocked", "address": node.address(), "name": node.name(),
                        "passphrase_min_chars": MIN_PASSPHRASE_CHARS })
            }
            None => {
                let exists = self.keyring.as_ref().is_some_and(|k| k.exists());
                let state = if exists { "locked" } else { "new" };
                json!({ "state": state, "address": null, "name": null,
                        "passphrase_min_chars": MIN_PASSPHRASE_CHARS })
            }
        }
    }

    fn keyring(&self) -> Result<&Arc<dyn Keyring>, ApiError> {
        self.keyring.as_ref().ok_or(ApiError::Identity(KeyringError::Failed(
            "this node was started without a keystore it can lock or unlock".into(),
        )))
    }

    /// Stops the node, if any (the API is shutting down or the user locked it).
    pub(crate) async fn lock(&self) {
        let _turn = self.turn.lock().await;
        if let Some(open) = self.set(None) {
            open.locked.cancel();
            if let Some(keyring) = &self.keyring {
                keyring.lock().await;
            }
        }
    }
}

/// `GET /v1/identity`.
pub(crate) async fn get(AxumState(s): AxumState<State>) -> Response {
    Json(s.gate.view()).into_response()
}

#[derive(Deserialize)]
pub(crate) struct Create {
    passphrase: Zeroizing<String>,
    name: Option<String>,
}

/// `POST /v1/identity`: the first run.
pub(crate) async fn create(
    AxumState(s): AxumState<State>,
    request: Result<Json<Create>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    let passphrase = passphrase(request.passphrase, "passphrase")?;
    communitas_crypto::keystore::check_new_passphrase(&passphrase)
        .map_err(ApiError::PassphraseTooShort)?;
    in_turn(s, move |s, keyring| async move {
        if s.gate.current().is_some() || keyring.exists() {
            return Err(ApiError::Identity(KeyringError::Exists));
        }
        let node = keyring.create(request.name, passphrase).await.map_err(ApiError::Identity)?;
        tracing::info!(address = %node.address(), "identity created from the API");
        s.gate.set(Some(Open { node, locked: CancellationToken::new() }));
        Ok((StatusCode::CREATED, Json(s.gate.view())).into_response())
    })
    .await
}

/// Runs `work` holding the gate's turn, in a task of its own: a client that leaves
/// cannot cut a start, stop or rewrite of the keystore in half. Refused once the API
/// is stopping, so nothing starts a node that nobody would stop.
async fn in_turn<F, Fut>(s: State, work: F) -> Result<Response, ApiError>
where
    F: FnOnce(State, Arc<dyn Keyring>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Response, ApiError>> + Send,
{
    let keyring = s.gate.keyring()?.clone();
    let task = tokio::spawn(async move {
        let gate = s.gate.clone();
        let _turn = gate.turn.lock().await;
        if s.shutdown.is_cancelled() {
            return Err(ApiError::Identity(KeyringError::Failed("the node is stopping".into())));
        }
        work(s, keyring).await
    });
    task.await
        .unwrap_or_else(|_| Err(ApiError::Identity(KeyringError::Failed("interrupted".into()))))
}

#[derive(Deserialize)]
pub(crate) struct Unlock {
    passphrase: Zeroizing<String>,
}

/// `POST /v1/unlock`.
pub(crate) async fn unlock(
    AxumState(s): AxumState<State>,
    request: Result<Json<Unlock>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    let passphrase = passphrase(request.passphrase, "passphrase")?;
    in_turn(s, move |s, keyring| async move {
        if s.gate.current().is_some() {
            return Err(ApiError::AlreadyUnlocked);
        }
        match keyring.unlock(passphrase).await {
            Ok(node) => {
                tracing::info!(address = %node.address(), "unlocked from the API");
                s.gate.set(Some(Open { node, locked: CancellationToken::new() }));
                Ok(Json(s.gate.view()).into_response())
            }
            Err(KeyringError::WrongPassphrase) => {
                tracing::warn!("unlock refused: wrong passphrase");
                Err(wrong_passphrase().await)
            }
            Err(e) => Err(ApiError::Identity(e)),
        }
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct ChangePassphrase {
    old: Zeroizing<String>,
    new: Zeroizing<String>,
}

/// `POST /v1/passphrase` (decision 0014): locked or unlocked, the node stays as it is.
pub(crate) async fn change_passphrase(
    AxumState(s): AxumState<State>,
    request: Result<Json<ChangePassphrase>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    let old = passphrase(request.old, "current passphrase")?;
    let new = passphrase(request.new, "new passphrase")?;
    communitas_crypto::keystore::check_new_passphrase(&new)
        .map_err(ApiError::PassphraseTooShort)?;
    in_turn(s, move |_, keyring| async move {
        if !keyring.exists() {
            return Err(ApiError::Identity(KeyringError::Missing));
        }
        match keyring.change_passphrase(old, new).await {
            Ok(()) => {
                tracing::info!("passphrase changed from the API");
                Ok(Json(json!({ "changed": true })).into_response())
            }
            Err(KeyringError::WrongPassphrase) => {
                tracing::warn!("passphrase change refused: wrong passphrase");
                Err(wrong_passphrase().await)
            }
            Err(e) => Err(ApiError::Identity(e)),
        }
    })
    .await
}

/// The answer to a wrong passphrase, after [`WRONG_PASSPHRASE_DELAY`]. Called while
/// holding the turn: guesses are one at a time, one a second at most.
async fn wrong_passphrase() -> ApiError {
    tokio::time::sleep(WRONG_PASSPHRASE_DELAY).await;
    ApiError::Identity(KeyringError::WrongPassphrase)
}

/// `POST /v1/lock`.
pub(crate) async fn lock(AxumState(s): AxumState<State>) -> Result<Response, ApiError> {
    let keyring = s.gate.keyring()?;
    if s.gate.current().is_none() && !keyring.exists() {
        return Err(ApiError::Identity(KeyringError::Missing));
    }
    // In a task of its own, so a client leaving cannot abandon a node half stopped.
    let gate = s.gate.clone();
    let _ = tokio::spawn(async move { gate.lock().await }).await;
    tracing::info!("locked from the API");
    Ok(Json(s.gate.view()).into_response())
}

/// A passphrase from a request body: not empty, at most [`MAX_PASSPHRASE`] bytes.
/// `what` names it in the error ("passphrase", "new passphrase").
fn passphrase(text: Zeroizing<String>, what: &str) -> Result<Zeroizing<String>, ApiError> {
    if text.is_empty() {
        return Err(ApiError::InvalidRequest(format!("the {what} is empty")));
    }
    if text.len() > MAX_PASSPHRASE {
        return Err(ApiError::InvalidRequest(format!("the {what} is over {MAX_PASSPHRASE} bytes")));
    }
    Ok(text)
}
