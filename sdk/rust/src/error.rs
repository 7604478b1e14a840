//! The SDK's one error type. Each variant is something a caller can act on: no server reachable
//! (check the URLs or the cluster), an answer from the server (read its stable `code`), a mistake
//! found locally before anything was sent, a deadline, an answer that could not be read.

use std::time::Duration;

use linkloom_core::spec::Problem;
use serde_json::Value;

/// Longest piece of a non-JSON error body kept in [`Error::Api`]'s message.
const MAX_ERROR_TEXT_CHARS: usize = 500;

/// Everything that can go wrong in this crate.
///
/// ```
/// use linkloom::Error;
///
/// fn explain(e: &Error) -> &'static str {
///     match e {
///         Error::Connect { .. } => "no server reachable: check the URLs",
///         e if e.is_not_found() => "no such thing",
///         e if e.is_conflict() => "someone else got there first",
///         Error::Invalid(_) => "fix the request",
///         _ => "something else",
///     }
/// }
/// let e = Error::Invalid("tasks[0].url: required for a task of type http".into());
/// assert_eq!(explain(&e), "fix the request");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No server in the list could be reached (connection refused, reset, or no connection within
    /// the connect timeout). `urls` names every server tried; `source` is the last failure.
    ///
    /// ```
    /// # async fn demo() {
    /// let client = linkloom::Client::new(["http://127.0.0.1:9"]).unwrap();
    /// match client.cluster().await {
    ///     Err(linkloom::Error::Connect { urls, .. }) => eprintln!("down: {}", urls.join(", ")),
    ///     other => println!("{other:?}"),
    /// }
    /// # }
    /// ```
    #[error("could not reach any Link Loom server (tried {})", urls.join(", "))]
    Connect {
        /// Every server tried, in the order tried.
        urls: Vec<String>,
        /// The last connection failure.
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with an error: `{"error": {"code", "message", "details"}}`.
    /// `code` is stable (`not_found`, `invalid_spec`, `stale_attempt`, `unavailable`, ...; see
    /// docs/api.md); `message` is for people.
    ///
    /// ```
    /// let e = linkloom::Error::Api {
    ///     status: 404,
    ///     code: "not_found".into(),
    ///     message: "workflow `x` not found".into(),
    ///     details: serde_json::Value::Null,
    /// };
    /// assert!(e.is_not_found());
    /// assert_eq!(e.to_string(), "workflow `x` not found (404 not_found)");
    /// ```
    #[error("{message} ({status} {code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable, machine-readable code.
        code: String,
        /// A human-readable explanation.
        message: String,
        /// Extra structure, e.g. `{"problems": [{"path", "message"}]}` for `invalid_spec`.
        details: Value,
    },

    /// Found locally, before anything was sent: an invalid workflow (every problem, each with its
    /// path, separated by `; `), a bad server URL, an argument out of range.
    ///
    /// ```
    /// let err = linkloom::WorkflowBuilder::new("Bad Id").build().unwrap_err();
    /// assert!(matches!(err, linkloom::Error::Invalid(_)));
    /// ```
    #[error("invalid: {0}")]
    Invalid(String),

    /// A deadline passed: waiting for an execution, or a request that got no answer in time.
    /// A write that timed out may still have taken effect.
    ///
    /// ```
    /// let e = linkloom::Error::Timeout { what: "execution `x`".into(), after: std::time::Duration::from_secs(5) };
    /// assert!(e.is_timeout());
    /// ```
    #[error("{what}: no result within {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long it was waited for.
        after: Duration,
    },

    /// An answer (or a task request) that could not be read as the expected shape.
    ///
    /// ```
    /// let e = linkloom::TaskRequest::from_slice(b"not json").unwrap_err();
    /// assert!(matches!(e, linkloom::Error::Decode(_)));
    /// ```
    #[error("could not decode {0}")]
    Decode(String),

    /// Any other HTTP failure, e.g. a connection lost in the middle of a write (which may or may
    /// not have taken effect, so it is not repeated on another server).
    ///
    /// ```
    /// fn is_transport(e: &linkloom::Error) -> bool {
    ///     matches!(e, linkloom::Error::Http(_))
    /// }
    /// assert!(!is_transport(&linkloom::Error::Invalid("x".into())));
    /// ```
    #[error(transparent)]
    Http(reqwest::Error),
}

impl Error {
    /// The HTTP status of an [`Error::Api`].
    ///
    /// ```
    /// let e = linkloom::Error::Invalid("x".into());
    /// assert_eq!(e.status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The stable code of an [`Error::Api`] (`not_found`, `invalid_spec`, `stale_attempt`, ...).
    ///
    /// ```
    /// let e = linkloom::Error::Api { status: 409, code: "stale_attempt".into(), message: String::new(), details: Default::default() };
    /// assert_eq!(e.code(), Some("stale_attempt"));
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server answered 404: the workflow, execution, task or attempt does not exist.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// match client.get_workflow("nightly").await {
    ///     Err(e) if e.is_not_found() => println!("not registered yet"),
    ///     other => println!("{:?}", other?.version),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The server answered 409: the request lost a race or came too late, e.g. a callback for an
    /// attempt that is no longer current, or cancelling an execution that already ended.
    ///
    /// ```
    /// let e = linkloom::Error::Api { status: 409, code: "execution_finished".into(), message: String::new(), details: Default::default() };
    /// assert!(e.is_conflict());
    /// ```
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// The attempt named in a callback or heartbeat is no longer current (it timed out, was
    /// cancelled, or its node was declared dead): stop working on it, its result will be refused.
    ///
    /// ```
    /// let e = linkloom::Error::Api { status: 409, code: "stale_attempt".into(), message: String::new(), details: Default::default() };
    /// assert!(e.is_stale_attempt() && e.is_conflict());
    /// ```
    pub fn is_stale_attempt(&self) -> bool {
        self.code() == Some("stale_attempt")
    }

    /// The cluster had no leader in time (503): worth trying again a little later.
    ///
    /// ```
    /// let e = linkloom::Error::Api { status: 503, code: "unavailable".into(), message: String::new(), details: Default::default() };
    /// assert!(e.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        self.status() == Some(503)
    }

    /// No server could be reached at all.
    ///
    /// ```
    /// assert!(!linkloom::Error::Invalid("x".into()).is_connect());
    /// ```
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }

    /// A deadline passed ([`Error::Timeout`]).
    ///
    /// ```
    /// assert!(!linkloom::Error::Invalid("x".into()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The problems the server found in a workflow it refused (`invalid_spec`), each with its
    /// path; empty for any other error.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) {
    /// if let Err(e) = client.put_workflow_yaml("id: x\ntasks: []\n").await {
    ///     for problem in e.problems() {
    ///         eprintln!("{}: {}", problem.path, problem.message);
    ///     }
    /// }
    /// # }
    /// ```
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Error::Api { details, .. } => details
                .get("problems")
                .and_then(|p| serde_json::from_value::<Vec<Problem>>(p.clone()).ok())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Reads an error answer: the API's `{"error": {...}}` shape, or, from something that is not
    /// a Link Loom node (a proxy, a load balancer), the status and the start of the body.
    ///
    /// ```
    /// let e = linkloom::Error::from_answer(404, br#"{"error": {"code": "not_found", "message": "no such workflow"}}"#);
    /// assert!(e.is_not_found());
    /// assert_eq!(linkloom::Error::from_answer(502, b"<html>").code(), Some("internal"));
    /// ```
    pub fn from_answer(status: u16, body: &[u8]) -> Error {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            details: Value,
        }
        if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) {
            return Error::Api {
                status,
                code: error.code.unwrap_or_else(|| code_for_status(status).to_string()),
                message: error.message.unwrap_or_else(|| format!("HTTP {status}")),
                details: error.details,
            };
        }
        let text: String = String::from_utf8_lossy(body).trim().chars().take(MAX_ERROR_TEXT_CHARS).collect();
        Error::Api {
            status,
            code: code_for_status(status).to_string(),
            message: if text.is_empty() { format!("HTTP {status}") } else { text },
            details: Value::Null,
        }
    }
}

/// The API's code for a status, for answers that did not carry one.
fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid_spec",
        429 => "rate_limited",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "http_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_servers_error_shape() {
        let body = json!({"error": {"code": "invalid_spec", "message": "tasks: a workflow needs at least one task",
            "details": {"problems": [{"path": "tasks", "message": "a workflow needs at least one task"},
                                     {"path": "id", "message": "bad id"}]}}});
        let e = Error::from_answer(422, body.to_string().as_bytes());
        assert_eq!(e.status(), Some(422));
        assert_eq!(e.code(), Some("invalid_spec"));
        assert_eq!(e.to_string(), "tasks: a workflow needs at least one task (422 invalid_spec)");
        let problems = e.problems();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[1].path, "id");
        assert!(!e.is_not_found() && !e.is_conflict());
    }

    #[test]
    fn names_conflicts_and_stale_attempts() {
        let body = br#"{"error": {"code": "stale_attempt", "message": "attempt 7 is not current", "details": null}}"#;
        let e = Error::from_answer(409, body);
        assert!(e.is_conflict() && e.is_stale_attempt());
        assert!(e.problems().is_empty());
        let e = Error::from_answer(404, br#"{"error": {"code": "not_found", "message": "workflow `x` not found"}}"#);
        assert!(e.is_not_found() && !e.is_stale_attempt());
    }

    #[test]
    fn an_answer_from_something_else_keeps_its_status_and_text() {
        let e = Error::from_answer(502, b"<html>Bad Gateway</html>\n");
        assert_eq!(e.code(), Some("internal"));
        assert!(e.to_string().contains("Bad Gateway"), "{e}");
        let e = Error::from_answer(503, b"");
        assert!(e.is_unavailable());
        assert_eq!(e.to_string(), "HTTP 503 (503 unavailable)");
        let long = "x".repeat(10_000);
        let e = Error::from_answer(500, long.as_bytes());
        assert!(e.to_string().len() < 600);
    }
}
