//! The node's local API (ARCHITECTURE §10): JSON over HTTP under `/v1`, live events
//! on the `/v1/events` WebSocket, Prometheus text at `/metrics`.
//!
//! Security: it listens on 127.0.0.1 by default; every route needs the bearer token
//! from `<home>/api-token` (compared in constant time); requests whose `Host` is not
//! the loopback address they came to are refused (DNS rebinding); no CORS headers are
//! ever sent, so browsers keep other origins out. Errors are JSON
//! `{"error":{"code","message"}}` with stable codes ([`error`]).

#![deny(missing_docs)]

mod auth;
mod consent;
pub mod error;
mod identity;
mod presence;
mod routes;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use communitas_node::Handle;
pub use identity::{Keyring, KeyringError, WRONG_PASSPHRASE_DELAY};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every handler can reach.
#[derive(Clone)]
pub struct State {
    pub(crate) gate: Arc<identity::Gate>,
    pub(crate) token: Arc<str>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) sends: Arc<governor::DefaultDirectRateLimiter>,
    pub(crate) sessions: Arc<web::Sessions>,
    pub(crate) port: u16,
    pub(crate) web_dir: Arc<std::path::Path>,
    /// The command that makes a new login link, as the page for a used one shows it.
    pub(crate) login_command: Arc<str>,
}

/// Messages per second `POST /v1/messages` accepts by default (burst: twice that).
pub const SENDS_PER_SECOND: u32 = 5_000;

impl State {
    /// The API of a running `node`, guarded by `token`; long-lived connections (event
    /// streams) end when `shutdown` is cancelled. Without a keyring
    /// ([`State::with_keyring`]) it cannot be locked.
    pub fn new(
        node: Handle,
        token: String,
        shutdown: CancellationToken,
        local: SocketAddr,
    ) -> Self {
        Self::with_gate(identity::Gate::new(None, Some(node)), token, shutdown, local)
    }

    /// The API of the identity `keyring` owns: `node` if it runs already, else the
    /// API starts locked and the node starts when the identity is created or unlocked.
    pub fn with_keyring(
        keyring: Arc<dyn Keyring>,
        node: Option<Handle>,
        token: String,
        shutdown: CancellationToken,
        local: SocketAddr,
    ) -> Self {
        Self::with_gate(identity::Gate::new(Some(keyring), node), token, shutdown, local)
    }

    fn with_gate(
        gate: identity::Gate,
        token: String,
        shutdown: CancellationToken,
        local: SocketAddr,
    ) -> Self {
        Self {
            gate: Arc::new(gate),
            token: token.into(),
            shutdown,
            sends: send_limiter(SENDS_PER_SECOND),
            sessions: web::sessions(),
            port: local.port(),
            web_dir: web::dist_dir().into(),
            login_command: "communitas login-link".into(),
        }
    }

    /// The node's home folder, named in the command the page for a used login link
    /// shows (`communitas --home H login-link`).
    pub fn with_home(mut self, home: &std::path::Path) -> Self {
        self.login_command = web::login_command(home).into();
        self
    }

    /// Accepts at most `per_second` sends (burst twice that); more are answered 429
    /// with `Retry-After`.
    pub fn with_send_rate(mut self, per_second: u32) -> Self {
        self.sends = send_limiter(per_second);
        self
    }

    /// The node, or [`ApiError::Locked`](error::ApiError::Locked) while there is none.
    pub(crate) fn node(&self) -> Result<Handle, error::ApiError> {
        self.gate.node()
    }

    /// Stops the node if it runs (on shutdown): its keys are dropped.
    pub async fn lock(&self) {
        self.gate.lock().await;
    }

    /// A new one-time link that signs a browser in to the web UI (a session cookie).
    pub fn login_url(&self) -> Option<String> {
        let code = self.sessions.new_code()?;
        Some(format!("http://127.0.0.1:{}/login?code={code}", self.port))
    }
}

fn send_limiter(per_second: u32) -> Arc<governor::DefaultDirectRateLimiter> {
    let rate = std::num::NonZeroU32::new(per_second).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
    Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(rate).allow_burst(burst)))
}

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// All routes: the web app and login open, everything else behind authentication.
pub fn router(state: State) -> Router {
    let protected = routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    let open = Router::new()
        .route("/", axum::routing::get(web::file))
        .route("/index.html", axum::routing::get(web::file))
        .route("/favicon.svg", axum::routing::get(web::file))
        .route("/assets/{*path}", axum::routing::get(web::file))
        .route("/login", axum::routing::get(web::login))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::check_host))
        .with_state(state);
    open.merge(protected)
}

/// Serves the API on `listener` until `shutdown` is cancelled, then finishes the
/// requests in progress.
pub async fn serve(listener: TcpListener, state: State) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
