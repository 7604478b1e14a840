//! What a web page in the operator's browser can make a node do: nothing.
//!
//! A node running open (no tokens, as `--dev` does) trusts whoever reaches it, and a page on any
//! site can make the browser send requests to `http://127.0.0.1:8080`. Two ways in, both closed
//! here, before authentication (the `Host` and origin checks for every request, the type check
//! on every route that exists for the method, so unknown paths stay 404s and wrong methods 405s):
//!
//! - **Cross-site writes.** A page may send a "simple" cross-origin request without asking the
//!   node first (no CORS preflight): a form post, or `fetch` with `text/plain`. Every `POST`,
//!   `PUT` and `PATCH` must carry a JSON or YAML content type (node-to-node calls: their binary
//!   type), which no simple request can (on an open node: with tokens, a request without
//!   `Authorization` is refused anyway, and one with it is never simple), and every write whose `Origin` is another origin, or
//!   whose `Sec-Fetch-Site` says `cross-site` or `same-site`, is refused. The node answers no
//!   CORS preflight, so a browser never sends the non-simple request either. (`DELETE` is never
//!   simple: a browser always asks first.)
//! - **DNS rebinding.** A page on `evil.example` whose name is re-pointed to 127.0.0.1 is, to the
//!   browser, same-origin with itself, so it could read answers and write as it likes. Its
//!   requests carry `Host: evil.example`: an open node answers only requests for loopback names,
//!   its own advertised host and `LOOM_ALLOWED_HOSTS`. (A node with tokens checks `Host` only if
//!   `LOOM_ALLOWED_HOSTS` is set: a rebinding page has no token.) `/healthz` and `/readyz` answer
//!   any `Host`, for probes that address the node by IP.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

/// A node's rules for requests a browser may have sent.
#[derive(Debug, Clone, Default)]
pub struct BrowserGuard {
    /// Host names (lowercase, without port) the node answers for besides loopback ones.
    allowed_hosts: Vec<String>,
    /// Check `Host` at all (open nodes, or when hosts were configured).
    check_hosts: bool,
    /// Require a non-simple content type on writes that carry no credential header (open
    /// nodes; a node with tokens refuses such writes as unauthenticated anyway).
    check_types: bool,
    /// Origins (`scheme://host[:port]`, lowercase) that may write although they are not the
    /// node's own (a desktop app's, say).
    allowed_origins: Vec<String>,
}

impl BrowserGuard {
    /// `advertised`: host names the node is reached by (its advertise address, its listen
    /// address). `configured`: `LOOM_ALLOWED_HOSTS`. Hosts are checked when the node is `open`
    /// or some were configured.
    pub fn new(advertised: &[&str], configured: &[String], allowed_origins: &[String], open: bool) -> BrowserGuard {
        let mut allowed_hosts: Vec<String> = advertised
            .iter()
            .map(|a| host_of(a).to_string())
            .chain(configured.iter().map(|h| host_of(h.trim()).to_string()))
            .filter(|h| !h.is_empty() && !is_unspecified(h))
            .collect();
        allowed_hosts.sort();
        allowed_hosts.dedup();
        BrowserGuard {
            allowed_hosts,
            check_hosts: open || !configured.is_empty(),
            check_types: open,
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Why `request` may not go on, if it may not: [`Self::site_refusal`], then
    /// [`Self::type_refusal`] (as a route of the API's own applies them).
    #[cfg(test)]
    fn refusal(&self, method: &Method, path: &str, headers: &HeaderMap, authority: Option<&str>) -> Option<ApiError> {
        self.site_refusal(method, path, headers, authority).or_else(|| self.type_refusal(method, path, headers))
    }

    /// Checked for every request, before routing: the `Host` it names, and for writes where
    /// the browser says it comes from.
    fn site_refusal(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Option<ApiError> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(authority);
        if self.check_hosts && path != "/healthz" && path != "/readyz" {
            let Some(host) = host else {
                return Some(ApiError::bad_request("a Host header is required"));
            };
            let name = host_of(host);
            if !is_loopback_name(name) && !self.allowed_hosts.iter().any(|a| a == name) {
                return Some(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::HostNotAllowed,
                    format!(
                        "this node answers requests for localhost, loopback addresses and {}; not for `{name}` \
                         (LOOM_ALLOWED_HOSTS adds names)",
                        if self.allowed_hosts.is_empty() {
                            "nothing else".to_string()
                        } else {
                            self.allowed_hosts.join(", ")
                        }
                    ),
                ));
            }
        }
        let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
        if !writes {
            return None;
        }
        if let Some(refused) = self.cross_site(headers, host) {
            return Some(refused);
        }
        None
    }

    /// Checked on a route that exists for the method (so an unknown path is a 404 and a wrong
    /// method a 405, whatever the type): a write needs a type no simple request can send.
    fn type_refusal(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<ApiError> {
        let credentialed = headers.contains_key(header::AUTHORIZATION)
            || headers.contains_key(linkloom_raft::transport::CLUSTER_SECRET_HEADER);
        if self.check_types && !credentialed && matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let peer = path.starts_with("/raft/");
            if !content_type.is_some_and(|t| if peer { is_binary(t) } else { is_json_or_yaml(t) }) {
                let wanted = if peer { "application/octet-stream" } else { "application/json (or application/yaml)" };
                return Some(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "{method} {path} needs `Content-Type: {wanted}`, even with an empty body; got {}",
                        content_type.map_or("none".to_string(), |t| format!("`{t}`"))
                    ),
                ));
            }
        }
        None
    }

    fn cross_site(&self, headers: &HeaderMap, host: Option<&str>) -> Option<ApiError> {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
        if let Some(origin) = &origin {
            if self.allowed_origins.iter().any(|o| o == origin) {
                return None;
            }
        }
        let refused = |why: String| {
            Some(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::CrossOrigin,
                format!(
                    "{why}: a page of another site cannot write to this node (LOOM_ALLOWED_ORIGINS admits an origin)"
                ),
            ))
        };
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if let Some(site @ ("cross-site" | "same-site")) = site {
            return refused(format!("the browser says this request is {site}"));
        }
        match origin {
            None => None,
            Some(origin) if origin == "null" => refused("the request comes from an opaque origin".into()),
            Some(origin) => {
                let same = host.is_some_and(|h| same_authority(&origin, h));
                if same {
                    None
                } else {
                    refused(format!("the request comes from `{origin}`"))
                }
            }
        }
    }
}

/// Middleware: refuses what a browser on another site may have sent (see the module docs).
pub(crate) async fn guard(State(guard): State<std::sync::Arc<BrowserGuard>>, request: Request, next: Next) -> Response {
    let authority = request.uri().authority().map(|a| a.as_str().to_string());
    match guard.site_refusal(request.method(), request.uri().path(), request.headers(), authority.as_deref()) {
        None => next.run(request).await,
        Some(refusal) => {
            tracing::warn!(method = %request.method(), path = %request.uri().path(), "{}", refusal.message);
            refusal.into_response()
        }
    }
}

/// Route middleware: refuses a write without a JSON (or, on `/raft/*`, binary) type. Routes
/// that authenticate with their own per-request credential (an attempt's callback token) are
/// not given it: a request without the credential is refused by it, and one with it is never a
/// simple request.
pub(crate) async fn require_write_type(
    State(guard): State<std::sync::Arc<BrowserGuard>>,
    request: Request,
    next: Next,
) -> Response {
    match guard.type_refusal(request.method(), request.uri().path(), request.headers()) {
        None => next.run(request).await,
        Some(refusal) => {
            tracing::warn!(method = %request.method(), path = %request.uri().path(), "{}", refusal.message);
            refusal.into_response()
        }
    }
}

/// `host` of `host:port`, `[v6]:port`, `[v6]` or `host`, lowercase.
fn host_of(authority: &str) -> &str {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons: no port to strip.
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_unspecified(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

fn media_type(value: &str) -> String {
    value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn is_json_or_yaml(value: &str) -> bool {
    let media = media_type(value);
    matches!(
        media.as_str(),
        "application/json" | "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
    ) || (media.starts_with("application/") && media.ends_with("+json"))
}

fn is_binary(value: &str) -> bool {
    media_type(value) == "application/octet-stream"
}

/// Whether `origin` (`scheme://authority`) names the same host and port as a `Host` header.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let normalize = |a: &str| {
        let a = a.to_ascii_lowercase();
        a.strip_suffix(default_port).map(str::to_string).unwrap_or(a)
    };
    normalize(authority) == normalize(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn code(guard: &BrowserGuard, method: Method, path: &str, pairs: &[(&str, &str)]) -> Option<String> {
        guard.refusal(&method, path, &headers(pairs), None).map(|e| e.code.to_string())
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn an_open_node_answers_only_for_its_own_names() {
        let open = BrowserGuard::new(&["10.0.0.5:8080", "0.0.0.0:8080"], &["loom.internal".into()], &[], true);
        for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST", "10.0.0.5:8080", "loom.internal"] {
            assert_eq!(code(&open, Method::GET, "/api/v1/workflows", &[("host", host)]), None, "{host}");
        }
        for host in ["evil.example", "evil.example:8080", "0.0.0.0:8080", "127.0.0.1.evil.example"] {
            assert_eq!(
                code(&open, Method::GET, "/api/v1/workflows", &[("host", host)]).as_deref(),
                Some("host_not_allowed"),
                "{host}"
            );
        }
        assert_eq!(code(&open, Method::GET, "/healthz", &[("host", "10.9.9.9:8080")]), None, "probes by IP");
        let secured = BrowserGuard::new(&["10.0.0.5:8080"], &[], &[], false);
        assert_eq!(code(&secured, Method::GET, "/api/v1/workflows", &[("host", "loom.example.com")]), None);
    }

    #[test]
    fn writes_need_a_type_no_simple_request_can_send() {
        let guard = BrowserGuard::new(&["127.0.0.1:8080"], &[], &[], true);
        let host = ("host", "127.0.0.1:8080");
        for simple in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
            let refused = code(&guard, Method::POST, "/api/v1/workflows/a/trigger", &[host, ("content-type", simple)]);
            assert_eq!(refused.as_deref(), Some("unsupported_media_type"), "{simple}");
        }
        assert_eq!(
            code(&guard, Method::POST, "/api/v1/workflows/a/trigger", &[host]).as_deref(),
            Some("unsupported_media_type")
        );
        for fine in
            ["application/json", "application/json; charset=utf-8", "application/yaml", "application/merge-patch+json"]
        {
            assert_eq!(
                code(&guard, Method::POST, "/api/v1/workflows", &[host, ("content-type", fine)]),
                None,
                "{fine}"
            );
        }
        assert_eq!(code(&guard, Method::DELETE, "/api/v1/workflows/a", &[host]), None, "DELETE is always preflighted");
        let raft = code(&guard, Method::POST, "/raft/append", &[host, ("content-type", "text/plain")]);
        assert_eq!(raft.as_deref(), Some("unsupported_media_type"));
        assert_eq!(
            code(&guard, Method::POST, "/raft/append", &[host, ("content-type", "application/octet-stream")]),
            None
        );
        // Requests a browser would preflight, and nodes whose auth refuses anonymous writes.
        let plain = ("content-type", "text/plain");
        let bearer = ("authorization", "Bearer x");
        assert_eq!(code(&guard, Method::POST, "/api/v1/workflows/a/trigger", &[host, plain, bearer]), None);
        assert_eq!(code(&guard, Method::POST, "/raft/vote", &[host, ("x-loom-cluster-secret", "s")]), None);
        let secured = BrowserGuard::new(&["127.0.0.1:8080"], &[], &[], false);
        assert_eq!(code(&secured, Method::POST, "/api/v1/workflows/a/trigger", &[host, plain]), None);
        assert_eq!(
            code(
                &secured,
                Method::POST,
                "/api/v1/workflows/a/trigger",
                &[host, plain, ("origin", "https://evil.example")]
            )
            .as_deref(),
            Some("cross_origin"),
            "a node with tokens still refuses cross-site writes"
        );
    }

    #[test]
    fn writes_from_other_origins_are_refused() {
        let guard = BrowserGuard::new(&["127.0.0.1:8080"], &[], &["tauri://localhost".into()], true);
        let host = ("host", "127.0.0.1:8080");
        let write = |extra: &[(&str, &str)]| {
            let mut pairs = vec![host, JSON];
            pairs.extend_from_slice(extra);
            code(&guard, Method::POST, "/api/v1/workflows/a/trigger", &pairs)
        };
        assert_eq!(write(&[]), None, "no Origin: not a browser");
        assert_eq!(write(&[("origin", "http://127.0.0.1:8080")]), None, "the node's own UI");
        assert_eq!(write(&[("origin", "http://127.0.0.1:8080"), ("sec-fetch-site", "same-origin")]), None);
        assert_eq!(write(&[("origin", "tauri://localhost")]), None, "an allowed origin");
        for bad in [
            vec![("origin", "http://evil.example")],
            vec![("origin", "http://127.0.0.1:3000")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site"), ("origin", "http://127.0.0.1:8080")],
        ] {
            assert_eq!(write(&bad).as_deref(), Some("cross_origin"), "{bad:?}");
        }
        assert_eq!(code(&guard, Method::GET, "/api/v1/workflows", &[host, ("origin", "http://evil.example")]), None);
    }

    #[test]
    fn authorities_compare_with_default_ports() {
        assert!(same_authority("http://localhost", "localhost:80"));
        assert!(same_authority("https://loom.example:443", "LOOM.example"));
        assert!(!same_authority("https://loom.example", "loom.example:80"));
        assert_eq!(host_of("[::1]:8080"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("example.com:99"), "example.com");
    }
}
