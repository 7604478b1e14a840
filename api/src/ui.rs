//! The web UI's files, served by every node at `/` on the same origin as the API.
//!
//! The binary hands the files in (the node embeds its build at compile time); this module only
//! serves them: a known file as itself, any other page path as `index.html` so deep links such
//! as `/workflows/nightly` load the app, which routes on the client. API, node-to-node, health
//! and metrics paths never fall back to the app: an unknown API path stays a JSON 404.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// The UI's files by path (`index.html`, `assets/app-1234.js`, ...).
#[derive(Debug, Default, Clone)]
pub struct UiAssets {
    files: BTreeMap<String, Cow<'static, [u8]>>,
}

impl UiAssets {
    pub fn new() -> UiAssets {
        UiAssets::default()
    }

    /// Adds a file; `path` is relative to the UI's root, without a leading `/`.
    pub fn insert(&mut self, path: impl Into<String>, bytes: impl Into<Cow<'static, [u8]>>) {
        self.files.insert(path.into(), bytes.into());
    }

    /// Whether there is an app to serve (an `index.html`).
    pub fn has_app(&self) -> bool {
        self.files.contains_key("index.html")
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Paths that belong to the API or the node, never to the app.
fn reserved(path: &str) -> bool {
    ["/api/", "/raft/"].iter().any(|p| path.starts_with(p))
        || ["/api", "/raft", "/metrics", "/healthz", "/readyz"].contains(&path)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The answer for `method path`, or `None` when the path is not the UI's (the caller answers 404).
pub fn respond(assets: &UiAssets, method: &Method, path: &str) -> Option<Response> {
    if !(method == Method::GET || method == Method::HEAD) || reserved(path) || !assets.has_app() {
        return None;
    }
    let relative = path.trim_start_matches('/');
    let (name, bytes) = match assets.files.get_key_value(relative) {
        Some((name, bytes)) if !relative.is_empty() => (name.as_str(), bytes),
        // A missing build file is a missing file, not a page (ids in page paths may hold dots,
        // like execution ids, so only the build's own directory is told apart).
        _ if relative.starts_with("assets/") => {
            return Some((StatusCode::NOT_FOUND, "not found").into_response());
        }
        _ => ("index.html", assets.files.get("index.html")?),
    };
    // Hashed build assets never change; the page itself must be fetched fresh to pick up a new build.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = (StatusCode::OK, bytes.clone().into_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if name.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        );
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> UiAssets {
        let mut assets = UiAssets::new();
        assets.insert("index.html", &b"<!doctype html><div id=root></div>"[..]);
        assets.insert("assets/app-1a2b.js", &b"console.log(1)"[..]);
        assets
    }

    fn body(response: Response) -> (StatusCode, String, String) {
        let status = response.status();
        let kind =
            response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20)).unwrap();
        (status, kind, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn deep_links_load_the_app_and_files_are_themselves() {
        let assets = app();
        for page in ["/", "/workflows/nightly", "/executions/nightly:20261126T010203.000Z-ab", "/settings"] {
            let (status, kind, text) = body(respond(&assets, &Method::GET, page).expect("the app"));
            assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/html; charset=utf-8"), "{page}");
            assert!(text.contains("id=root"), "{page}");
        }
        let js = respond(&assets, &Method::GET, "/assets/app-1a2b.js").expect("a file");
        assert_eq!(js.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        let (status, kind, text) = body(js);
        assert_eq!(
            (status, kind.as_str(), text.as_str()),
            (StatusCode::OK, "text/javascript; charset=utf-8", "console.log(1)")
        );
        let (status, _, _) = body(respond(&assets, &Method::GET, "/assets/gone-99.js").expect("answered"));
        assert_eq!(status, StatusCode::NOT_FOUND, "a missing file is not the app");
    }

    #[test]
    fn api_and_node_paths_never_become_the_app() {
        let assets = app();
        for path in ["/api/v1/nope", "/api", "/raft/vote", "/metrics", "/healthz", "/readyz"] {
            assert!(respond(&assets, &Method::GET, path).is_none(), "{path}");
        }
        assert!(respond(&assets, &Method::POST, "/workflows/x").is_none(), "only GET and HEAD");
        assert!(respond(&UiAssets::new(), &Method::GET, "/").is_none(), "no build, no app");
    }
}
