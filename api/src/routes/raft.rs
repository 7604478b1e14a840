//! Node-to-node endpoints (`/raft/{append,vote,snapshot,snapshot-part,leader}`): encoded bodies in and out.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::body::read_limited;
use crate::error::ApiError;
use crate::ApiState;

pub(crate) async fn serve(
    State(state): State<ApiState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(&headers, body, state.limits.max_raft_body_bytes).await?;
    let path = format!("/raft/{kind}");
    let answer = state.node.serve_rpc(&path, &bytes).await?;
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/octet-stream")], answer).into_response())
}
