//! Message requests and blocks (issue 15, decision 0052). Routed in `routes`.
//!
//! `GET /v1/requests`, `POST /v1/requests/{address}/accept`,
//! `POST /v1/requests/{address}/decline[?block=true]`, `GET /v1/blocks`,
//! `POST /v1/blocks {"address"}`, `DELETE /v1/blocks/{address}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use communitas_store::Block;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::State;
use crate::error::ApiError;
use crate::routes::{ContactView, address, body};

type Result<T> = std::result::Result<T, ApiError>;

/// `GET /v1/requests`: every message request, heard from most recently first.
pub(crate) async fn list(AxumState(s): AxumState<State>) -> Result<Response> {
    Ok(Json(s.node()?.requests().await?).into_response())
}

/// `POST /v1/requests/{address}/accept`: the request becomes a contact.
pub(crate) async fn accept(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
) -> Result<Response> {
    let contact = s.node()?.accept_request(address(&peer)?).await?;
    Ok(Json(ContactView::from(contact)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Decline {
    block: Option<bool>,
}

/// `POST /v1/requests/{address}/decline`: deleted; with `?block=true`, blocked too.
pub(crate) async fn decline(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
    query: std::result::Result<Query<Decline>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let peer = address(&peer)?;
    let block = query.block.unwrap_or(false);
    s.node()?.decline_request(peer, block).await?;
    Ok(Json(json!({ "address": peer, "declined": true, "blocked": block })).into_response())
}

/// A blocked address as the API shows it.
#[derive(Serialize)]
struct BlockView {
    address: communitas_types::Address,
    blocked_at: communitas_types::Timestamp,
}

impl From<Block> for BlockView {
    fn from(b: Block) -> Self {
        Self { address: b.address, blocked_at: b.blocked_at }
    }
}

/// `GET /v1/blocks`: every blocked address, newest first.
pub(crate) async fn blocks(AxumState(s): AxumState<State>) -> Result<Response> {
    let list: Vec<BlockView> = s.node()?.blocked().await?.into_iter().map(Into::into).collect();
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
pub(crate) struct BlockRequest {
    address: String,
}

/// `POST /v1/blocks`: blocks an address (a contact, a request or any other).
pub(crate) async fn block(
    AxumState(s): AxumState<State>,
    request: std::result::Result<Json<BlockRequest>, JsonRejection>,
) -> Result<Response> {
    let peer = address(&body(request)?.address)?;
    let blocked = s.node()?.block(peer).await?;
    let status = if blocked.already { StatusCode::OK } else { StatusCode::CREATED };
    let view = BlockView::from(blocked.block);
    let answer = json!({
        "address": view.address,
        "blocked_at": view.blocked_at,
        "request_deleted": blocked.request_deleted,
    });
    Ok((status, Json(answer)).into_response())
}

/// `DELETE /v1/blocks/{address}`: unblocks it.
pub(crate) async fn unblock(
    AxumState(s): AxumState<State>,
    Path(peer): Path<String>,
) -> Result<Response> {
    let peer = address(&peer)?;
    s.node()?.unblock(peer).await?;
    Ok(Json(json!({ "address": peer, "unblocked": true })).into_response())
}
