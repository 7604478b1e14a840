//! Request bodies read with a size limit, answering 413 in the API's error shape.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::error::ApiError;

/// Reads at most `limit` bytes of `body`.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
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
            return Err(too_large(Some(size)));
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            too_large(None)
        } else {
            ApiError::bad_request(format!("could not read the request body: {inner}"))
        }
    })
}
