//! Presence, typing, read state and settings (issue 6). Routed in `routes`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use communitas_node::presence::Status;
use serde::Deserialize;
use serde_json::json;

use crate::State;
use crate::error::ApiError;
use crate::routes::{address, body};

type Result<T> = std::result::Result<T, ApiError>;

fn status(text: &str) -> Result<Status> {
    text.parse().map_err(|e: communitas_node::presence::UnknownStatus| {
        ApiError::InvalidRequest(e.to_string())
    })
}

/// `GET /v1/presence`: our status and every contact's.
pub(crate) async fn all(AxumState(s): AxumState<State>) -> Result<Response> {
    let (own, contacts) = s.node()?.presence_all().await?;
    let contacts: Vec<_> = contacts
        .into_iter()
        .map(|(a, p)| json!({ "address": a, "status": p.status, "last_seen": p.last_seen }))
        .collect();
    Ok(Json(json!({ "status": own, "contacts": contacts })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SetPresence {
    status: String,
}

/// `PUT /v1/presence`: sets our status and tells every contact.
pub(crate) async fn set(
    AxumState(s): AxumState<State>,
    request: std::result::Result<Json<SetPresence>, JsonRejection>,
) -> Result<Response> {
    let new = status(&body(request)?.status)?;
    s.node()?.set_presence(new).await?;
    Ok(Json(json!({ "status": new })).into_response())
}

/// `GET /v1/presence/{address}`: a contact's `{"status","last_seen"}`.
pub(crate) async fn get(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
) -> Result<Response> {
    let presence = s.node()?.presence(address(&peer)?).await?;
    Ok(Json(presence).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Typing {
    typing: bool,
}

/// `POST /v1/conversations/{address}/typing`: `{"typing": true|false}`.
pub(crate) async fn typing(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
    request: std::result::Result<Json<Typing>, JsonRejection>,
) -> Result<Response> {
    let peer = address(&peer)?;
    let typing = body(request)?.typing;
    s.node()?.typing(peer, typing).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "typing": typing }))).into_response())
}

/// `POST /v1/conversations/{address}/read`: marks the conversation read.
pub(crate) async fn read(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
) -> Result<Response> {
    let read = s.node()?.mark_read(address(&peer)?).await?;
    Ok(Json(json!({ "read": read })).into_response())
}

/// `GET /v1/settings`.
pub(crate) async fn settings(AxumState(s): AxumState<State>) -> Result<Response> {
    Ok(Json(s.node()?.settings().await?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SetSettings {
    read_receipts: Option<bool>,
}

/// `PUT /v1/settings`: `{"read_receipts": bool}`; absent fields stay as they are.
pub(crate) async fn set_settings(
    AxumState(s): AxumState<State>,
    request: std::result::Result<Json<SetSettings>, JsonRejection>,
) -> Result<Response> {
    let request = body(request)?;
    let settings = match request.read_receipts {
        Some(on) => s.node()?.set_read_receipts(on).await?,
        None => s.node()?.settings().await?,
    };
    Ok(Json(settings).into_response())
}
