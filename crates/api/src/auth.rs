//! Authentication (bearer token, or the web UI's session cookie), the Host check
//! and the same-origin check, in front of every route.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State as AxumState};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::State;
use crate::error::ApiError;

pub(crate) async fn require_token(
    AxumState(state): AxumState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if peer.ip().is_loopback() && !host_is_loopback(&request) {
        return ApiError::BadHost.into_response();
    }
    if !same_origin(&request) {
        return ApiError::CrossOrigin.into_response();
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let token_ok: bool = presented.as_bytes().ct_eq(state.token.as_bytes()).into();
    let cookie_ok = session_cookie(request.headers(), &crate::web::cookie_name(state.port))
        .is_some_and(|s| state.sessions.is_open(s));
    if !token_ok && !cookie_ok {
        return ApiError::Unauthorized.into_response();
    }
    let mut request = request;
    request.extensions_mut().insert(if token_ok { Via::Token } else { Via::Session });
    next.run(request).await
}

/// How a request was let in: the bearer token (the CLI, who can read the home) or a
/// web session. Some things only the token may do (minting login links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Token,
    Session,
}

/// The Host check alone, for the routes anyone may load (the app's files, `/login`).
pub(crate) async fn check_host(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if peer.ip().is_loopback() && !host_is_loopback(&request) {
        return ApiError::BadHost.into_response();
    }
    next.run(request).await
}

/// A browser names the page's origin in `Origin` on cross-origin requests, on every
/// POST and on WebSocket upgrades. It must be this very host; other clients (the
/// CLI) send none. SameSite=Strict does not separate ports of one host, this does.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.headers().get(ORIGIN) else { return true };
    let host = request.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    origin.to_str().is_ok_and(|o| o == format!("http://{host}"))
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn session_cookie<'r>(
    headers: &'r axum::http::HeaderMap,
    name: &str,
) -> Option<&'r str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A browser tricked into calling us through a rebound DNS name sends that name as
/// `Host`; a loopback listener only answers to loopback names.
fn host_is_loopback(request: &Request) -> bool {
    let Some(host) = request.headers().get(HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/1.0 clients may omit it; they are not browsers.
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.starts_with("127.")
}
