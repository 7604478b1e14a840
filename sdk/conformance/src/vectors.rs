//! The vectors: cases fed through the Rust SDK's own functions, written down as JSON so every
//! other SDK can be held to the same answers. Nothing here decides an expected value by hand;
//! each `expect` is what the Rust implementation computed for the case's inputs.

use std::collections::BTreeSet;

use linkloom::protocol::{
    classify, error_kind, Disposition, Outcome, RequestKind, StreamAction, StreamDecoder, MAX_EVENT_LINE_BYTES,
};
use linkloom::signature::{sign, verify, SignatureError, Signed, Verifier};
use linkloom::{Error, Method, TaskAnswer, TaskRequest};
use serde_json::{json, Value};

/// Every vector file: its name under `vectors/` and its content.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("signatures.json", signatures()),
        ("errors.json", errors()),
        ("stream.json", stream()),
        ("task_answers.json", task_answers()),
    ]
}

fn file(about: &str, cases: Vec<Value>) -> Value {
    json!({"version": 1, "about": about, "generated_by": "cargo test -p linkloom-conformance --test vectors (LOOM_BLESS=1 rewrites)", "cases": cases})
}

/// Standard base64 with padding (RFC 4648 §4): how the vectors carry bytes.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Signatures

struct SignatureCase {
    name: &'static str,
    keys: Vec<(&'static str, &'static str)>,
    tolerance: i64,
    now: i64,
    header: Option<String>,
    method: &'static str,
    url: &'static str,
    idempotency_key: &'static str,
    body: Vec<u8>,
}

fn signatures() -> Value {
    const T: i64 = 1_700_000_000;
    let url = "https://billing.example/api/charge?region=eu";
    let key = "report:20260101T060000Z/charge/1";
    let body =
        br#"{"execution_id":"report:20260101T060000Z","task_id":"charge","attempt":1,"input":{"cents":1250}}"#.to_vec();
    let request = Signed { method: "POST", url, idempotency_key: key, body: &body };
    let signed = |kid: &str, secret: &str, at: i64| sign(kid, secret.as_bytes(), at, &request);
    let base = |name: &'static str, header: Option<String>| SignatureCase {
        name,
        keys: vec![("default", "s3cret-default")],
        tolerance: 300,
        now: T + 10,
        header,
        method: "POST",
        url,
        idempotency_key: key,
        body: body.clone(),
    };
    let good = signed("default", "s3cret-default", T);
    let hex_of = |header: &str| header.rsplit_once("v1=").map(|(_, h)| h.to_string()).unwrap_or_default();
    let binary: Vec<u8> = (0u8..=255).collect();
    let binary_request = Signed { method: "PUT", url, idempotency_key: "", body: &binary };
    let mut cases = vec![
        base("valid", Some(good.clone())),
        SignatureCase {
            keys: vec![("2026-07", "old secret"), ("2027-01", "new secret")],
            ..base("valid with the new key of a rotation", Some(signed("2027-01", "new secret", T)))
        },
        SignatureCase {
            keys: vec![("2026-07", "old secret"), ("2027-01", "new secret")],
            ..base("valid with the old key of a rotation", Some(signed("2026-07", "old secret", T)))
        },
        SignatureCase {
            keys: vec![("2026-07", "old secret"), ("2027-01", "new secret")],
            ..base("signed with the right secret under the other key's name", Some(signed("2026-07", "new secret", T)))
        },
        SignatureCase { now: T + 300, ..base("exactly at the tolerance, late", Some(good.clone())) },
        SignatureCase { now: T + 301, ..base("one second past the tolerance, late", Some(good.clone())) },
        SignatureCase { now: T - 300, ..base("exactly at the tolerance, early (clock skew)", Some(good.clone())) },
        SignatureCase { now: T - 301, ..base("one second past the tolerance, early", Some(good.clone())) },
        SignatureCase { tolerance: 0, now: T, ..base("a tolerance of zero, same second", Some(good.clone())) },
        base("a key this verifier does not hold", Some(signed("2099-01", "s3cret-default", T))),
        base("the wrong secret", Some(signed("default", "not the secret", T))),
        SignatureCase {
            body: {
                let mut b = body.clone();
                b.push(b' ');
                b
            },
            ..base("one byte added to the body", Some(good.clone()))
        },
        SignatureCase {
            url: "https://billing.example/api/refund?region=eu",
            ..base("another URL", Some(good.clone()))
        },
        SignatureCase { method: "PUT", ..base("another method", Some(good.clone())) },
        SignatureCase { method: "post", ..base("the method in lower case is the same method", Some(good.clone())) },
        SignatureCase {
            idempotency_key: "report:20260101T060000Z/charge/2",
            ..base("another attempt's key", Some(good.clone()))
        },
        base(
            "the timestamp changed, signature kept",
            Some(good.replacen(&format!("t={T}"), &format!("t={}", T + 1), 1)),
        ),
        base("spaces after the commas", Some(good.replace(',', ", "))),
        base("fields in another order", Some(format!("v1={},kid=default,t={T}", hex_of(&good)))),
        base("an unknown field is ignored", Some(format!("{good},v2=abc"))),
        base(
            "two v1 values, the second matches",
            Some(format!("t={T},kid=default,v1={},v1={}", "0".repeat(64), hex_of(&good))),
        ),
        SignatureCase {
            keys: vec![("a", "first"), ("b", "s3cret-default")],
            ..base("no kid: every key is tried", Some(format!("t={T},v1={}", hex_of(&good))))
        },
        base("upper-case hex", Some(format!("t={T},kid=default,v1={}", hex_of(&good).to_uppercase()))),
        base("no header", None),
        base("an empty header", Some(String::new())),
        base("no timestamp", Some(format!("kid=default,v1={}", hex_of(&good)))),
        base("a timestamp that is not a number", Some(format!("t=soon,kid=default,v1={}", hex_of(&good)))),
        base("no v1", Some(format!("t={T},kid=default"))),
        base("a v1 that is not 64 hex digits", Some(format!("t={T},kid=default,v1=abc"))),
        base("a part without =", Some(format!("t={T},kid=default,v1={},junk", hex_of(&good)))),
        SignatureCase {
            method: "PUT",
            idempotency_key: "",
            body: binary.clone(),
            ..base("a binary body and no idempotency key", Some(sign("default", b"s3cret-default", T, &binary_request)))
        },
        SignatureCase {
            body: Vec::new(),
            ..base("an empty body", Some(sign("default", b"s3cret-default", T, &Signed { body: b"", ..request })))
        },
    ];
    cases.sort_by_key(|c| c.name);
    let cases = cases
        .into_iter()
        .map(|c| {
            let keys: Vec<(&str, &[u8])> = c.keys.iter().map(|(k, s)| (*k, s.as_bytes())).collect();
            let signed = Signed { method: c.method, url: c.url, idempotency_key: c.idempotency_key, body: &c.body };
            let expect = match &c.header {
                None => {
                    // The SDK's verifier refuses a request without the header before anything else.
                    let verifier = c.keys.iter().fold(Verifier::new(), |v, (k, s)| v.key(*k, *s));
                    assert!(verifier.verify_at(None, &signed, c.now).is_err());
                    json!({"valid": false, "error": "missing"})
                }
                Some(header) => match verify(&keys, header, &signed, c.now, c.tolerance) {
                    Ok(t) => json!({"valid": true, "timestamp": t}),
                    Err(e) => json!({"valid": false, "error": match e {
                        SignatureError::Malformed(_) => "malformed",
                        SignatureError::Stale { .. } => "stale",
                        SignatureError::UnknownKey(_) => "unknown_key",
                        SignatureError::Mismatch => "mismatch",
                    }}),
                },
            };
            json!({
                "name": c.name,
                "keys": c.keys.iter().map(|(k, s)| json!({"kid": k, "secret": s})).collect::<Vec<_>>(),
                "tolerance_secs": c.tolerance,
                "now": c.now,
                "header": c.header,
                "method": c.method,
                "url": c.url,
                "idempotency_key": c.idempotency_key,
                "body_base64": base64(&c.body),
                "expect": expect,
            })
        })
        .collect();
    file("Verifying X-Loom-Signature (docs/signatures.md). Secrets are UTF-8 text used as raw bytes.", cases)
}

// ---------------------------------------------------------------------------------------------
// Error classification

fn errors() -> Value {
    let error_body =
        |code: &str, message: &str| json!({"error": {"code": code, "message": message, "details": null}}).to_string();
    // (name, method, has key, attempt call, outcome)
    enum O {
        Answer(u16, String, Option<&'static str>),
        Refused,
        Reset,
        Timeout,
    }
    let answers: Vec<(&str, u16, String, Option<&'static str>)> = vec![
        ("200 with a JSON body", 200, r#"{"id":"x"}"#.into(), None),
        ("202 accepted", 202, r#"{"execution_id":"x"}"#.into(), None),
        ("204 with no body", 204, String::new(), None),
        ("400 a malformed request", 400, error_body("bad_request", "the body is not JSON"), None),
        ("401 no or wrong token", 401, error_body("unauthorized", "a valid bearer token is required"), None),
        ("403 the token lacks the role", 403, error_body("forbidden", "the worker role cannot trigger"), None),
        ("404 not found", 404, error_body("not_found", "workflow `x` not found"), None),
        ("409 stale attempt", 409, error_body("stale_attempt", "attempt 41 is not current"), None),
        ("409 another conflict", 409, error_body("execution_finished", "the execution already ended"), None),
        ("413 too large", 413, error_body("too_large", "the body is over 1 MiB"), None),
        ("422 an invalid workflow", 422, json!({"error": {"code": "invalid_spec", "message": "tasks: required", "details": {"problems": [{"path": "tasks", "message": "required"}]}}}).to_string(), None),
        ("422 an idempotency key reused for another request", 422, error_body("idempotency_key_reused", "the key was used for another request"), None),
        ("429 rate limited with Retry-After", 429, error_body("rate_limited", "over 1000 requests/s"), Some("1")),
        ("429 rate limited without Retry-After", 429, error_body("rate_limited", "over 1000 requests/s"), None),
        ("500 internal", 500, error_body("internal", "something broke"), None),
        ("502 from a proxy, not JSON", 502, "<html>Bad Gateway</html>".into(), None),
        ("503 no leader", 503, error_body("unavailable", "no leader yet"), None),
        ("503 with an empty body", 503, String::new(), None),
        ("401 with an empty body", 401, String::new(), None),
        ("403 with an empty body", 403, String::new(), None),
        ("404 with an empty body", 404, String::new(), None),
        ("405 with an empty body", 405, String::new(), None),
        ("409 with an empty body", 409, String::new(), None),
        ("429 with an empty body", 429, String::new(), Some("2")),
        ("500 with an empty body", 500, String::new(), None),
    ];
    let mut cases = Vec::new();
    let requests: [(&str, Method, bool); 3] = [
        ("GET", Method::GET, false),
        ("POST with a key", Method::POST, true),
        ("POST without a key", Method::POST, false),
    ];
    for (label, method, key) in &requests {
        for (name, status, body, retry_after) in &answers {
            cases.push((
                format!("{name}, {label}"),
                method.clone(),
                *key,
                false,
                O::Answer(*status, body.clone(), *retry_after),
            ));
        }
        cases.push((format!("connection refused, {label}"), method.clone(), *key, false, O::Refused));
        cases.push((format!("connection reset after sending, {label}"), method.clone(), *key, false, O::Reset));
        cases.push((format!("no answer in time, {label}"), method.clone(), *key, false, O::Timeout));
    }
    for (name, status, body) in [
        ("heartbeat answered 409 stale attempt", 409, error_body("stale_attempt", "attempt 41 is not current")),
        ("heartbeat answered 404 (the attempt is gone)", 404, error_body("not_found", "attempt 41 not found")),
        ("completion answered 403 (another worker's token)", 403, error_body("forbidden", "not this worker's")),
    ] {
        cases.push((name.to_string(), Method::POST, true, true, O::Answer(status, body, None)));
    }
    let cases = cases
        .into_iter()
        .map(|(name, method, key, attempt_call, outcome)| {
            let kind = RequestKind { method: &method, has_idempotency_key: key, attempt_call };
            let (outcome_json, disposition, error): (Value, Disposition, Value) = match &outcome {
                O::Answer(status, body, retry_after) => {
                    let o = Outcome::Answer { status: *status, body: body.as_bytes(), retry_after: *retry_after };
                    let disposition = classify(&kind, &o);
                    let error = if disposition == Disposition::Success {
                        json!({"kind": null, "code": null, "status": status})
                    } else {
                        let e = Error::from_answer(*status, body.as_bytes());
                        json!({"kind": error_kind(&e), "code": e.code(), "status": status})
                    };
                    (json!({"status": status, "body": body, "retry_after": retry_after}), disposition, error)
                }
                // Transport failures carry no status or code; their kinds are the SDK error
                // variants the failover loop produces for them (`Connect`, `Http`, `Timeout`).
                O::Refused => (
                    json!({"transport": "refused"}),
                    classify(&kind, &Outcome::Refused),
                    json!({"kind": "connect", "code": null, "status": null}),
                ),
                O::Reset => (
                    json!({"transport": "reset"}),
                    classify(&kind, &Outcome::Reset),
                    json!({"kind": "transport", "code": null, "status": null}),
                ),
                O::Timeout => (
                    json!({"transport": "timeout"}),
                    classify(&kind, &Outcome::Timeout),
                    json!({"kind": "timeout", "code": null, "status": null}),
                ),
            };
            let mut expect = error;
            expect["disposition"] = json!(disposition.as_str());
            json!({
                "name": name,
                "request": {"method": method.as_str(), "idempotency_key": key, "attempt_call": attempt_call},
                "outcome": outcome_json,
                "expect": expect,
            })
        })
        .collect();
    file(
        "What a client does with each outcome of one send, and the error a caller sees (sdk/conformance/README.md §1).",
        cases,
    )
}

// ---------------------------------------------------------------------------------------------
// The worker event stream

/// A stream case: name, line limit, attempts running before it, the chunks, how it ends.
type StreamCase = (&'static str, usize, Vec<&'static str>, Vec<Vec<u8>>, &'static str);

fn stream() -> Value {
    let welcome = r#"{"type":"welcome","session":"s-1","node_id":2,"heartbeat_interval_ms":100,"lease_ms":1000}"#;
    let task = |id: &str, input: &str| {
        format!(
            r#"{{"type":"task","attempt_id":"{id}","attempt":1,"execution_id":"wf:20261130T120000Z-1","workflow_id":"wf","task_id":"t","queue":"demo","input":{input},"params":{{"p":1}},"lease_expires_at":"2026-11-30T12:00:10Z","deadline":null}}"#
        )
    };
    let line = |s: &str| format!("{s}\n");
    let split_at = |s: String, points: &[usize]| -> Vec<String> {
        let mut out = Vec::new();
        let mut last = 0;
        for p in points {
            out.push(s[last..*p].to_string());
            last = *p;
        }
        out.push(s[last..].to_string());
        out
    };
    let bytes = |chunks: Vec<String>| -> Vec<Vec<u8>> { chunks.into_iter().map(String::into_bytes).collect() };
    let task1 = task("41", r#"{"x":1}"#);
    let both = format!("{}{}", line(welcome), line(&task1));
    let mut cases: Vec<StreamCase> = vec![
        ("welcome then a task", MAX_EVENT_LINE_BYTES, vec![], bytes(vec![both.clone()]), "open"),
        ("a line split across three chunks", MAX_EVENT_LINE_BYTES, vec![], bytes(split_at(both.clone(), &[17, welcome.len() + 30])), "open"),
        ("every byte its own chunk", MAX_EVENT_LINE_BYTES, vec![], both.bytes().map(|b| vec![b]).collect(), "open"),
        ("CRLF line ends", MAX_EVENT_LINE_BYTES, vec![], bytes(vec![format!("{welcome}\r\n{task1}\r\n")]), "open"),
        ("blank lines and pings", MAX_EVENT_LINE_BYTES, vec![], bytes(vec![format!("\n  \n{}\n{{\"type\":\"ping\"}}\n", welcome)]), "open"),
        (
            "unknown types and unknown fields",
            MAX_EVENT_LINE_BYTES,
            vec![],
            bytes(vec![format!(
                "{}\n{{\"type\":\"rebalance\",\"hint\":3}}\n{}\n",
                welcome,
                task("42", r#"{"y":[1,2]}"#).replacen("{\"type\":\"task\"", "{\"type\":\"task\",\"priority\":9,\"trace\":{\"id\":\"ab\"}", 1)
            )]),
            "open",
        ),
        (
            "malformed lines are skipped and the stream goes on",
            MAX_EVENT_LINE_BYTES,
            vec![],
            bytes(vec![format!("{welcome}\nnot json\n[1,2]\n{{\"type\":\"task\",\"attempt_id\":\"9\"}}\n\"text\"\n{{\"type\":7}}\n{task1}\n")]),
            "open",
        ),
        (
            "a task delivered twice runs once",
            MAX_EVENT_LINE_BYTES,
            vec![],
            bytes(vec![format!("{welcome}\n{task1}\n"), format!("{task1}\n")]),
            "open",
        ),
        (
            "after a reconnect, an attempt still running is not started again",
            MAX_EVENT_LINE_BYTES,
            vec!["7"],
            bytes(vec![format!("{welcome}\n{}\n{}\n", task("7", "{}"), task("8", "{}"))]),
            "open",
        ),
        (
            "cancel of a running attempt, and of one not running here",
            MAX_EVENT_LINE_BYTES,
            vec!["7"],
            bytes(vec![format!(
                "{welcome}\n{task1}\n{{\"type\":\"cancel\",\"attempt_id\":\"41\",\"reason\":\"the execution was cancelled\"}}\n{{\"type\":\"cancel\",\"attempt_id\":\"7\",\"reason\":\"timed out\"}}\n{{\"type\":\"cancel\",\"attempt_id\":\"99\",\"reason\":\"lost\"}}\n"
            )]),
            "open",
        ),
        (
            "closing ends the connection; lines after it are not read",
            MAX_EVENT_LINE_BYTES,
            vec![],
            bytes(vec![format!("{welcome}\n{{\"type\":\"closing\",\"reason\":\"the node stops\"}}\n{task1}\n")]),
            "open",
        ),
        ("the node closes the stream", MAX_EVENT_LINE_BYTES, vec![], bytes(vec![line(welcome)]), "eof"),
        ("a last line without a newline is dropped at the end", MAX_EVENT_LINE_BYTES, vec![], bytes(vec![format!("{welcome}\n{task1}")]), "eof"),
        (
            "a line longer than the limit ends the connection",
            256,
            vec![],
            bytes(vec![format!("{welcome}\n"), "x".repeat(200), "x".repeat(100), line(&task1)]),
            "open",
        ),
        (
            "a line exactly at the limit is read",
            512,
            vec![],
            bytes(vec![format!("{welcome}\n"), format!("{task1}{}", " ".repeat(512 - task1.len())), "\n".into()]),
            "open",
        ),
        (
            "a heartbeat interval below 50 ms is raised to 50",
            MAX_EVENT_LINE_BYTES,
            vec![],
            bytes(vec![line(&welcome.replace("\"heartbeat_interval_ms\":100", "\"heartbeat_interval_ms\":5"))]),
            "open",
        ),
        (
            "UTF-8 split inside a character",
            MAX_EVENT_LINE_BYTES,
            vec![],
            {
                // Split between the two bytes of `ë`: neither chunk is valid UTF-8 alone.
                let bytes = format!("{welcome}\n{}\n", task("43", r#"{"name":"Zoë ✓"}"#)).into_bytes();
                let at = bytes.iter().position(|b| *b == 0xC3).map_or(0, |i| i + 1);
                vec![bytes[..at].to_vec(), bytes[at..].to_vec()]
            },
            "open",
        ),
    ];
    cases.sort_by_key(|c| c.0);
    let mut out = Vec::new();
    for (name, max, running, chunk_bytes, end) in cases {
        let mut running_set: BTreeSet<String> = running.iter().map(|s| s.to_string()).collect();
        let mut decoder = StreamDecoder::new(max);
        let mut actions = Vec::new();
        for chunk in &chunk_bytes {
            for action in decoder.push(chunk, &running_set) {
                if let StreamAction::Run(task) = &action {
                    running_set.insert(task.attempt_id.clone());
                }
                actions.push(action_json(&action));
            }
        }
        if end == "eof" {
            actions.extend(decoder.finish().map(|a| action_json(&a)));
        }
        out.push(json!({
            "name": name,
            "max_line_bytes": max,
            "running": running,
            "chunks_base64": chunk_bytes.iter().map(|c| base64(c)).collect::<Vec<_>>(),
            "end": end,
            "expect": actions,
        }));
    }
    file(
        "Decoding the worker event stream (docs/workers.md §1). Chunks are base64 bytes, fed in order; `running` are attempts running before the first chunk; an attempt the decoder says to run counts as running for the lines after it.",
        out,
    )
}

fn action_json(action: &StreamAction) -> Value {
    match action {
        StreamAction::Welcome { session, node_id, heartbeat, lease } => json!({
            "action": "welcome", "session": session, "node_id": node_id,
            "heartbeat_interval_ms": heartbeat.as_millis() as u64, "lease_ms": lease.as_millis() as u64,
        }),
        StreamAction::Run(task) => json!({
            "action": "run", "attempt_id": task.attempt_id, "task_id": task.task_id, "input": task.input,
        }),
        StreamAction::AlreadyRunning { attempt_id } => json!({"action": "already_running", "attempt_id": attempt_id}),
        StreamAction::Cancel { attempt_id, .. } => json!({"action": "cancel", "attempt_id": attempt_id}),
        StreamAction::Ignore { why } => json!({"action": "ignore", "why": why.as_str()}),
        StreamAction::Reconnect { why } => json!({"action": "reconnect", "why": why.as_str()}),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP task answers and requests

fn task_answers() -> Value {
    let mut cases = Vec::new();
    let answers: Vec<(&str, Value, TaskAnswer)> = vec![
        (
            "success with output",
            json!({"outcome": "succeeded", "output": {"rows": 3}}),
            TaskAnswer::succeeded(json!({"rows": 3})),
        ),
        (
            "success with null output becomes an empty object",
            json!({"outcome": "succeeded", "output": null}),
            TaskAnswer::succeeded(Value::Null),
        ),
        (
            "success with logs",
            json!({"outcome": "succeeded", "output": {"ok": true}, "logs": "read 3 rows\n"}),
            TaskAnswer::succeeded(json!({"ok": true})).logs("read 3 rows\n"),
        ),
        (
            "retryable failure",
            json!({"outcome": "failed", "error": "the database is down", "retryable": true}),
            TaskAnswer::failed("the database is down"),
        ),
        (
            "failure that must not be retried, with logs",
            json!({"outcome": "failed", "error": "no such customer", "retryable": false, "logs": "looked up 1\n"}),
            TaskAnswer::failed("no such customer").retryable(false).logs("looked up 1\n"),
        ),
        ("accepted, answered later through the callback", json!({"outcome": "accepted"}), TaskAnswer::accepted()),
    ];
    for (name, answer, built) in answers {
        cases.push(json!({
            "name": name,
            "answer": answer,
            "expect": {"status_code": built.status_code(), "content_type": built.content_type(), "body": built.body()},
        }));
    }
    let requests: Vec<(&str, String)> = vec![
        (
            "a task request with a callback",
            json!({"execution_id": "report:20260101T060000Z", "workflow_id": "report", "task_id": "extract", "attempt": 2,
                   "input": {"region": "eu"}, "params": {"region": "eu"},
                   "callback_url": "http://127.0.0.1:8081/api/v1/tasks/42/callback", "callback_token": "loomcb_3f9a",
                   "deadline": "2026-01-01T06:05:00Z"})
            .to_string(),
        ),
        (
            "a task request without a callback or input",
            json!({"execution_id": "e:1", "workflow_id": "e", "task_id": "t", "attempt": 1}).to_string(),
        ),
        (
            "unknown fields are ignored",
            json!({"execution_id": "e:1", "workflow_id": "e", "task_id": "t", "attempt": 1, "input": {}, "trace_id": "ab", "priority": 3}).to_string(),
        ),
        ("not JSON", "<xml/>".to_string()),
        ("a required field missing", json!({"workflow_id": "e", "task_id": "t", "attempt": 1}).to_string()),
        ("an attempt that is not a number", json!({"execution_id": "e:1", "workflow_id": "e", "task_id": "t", "attempt": "one"}).to_string()),
    ];
    for (name, body) in requests {
        let expect = match TaskRequest::from_slice(body.as_bytes()) {
            Ok(r) => json!({
                "execution_id": r.execution_id(), "workflow_id": r.workflow_id(), "task_id": r.task_id(),
                "attempt": r.attempt(), "attempt_id": r.attempt_id(), "input": r.input(), "params": r.params(),
                "callback_url": r.callback_url(), "deadline": r.deadline(), "idempotency_key": r.idempotency_key(),
            }),
            Err(Error::Decode(_)) => json!({"error": "decode"}),
            Err(e) => json!({"error": e.to_string()}),
        };
        cases.push(json!({"name": name, "request_body": body, "expect": expect}));
    }
    file("HTTP-task backends (docs/tasks.md): the answers a backend sends, and the requests it parses. Compare bodies as JSON.", cases)
}
