//! API errors: an HTTP status and a stable, machine-readable code.
//!
//! | code | status | meaning |
//! | --- | --- | --- |
//! | `unauthorized` | 401 | missing or wrong bearer token |
//! | `bad_host` | 400 | `Host` header is not this API's own address (`127.0.0.1`, `localhost` or `[::1]` with its port) |
//! | `cross_origin` | 403 | a browser request from another origin |
//! | `invalid_address` | 400 | not a four-word address (the message names the word) |
//! | `invalid_id` | 400 | not a message id |
//! | `invalid_request` | 400 | malformed JSON or query |
//! | `empty_message` | 400 | the text is empty |
//! | `message_too_long` | 413 | the text is over 64 KiB |
//! | `own_address` | 400 | sending to or adding oneself |
//! | `invalid_name` | 400 | a display name that is blank, over 128 bytes, or has control characters |
//! | `unknown_address` | 404 | no identity record found for the address |
//! | `not_a_contact` | 404 | the address is not a contact |
//! | `not_found` | 404 | no such message or route |
//! | `ambiguous_address` | 409 | several identities claim the address |
//! | `key_changed` | 409 | the contact's keys changed |
//! | `network_error` | 502 | the lookup or network failed |
//! | `storage_error` | 500 | the database failed |
//! | `shutting_down` | 503 | the node is stopping |
//! | `rate_limited` | 429 | too many sends; `Retry-After` says when to try again |
//! | `locked` | 423 | no identity is unlocked (decision 0013) |
//! | `token_required` | 403 | only the bearer token may do this (new login links, sending a file by path) |
//! | `passphrase_too_short` | 400 | a new passphrase under `keystore::MIN_PASSPHRASE_CHARS` (8) characters |
//! | `wrong_passphrase` | 403 | the passphrase (the current one, for a change) does not open the keystore |
//! | `identity_exists` | 409 | first run asked for, but there is an identity |
//! | `no_identity` | 409 | unlock, lock or a passphrase change asked for, but there is no identity yet |
//! | `already_unlocked` | 409 | unlock asked for, but the node runs |
//! | `identity_error` | 500 | creating, unlocking or re-keying failed (disk, database, network) |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use communitas_node::SendError;
use serde_json::json;

/// An error answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// No or wrong token.
    Unauthorized,
    /// Non-loopback Host.
    BadHost,
    /// A browser request from another origin.
    CrossOrigin,
    /// Bad address text.
    InvalidAddress(String),
    /// Bad message id.
    InvalidId,
    /// Bad request body or query.
    InvalidRequest(String),
    /// No such thing.
    NotFound(String),
    /// Sending or contact failure.
    Send(SendError),
    /// Store failure.
    Store(communitas_store::Error),
    /// Network failure.
    Net(communitas_net::Error),
    /// A file operation failed.
    File(communitas_node::FileError),
    /// No identity is unlocked.
    Locked,
    /// Allowed with the bearer token only, not a web session.
    TokenRequired,
    /// Unlock asked for while the node runs.
    AlreadyUnlocked,
    /// Creating, unlocking or locking the identity failed.
    Identity(crate::KeyringError),
    /// A new passphrase too short to use (the message is the one rule's, issue 23).
    PassphraseTooShort(communitas_crypto::keystore::PassphraseTooShort),
    /// Over the send rate; retry after this many seconds.
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl ApiError {
    /// The stable code and the HTTP status.
    pub fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadHost => (StatusCode::BAD_REQUEST, "bad_host"),
            ApiError::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin"),
            ApiError::InvalidAddress(_) => (StatusCode::BAD_REQUEST, "invalid_address"),
            ApiError::InvalidId => (StatusCode::BAD_REQUEST, "invalid_id"),
            ApiError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Send(e) => match e {
                SendError::Empty => (StatusCode::BAD_REQUEST, "empty_message"),
                SendError::TooLong { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "message_too_long"),
                SendError::OwnAddress(_) => (StatusCode::BAD_REQUEST, "own_address"),
                SendError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
                SendError::UnknownAddress(_) => (StatusCode::NOT_FOUND, "unknown_address"),
                SendError::NotJoined { .. } => (StatusCode::SERVICE_UNAVAILABLE, "not_joined"),
                SendError::NoSuchRequest(_) => (StatusCode::NOT_FOUND, "no_such_request"),
                SendError::Blocked(_) => (StatusCode::CONFLICT, "blocked"),
                SendError::NotBlocked(_) => (StatusCode::NOT_FOUND, "not_blocked"),
                SendError::Store(communitas_store::Error::TooManyBlocks { .. }) => {
                    (StatusCode::CONFLICT, "too_many_blocks")
                }
                SendError::NotAContact(_) => (StatusCode::NOT_FOUND, "not_a_contact"),
                SendError::Ambiguous { .. } => (StatusCode::CONFLICT, "ambiguous_address"),
                SendError::Network(_) => (StatusCode::BAD_GATEWAY, "network_error"),
                SendError::Store(communitas_store::Error::KeyChanged { .. }) => {
                    (StatusCode::CONFLICT, "key_changed")
                }
                SendError::Store(communitas_store::Error::NoSuchMessage(_)) => {
                    (StatusCode::NOT_FOUND, "not_found")
                }
                SendError::Store(_) | SendError::Seal(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "storage_error")
                }
                SendError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
                SendError::File(e) => file_code(e),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            },
            ApiError::File(e) => file_code(e),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
            ApiError::Net(_) => (StatusCode::BAD_GATEWAY, "network_error"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Locked => (StatusCode::LOCKED, "locked"),
            ApiError::TokenRequired => (StatusCode::FORBIDDEN, "token_required"),
            ApiError::AlreadyUnlocked => (StatusCode::CONFLICT, "already_unlocked"),
            ApiError::PassphraseTooShort(_) => (StatusCode::BAD_REQUEST, "passphrase_too_short"),
            ApiError::Identity(e) => {
                use crate::KeyringError as K;
                match e {
                    K::WrongPassphrase => (StatusCode::FORBIDDEN, "wrong_passphrase"),
                    K::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                    K::Exists => (StatusCode::CONFLICT, "identity_exists"),
                    K::Missing => (StatusCode::CONFLICT, "no_identity"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "identity_error"),
                }
            }
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Unauthorized => {
                "sign in first: a bearer token (CLI) or the session of a login link (web UI)".into()
            }
            ApiError::BadHost => "requests must be addressed to this API's own address (127.0.0.1, localhost or [::1] with its port)".into(),
            ApiError::CrossOrigin => "requests from another origin are refused".into(),
            ApiError::InvalidAddress(m) | ApiError::InvalidRequest(m) | ApiError::NotFound(m) => {
                m.clone()
            }
            ApiError::InvalidId => "not a message id (32 hex characters)".into(),
            ApiError::Send(e) => e.to_string(),
            ApiError::File(e) => e.to_string(),
            // Store and network errors are logged in full, shown in short.
            ApiError::Store(_) => "the database failed; see the node's log".into(),
            ApiError::Net(_) => "the network failed; see the node's log".into(),
            ApiError::RateLimited { retry_after } => {
                format!("too many messages at once; try again in {retry_after} s")
            }
            ApiError::Locked => "the node is locked: unlock it in the web UI or with \
                                 `communitas unlock` (on a new node, create the identity \
                                 in the web UI)"
                .into(),
            ApiError::AlreadyUnlocked => "the node is unlocked already".into(),
            ApiError::TokenRequired => {
                "only the API token may do this (a web session may not): for a login link, run \
                 `communitas login-link`".into()
            }
            ApiError::Identity(e) => e.to_string(),
            ApiError::PassphraseTooShort(e) => e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        if status.is_server_error() {
            tracing::warn!(?self, "API request failed");
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        let body = Json(json!({ "error": { "code": code, "message": self.message() } }));
        let mut response = (status, body).into_response();
        if let Some(value) =
            retry_after.and_then(|s| axum::http::HeaderValue::from_str(&s.to_string()).ok())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

fn file_code(e: &communitas_node::FileError) -> (StatusCode, &'static str) {
    use communitas_node::FileError;
    match e {
        FileError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
        FileError::Unreadable { .. } | FileError::NotAFile(_) => {
            (StatusCode::BAD_REQUEST, "file_unreadable")
        }
        FileError::NoSuchFile(_) => (StatusCode::NOT_FOUND, "not_found"),
        FileError::NotReady(_) => (StatusCode::CONFLICT, "file_not_ready"),
        FileError::FromRequest(_) => (StatusCode::CONFLICT, "request_not_accepted"),
        FileError::Unwritable { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "file_unwritable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
    }
}

impl From<communitas_node::FileError> for ApiError {
    fn from(e: communitas_node::FileError) -> Self {
        ApiError::File(e)
    }
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        ApiError::Send(e)
    }
}

impl From<communitas_store::Error> for ApiError {
    fn from(e: communitas_store::Error) -> Self {
        ApiError::Store(e)
    }
}

impl From<communitas_net::Error> for ApiError {
    fn from(e: communitas_net::Error) -> Self {
        ApiError::Net(e)
    }
}
