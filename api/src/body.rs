//! Request bodies read with a size limit, answering 413 in the API's error shape.
//!
//! A refused body is still read (and thrown away) up to [`DRAIN_LIMIT`]: a server that answers
//! before the client has finished sending closes the connection under it, and the client then
//! sees a broken pipe instead of the 413 (or 401) that says what was wrong.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::error::{ApiError, ErrorCode};

/// Most bytes of a refused body read and discarded so its sender can read the answer.
pub const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// Reads and discards up to `cap` bytes of `body`; stops at its end, at the cap, or on an error.
pub async fn drain(body: Body, cap: usize) {
    drain_to_end(body, cap).await;
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
            ErrorCode::RequestTimeout,
            format!("the request body did not arrive within {} s", deadline.as_secs()),
        ))
    })
}

async fn read_within(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = |size: Option<u64>| {
        let size_text = size.map(|s| format!("{s} bytes")).unwrap_or_else(|| "larger".into());
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            format!("request body is {size_text}; the limit is {limit} bytes"),
        )
        .with_details(linkloom_wire::error::SizeLimit { limit_bytes: limit as u64 })
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

/// Middleware: whatever answers a request, the rest of its body is read before the answer goes
/// out (up to [`DRAIN_LIMIT`], within 5 s), so the connection stays usable.
///
/// A route that refuses a request without reading its body (an unknown path, a bad path
/// parameter, a browser guard's 415) would otherwise leave the unread bytes on the connection:
/// hyper then closes it after the answer without saying so, and a client that sends its next
/// request on that kept-alive connection gets a broken pipe. A body that cannot be drained gets
/// `Connection: close` on its answer, so the client knows not to reuse the connection.
pub(crate) async fn keep_connection_usable(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !declares_body(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let shared = std::sync::Arc::new(SharedBody { body: std::sync::Mutex::new(body), ended: Default::default() });
    let request = axum::extract::Request::from_parts(parts, Body::new(ProxyBody(shared.clone())));
    let mut response = next.run(request).await;
    if shared.ended.load(std::sync::atomic::Ordering::Acquire) {
        return response;
    }
    let rest = std::mem::take(&mut *shared.body.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    if http_body::Body::is_end_stream(&rest) {
        return response;
    }
    let drained = tokio::time::timeout(std::time::Duration::from_secs(5), drain_to_end(rest, DRAIN_LIMIT)).await;
    if !matches!(drained, Ok(true)) {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// Whether the request says a body follows.
fn declares_body(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// [`drain`], saying whether the body's end was reached.
async fn drain_to_end(mut body: Body, cap: usize) -> bool {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while seen <= cap {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => return false,
            None => return true,
        }
    }
    false
}

/// A request body the handler reads through, which the middleware can take back afterwards.
struct SharedBody {
    body: std::sync::Mutex<Body>,
    ended: std::sync::atomic::AtomicBool,
}

struct ProxyBody(std::sync::Arc<SharedBody>);

impl http_body::Body for ProxyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let mut body = self.0.body.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let polled = std::pin::Pin::new(&mut *body).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) {
            self.0.ended.store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&*self.0.body.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&*self.0.body.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Most bytes a write that takes no body may carry (`{}` and whitespace).
const NO_BODY_LIMIT: usize = 1024;

/// Route middleware for writes that take no body: nothing, or an empty JSON object, and
/// anything else is refused (400) rather than silently ignored, so what a caller sends is what
/// the API document says it may.
pub(crate) async fn require_no_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, NO_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::bad_request(format!(
                "this endpoint takes no body (at most `{{}}`); got more than {NO_BODY_LIMIT} bytes"
            ))
            .into_response()
        }
    };
    let empty = bytes.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).is_ok_and(|m| m.is_empty());
    if !empty {
        return ApiError::bad_request("this endpoint takes no body: send nothing, or `{}`").into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}
