//! Triggers: what starts a workflow besides its schedule and manual runs. A named event
//! (`POST /api/v1/events`), another workflow's execution ending (chaining), or a webhook call.
//!
//! Only names travel in a spec: a webhook names its shared secret, which stays in the nodes'
//! configuration, as task signing keys do. Filters are plain field equality, so what a trigger
//! matches is readable in the spec and checkable at registration.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::WorkflowSpec;
use crate::ids::{is_slug, SLUG_RULE};
use crate::json::Json;

/// Triggers one workflow may have.
pub const MAX_TRIGGERS: usize = 32;
/// Fields one event filter may compare.
pub const MAX_FILTER_FIELDS: usize = 16;
/// A filter value, as JSON.
const MAX_FILTER_VALUE_BYTES: usize = 1024;

/// The rule for event names, for error messages.
pub const EVENT_NAME_RULE: &str = "1 to 128 of letters, digits, '.', '_' and '-', starting with a letter or digit";
/// The rule for event ids, for error messages.
pub const EVENT_ID_RULE: &str = "1 to 128 of letters, digits, '.', '_' and '-'";

/// True if `name` is a valid event name (`order.created`).
pub fn is_event_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) && is_event_id(name)
}

/// True if `id` is a valid event id.
pub fn is_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The part after `<workflow>:` of the execution an event starts: one per (workflow, event id),
/// which is what makes an event sent twice, or matched again after a leader change, start one
/// execution.
pub fn event_execution_suffix(event_id: &str) -> String {
    format!("ev-{event_id}")
}

/// One way a workflow starts: exactly one of `event`, `workflow` or `webhook`, with the fields
/// of that kind. (No field is skipped when absent: the binary codec needs every field.)
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// An event name (`POST /api/v1/events`): 1 to 128 of `A-Z a-z 0-9 . _ -`.
    #[serde(default)]
    pub event: Option<String>,
    /// `event`: start only for events whose payload has each of these fields (a dotted path into
    /// the payload) equal to the value given.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub filter: Option<BTreeMap<String, Json>>,
    /// Another workflow's id: start when one of its executions ends as `on` says.
    #[serde(default)]
    pub workflow: Option<String>,
    /// `workflow`: which endings start this one; `succeeded` when absent.
    #[serde(default)]
    pub on: Option<ChainOn>,
    /// A webhook name: `POST /api/v1/hooks/{workflow}/{name}` starts this workflow, the request
    /// body as the event payload. Same rule as workflow ids.
    #[serde(default)]
    pub webhook: Option<String>,
    /// `webhook`: how a caller proves itself.
    #[serde(default)]
    pub auth: Option<WebhookAuth>,
    /// `webhook`: the name of the shared secret in the nodes' `LOOM_WEBHOOK_SECRETS`. Only the
    /// name is stored; the secret stays in the nodes' configuration.
    #[serde(default)]
    pub secret: Option<String>,
}

/// The kind of a [`TriggerSpec`], with its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TriggerKind<'a> {
    Event { name: &'a str, filter: Option<&'a BTreeMap<String, Json>> },
    Workflow { id: &'a str, on: ChainOn },
    Webhook { name: &'a str, auth: WebhookAuth, secret: &'a str },
}

impl TriggerSpec {
    /// The trigger's kind, if it names exactly one with the fields it needs (as
    /// [`super::validate`] checks).
    pub fn kind(&self) -> Option<TriggerKind<'_>> {
        match (&self.event, &self.workflow, &self.webhook) {
            (Some(name), None, None) => Some(TriggerKind::Event { name, filter: self.filter.as_ref() }),
            (None, Some(id), None) => Some(TriggerKind::Workflow { id, on: self.on.unwrap_or_default() }),
            (None, None, Some(name)) => {
                Some(TriggerKind::Webhook { name, auth: self.auth?, secret: self.secret.as_deref()? })
            }
            _ => None,
        }
    }
}

/// Which endings of an upstream workflow's execution start a chained one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainOn {
    /// It succeeded.
    #[default]
    Succeeded,
    /// It failed (timed-out executions fail too). Cancelled ones do not count.
    Failed,
    /// It ended, however (cancelled included).
    Finished,
}

/// How a webhook caller proves itself, each with the shared secret the trigger names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookAuth {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, as GitHub sends.
    Github,
    /// `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, as Stripe sends;
    /// refused more than five minutes from the node's clock.
    Stripe,
    /// `Authorization: Bearer <secret>`.
    Bearer,
}

impl fmt::Display for WebhookAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WebhookAuth::Github => "github",
            WebhookAuth::Stripe => "stripe",
            WebhookAuth::Bearer => "bearer",
        })
    }
}

impl fmt::Display for ChainOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChainOn::Succeeded => "succeeded",
            ChainOn::Failed => "failed",
            ChainOn::Finished => "finished",
        })
    }
}

/// Checks `spec.triggers`; chaining cycles across workflows are the state's to find, as they
/// depend on the other workflows.
pub(super) fn check_triggers(spec: &WorkflowSpec, report: &mut impl FnMut(String, String)) {
    if spec.triggers.len() > MAX_TRIGGERS {
        report("triggers".into(), format!("{} triggers; at most {MAX_TRIGGERS} are allowed", spec.triggers.len()));
    }
    let mut seen_hooks = BTreeMap::new();
    for (i, trigger) in spec.triggers.iter().enumerate() {
        let at = |field: &str| format!("triggers[{i}].{field}");
        let kinds = [trigger.event.is_some(), trigger.workflow.is_some(), trigger.webhook.is_some()];
        match kinds.iter().filter(|k| **k).count() {
            0 => {
                report(format!("triggers[{i}]"), "names no trigger: set one of event, workflow or webhook".into());
                continue;
            }
            1 => {}
            _ => {
                report(
                    format!("triggers[{i}]"),
                    "sets more than one of event, workflow and webhook; write one trigger for each".into(),
                );
                continue;
            }
        }
        let own: [(&str, bool, &str); 4] = [
            ("filter", trigger.filter.is_some(), "event"),
            ("on", trigger.on.is_some(), "workflow"),
            ("auth", trigger.auth.is_some(), "webhook"),
            ("secret", trigger.secret.is_some(), "webhook"),
        ];
        let kind = if trigger.event.is_some() {
            "event"
        } else if trigger.workflow.is_some() {
            "workflow"
        } else {
            "webhook"
        };
        for (field, set, owner) in own {
            if set && owner != kind {
                report(at(field), format!("not allowed for a {kind} trigger (only for {owner} triggers)"));
            }
        }
        if let Some(name) = &trigger.event {
            if !is_event_name(name) {
                report(at("event"), format!("`{name}` is not a valid event name: {EVENT_NAME_RULE}"));
            }
            if let Some(filter) = &trigger.filter {
                check_filter(filter, &at("filter"), report);
            }
        }
        if let Some(id) = &trigger.workflow {
            if !is_slug(id) {
                report(at("workflow"), format!("`{id}` is not a valid workflow id: {SLUG_RULE}"));
            } else if *id == spec.id {
                report(at("workflow"), format!("chaining cycle: {id} -> {id}"));
            }
        }
        if let Some(name) = &trigger.webhook {
            if !is_slug(name) {
                report(at("webhook"), format!("`{name}` is not a valid webhook name: {SLUG_RULE}"));
            } else if let Some(first) = seen_hooks.insert(name.clone(), i) {
                report(at("webhook"), format!("`{name}` is also triggers[{first}]: webhook names are unique"));
            }
            if trigger.auth.is_none() {
                report(at("auth"), "required for a webhook trigger: github, stripe or bearer".into());
            }
            match &trigger.secret {
                None => report(at("secret"), "required for a webhook trigger: the name of a node secret".into()),
                Some(secret) if !is_slug(secret) => {
                    report(at("secret"), format!("`{secret}` is not a valid secret name: {SLUG_RULE}"))
                }
                Some(_) => {}
            }
        }
    }
}

fn check_filter(filter: &BTreeMap<String, Json>, path: &str, report: &mut impl FnMut(String, String)) {
    if filter.is_empty() {
        report(path.into(), "is empty: leave it out to match every event of the name".into());
    }
    if filter.len() > MAX_FILTER_FIELDS {
        report(path.into(), format!("{} fields; at most {MAX_FILTER_FIELDS} are allowed", filter.len()));
    }
    for (field, value) in filter {
        let valid = field.split('.').all(|p| !p.is_empty() && p.len() <= 128) && field.len() <= 256;
        if !valid {
            report(format!("{path}.{field}"), format!("`{field}` is not a dotted path into the payload (`a.b.0`)"));
        }
        if value.encoded_len() > MAX_FILTER_VALUE_BYTES {
            report(format!("{path}.{field}"), format!("the value is larger than {MAX_FILTER_VALUE_BYTES} bytes"));
        }
    }
}

/// Whether `payload` has every filter field equal to its value (no filter: every payload).
pub fn filter_matches(filter: Option<&BTreeMap<String, Json>>, payload: &serde_json::Value) -> bool {
    let Some(filter) = filter else { return true };
    filter.iter().all(|(path, expected)| {
        let mut current = payload;
        for part in path.split('.') {
            current = match current {
                serde_json::Value::Object(map) => match map.get(part) {
                    Some(v) => v,
                    None => return false,
                },
                serde_json::Value::Array(items) => match part.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(v) => v,
                    None => return false,
                },
                _ => return false,
            };
        }
        *current == expected.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{parse_yaml, validate};

    fn problems(triggers: &str) -> String {
        let yaml = format!("id: a\ntasks: [{{id: t, type: worker, queue: q}}]\ntriggers: {triggers}\n");
        match parse_yaml(&yaml) {
            Err(e) => e.to_string(),
            Ok(spec) => validate(&spec).err().map(|e| e.to_string()).unwrap_or_default(),
        }
    }

    #[test]
    fn valid_triggers_of_each_kind() {
        let ok = "[{event: order.created, filter: {region: eu, customer.tier: gold}}, {workflow: ingest, on: failed}, {webhook: github, auth: github, secret: gh}]";
        assert_eq!(problems(ok), "");
    }

    #[test]
    fn each_trigger_problem_is_named() {
        let cases = [
            ("[{}]", "triggers[0]: names no trigger"),
            ("[{event: a, workflow: b}]", "sets more than one"),
            ("[{event: 'bad name'}]", "triggers[0].event: `bad name` is not a valid event name"),
            ("[{event: a, on: failed}]", "triggers[0].on: not allowed for a event trigger"),
            ("[{workflow: a}]", "chaining cycle: a -> a"),
            ("[{workflow: b, on: sometimes}]", "unknown variant `sometimes`"),
            ("[{webhook: gh, secret: s}]", "triggers[0].auth: required"),
            ("[{webhook: gh, auth: github}]", "triggers[0].secret: required"),
            ("[{webhook: gh, auth: hmac, secret: s}]", "unknown variant `hmac`"),
            (
                "[{webhook: gh, auth: bearer, secret: s}, {webhook: gh, auth: bearer, secret: s}]",
                "webhook names are unique",
            ),
            ("[{event: a, filter: {}}]", "triggers[0].filter: is empty"),
            ("[{event: a, filter: {'a..b': 1}}]", "not a dotted path"),
            ("[{event: a, colour: red}]", "unknown field `colour`"),
        ];
        for (triggers, expected) in cases {
            let err = problems(triggers);
            assert!(err.contains(expected), "for {triggers}: expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn filters_compare_fields_by_path() {
        let filter: BTreeMap<String, Json> = [
            ("region".to_string(), Json(serde_json::json!("eu"))),
            ("lines.0.sku".to_string(), Json(serde_json::json!(7))),
        ]
        .into();
        let yes = serde_json::json!({"region": "eu", "lines": [{"sku": 7}], "extra": true});
        let no = serde_json::json!({"region": "us", "lines": [{"sku": 7}]});
        let missing = serde_json::json!({"region": "eu"});
        assert!(filter_matches(Some(&filter), &yes));
        assert!(!filter_matches(Some(&filter), &no));
        assert!(!filter_matches(Some(&filter), &missing));
        assert!(filter_matches(None, &no));
    }

    #[test]
    fn event_names_and_ids() {
        assert!(is_event_name("order.created") && is_event_name("a") && is_event_name("A-1_b"));
        assert!(
            !is_event_name(".x") && !is_event_name("") && !is_event_name("a b") && !is_event_name(&"a".repeat(129))
        );
        assert!(is_event_id("ev-1") && is_event_id("_x") && !is_event_id("a:b") && !is_event_id("a/b"));
    }
}
