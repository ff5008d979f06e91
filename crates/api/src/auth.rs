//! Bearer-token authentication and the Host check, in front of every route.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State as AxumState};
use axum::http::header::{AUTHORIZATION, HOST};
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
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let valid: bool = presented.as_bytes().ct_eq(state.token.as_bytes()).into();
    if !valid {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
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
