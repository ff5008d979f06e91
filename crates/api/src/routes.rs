//! The handlers. Each parses its input at the edge, calls the node, and maps errors
//! to [`ApiError`] codes.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use communitas_store::Contact;
use communitas_types::{Address, MessageId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::{State, consent, identity, presence, web};

type Result<T> = std::result::Result<T, ApiError>;

pub(crate) fn router(state: State) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/identity", get(identity::get).post(identity::create))
        .route("/v1/unlock", post(identity::unlock))
        .route("/v1/lock", post(identity::lock))
        .route("/v1/passphrase", post(identity::change_passphrase))
        .route("/v1/logout", post(web::logout))
        .route("/v1/login-links", post(web::login_link))
        .route("/v1/conversations", get(conversations))
        .route("/v1/messages", post(send))
        .route("/v1/messages/{id}", get(message))
        .route("/v1/conversations/{address}/messages", get(history))
        .route("/v1/contacts", get(contacts).post(add_contact))
        .route("/v1/contacts/{address}", axum::routing::put(rename_contact).delete(remove_contact))
        .route("/v1/profile", get(profile).put(set_profile))
        .route("/v1/contacts/{address}/safety-number", get(safety_number))
        .route("/v1/contacts/{address}/verify", post(verify))
        .route("/v1/requests", get(consent::list))
        .route("/v1/requests/{address}/accept", post(consent::accept))
        .route("/v1/requests/{address}/decline", post(consent::decline))
        .route("/v1/blocks", get(consent::blocks).post(consent::block))
        .route("/v1/blocks/{address}", delete(consent::unblock))
        .route("/v1/files", post(send_file))
        .route("/v1/files/upload", post(upload_file))
        .route("/v1/files/{id}", get(file))
        .route("/v1/files/{id}/fetch", post(fetch_file))
        .route("/v1/files/{id}/content", get(file_content))
        .route("/v1/outbox", get(outbox))
        .route("/v1/outbox/dead", get(dead_letters))
        .route("/v1/outbox/{id}/retry", post(retry))
        .route("/v1/events", get(events))
        .route("/v1/presence", get(presence::all).put(presence::set))
        .route("/v1/presence/{address}", get(presence::get))
        .route("/v1/conversations/{address}/typing", post(presence::typing))
        .route("/v1/conversations/{address}/read", post(presence::read))
        .route("/v1/settings", get(presence::settings).put(presence::set_settings))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

pub(crate) fn address(text: &str) -> Result<Address> {
    text.parse()
        .map_err(|e: communitas_types::AddressError| ApiError::InvalidAddress(e.to_string()))
}

fn message_id(text: &str) -> Result<MessageId> {
    text.parse().map_err(|_| ApiError::InvalidId)
}

pub(crate) fn body<T>(json: std::result::Result<Json<T>, JsonRejection>) -> Result<T> {
    json.map(|Json(v)| v).map_err(|e| ApiError::InvalidRequest(e.body_text()))
}

async fn status(AxumState(s): AxumState<State>) -> Result<Response> {
    Ok(Json(s.node()?.status().await?).into_response())
}

#[derive(Deserialize)]
struct SendRequest {
    to: String,
    text: String,
}

async fn send(
    AxumState(s): AxumState<State>,
    request: std::result::Result<Json<SendRequest>, JsonRejection>,
) -> Result<Response> {
    if let Err(not_until) = s.sends.check() {
        let wait = not_until
            .wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        return Err(ApiError::RateLimited { retry_after: wait.as_secs().max(1) });
    }
    let request = body(request)?;
    let to = address(&request.to)?;
    // With where it sorts (decision 0061): a client places it without a page read.
    let q = s.node()?.queue_text(to, &request.text).await?;
    let answer = json!({ "id": q.id, "status": q.status.as_str(), "position": q.position });
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// What a queued file's answer says.
fn file_queued(q: communitas_node::Queued, file_id: communitas_types::FileId) -> Response {
    let status = q.status.as_str();
    let answer =
        json!({ "id": q.id, "file_id": file_id, "status": status, "position": q.position });
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}

async fn message(AxumState(s): AxumState<State>, Path(id): Path<String>) -> Result<Response> {
    let id = message_id(&id)?;
    let status = s
        .node()?
        .message_status(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no outgoing message {id}")))?;
    Ok(Json(json!({ "id": id, "status": status.as_str() })).into_response())
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u32>,
    before: Option<String>,
}

async fn history(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
    page: std::result::Result<Query<Page>, QueryRejection>,
) -> Result<Response> {
    let peer = address(&peer)?;
    let Query(page) = page.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let before = match page.before {
        Some(id) => {
            let id = message_id(&id)?;
            let row = s.node()?.stored_message(id).await?;
            Some(row.ok_or_else(|| ApiError::NotFound(format!("no message {id}")))?)
        }
        None => None,
    };
    Ok(Json(s.node()?.history(peer, limit, before).await?).into_response())
}

/// Every conversation with its unread count, newest first.
/// With the start of the newest message and its direction (issue 23 item 8).
async fn conversations(AxumState(s): AxumState<State>) -> Result<Response> {
    Ok(Json(s.node()?.conversation_list().await?).into_response())
}

#[derive(Serialize)]
pub(crate) struct ContactView {
    address: Address,
    name: Option<String>,
    fingerprint: String,
    verified: bool,
    added_at: communitas_types::Timestamp,
}

impl From<Contact> for ContactView {
    fn from(c: Contact) -> Self {
        Self {
            address: c.address,
            name: c.name,
            fingerprint: c.identity.fingerprint().to_string(),
            verified: c.verified,
            added_at: c.added_at,
        }
    }
}

async fn contacts(AxumState(s): AxumState<State>) -> Result<Response> {
    let list: Vec<ContactView> = s.node()?.contacts().await?.into_iter().map(Into::into).collect();
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
struct AddContact {
    address: String,
    name: Option<String>,
}

async fn add_contact(
    AxumState(s): AxumState<State>,
    request: std::result::Result<Json<AddContact>, JsonRejection>,
) -> Result<Response> {
    let request = body(request)?;
    let address = address(&request.address)?;
    let contact = s.node()?.add_contact(address, request.name).await?;
    Ok((StatusCode::CREATED, Json(ContactView::from(contact))).into_response())
}

/// A name to set: `null` (or absent) clears it.
#[derive(Deserialize)]
struct NameBody {
    #[serde(default)]
    name: Option<String>,
}

/// `PUT /v1/contacts/{address}`: renames a contact.
async fn rename_contact(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
    request: std::result::Result<Json<NameBody>, JsonRejection>,
) -> Result<Response> {
    let peer = address(&peer)?;
    let request = body(request)?;
    let contact = s.node()?.rename_contact(peer, request.name).await?;
    Ok(Json(ContactView::from(contact)).into_response())
}

/// `DELETE /v1/contacts/{address}`: removes a contact; its conversation stays
/// (decision 0060).
async fn remove_contact(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
) -> Result<Response> {
    let peer = address(&peer)?;
    s.node()?.remove_contact(peer).await?;
    Ok(Json(json!({ "address": peer, "removed": true })).into_response())
}

/// `GET /v1/profile`: our address and display name.
async fn profile(AxumState(s): AxumState<State>) -> Result<Response> {
    let node = s.node()?;
    Ok(Json(json!({ "address": node.address(), "name": node.name() })).into_response())
}

/// `PUT /v1/profile`: changes our display name (`null` clears it).
async fn set_profile(
    AxumState(s): AxumState<State>,
    request: std::result::Result<Json<NameBody>, JsonRejection>,
) -> Result<Response> {
    let request = body(request)?;
    let node = s.node()?;
    let name = node.set_name(request.name).await?;
    Ok(Json(json!({ "address": node.address(), "name": name })).into_response())
}

async fn safety_number(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
) -> Result<Response> {
    let number = s.node()?.verify_contact(address(&peer)?, false).await?;
    Ok(Json(json!({ "safety_number": number.to_string() })).into_response())
}

async fn verify(AxumState(s): AxumState<State>, Path(peer): Path<String>) -> Result<Response> {
    let number = s.node()?.verify_contact(address(&peer)?, true).await?;
    Ok(Json(json!({ "safety_number": number.to_string(), "verified": true })).into_response())
}

/// Each entry with the start of its text (`preview`, null for receipts; issue 23
/// item 8).
async fn outbox(AxumState(s): AxumState<State>) -> Result<Response> {
    let node = s.node()?;
    let mut rows = Vec::new();
    for e in node.outbox().await? {
        let preview = node.message_preview(e.message_id).await?;
        rows.push(json!({
            "id": e.message_id, "to": e.recipient, "attempts": e.attempts,
            "next_attempt_at": e.next_attempt_at, "created_at": e.created_at,
            "expires_at": e.expires_at, "last_error": e.last_error, "preview": preview,
        }));
    }
    Ok(Json(rows).into_response())
}

async fn dead_letters(AxumState(s): AxumState<State>) -> Result<Response> {
    let node = s.node()?;
    let mut rows = Vec::new();
    for d in node.dead_letters().await? {
        let preview = node.message_preview(d.message_id).await?;
        rows.push(json!({
            "id": d.message_id, "to": d.recipient, "attempts": d.attempts,
            "reason": d.reason, "failed_at": d.failed_at, "preview": preview,
        }));
    }
    Ok(Json(rows).into_response())
}

async fn retry(AxumState(s): AxumState<State>, Path(id): Path<String>) -> Result<Response> {
    let id = message_id(&id)?;
    s.node()?.retry(id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "queued" }))).into_response())
}

async fn events(
    AxumState(s): AxumState<State>,
    via: Option<axum::Extension<crate::auth::Via>>,
    headers: axum::http::HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let (node, locked) = s.gate.node_until_locked()?;
    let shutdown = s.shutdown.clone();
    // A web session's stream lives as long as the session, and keeps it in use.
    let session = match via.map(|v| v.0) {
        Some(crate::auth::Via::Session) => {
            crate::auth::session_cookie(&headers, &web::cookie_name(s.port))
                .map(|id| (s.sessions.clone(), id.to_owned()))
        }
        _ => None,
    };
    Ok(upgrade.on_upgrade(move |socket| stream_events(node, shutdown, locked, session, socket)))
}

/// How often a web session's event stream checks that its session is still open.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Forwards node events as JSON text frames until the client leaves, the node stops
/// or is locked (then `{"type":"locked"}` is the last frame), or the web session it
/// was opened with ends (logout, its 7-day lifetime). A page with its stream open is
/// in use: the stream renews its session's idle clock at each check. A client too
/// slow to keep up is told how many events it missed.
async fn stream_events(
    node: communitas_node::Handle,
    shutdown: tokio_util::sync::CancellationToken,
    locked: tokio_util::sync::CancellationToken,
    session: Option<(std::sync::Arc<web::Sessions>, String)>,
    mut socket: WebSocket,
) {
    let mut events = node.subscribe();
    // The socket must not keep a locked node's state alive.
    drop(node);
    let mut check = tokio::time::interval(SESSION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = check.tick(), if session.is_some() => {
                match &session {
                    Some((sessions, id)) if !sessions.still_open(id) => break,
                    _ => continue,
                }
            }
            () = locked.cancelled() => {
                let _ = socket.send(Message::Text(json!({ "type": "locked" }).to_string().into())).await;
                break;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            event = events.recv() => match event {
                Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                Err(RecvError::Lagged(missed)) => json!({ "type": "lagged", "missed": missed }).to_string(),
                Err(RecvError::Closed) => break,
            },
        };
        if socket.send(Message::Text(frame.into())).await.is_err() {
            break;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

async fn metrics(AxumState(s): AxumState<State>) -> Result<Response> {
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.node()?.metrics().encode(),
    )
        .into_response())
}

fn file_id(text: &str) -> Result<communitas_types::FileId> {
    text.parse().map_err(|_| ApiError::InvalidId)
}

#[derive(Deserialize)]
struct SendFileRequest {
    to: String,
    /// A path on the node's machine (the CLI and local tools).
    path: String,
    #[serde(default)]
    text: String,
}

/// Sends a file the node can read from its own disk. Only with the bearer token: a
/// web session (a cookie a browser holds) must not be able to name any file the user
/// can read; the web UI sends the bytes (`/v1/files/upload`).
async fn send_file(
    AxumState(s): AxumState<State>,
    axum::Extension(via): axum::Extension<crate::auth::Via>,
    request: std::result::Result<Json<SendFileRequest>, JsonRejection>,
) -> Result<Response> {
    if via != crate::auth::Via::Token {
        return Err(ApiError::TokenRequired);
    }
    let request = body(request)?;
    let to = address(&request.to)?;
    let path = std::path::PathBuf::from(request.path);
    let (queued, file_id) = s.node()?.queue_file(to, &request.text, path).await?;
    Ok(file_queued(queued, file_id))
}

#[derive(Deserialize)]
struct UploadQuery {
    to: String,
    name: String,
    #[serde(default)]
    text: String,
}

/// Sends a file streamed in the request body (the web UI): written to the node's
/// uploads folder as it arrives — never held whole in memory — then sent from there.
/// An upload that fails (cut off, too large, refused) or whose client leaves leaves
/// nothing behind; once the message is queued, the file stays for as long as it is
/// offered.
async fn upload_file(
    AxumState(s): AxumState<State>,
    query: std::result::Result<Query<UploadQuery>, QueryRejection>,
    headers: axum::http::HeaderMap,
    upload: axum::body::Body,
) -> Result<Response> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let to = address(&query.to)?;
    // The node is not held while the body arrives (minutes, perhaps): a lock meanwhile
    // must be able to stop it.
    let (max, path) = {
        let node = s.node()?;
        (node.max_file_size(), node.upload_path(&query.name).await?)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let folder = UploadFolder(path.parent().map(std::path::Path::to_path_buf));
    if let Some(size) = declared.filter(|size| *size > max) {
        return Err(communitas_node::FileError::TooLarge { size, max }.into());
    }
    receive(&path, upload, max).await?;
    let (queued, file_id) = s.node()?.queue_file(to, &query.text, path).await?;
    folder.keep();
    Ok(file_queued(queued, file_id))
}

/// An upload's folder, removed when dropped unless kept: every way out of the
/// handler before the message is queued (an error, the client leaving) cleans up.
struct UploadFolder(Option<std::path::PathBuf>);

impl UploadFolder {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for UploadFolder {
    fn drop(&mut self) {
        if let Some(folder) = self.0.take() {
            // Synchronous, small (one file): a drop cannot await.
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// Writes the request body to `path`, at most `max` bytes, synced before it returns.
async fn receive(path: &std::path::Path, upload: axum::body::Body, max: u64) -> Result<()> {
    use futures::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;

    let unwritable = |e: std::io::Error| communitas_node::FileError::Unwritable {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut out = tokio::fs::File::create(path).await.map_err(unwritable)?;
    let mut stream = upload.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidRequest(format!("upload broken: {e}")))?;
        written += chunk.len() as u64;
        if written > max {
            return Err(communitas_node::FileError::TooLarge { size: written, max }.into());
        }
        out.write_all(&chunk).await.map_err(unwritable)?;
    }
    out.sync_all().await.map_err(unwritable)?;
    Ok(())
}

async fn file(AxumState(s): AxumState<State>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(s.node()?.file(file_id(&id)?).await?).into_response())
}

async fn fetch_file(AxumState(s): AxumState<State>, Path(id): Path<String>) -> Result<Response> {
    Ok((StatusCode::ACCEPTED, Json(s.node()?.fetch_file(file_id(&id)?).await?)).into_response())
}

/// The file's bytes: a received file once done, or the original of a sent one.
async fn file_content(AxumState(s): AxumState<State>, Path(id): Path<String>) -> Result<Response> {
    let id = file_id(&id)?;
    let node = s.node()?;
    let attachment = node.file(id).await?;
    let path = node.file_path(id).await?;
    let file =
        tokio::fs::File::open(&path).await.map_err(|e| communitas_node::FileError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    // The name is the sanitised one, quoted; the type is never trusted for rendering.
    let name: String = attachment
        .name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::HeaderName::from_static("x-content-type-options"), "nosniff".to_owned()),
        ],
        body,
    )
        .into_response())
}
