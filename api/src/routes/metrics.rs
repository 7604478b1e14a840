//! `GET /metrics`: this node's measurements in Prometheus text format — Raft, the engine, HTTP,
//! and counts read from the replicated state it has applied.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use linkloom_core::metrics::Exposition;
use linkloom_core::state::{AttemptStatus, ExecutionStatus};

use crate::ApiState;

pub(crate) async fn serve(State(state): State<ApiState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&state))
}

/// The whole page.
pub(crate) fn render(state: &ApiState) -> String {
    let mut out = Exposition::new();
    out.gauge(
        "loom_node_info",
        "This node's id as a label; always 1.",
        &[("node_id", &state.node.id().to_string())],
        1.0,
    );
    out.gauge(
        "loom_auth_enabled",
        "1 if requests need a token (LOOM_ADMIN_TOKEN is set), 0 if the node runs open.",
        &[],
        f64::from(u8::from(state.auth.enabled())),
    );
    state.node.render_metrics(&mut out);
    if let Some(engine) = &state.engine {
        engine.render_metrics(&mut out);
    }
    render_state(state, &mut out);
    state.http.render(&mut out);
    render_process(&mut out);
    out.finish()
}

/// The process's memory and descriptors, under the names Prometheus client libraries use, so
/// the usual dashboards and alerts find them. Linux only: elsewhere the families are absent.
fn render_process(out: &mut Exposition) {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        if let Some(rss) = kib("VmRSS:") {
            out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", &[], (rss * 1024) as f64);
        }
        if let Some(size) = kib("VmSize:") {
            out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", &[], (size * 1024) as f64);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.gauge("process_open_fds", "Open file descriptors.", &[], fds.count() as f64);
    }
}

fn render_state(state: &ApiState, out: &mut Exposition) {
    let now = state.clock.now_ms();
    // Unfinished executions are walked; the finished ones are counted by the history index, so a
    // scrape costs what is running, not everything kept.
    let ((executions, attempts, kept, workflows, workers, tokens), tables) = state.node.state().read(|s| {
        let kept = s.kept();
        let mut executions: BTreeMap<ExecutionStatus, u64> = kept.finished_statuses.clone();
        let mut attempts: BTreeMap<AttemptStatus, u64> = kept.finished_attempts.clone();
        for e in s.unfinished_executions() {
            *executions.entry(e.status).or_default() += 1;
            for a in e.tasks.iter().flat_map(|t| &t.attempts) {
                *attempts.entry(a.status).or_default() += 1;
            }
        }
        let workflows = s.workflows_after(None).count();
        let workers = s.workers().filter(|w| w.is_live(now)).count();
        let limits = s.limits();
        let queued = s.queued_worker_tasks(now);
        let oldest = queued.iter().map(|t| t.ready_since_ms).min();
        let waiting = (queued.len(), oldest.map(|t| (now - t).max(0)));
        let tables = (s.request_tables(), s.events().size());
        ((executions, attempts, (kept, limits, waiting), workflows, workers, s.tokens().count()), tables)
    });
    let (tables, (events_remembered, events_forgotten_early, events_accepted)) = tables;
    out.gauge(
        "loom_events_remembered",
        "Events remembered by id for the event window (a repeat within it starts nothing).",
        &[],
        events_remembered as f64,
    );
    out.counter(
        "loom_events_accepted_total",
        "Events accepted since the cluster began (repeats not counted).",
        &[],
        events_accepted,
    );
    out.counter(
        "loom_events_forgotten_early_total",
        "Events forgotten before their window ended because the event log was full.",
        &[],
        events_forgotten_early,
    );
    let (kept, limits, (waiting, oldest_waiting_ms)) = kept;
    out.gauge(
        "loom_worker_tasks_waiting",
        "Ready worker tasks no worker has taken yet, over every queue (GET /api/v1/queues splits them).",
        &[],
        waiting as f64,
    );
    out.gauge(
        "loom_worker_task_oldest_waiting_seconds",
        "How long the oldest ready worker task has waited for a worker (0 when none waits).",
        &[],
        oldest_waiting_ms.unwrap_or(0) as f64 / 1000.0,
    );
    out.gauge(
        "loom_kept_log_bytes",
        "Bytes of attempt logs kept (max_kept_log_bytes bounds those of finished executions).",
        &[],
        kept.log_bytes as f64,
    );
    out.gauge(
        "loom_finished_executions_in_memory",
        "Finished executions held in memory: finished since the last snapshot; the rest are on disk.",
        &[],
        kept.finished_in_memory as f64,
    );
    for (name, value) in [
        ("max_kept_executions", limits.max_kept_executions),
        ("max_kept_executions_per_workflow", limits.max_kept_executions_per_workflow),
        ("max_kept_log_bytes", limits.max_kept_log_bytes),
        ("max_finished_age_secs", limits.max_finished_age_secs),
    ] {
        out.gauge("loom_retention_limit", "The retention limits in force.", &[("limit", name)], f64::from(value));
    }
    use ExecutionStatus as E;
    for status in [E::Queued, E::Running, E::Succeeded, E::Failed, E::Cancelled] {
        out.gauge(
            "loom_executions",
            "Executions kept in the state, by status.",
            &[("status", &status.to_string())],
            executions.get(&status).copied().unwrap_or(0) as f64,
        );
    }
    use AttemptStatus as A;
    for status in [A::Running, A::Succeeded, A::Failed, A::TimedOut, A::Lost, A::Cancelled, A::Released] {
        out.gauge(
            "loom_attempts",
            "Attempts of kept executions, by outcome.",
            &[("status", &status.to_string())],
            attempts.get(&status).copied().unwrap_or(0) as f64,
        );
    }
    out.gauge("loom_workflows", "Live workflows.", &[], workflows as f64);
    out.gauge("loom_workers", "Workers connected to the cluster.", &[], workers as f64);
    out.gauge("loom_tokens", "Stored API tokens.", &[], tokens as f64);
    let (sessions, batch_answers, remembered, forgotten_early) = tables;
    out.gauge(
        "loom_proposer_sessions",
        "Node sessions whose unconfirmed batch answers are kept.",
        &[],
        sessions as f64,
    );
    out.gauge(
        "loom_proposer_batch_answers",
        "Batch answers kept until their proposer confirms them (exactly-once proposals).",
        &[],
        batch_answers as f64,
    );
    out.gauge(
        "loom_requests_remembered",
        "Client requests (Idempotency-Key) remembered for the request window.",
        &[],
        remembered as f64,
    );
    out.counter(
        "loom_requests_forgotten_early_total",
        "Client requests forgotten before their window ended because max_remembered_requests was reached.",
        &[],
        forgotten_early,
    );
}
