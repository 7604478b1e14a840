//! Task logs: `GET /api/v1/executions/{id}/logs`, as text or followed live as server-sent events.
//!
//! A follower keeps, per attempt, the absolute offset of the log it has sent (logs are bounded
//! rings of chunks with absolute offsets, see `AttemptLog`), so each event carries only new
//! text, however the rest changes: an attempt's header shows its status when first sent and is
//! never re-sent because the status moved on, text dropped from the ring before it was read is
//! named rather than skipped silently, and nothing is ever sliced at a byte offset of a string
//! it did not come from.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures::StreamExt;
use linkloom_core::state::{AttemptLog, State as LoomState};
use serde::Deserialize;

use super::ReadOptions;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::ApiState;

/// A log stream ends after this long even if its task has not.
const MAX_FOLLOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize, Default)]
pub(crate) struct LogQuery {
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    follow: Option<bool>,
}

/// A reader's place in an execution's logs (of one task, or of all).
#[derive(Debug)]
struct LogFollower {
    execution_id: String,
    task: Option<String>,
    /// Per attempt id: the offset in its whole log up to which text was sent.
    sent: BTreeMap<u64, u64>,
    /// The attempt whose text was sent last: text of another one needs its header again.
    current: Option<u64>,
    /// Whether what was sent so far ends a line, so a header starts on its own.
    at_line_start: bool,
}

impl LogFollower {
    fn new(execution_id: String, task: Option<String>) -> Self {
        LogFollower { execution_id, task, sent: BTreeMap::new(), current: None, at_line_start: true }
    }

    /// What appeared since the last call (headers of new attempts, new log text), in task then
    /// attempt order; and whether the logs can still grow.
    fn poll(&mut self, s: &LoomState) -> Result<(String, bool), ApiError> {
        let id = &self.execution_id;
        let execution = s.execution(id).ok_or_else(|| ApiError::not_found("execution", id))?;
        if let Some(task) = &self.task {
            if execution.task(task).is_none() {
                return Err(ApiError::not_found("task", &format!("{id}/{task}")));
            }
        }
        let mut out = String::new();
        let mut open = false;
        let only = self.task.clone();
        for run in execution.tasks.iter().filter(|t| only.as_deref().is_none_or(|id| t.id == id)) {
            open |= !run.status.is_terminal();
            for attempt in &run.attempts {
                let position = self.sent.get(&attempt.id).copied();
                let (text, end) = match s.attempt_log(attempt.id) {
                    Some(log) => since(&log, position.unwrap_or(0)),
                    None => (String::new(), 0),
                };
                let header = match position {
                    None => Some(format!("--- {} attempt {} ({}) ---\n", run.id, attempt.n, attempt.status)),
                    Some(_) if !text.is_empty() && self.current != Some(attempt.id) => {
                        Some(format!("--- {} attempt {} (continued) ---\n", run.id, attempt.n))
                    }
                    Some(_) => None,
                };
                if let Some(header) = header {
                    if !self.at_line_start {
                        out.push('\n');
                    }
                    self.push(&mut out, &header);
                    self.current = Some(attempt.id);
                }
                if !text.is_empty() {
                    self.push(&mut out, &text);
                    self.current = Some(attempt.id);
                }
                self.sent.insert(attempt.id, end);
            }
        }
        Ok((out, open && !execution.status.is_terminal()))
    }

    fn push(&mut self, out: &mut String, text: &str) {
        out.push_str(text);
        self.at_line_start = text.ends_with('\n');
    }
}

/// The text of `log` from absolute offset `from` (a chunk boundary: only whole chunks are ever
/// sent), with a marker for bytes dropped from the ring before they were read; and the new end.
fn since(log: &AttemptLog, from: u64) -> (String, u64) {
    let mut text = String::new();
    let first_kept = log.chunks.front().map_or(log.end_offset(), |chunk| chunk.offset);
    if from < first_kept {
        text.push_str(&format!("[... {} earlier bytes dropped ...]\n", first_kept - from));
    }
    for chunk in log.chunks.iter().filter(|chunk| chunk.offset >= from) {
        text.push_str(&chunk.text);
    }
    (text, log.end_offset())
}

/// `GET /api/v1/executions/{id}/logs?task=T[&follow=true]`: text, or server-sent events with
/// `follow=true` (or `Accept: text/event-stream`) until the task ends.
pub(crate) async fn logs(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<HttpResponse, ApiError> {
    ReadOptions::default().barrier(&state).await?;
    let wants_stream = query.follow.unwrap_or(false)
        || headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
    let mut follower = LogFollower::new(id, query.task);
    let (mut text, _) = state.node.state().read(|s| follower.poll(s))?;
    if !wants_stream {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    // One token may follow only so many logs at once; the slot lives as long as the stream.
    let who = caller.name.as_deref().unwrap_or("(open)");
    let Some(slot) = state.http.log_streams.open(who) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyStreams,
            format!(
                "token `{who}` already follows {} logs on this node, the most it may (LOOM_MAX_LOG_STREAMS); \
                 close one, or read without follow",
                state.http.log_streams.max_per_token()
            ),
        ));
    };
    // The first event is what is there now; then each change, until the task ends.
    let started = tokio::time::Instant::now();
    let first = (!text.is_empty()).then_some(text);
    let stream = futures::stream::unfold(
        (state, follower, first, false),
        move |(state, mut follower, first, done)| async move {
            if done {
                return None;
            }
            if let Some(text) = first {
                return Some((Ok::<Event, Infallible>(Event::default().data(text)), (state, follower, None, false)));
            }
            let mut changes = state.node.changes();
            loop {
                let Ok((text, open)) = state.node.state().read(|s| follower.poll(s)) else {
                    return Some((Ok(Event::default().event("end").data("gone")), (state, follower, None, true)));
                };
                if !text.is_empty() {
                    return Some((Ok(Event::default().data(text)), (state, follower, None, false)));
                }
                if !open || started.elapsed() > MAX_FOLLOW {
                    return Some((Ok(Event::default().event("end").data("task ended")), (state, follower, None, true)));
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), changes.changed()).await;
            }
        },
    );
    let stream = stream.map(move |event| {
        let _held = &slot;
        event
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

#[cfg(test)]
mod tests {
    use linkloom_core::limits::Tunable;
    use linkloom_core::spec::parse_yaml;
    use linkloom_core::state::{AttemptResult, Trigger};
    use linkloom_core::{Command, Json, Response};

    use super::*;

    const EXEC: &str = "wf:1";

    /// An execution of two independent shell tasks, `a` and `b`, owned by node 1.
    fn state() -> LoomState {
        let mut s = LoomState::default();
        let spec = parse_yaml(
            "id: wf\ntasks:\n  - {id: a, type: shell, command: 'true'}\n  - {id: b, type: shell, command: 'true'}\n",
        )
        .expect("spec");
        s.apply(Command::PutWorkflow { spec, actor: None, at_ms: 1 });
        s.apply(Command::CreateExecution {
            execution_id: EXEC.into(),
            workflow_id: "wf".into(),
            trigger: Trigger::Manual,
            scheduled_at_ms: None,
            params: Json::null(),
            actor: None,
            at_ms: 2,
        });
        s.apply(Command::AssignExecution { execution_id: EXEC.into(), node_id: 1, at_ms: 3 });
        s
    }

    fn start(s: &mut LoomState, task: &str) -> u64 {
        let started = s.apply(Command::StartAttempt {
            execution_id: EXEC.into(),
            task_id: task.into(),
            node_id: 1,
            worker_id: None,
            lease_expires_at_ms: None,
            callback_token_hash: None,
            at_ms: 4,
        });
        match started {
            Response::AttemptStarted { attempt_id, .. } => attempt_id,
            other => panic!("expected a started attempt, got {other:?}"),
        }
    }

    fn log(s: &mut LoomState, attempt_id: u64, text: &str) {
        s.apply(Command::AppendLog { attempt_id, text: text.into(), at_ms: 5 });
    }

    fn finish(s: &mut LoomState, attempt_id: u64, result: AttemptResult) {
        s.apply(Command::FinishAttempt {
            attempt_id,
            by: linkloom_core::state::Reporter::Owner,
            result,
            logs: None,
            jitter_permille: 0,
            at_ms: 6,
        });
    }

    fn ok() -> AttemptResult {
        AttemptResult::Succeeded { output: Json::null() }
    }

    #[test]
    fn each_poll_sends_only_new_text_however_the_headers_change() {
        let mut s = state();
        let a = start(&mut s, "a");
        let mut follower = LogFollower::new(EXEC.into(), Some("a".into()));
        log(&mut s, a, "waiting\n");
        assert_eq!(follower.poll(&s).unwrap(), ("--- a attempt 1 (running) ---\nwaiting\n".into(), true));
        assert_eq!(follower.poll(&s).unwrap(), (String::new(), true));
        // Its status moves from running to succeeded, which the plain text's header shows: a
        // follower sent the header already and gets nothing more (it used to get the last bytes
        // of the log again, shifted by the header's change of length).
        log(&mut s, a, "ü done");
        assert_eq!(follower.poll(&s).unwrap(), ("ü done".into(), true));
        finish(&mut s, a, ok());
        assert_eq!(follower.poll(&s).unwrap(), (String::new(), false));

        let mut fresh = LogFollower::new(EXEC.into(), Some("a".into()));
        assert_eq!(fresh.poll(&s).unwrap().0, "--- a attempt 1 (succeeded) ---\nwaiting\nü done");
    }

    #[test]
    fn interleaved_attempts_get_their_header_again_and_start_on_a_new_line() {
        let mut s = state();
        let (a, b) = (start(&mut s, "a"), start(&mut s, "b"));
        let mut all = LogFollower::new(EXEC.into(), None);
        log(&mut s, a, "a1");
        assert_eq!(all.poll(&s).unwrap().0, "--- a attempt 1 (running) ---\na1\n--- b attempt 1 (running) ---\n");
        log(&mut s, a, "a2\n");
        log(&mut s, b, "b1\n");
        assert_eq!(
            all.poll(&s).unwrap().0,
            "--- a attempt 1 (continued) ---\na2\n--- b attempt 1 (continued) ---\nb1\n"
        );
        log(&mut s, b, "b2\n");
        assert_eq!(all.poll(&s).unwrap().0, "b2\n");
        // A task's own line that looks like a header is its text, passed on as written.
        log(&mut s, b, "x");
        assert_eq!(all.poll(&s).unwrap().0, "x");
        log(&mut s, b, "--- y ---\n");
        assert_eq!(all.poll(&s).unwrap().0, "--- y ---\n");
    }

    #[test]
    fn text_dropped_before_it_was_read_is_named() {
        let mut s = state();
        let limits = Tunable { max_log_bytes_per_attempt: 8, ..Tunable::default() };
        s.apply(Command::SetLimits { limits, actor: None, at_ms: 3 });
        let a = start(&mut s, "a");
        let mut follower = LogFollower::new(EXEC.into(), Some("a".into()));
        log(&mut s, a, "1234\n");
        assert_eq!(follower.poll(&s).unwrap().0, "--- a attempt 1 (running) ---\n1234\n");
        log(&mut s, a, "5678\n");
        log(&mut s, a, "9abc\n");
        assert_eq!(follower.poll(&s).unwrap().0, "[... 5 earlier bytes dropped ...]\n9abc\n");
    }

    #[test]
    fn a_retry_adds_a_new_attempt_with_its_own_header() {
        let mut s = state();
        let a = start(&mut s, "a");
        let mut follower = LogFollower::new(EXEC.into(), Some("a".into()));
        log(&mut s, a, "first try");
        follower.poll(&s).unwrap();
        let b = start(&mut s, "b");
        finish(&mut s, b, ok());
        finish(&mut s, a, AttemptResult::Failed { error: "exit 1".into(), retryable: false });
        let retried = s.apply(Command::RetryExecution { execution_id: EXEC.into(), actor: None, at_ms: 7 });
        assert!(matches!(retried, Response::ExecutionReopened { .. }), "{retried:?}");
        let again = start(&mut s, "a");
        log(&mut s, again, "second try\n");
        assert_eq!(follower.poll(&s).unwrap().0, "\n--- a attempt 2 (running) ---\nsecond try\n");
    }

    #[test]
    fn unknown_executions_and_tasks_are_named() {
        let s = state();
        let missing = LogFollower::new("wf:9".into(), None).poll(&s).unwrap_err();
        assert_eq!((missing.status.as_u16(), missing.code), (404, ErrorCode::NotFound));
        assert!(missing.message.contains("wf:9"), "{missing:?}");
        let task = LogFollower::new(EXEC.into(), Some("zzz".into())).poll(&s).unwrap_err();
        assert!(task.message.contains("wf:1/zzz"), "{task:?}");
    }
}
