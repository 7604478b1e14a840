//! Request bodies read with a size limit, answering 413 in the API's error shape.
//!
//! A refused body is still read (and thrown away) up to [`DRAIN_LIMIT`]: a server that answers
//! before the client has finished sending closes the connection under it, and the client then
//! sees a broken pipe instead of the 413 (or 401) that says what was wrong.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::error::ApiError;

/// Most bytes of a refused body read and discarded so its sender can read the answer.
pub const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// Reads and discards up to `cap` bytes of `body`; stops at its end, at the cap, or on an error.
pub async fn drain(body: Body, cap: usize) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    while seen <= cap {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

/// How long a body may take to arrive: 30 s, or as long as `limit` bytes take at 1 MiB/s if that
/// is longer (a large snapshot). A client trickling its body holds a handler no longer.
pub fn read_deadline(limit: usize) -> std::time::Duration {
    std::time::Duration::from_secs(30).max(std::time::Duration::from_secs((limit / (1024 * 1024)) as u64))
}

/// Reads at most `limit` bytes of `body`, within [`read_deadline`] (408 past it).
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let deadline = read_deadline(limit);
    tokio::time::timeout(deadline, read_within(headers, body, limit)).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {} s", deadline.as_secs()),
        ))
    })
}

async fn read_within(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = |size: Option<u64>| {
        let size_text = size.map(|s| format!("{s} bytes")).unwrap_or_else(|| "larger".into());
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body is {size_text}; the limit is {limit} bytes"),
        )
        .with_details(serde_json::json!({"limit_bytes": limit}))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared {
        if size > limit as u64 {
            if size <= DRAIN_LIMIT as u64 {
                drain(body, DRAIN_LIMIT).await;
            }
            return Err(too_large(Some(size)));
        }
    }
    // Without a declared length, read up to the limit, then drain what is left.
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if buffer.len() + data.len() > limit {
                drain(body, DRAIN_LIMIT).await;
                return Err(too_large(None));
            }
            buffer.extend_from_slice(data);
        }
    }
    Ok(buffer.freeze())
}
