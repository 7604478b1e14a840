//! The state as the wire shows it: each function turns a piece of the replicated state into its
//! `linkloom_wire` answer type. Times become RFC 3339; absent optional spec fields are left out
//! rather than shown as null.

use linkloom_core::ids::rfc3339;
use linkloom_core::schedule::CronSchedule;
use linkloom_core::state::Workflow;
use linkloom_wire as wire;
use serde_json::Value;

/// A workflow at its active version; `None` for a deleted one.
///
/// `next_fire_at` is the schedule's first tick after `now_ms` (the answering node's clock; null
/// when paused or unscheduled), and `last_tick_at` the latest tick the scheduler handled.
pub fn workflow(wf: &Workflow, now_ms: i64) -> Option<wire::Workflow> {
    let active = wf.active()?;
    let next_fire_ms = match (&active.spec.schedule, wf.paused) {
        (Some(expr), false) => CronSchedule::parse(expr, active.spec.timezone_name())
            .ok()
            .and_then(|schedule| schedule.next_after_ms(now_ms)),
        _ => None,
    };
    Some(wire::Workflow {
        id: wf.id.clone(),
        version: active.version,
        paused: wf.paused,
        next_fire_at: next_fire_ms.map(rfc3339),
        last_tick_at: wf.last_tick_ms.map(rfc3339),
        created_at: rfc3339(active.created_at_ms),
        updated_at: rfc3339(wf.updated_at_ms),
        created_by: active.created_by.clone(),
        updated_by: wf.updated_by.clone(),
        versions: wf.versions.keys().copied().collect(),
        spec: spec_json(&active.spec),
    })
}

/// One version of a workflow.
pub fn workflow_version(wf: &Workflow, version: u32) -> Option<wire::WorkflowVersion> {
    let v = wf.versions.get(&version)?;
    Some(wire::WorkflowVersion {
        id: wf.id.clone(),
        version: v.version,
        active: v.version == wf.latest && !wf.deleted,
        created_at: rfc3339(v.created_at_ms),
        created_by: v.created_by.clone(),
        spec: spec_json(&v.spec),
    })
}

/// A spec as JSON without nulls and empty collections, so it reads like what the user wrote.
pub fn spec_json(spec: &linkloom_core::WorkflowSpec) -> Value {
    let mut value = serde_json::to_value(spec).unwrap_or(Value::Null);
    prune(&mut value);
    value
}

fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, v| {
                // User data is shown exactly as written.
                if key == "input" || key == "params" || key == "filter" {
                    return !v.is_null();
                }
                prune(v);
                !(v.is_null()
                    || v.as_array().is_some_and(|a| a.is_empty())
                    || v.as_object().is_some_and(|o| o.is_empty()))
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// An execution with its tasks and attempts.
pub fn execution(e: &linkloom_core::state::Execution) -> wire::Execution {
    let time = |t: Option<i64>| t.map(rfc3339);
    let tasks = e
        .tasks
        .iter()
        .map(|t| wire::TaskRun {
            id: t.id.clone(),
            status: t.status.into(),
            output: t.output.0.clone(),
            retry_at: time(t.retry_at_ms),
            attempts: t
                .attempts
                .iter()
                .map(|a| wire::Attempt {
                    id: a.id.to_string(),
                    n: a.n,
                    status: a.status.into(),
                    node_id: a.node_id,
                    worker_id: a.worker_id.clone(),
                    started_at: rfc3339(a.started_at_ms),
                    finished_at: time(a.finished_at_ms),
                    last_heartbeat_at: time(a.last_heartbeat_ms),
                    lease_expires_at: time(a.lease_expires_at_ms),
                    deadline: time(a.deadline_ms),
                    progress: a.progress.as_ref().map(|p| p.0.clone()),
                    error: a.error.clone(),
                })
                .collect(),
        })
        .collect();
    wire::Execution {
        id: e.id.clone(),
        workflow_id: e.workflow_id.clone(),
        workflow_version: e.workflow_version,
        status: e.status.into(),
        trigger: e.trigger.into(),
        scheduled_at: time(e.scheduled_at_ms),
        created_at: rfc3339(e.created_at_ms),
        started_at: time(e.started_at_ms),
        finished_at: time(e.finished_at_ms),
        params: e.params.0.clone(),
        created_by: e.created_by.clone(),
        audit: e
            .audit
            .iter()
            .map(|a| wire::AuditEntry { action: a.action.into(), by: a.by.clone(), at: rfc3339(a.at_ms) })
            .collect(),
        owner_node_id: e.owner,
        blocked_by: e.blocked_by.clone(),
        tasks,
        event: e.event.as_ref().map(|ev| wire::StartEvent {
            name: ev.name.clone(),
            id: ev.id.clone(),
            payload: ev.payload.0.clone(),
        }),
    }
}

/// A remembered event; `repeated`: this answers a repeat of its id.
pub fn event(record: &linkloom_core::state::EventRecord, repeated: bool) -> wire::Event {
    use linkloom_core::state::EventSource;
    let (source, webhook, upstream_execution_id) = match &record.source {
        EventSource::Api => (wire::EventSource::Api, None, None),
        EventSource::Webhook { workflow_id, name } => (
            wire::EventSource::Webhook,
            Some(wire::EventHook { workflow_id: workflow_id.clone(), name: name.clone() }),
            None,
        ),
        EventSource::Workflow { execution_id } => (wire::EventSource::Workflow, None, Some(execution_id.clone())),
    };
    wire::Event {
        name: record.name.clone(),
        id: record.id.clone(),
        source,
        webhook,
        upstream_execution_id,
        received_at: rfc3339(record.received_at_ms),
        by: record.by.clone(),
        payload_sha256: record.payload_sha256.clone(),
        payload_bytes: record.payload_bytes,
        outcomes: record
            .outcomes
            .iter()
            .map(|o| wire::EventOutcome {
                workflow_id: o.workflow_id.clone(),
                execution_id: o.execution_id.clone(),
                skipped: o.skipped.clone(),
            })
            .collect(),
        more_outcomes: record.more_outcomes,
        repeated,
    }
}
