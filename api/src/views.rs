//! JSON views of state for API answers. Times are RFC 3339; absent optional spec fields are left
//! out rather than shown as null.

use linkloom_core::ids::rfc3339;
use linkloom_core::schedule::CronSchedule;
use linkloom_core::state::Workflow;
use serde_json::{json, Value};

/// A workflow at its active version.
///
/// `next_fire_at` is the schedule's first tick after `now_ms` (the answering node's clock; null
/// when paused or unscheduled), and `last_tick_at` the latest tick the scheduler handled.
pub fn workflow(wf: &Workflow, now_ms: i64) -> Value {
    let Some(active) = wf.active() else {
        return json!({"id": wf.id, "deleted": true});
    };
    let next_fire_ms = match (&active.spec.schedule, wf.paused) {
        (Some(expr), false) => CronSchedule::parse(expr, active.spec.timezone_name())
            .ok()
            .and_then(|schedule| schedule.next_after_ms(now_ms)),
        _ => None,
    };
    json!({
        "id": wf.id,
        "version": active.version,
        "paused": wf.paused,
        "next_fire_at": next_fire_ms.map(rfc3339),
        "last_tick_at": wf.last_tick_ms.map(rfc3339),
        "created_at": rfc3339(active.created_at_ms),
        "updated_at": rfc3339(wf.updated_at_ms),
        "created_by": active.created_by,
        "updated_by": wf.updated_by,
        "versions": wf.versions.keys().collect::<Vec<_>>(),
        "spec": spec_json(&active.spec),
    })
}

/// One version of a workflow.
pub fn workflow_version(wf: &Workflow, version: u32) -> Option<Value> {
    let v = wf.versions.get(&version)?;
    Some(json!({
        "id": wf.id,
        "version": v.version,
        "active": v.version == wf.latest && !wf.deleted,
        "created_at": rfc3339(v.created_at_ms),
        "created_by": v.created_by,
        "spec": spec_json(&v.spec),
    }))
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
                if key == "input" || key == "params" {
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
pub fn execution(e: &linkloom_core::state::Execution) -> Value {
    let time = |t: Option<i64>| t.map(rfc3339);
    let tasks: Vec<Value> = e
        .tasks
        .iter()
        .map(|t| {
            let attempts: Vec<Value> = t
                .attempts
                .iter()
                .map(|a| {
                    json!({
                        "id": a.id.to_string(),
                        "n": a.n,
                        "status": a.status,
                        "node_id": a.node_id,
                        "worker_id": a.worker_id,
                        "started_at": rfc3339(a.started_at_ms),
                        "finished_at": time(a.finished_at_ms),
                        "last_heartbeat_at": time(a.last_heartbeat_ms),
                        "lease_expires_at": time(a.lease_expires_at_ms),
                        "deadline": time(a.deadline_ms),
                        "progress": a.progress.as_ref().map(|p| &p.0),
                        "error": a.error,
                    })
                })
                .collect();
            json!({
                "id": t.id,
                "status": t.status,
                "output": t.output.0,
                "retry_at": time(t.retry_at_ms),
                "attempts": attempts,
            })
        })
        .collect();
    json!({
        "id": e.id,
        "workflow_id": e.workflow_id,
        "workflow_version": e.workflow_version,
        "status": e.status,
        "trigger": e.trigger,
        "scheduled_at": time(e.scheduled_at_ms),
        "created_at": rfc3339(e.created_at_ms),
        "started_at": time(e.started_at_ms),
        "finished_at": time(e.finished_at_ms),
        "params": e.params.0,
        "created_by": e.created_by,
        "audit": e.audit.iter().map(|a| json!({"action": a.action, "by": a.by, "at": rfc3339(a.at_ms)})).collect::<Vec<_>>(),
        "owner_node_id": e.owner,
        "blocked_by": e.blocked_by,
        "tasks": tasks,
    })
}
