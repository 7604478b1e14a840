//! The protocol's pure decisions: what a client does with each answer, and how a worker reads
//! its event stream. The failover loop (`client.rs`) and the worker (`worker/session.rs`) act on
//! these; the conformance kit (`sdk/conformance`) turns them into language-neutral vectors that
//! every other SDK is tested against. So they take no I/O and no clock: bytes and statuses in,
//! decisions out.

use std::collections::BTreeSet;
use std::time::Duration;

use linkloom_wire::worker::{TaskAssignment, WorkerEvent};
use reqwest::Method;

use crate::Error;

/// The longest a line of the worker event stream may be (a task's input is at most 64 KiB).
pub const MAX_EVENT_LINE_BYTES: usize = 4 * 1024 * 1024;
/// The shortest heartbeat interval a worker uses, whatever the node announces.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(50);
/// The longest a `Retry-After` makes a client wait before sending again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// What the failover loop does next with the outcome of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A 2xx: the answer goes to the caller.
    Success,
    /// Wait, then send the same request (same idempotency key) to the same server: 429.
    Retry,
    /// Send the same request (same idempotency key) to the next server: 503, no connection, or
    /// a connection lost after sending a request that applies once however often it is sent.
    Failover,
    /// A worker's call about an attempt that is no longer its own: stop it, report nothing.
    StaleAttempt,
    /// The token is missing or wrong (401) or lacks the role (403): never retried.
    Auth,
    /// The cluster's answer, or a failure that may have applied a request that is not safe to
    /// repeat: never retried.
    Fatal,
}

impl Disposition {
    /// The name the conformance vectors use.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Success => "success",
            Disposition::Retry => "retry",
            Disposition::Failover => "failover",
            Disposition::StaleAttempt => "stale_attempt",
            Disposition::Auth => "auth",
            Disposition::Fatal => "fatal",
        }
    }
}

/// How one send of a request ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The server answered.
    Answer {
        status: u16,
        body: &'a [u8],
        /// The `Retry-After` header, as sent.
        retry_after: Option<&'a str>,
    },
    /// No connection could be opened: nothing was sent.
    Refused,
    /// The connection broke after the request was sent: it may have been applied.
    Reset,
    /// No answer in time: it may have been applied.
    Timeout,
}

/// What a request is, as far as retrying it goes.
#[derive(Debug, Clone, Copy)]
pub struct RequestKind<'a> {
    pub method: &'a Method,
    /// It carries an `Idempotency-Key`, so the cluster applies it once however often it is sent.
    pub has_idempotency_key: bool,
    /// A worker's heartbeat, completion or release of one attempt: there a 404 (the attempt is
    /// gone) means the same as `409 stale_attempt`.
    pub attempt_call: bool,
}

impl RequestKind<'_> {
    /// Sending it twice does no more than sending it once.
    pub fn is_repeatable(&self) -> bool {
        matches!(*self.method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE) || self.has_idempotency_key
    }
}

/// What to do with `outcome` of `request`.
///
/// ```
/// use linkloom::protocol::{classify, Disposition, Outcome, RequestKind};
/// let post = RequestKind { method: &linkloom::Method::POST, has_idempotency_key: true, attempt_call: false };
/// let busy = Outcome::Answer { status: 503, body: b"", retry_after: None };
/// assert_eq!(classify(&post, &busy), Disposition::Failover);
/// assert_eq!(classify(&post, &Outcome::Reset), Disposition::Failover);
/// let bare = RequestKind { has_idempotency_key: false, ..post };
/// assert_eq!(classify(&bare, &Outcome::Reset), Disposition::Fatal);
/// ```
pub fn classify(request: &RequestKind<'_>, outcome: &Outcome<'_>) -> Disposition {
    match *outcome {
        Outcome::Answer { status: 200..=299, .. } => Disposition::Success,
        Outcome::Answer { status: 429, .. } => Disposition::Retry,
        Outcome::Answer { status: 503, .. } => Disposition::Failover,
        Outcome::Answer { status: 401 | 403, .. } => Disposition::Auth,
        Outcome::Answer { status: 404, .. } if request.attempt_call => Disposition::StaleAttempt,
        Outcome::Answer { status: 409, body, .. } => {
            if Error::from_answer(409, body).is_stale_attempt() {
                Disposition::StaleAttempt
            } else {
                Disposition::Fatal
            }
        }
        Outcome::Answer { .. } => Disposition::Fatal,
        Outcome::Refused => Disposition::Failover,
        Outcome::Reset | Outcome::Timeout if request.is_repeatable() => Disposition::Failover,
        Outcome::Reset | Outcome::Timeout => Disposition::Fatal,
    }
}

/// How long a `Retry-After` header asks to wait (delta-seconds only; an HTTP date is not used),
/// at most [`MAX_RETRY_AFTER`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(linkloom::protocol::retry_after(Some("2")), Some(Duration::from_secs(2)));
/// assert_eq!(linkloom::protocol::retry_after(Some("3600")), Some(Duration::from_secs(10)));
/// assert_eq!(linkloom::protocol::retry_after(Some("soon")), None);
/// ```
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let secs: u64 = header?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The kind of error a caller sees, as the conformance vectors name it.
///
/// ```
/// let e = linkloom::Error::Api { status: 422, code: "invalid_spec".into(), message: String::new(), details: Default::default() };
/// assert_eq!(linkloom::protocol::error_kind(&e), "invalid");
/// ```
pub fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Api { status, code, .. } => match status {
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 if code == "stale_attempt" => "stale_attempt",
            409 => "conflict",
            400 | 422 => "invalid",
            413 => "too_large",
            429 => "rate_limited",
            503 => "unavailable",
            500..=599 => "server",
            _ => "invalid",
        },
        Error::Connect { .. } => "connect",
        Error::Timeout { .. } => "timeout",
        Error::Http(_) => "transport",
        Error::Decode(_) => "decode",
        Error::Invalid(_) => "invalid",
    }
}

/// What a worker does with one line (or the end) of its event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamAction {
    /// The connection is registered: keep the session (for drain) and the timing.
    Welcome { session: String, node_id: u64, heartbeat: Duration, lease: Duration },
    /// Run this attempt.
    Run(Box<TaskAssignment>),
    /// A task line for an attempt that already runs here (a redelivery): do nothing.
    AlreadyRunning { attempt_id: String },
    /// Stop this running attempt and report nothing.
    Cancel { attempt_id: String, reason: String },
    /// Nothing to do; `why` says which kind of line it was.
    Ignore { why: Ignored },
    /// End this connection and connect again (the next server first).
    Reconnect { why: ReconnectReason },
}

/// Lines a worker skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    Ping,
    Blank,
    /// A `type` this SDK does not know (a newer node).
    UnknownType,
    /// Not a JSON object of a known shape.
    Malformed,
    /// A cancellation of an attempt not running here.
    CancelUnknown,
}

impl Ignored {
    /// The name the conformance vectors use.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Ping => "ping",
            Ignored::Blank => "blank",
            Ignored::UnknownType => "unknown_type",
            Ignored::Malformed => "malformed",
            Ignored::CancelUnknown => "cancel_unknown",
        }
    }
}

/// Why a worker ends a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconnectReason {
    /// The node said it closes the connection (`closing`).
    Closing(String),
    /// More than [`StreamDecoder`]'s line limit arrived without a newline.
    LineTooLong,
    /// The node closed the stream.
    Eof,
}

impl ReconnectReason {
    /// The name the conformance vectors use.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReconnectReason::Closing(_) => "closing",
            ReconnectReason::LineTooLong => "line_too_long",
            ReconnectReason::Eof => "eof",
        }
    }
}

/// Splits the stream's bytes into lines (chunks may cut a line anywhere) and decides what each
/// asks for, given the attempts the worker runs. The caller adds an attempt to `running` when it
/// starts it ([`StreamAction::Run`] does not, so a caller that cannot start it stays truthful).
///
/// ```
/// use std::collections::BTreeSet;
/// use linkloom::protocol::{StreamAction, StreamDecoder};
/// let mut decoder = StreamDecoder::new(linkloom::protocol::MAX_EVENT_LINE_BYTES);
/// let running = BTreeSet::new();
/// assert!(decoder.push(b"{\"type\":\"pi", &running).is_empty());
/// let actions = decoder.push(b"ng\"}\n", &running);
/// assert!(matches!(actions[..], [StreamAction::Ignore { .. }]));
/// ```
#[derive(Debug)]
pub struct StreamDecoder {
    buffer: Vec<u8>,
    max_line_bytes: usize,
    /// A line was too long: the connection is over, nothing more is read.
    ended: bool,
}

impl StreamDecoder {
    /// A decoder that ends the connection at a line longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> StreamDecoder {
        StreamDecoder { buffer: Vec::new(), max_line_bytes, ended: false }
    }

    /// The actions for the complete lines `chunk` finishes. After a
    /// [`StreamAction::Reconnect`], nothing more.
    pub fn push(&mut self, chunk: &[u8], running: &BTreeSet<String>) -> Vec<StreamAction> {
        let mut actions = Vec::new();
        if self.ended {
            return actions;
        }
        self.buffer.extend_from_slice(chunk);
        // Attempts started by earlier lines of this same chunk count as running.
        let mut started: BTreeSet<String> = BTreeSet::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let action = decide(&line, running, &started);
            if let StreamAction::Run(task) = &action {
                started.insert(task.attempt_id.clone());
            }
            let stop = matches!(action, StreamAction::Reconnect { .. });
            actions.push(action);
            if stop {
                self.ended = true;
                self.buffer.clear();
                return actions;
            }
        }
        if self.buffer.len() > self.max_line_bytes {
            self.ended = true;
            self.buffer.clear();
            actions.push(StreamAction::Reconnect { why: ReconnectReason::LineTooLong });
        }
        actions
    }

    /// The action for the end of the stream (a last line without a newline is dropped: the node
    /// always ends its lines).
    pub fn finish(&mut self) -> Option<StreamAction> {
        if self.ended {
            return None;
        }
        self.ended = true;
        self.buffer.clear();
        Some(StreamAction::Reconnect { why: ReconnectReason::Eof })
    }
}

fn decide(line: &[u8], running: &BTreeSet<String>, started: &BTreeSet<String>) -> StreamAction {
    if line.iter().all(u8::is_ascii_whitespace) {
        return StreamAction::Ignore { why: Ignored::Blank };
    }
    let event = match serde_json::from_slice::<WorkerEvent>(line) {
        Ok(event) => event,
        Err(_) => return StreamAction::Ignore { why: Ignored::Malformed },
    };
    let runs = |id: &str| running.contains(id) || started.contains(id);
    match event {
        WorkerEvent::Welcome { session, node_id, heartbeat_interval_ms, lease_ms } => StreamAction::Welcome {
            session,
            node_id,
            heartbeat: Duration::from_millis(heartbeat_interval_ms).max(MIN_HEARTBEAT),
            lease: Duration::from_millis(lease_ms),
        },
        WorkerEvent::Task(task) if runs(&task.attempt_id) => {
            StreamAction::AlreadyRunning { attempt_id: task.attempt_id }
        }
        WorkerEvent::Task(task) => StreamAction::Run(Box::new(task)),
        WorkerEvent::Cancel { attempt_id, reason } if runs(&attempt_id) => StreamAction::Cancel { attempt_id, reason },
        WorkerEvent::Cancel { .. } => StreamAction::Ignore { why: Ignored::CancelUnknown },
        WorkerEvent::Ping => StreamAction::Ignore { why: Ignored::Ping },
        WorkerEvent::Closing { reason } => StreamAction::Reconnect { why: ReconnectReason::Closing(reason) },
        _ => StreamAction::Ignore { why: Ignored::UnknownType },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]], running: &[&str]) -> Vec<StreamAction> {
        let running: BTreeSet<String> = running.iter().map(|s| s.to_string()).collect();
        let mut decoder = StreamDecoder::new(64);
        let mut actions: Vec<StreamAction> = chunks.iter().flat_map(|c| decoder.push(c, &running)).collect();
        actions.extend(decoder.finish());
        actions
    }

    #[test]
    fn a_line_too_long_ends_the_connection_and_nothing_follows() {
        let actions = decode(&[&[b'x'; 65], b"\n{\"type\":\"ping\"}\n"], &[]);
        assert_eq!(actions, vec![StreamAction::Reconnect { why: ReconnectReason::LineTooLong }]);
    }

    #[test]
    fn closing_ends_the_connection_even_mid_chunk() {
        let actions = decode(&[b"{\"type\":\"closing\",\"reason\":\"bye\"}\n{\"type\":\"ping\"}\n"], &[]);
        assert_eq!(actions, vec![StreamAction::Reconnect { why: ReconnectReason::Closing("bye".into()) }]);
    }

    #[test]
    fn a_task_delivered_twice_in_one_chunk_runs_once() {
        let task = br#"{"type":"task","attempt_id":"4","attempt":1,"execution_id":"e","workflow_id":"w","task_id":"t","queue":"q","input":{},"params":{},"lease_expires_at":"2026-01-01T00:00:00Z","deadline":null}"#;
        let mut chunk = task.to_vec();
        chunk.push(b'\n');
        chunk.extend_from_slice(task);
        chunk.push(b'\n');
        let running = BTreeSet::new();
        let mut decoder = StreamDecoder::new(MAX_EVENT_LINE_BYTES);
        let actions = decoder.push(&chunk, &running);
        assert!(matches!(actions[0], StreamAction::Run(_)));
        assert_eq!(actions[1], StreamAction::AlreadyRunning { attempt_id: "4".into() });
    }

    #[test]
    fn only_429_waits_on_the_same_server_and_only_repeatable_requests_survive_a_reset() {
        let get = RequestKind { method: &Method::GET, has_idempotency_key: false, attempt_call: false };
        let post = RequestKind { method: &Method::POST, has_idempotency_key: false, attempt_call: false };
        let answer = |status| Outcome::Answer { status, body: b"", retry_after: None };
        assert_eq!(classify(&get, &answer(429)), Disposition::Retry);
        assert_eq!(classify(&get, &answer(500)), Disposition::Fatal);
        assert_eq!(classify(&get, &Outcome::Timeout), Disposition::Failover);
        assert_eq!(classify(&post, &Outcome::Timeout), Disposition::Fatal);
        assert_eq!(classify(&post, &Outcome::Refused), Disposition::Failover);
        let heartbeat = RequestKind { attempt_call: true, ..post };
        assert_eq!(classify(&heartbeat, &answer(404)), Disposition::StaleAttempt);
        assert_eq!(classify(&post, &answer(404)), Disposition::Fatal);
    }
}
