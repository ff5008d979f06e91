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
    if peer.ip().is_loopback() && !host_is_own(&request, state.port) {
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
        .is_some_and(|s| state.sessions.is_open(s, page_token(&request).unwrap_or("")));
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
    AxumState(state): AxumState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if peer.ip().is_loopback() && !host_is_own(&request, state.port) {
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

/// The page token a web session's request carries (see `web`): the
/// `X-Communitas-Page` header, or the `page` query parameter where the browser sends
/// no header of ours (the event stream's WebSocket, file links).
fn page_token(request: &Request) -> Option<&str> {
    if let Some(header) = request.headers().get(PAGE_HEADER) {
        return header.to_str().ok();
    }
    request.uri().query()?.split('&').find_map(|pair| pair.strip_prefix("page="))
}

/// The header that carries the page token.
pub(crate) const PAGE_HEADER: &str = "x-communitas-page";

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
/// `Host`; a loopback listener only answers to its own address: `127.0.0.1`,
/// `localhost` or `[::1]`, with the port it listens on (none only for port 80). Any
/// other name (`127.attacker.example`, `127.0.0.2`, another port) is refused.
fn host_is_own(request: &Request, port: u16) -> bool {
    let Some(host) = request.headers().get(HOST) else {
        // HTTP/1.0 clients may omit it; they are not browsers.
        return true;
    };
    host.to_str().is_ok_and(|host| is_own_host(host, port))
}

/// [`host_is_own`] on the header's text.
pub(crate) fn is_own_host(host: &str, port: u16) -> bool {
    let (name, given) = match host.rsplit_once(':') {
        // `[::1]` alone splits inside the brackets: no port.
        Some((name, given)) if !given.ends_with(']') => (name, Some(given)),
        _ => (host, None),
    };
    let port_ok = match given {
        Some(given) => {
            given.bytes().all(|b| b.is_ascii_digit()) && given.parse::<u16>() == Ok(port)
        }
        None => port == 80,
    };
    let name_ok = name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]";
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::is_own_host;

    #[test]
    fn only_the_apis_own_address_is_its_host() {
        for host in ["127.0.0.1:8080", "localhost:8080", "LocalHost:8080", "[::1]:8080"] {
            assert!(is_own_host(host, 8080), "{host}");
        }
        for host in [
            "127.attacker.example:8080",
            "127.0.0.1.attacker.example:8080",
            "127.0.0.2:8080",
            "127.0.0.1:8081",
            "localhost:80",
            "127.0.0.1",
            "[::1]",
            "127.0.0.1:+8080",
            "127.0.0.1:08080x",
            "evil.example:8080",
            "localhost.:8080",
            "[::1]:8080:8080",
            "",
        ] {
            assert!(!is_own_host(host, 8080), "{host}");
        }
        assert!(is_own_host("127.0.0.1", 80));
        assert!(is_own_host("[::1]", 80));
        assert!(!is_own_host("127.0.0.1:65536", 0));
    }
}
