//! JSON views of state for API answers. Times are RFC 3339; absent optional spec fields are left
//! out rather than shown as null.

use linkloom_core::ids::rfc3339;
use linkloom_core::state::Workflow;
use serde_json::{json, Value};

/// A workflow at its active version.
pub fn workflow(wf: &Workflow) -> Value {
    let Some(active) = wf.active() else {
        return json!({"id": wf.id, "deleted": true});
    };
    json!({
        "id": wf.id,
        "version": active.version,
        "paused": wf.paused,
        "created_at": rfc3339(active.created_at_ms),
        "updated_at": rfc3339(wf.updated_at_ms),
        "created_by": active.created_by,
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
