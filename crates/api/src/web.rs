//! The web UI: static files from the built app, and the one-time login link that
//! turns into a session cookie (decision 0011).
//!
//! The static files hold no data and are served to anyone who can reach the
//! listener; everything under `/v1` needs the token or a session. A login code is good
//! once; the session it opens lasts [`SESSION_LIFETIME`] at most, ends after
//! [`SESSION_IDLE`] without a request, when the node stops, or at `POST /v1/logout`. The cookie is HttpOnly
//! (scripts never see it) and SameSite=Strict, and its name carries the port, because
//! browsers share cookies across the ports of one host (alice's and bob's nodes in the
//! demo would overwrite each other's).
//!
//! A cookie alone is not a session: each session also has a page token, handed to the
//! page once, in the fragment of the login redirect (`/#page=…`, which never goes over
//! the network), and kept by the page in its origin's storage — our port's only. Every
//! cookie request must carry it (the `X-Communitas-Page` header, or `?page=` where a
//! browser sends no headers of ours: the event stream, file links). Browsers send a
//! host's cookies to all its ports, so a program listening on another local port can
//! collect the cookie; it cannot collect the page token (issue 16 item 4).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use communitas_crypto::random;
use serde::Deserialize;

use crate::State;

/// Sessions and codes kept at most; a full set refuses new logins (bounded memory).
const MAX_SESSIONS: usize = 1_000;
/// How long a session lasts after its login, whatever happens in between.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// A session with no request for this long is over (a stolen or forgotten cookie
/// stops working soon). A page with its event stream open counts as in use: the
/// stream renews the session while it is open, and ends when the session does.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// How long a login link works if nobody opens it (the one `run` prints may end up
/// in a log; `communitas login-link` makes a fresh one).
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(3600);
/// Content Security Policy for the app: only our own scripts, styles and API.
const CSP: &str = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Login codes and open sessions. Short synchronous sections only, never held across
/// an `.await`: a lock is simpler here than an actor for two small sets.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<SessionSets>,
}

#[derive(Default)]
struct SessionSets {
    /// Unused login codes and when each was made.
    codes: HashMap<String, Instant>,
    /// Open sessions: when each was opened and last used.
    sessions: HashMap<String, Session>,
}

#[derive(Debug, Clone)]
struct Session {
    opened: Instant,
    used: Instant,
    /// The page token: the page proves with it that it is ours (see the module docs).
    page: String,
}

impl Session {
    fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.opened) < SESSION_LIFETIME
            && now.saturating_duration_since(self.used) < SESSION_IDLE
    }
}

impl Sessions {
    fn with<T>(&self, f: impl FnOnce(&mut SessionSets) -> T) -> T {
        let mut sets = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut sets)
    }

    /// A new one-time login code.
    pub(crate) fn new_code(&self) -> Option<String> {
        let code = hex(random::bytes::<32>().ok()?);
        let now = Instant::now();
        self.with(|s| {
            s.codes.retain(|_, made| now.duration_since(*made) < CODE_LIFETIME);
            (s.codes.len() < MAX_SESSIONS).then(|| s.codes.insert(code.clone(), now))
        })?;
        Some(code)
    }

    /// Opens a session for a fresh login code: its cookie value and its page token.
    fn redeem(&self, code: &str) -> Option<(String, String)> {
        self.redeem_at(code, Instant::now())
    }

    fn redeem_at(&self, code: &str, now: Instant) -> Option<(String, String)> {
        let session = hex(random::bytes::<32>().ok()?);
        let page = hex(random::bytes::<32>().ok()?);
        let opened = Session { opened: now, used: now, page: page.clone() };
        self.with(|s| {
            s.sessions.retain(|_, session| session.live(now));
            let fresh = s
                .codes
                .remove(code)
                .is_some_and(|made| now.saturating_duration_since(made) < CODE_LIFETIME);
            (fresh && s.sessions.len() < MAX_SESSIONS)
                .then(|| s.sessions.insert(session.clone(), opened))
        })?;
        Some((session, page))
    }

    /// Whether `session` is open and `page` is its page token; a request with both
    /// counts as use.
    pub(crate) fn is_open(&self, session: &str, page: &str) -> bool {
        self.is_open_at(session, Some(page), Instant::now())
    }

    /// Whether `session` is still open, for a stream its page opened (checked then):
    /// counts as use.
    pub(crate) fn still_open(&self, session: &str) -> bool {
        self.is_open_at(session, None, Instant::now())
    }

    fn is_open_at(&self, session: &str, page: Option<&str>, now: Instant) -> bool {
        use subtle::ConstantTimeEq;
        self.with(|s| match s.sessions.get_mut(session) {
            Some(open) if open.live(now) => {
                let ours =
                    page.is_none_or(|page| open.page.as_bytes().ct_eq(page.as_bytes()).into());
                if ours {
                    open.used = open.used.max(now);
                }
                ours
            }
            Some(_) => {
                s.sessions.remove(session);
                false
            }
            None => false,
        })
    }

    /// Ends a session; true if it was open.
    fn close(&self, session: &str) -> bool {
        self.with(|s| s.sessions.remove(session).is_some())
    }
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cookie's name for the node listening on `port`.
pub(crate) fn cookie_name(port: u16) -> String {
    format!("communitas_{port}")
}

#[derive(Deserialize)]
pub(crate) struct Login {
    code: Option<String>,
}

pub(crate) async fn login(AxumState(s): AxumState<State>, Query(login): Query<Login>) -> Response {
    let Some((session, page)) = login.code.as_deref().and_then(|c| s.sessions.redeem(c)) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            used_link_page(&s.login_command),
        )
            .into_response();
    };
    let cookie = format!("{}={session}; HttpOnly; SameSite=Strict; Path=/", cookie_name(s.port));
    let mut response = Redirect::to(&format!("/#page={page}")).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `communitas --home H login-link` for `home` (quoted for a POSIX shell when it
/// needs it).
pub(crate) fn login_command(home: &Path) -> String {
    let text = home.display().to_string();
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~+:@%,".contains(c));
    let quoted = if plain { text } else { format!("'{}'", text.replace('\'', "'\\''")) };
    format!("communitas --home {quoted} login-link")
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page a wrong, used or expired login link opens (issue 23 item 8): styled like
/// the app's signed-out screen (self-contained: the app's stylesheet has a hashed
/// name), with the command that makes a new link.
fn used_link_page(command: &str) -> String {
    let command = escape_html(command);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Login link used · Communitas</title>
<style>
  :root {{ color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --text: #1c1e21; --muted: #5b616b; --accent: #2457c5; }}
  @media (prefers-color-scheme: dark) {{ :root {{ --bg: #16181c; --card: #22252b; --text: #e8eaed; --muted: #a6acb5; --accent: #8ab4ff; }} }}
  body {{ margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--text);
         font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
  main {{ background: var(--card); max-width: 34rem; margin: 1rem; padding: 2rem; border-radius: 12px;
         box-shadow: 0 2px 12px rgb(0 0 0 / 0.12); }}
  h1 {{ margin-top: 0; font-size: 1.4rem; }}
  p {{ color: var(--muted); }}
  code {{ display: block; padding: 0.75rem 1rem; border-radius: 8px; background: var(--bg); color: var(--text);
         font: 0.95rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; user-select: all; }}
</style>
</head>
<body>
<main>
<h1>This login link cannot be used</h1>
<p>A login link works once, for an hour. This one was used already, is older than that, or is not right.</p>
<p>Make a new one on the machine your node runs on:</p>
<code>{command}</code>
<p>Then open the link it prints in this browser.</p>
</main>
</body>
</html>
"#
    )
}

/// `POST /v1/logout`: ends the caller's session and clears its cookie. With the
/// bearer token (no session), nothing to end.
pub(crate) async fn logout(
    AxumState(s): AxumState<State>,
    headers: axum::http::HeaderMap,
) -> Response {
    let name = cookie_name(s.port);
    if let Some(session) = crate::auth::session_cookie(&headers, &name) {
        s.sessions.close(session);
    }
    let clear = format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /v1/login-links`: a fresh one-time login link (`communitas login-link`).
/// Only with the bearer token: a browser session must not be able to make more
/// sessions (its lifetime and logout would then mean nothing).
pub(crate) async fn login_link(
    AxumState(s): AxumState<State>,
    axum::Extension(via): axum::Extension<crate::auth::Via>,
) -> Response {
    if via != crate::auth::Via::Token {
        return crate::error::ApiError::TokenRequired.into_response();
    }
    match s.login_url() {
        Some(url) => {
            (StatusCode::CREATED, axum::Json(serde_json::json!({ "url": url }))).into_response()
        }
        None => crate::error::ApiError::RateLimited { retry_after: 60 }.into_response(),
    }
}

/// Where the built app is: `$COMMUNITAS_WEB_DIR`, else `web/dist` of the source tree
/// this binary was built from.
pub(crate) fn dist_dir() -> PathBuf {
    std::env::var_os("COMMUNITAS_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist"))
}

/// `GET /` and `GET /assets/*`: files of the built app, never outside its folder.
pub(crate) async fn file(AxumState(s): AxumState<State>, uri: axum::http::Uri) -> Response {
    let wanted = match uri.path() {
        "/" | "/index.html" => "index.html",
        other => other.trim_start_matches('/'),
    };
    let relative = Path::new(wanted);
    let safe = relative.components().all(|c| matches!(c, Component::Normal(_)));
    if !safe
        || !(wanted == "index.html" || wanted.starts_with("assets/") || wanted == "favicon.svg")
    {
        return crate::error::ApiError::NotFound("no such route".into()).into_response();
    }
    let path = s.web_dir.join(relative);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let kind = content_type(&path);
            let cache = if wanted.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, cache),
                    (header::CONTENT_SECURITY_POLICY, CSP),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) if wanted == "index.html" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The web UI is not built: run `npm ci && npm run build` in web/ (the README's demo command does it).",
        )
            .into_response(),
        Err(_) => crate::error::ApiError::NotFound("no such file".into()).into_response(),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Shared pieces for [`State`].
pub(crate) fn sessions() -> Arc<Sessions> {
    Arc::new(Sessions::default())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::{SESSION_IDLE, SESSION_LIFETIME, Sessions, login_command, used_link_page};

    /// Opens a session at `at`: its cookie value and page token.
    fn open(sessions: &Sessions, at: Instant) -> (String, String) {
        let code = sessions.new_code().unwrap();
        sessions.redeem_at(&code, at).unwrap()
    }

    #[test]
    fn a_session_ends_when_idle_and_at_its_lifetime_however_busy() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);

        // Idle past the limit: over, and stays over.
        let (idle, page) = open(&sessions, t0);
        let page = Some(page.as_str());
        assert!(sessions.is_open_at(&idle, page, t0 + SESSION_IDLE - minute));
        assert!(!sessions.is_open_at(&idle, page, t0 + SESSION_IDLE * 2));
        assert!(!sessions.is_open_at(&idle, page, t0 + SESSION_IDLE * 2 + minute));

        // Used within the limit, again and again: open, until the lifetime's end.
        let (busy, page) = open(&sessions, t0);
        let page = Some(page.as_str());
        let mut at = t0;
        while at + SESSION_IDLE / 2 < t0 + SESSION_LIFETIME {
            at += SESSION_IDLE / 2;
            assert!(sessions.is_open_at(&busy, page, at));
        }
        assert!(!sessions.is_open_at(&busy, page, t0 + SESSION_LIFETIME));

        // A code is good once.
        let code = sessions.new_code().unwrap();
        assert!(sessions.redeem_at(&code, t0).is_some());
        assert!(sessions.redeem_at(&code, t0).is_none());
        assert!(!sessions.is_open_at("not-a-session", None, t0));
    }

    #[test]
    fn a_cookie_without_its_page_token_is_no_session() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (alice, alice_page) = open(&sessions, t0);
        let (_bob, bob_page) = open(&sessions, t0);
        let later = t0 + SESSION_IDLE - Duration::from_secs(1);
        // The cookie alone, or with another session's token, is refused and is no use:
        // the session still goes idle.
        for wrong in ["", "00", bob_page.as_str()] {
            assert!(!sessions.is_open_at(&alice, Some(wrong), t0 + Duration::from_secs(60)));
        }
        assert!(sessions.is_open_at(&alice, Some(&alice_page), later));
        assert!(!sessions.is_open_at(&alice, Some(&alice_page), later + SESSION_IDLE));
    }

    #[test]
    fn the_used_link_page_names_the_home_escaped() {
        assert_eq!(
            login_command(Path::new("/home/ada/.communitas")),
            "communitas --home /home/ada/.communitas login-link"
        );
        assert_eq!(
            login_command(Path::new("/tmp/it's <here>")),
            r#"communitas --home '/tmp/it'\''s <here>' login-link"#
        );
        let page = used_link_page(&login_command(Path::new("/tmp/a <b>")));
        assert!(
            page.contains("<code>communitas --home &#39;/tmp/a &lt;b&gt;&#39; login-link</code>")
        );
        assert!(page.contains("<h1>This login link cannot be used</h1>"));
    }
}
