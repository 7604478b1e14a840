//! Events and chaining: executions started by something that happened, each exactly once.
//!
//! - **Events.** [`Command::PublishEvent`](super::Command::PublishEvent) carries a name, an id
//!   and a payload. `apply` matches it against every live workflow's `event` triggers (through
//!   [`TriggerIndex`], so the cost is the matching workflows', not all of them) and starts one
//!   execution per matching workflow, with the id `<workflow>:ev-<event id>`. That id is what
//!   makes an event exactly-once: sent twice, or proposed again by a node retrying across a
//!   leader change, it finds its executions there. The [`EventLog`] also remembers each event
//!   for a window ([`limits::EVENT_WINDOW_SECS`], at most [`limits::MAX_REMEMBERED_EVENTS`]):
//!   a repeat within it is answered with the first outcome, and the same id with another name or
//!   payload is refused, so a client's mistake is not silently taken for a retry.
//! - **Webhooks** are events aimed at one workflow's `webhook` trigger; the node checks the
//!   caller's signature before proposing (the secret never enters the log).
//! - **Chaining.** When an execution ends, `apply` starts the workflows whose `workflow`
//!   triggers name its workflow and ending, with the id
//!   `<workflow>:after-<upstream execution>-<n>` (`n` counts the upstream's ends, as a retried
//!   execution ends again). Cycles are refused at registration, so a chain always ends.
//!
//! Everything here is decided by replicated state and the command alone, so every node starts
//! the same executions.

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::command::{Rejection, Response};
use super::execution::{ExecutionStatus, StartEvent, Trigger};
use super::{State, Workflow};
use crate::archive::hex;
use crate::json::Json;
use crate::limits;
use crate::spec::{
    event_execution_suffix, filter_matches, is_event_id, is_event_name, ChainOn, Problem, TriggerKind, WorkflowSpec,
    EVENT_ID_RULE, EVENT_NAME_RULE,
};

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSource {
    /// `POST /api/v1/events`: matched against every workflow's `event` triggers.
    Api,
    /// `POST /api/v1/hooks/{workflow}/{name}`, its caller already verified: starts that workflow
    /// only.
    Webhook { workflow_id: String, name: String },
    /// An upstream execution ended (`workflow` triggers). Recorded by `apply` itself, so chained
    /// starts, and the ones a pause or concurrency policy skipped, are visible like events.
    Workflow { execution_id: String },
}

/// An event as proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub name: String,
    pub id: String,
    pub payload: Json,
    pub source: EventSource,
}

/// What an event did for one workflow it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOutcome {
    pub workflow_id: String,
    /// The execution it started (or had started, if this is a repeat).
    pub execution_id: Option<String>,
    /// Why it started none: the workflow is paused, or its concurrency policy refused.
    pub skipped: Option<String>,
}

/// An event as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub name: String,
    pub id: String,
    pub source: EventSource,
    pub received_at_ms: i64,
    /// The token name of the sender (`None`: an open node, or a webhook).
    pub by: Option<String>,
    /// SHA-256 of the payload as JSON text (lowercase hex): a repeat must carry the same one.
    pub payload_sha256: String,
    pub payload_bytes: u32,
    /// One per matching workflow, in workflow id order, at most
    /// [`limits::MAX_EVENT_OUTCOMES_RECORDED`].
    pub outcomes: Vec<EventOutcome>,
    /// Matching workflows beyond those recorded.
    pub more_outcomes: u32,
}

/// Events remembered by id for the event window, oldest first in `order`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventLog {
    by_id: OrdMap<String, EventRecord>,
    /// (arrival number, id): the arrival order, for expiry and listing.
    order: OrdMap<u64, String>,
    next: u64,
    /// Events forgotten before their window ended because the log was full.
    forgotten_early: u64,
    /// Events accepted since the state began (repeats not counted).
    accepted: u64,
}

impl EventLog {
    /// Whether `record`'s window has passed at `now_ms`.
    fn expired(&self, record: &EventRecord, now_ms: i64) -> bool {
        now_ms.saturating_sub(record.received_at_ms) >= i64::from(limits::EVENT_WINDOW_SECS) * 1_000
    }

    fn expire(&mut self, now_ms: i64) {
        while let Some((&n, id)) = self.order.iter().next() {
            let expired = self.by_id.get(id).is_none_or(|r| self.expired(r, now_ms));
            if !expired {
                break;
            }
            let id = id.clone();
            self.order.remove(&n);
            self.by_id.remove(&id);
        }
    }

    fn insert(&mut self, record: EventRecord) {
        while self.by_id.len() >= limits::MAX_REMEMBERED_EVENTS {
            let Some((&n, id)) = self.order.iter().next() else { break };
            let id = id.clone();
            self.order.remove(&n);
            self.by_id.remove(&id);
            self.forgotten_early += 1;
        }
        // A remembered id is answered before this, and expiry goes in arrival order (received
        // times never go backwards), so the id is new here; should it not be (an injected bug
        // starts an event again), its old place goes, keeping `order` and `by_id` one to one.
        if self.by_id.contains_key(&record.id) {
            let old: Vec<u64> = self.order.iter().filter(|(_, id)| **id == record.id).map(|(n, _)| *n).collect();
            for n in old {
                self.order.remove(&n);
            }
        }
        self.order.insert(self.next, record.id.clone());
        self.next += 1;
        self.accepted += 1;
        self.by_id.insert(record.id.clone(), record);
    }

    /// Remembered events, newest first, starting after arrival number `before` (exclusive).
    pub fn newest(&self, before: Option<u64>) -> impl Iterator<Item = (u64, &EventRecord)> + '_ {
        let upper = before.unwrap_or(u64::MAX);
        self.order.range(..upper).rev().filter_map(|(n, id)| self.by_id.get(id).map(|r| (*n, r)))
    }

    pub fn get(&self, id: &str) -> Option<&EventRecord> {
        self.by_id.get(id)
    }

    /// (remembered, forgotten before their window ended, accepted in all).
    pub fn size(&self) -> (usize, u64, u64) {
        (self.by_id.len(), self.forgotten_early, self.accepted)
    }

    pub(super) fn check_invariants(&self) -> Result<(), String> {
        if self.order.len() != self.by_id.len() {
            return Err(format!("event log: {} in order, {} by id", self.order.len(), self.by_id.len()));
        }
        for (n, id) in &self.order {
            if !self.by_id.contains_key(id) || *n >= self.next {
                return Err(format!("event log: arrival {n} names `{id}`, which is not remembered"));
            }
        }
        Ok(())
    }
}

/// Which workflows each trigger reaches: derived from the live workflows' active specs (not in
/// snapshots; rebuilt on load), so matching an event or an ending reads only the workflows
/// concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TriggerIndex {
    /// Event name → workflows with an `event` trigger of that name.
    by_event: BTreeMap<String, BTreeSet<String>>,
    /// Upstream workflow → workflows with a `workflow` trigger naming it (named even if it does
    /// not exist yet, so registering it later cannot close a cycle unseen).
    downstream: BTreeMap<String, BTreeSet<String>>,
}

impl TriggerIndex {
    fn remove(&mut self, workflow_id: &str) {
        for set in self.by_event.values_mut().chain(self.downstream.values_mut()) {
            set.remove(workflow_id);
        }
        self.by_event.retain(|_, s| !s.is_empty());
        self.downstream.retain(|_, s| !s.is_empty());
    }

    fn add(&mut self, spec: &WorkflowSpec) {
        for trigger in spec.triggers.iter() {
            match trigger.kind() {
                Some(TriggerKind::Event { name, .. }) => {
                    self.by_event.entry(name.to_string()).or_default().insert(spec.id.clone());
                }
                Some(TriggerKind::Workflow { id, .. }) => {
                    self.downstream.entry(id.to_string()).or_default().insert(spec.id.clone());
                }
                _ => {}
            }
        }
    }

    pub(super) fn of(workflows: &OrdMap<String, Workflow>) -> TriggerIndex {
        let mut index = TriggerIndex::default();
        for workflow in workflows.values() {
            if let Some(active) = workflow.active() {
                index.add(&active.spec);
            }
        }
        index
    }

    /// A chaining cycle `spec` would close, as a path from it back to it.
    fn cycle_through(&self, spec: &WorkflowSpec) -> Option<Vec<String>> {
        let upstream: BTreeSet<&str> = spec
            .triggers
            .iter()
            .filter_map(|t| match t.kind() {
                Some(TriggerKind::Workflow { id, .. }) => Some(id),
                _ => None,
            })
            .collect();
        if upstream.is_empty() {
            return None;
        }
        // Depth first from the new workflow down the chains, remembering how each was reached.
        let mut reached: BTreeMap<&str, &str> = BTreeMap::new();
        let mut frontier = vec![spec.id.as_str()];
        while let Some(at) = frontier.pop() {
            for next in self.downstream.get(at).into_iter().flatten() {
                if next == &spec.id || reached.contains_key(next.as_str()) {
                    continue;
                }
                reached.insert(next, at);
                if upstream.contains(next.as_str()) {
                    let mut path = vec![next.to_string()];
                    let mut cursor = next.as_str();
                    while let Some(prev) = reached.get(cursor) {
                        path.push(prev.to_string());
                        cursor = prev;
                    }
                    path.reverse();
                    path.push(spec.id.clone());
                    return Some(path);
                }
                frontier.push(next);
            }
        }
        None
    }
}

impl State {
    /// Keeps the trigger index in step with workflow `id`'s active version.
    pub(super) fn reindex_triggers(&mut self, id: &str) {
        self.triggers.remove(id);
        if let Some(active) = self.workflows.get(id).and_then(Workflow::active) {
            self.triggers.add(&active.spec);
        }
    }

    pub(super) fn rebuild_triggers(&mut self) {
        self.triggers = TriggerIndex::of(&self.workflows);
    }

    /// The chaining cycle `spec`'s `workflow` triggers would close, as a problem at the trigger
    /// that closes it (the API asks before proposing, to answer with the problem's path).
    pub fn chaining_problem(&self, spec: &WorkflowSpec) -> Option<Problem> {
        let path = self.triggers.cycle_through(spec)?;
        let upstream = &path[path.len() - 2];
        let i = spec.triggers.iter().position(|t| t.workflow.as_deref() == Some(upstream.as_str())).unwrap_or(0);
        Some(Problem {
            path: format!("triggers[{i}].workflow"),
            message: format!("chaining cycle: {}", path.join(" -> ")),
        })
    }

    /// Refuses a spec whose `workflow` triggers would close a chain back to itself.
    pub(super) fn check_chaining(&self, spec: &WorkflowSpec) -> Result<(), Rejection> {
        match self.chaining_problem(spec) {
            None => Ok(()),
            Some(problem) => Err(Rejection::InvalidSpec(problem.to_string())),
        }
    }

    pub(super) fn publish_event(&mut self, event: NewEvent, actor: Option<String>, now: i64) -> Response {
        if let Err(r) = self.check_event(&event) {
            return Response::Rejected(r);
        }
        let payload_text = serde_json::to_vec(&event.payload.0).unwrap_or_default();
        let payload_sha256 = hex(&Sha256::digest(&payload_text));
        let duplicate_bug = crate::bugs::active(crate::bugs::Bug::EventDuplicate);
        // A record past its window counts as gone (it is dropped only when an event is accepted,
        // so a refusal changes nothing).
        let first = self.events.get(&event.id).filter(|r| !self.events.expired(r, now) && !duplicate_bug);
        if let Some(first) = first {
            if first.name != event.name || first.payload_sha256 != payload_sha256 || first.source != event.source {
                return Response::Rejected(Rejection::EventIdReused { id: event.id, name: first.name.clone() });
            }
            return Response::EventPublished { record: Box::new(first.clone()), repeated: true };
        }
        let targets: Vec<String> = match &event.source {
            EventSource::Api => {
                self.triggers.by_event.get(&event.name).map(|s| s.iter().cloned().collect()).unwrap_or_default()
            }
            EventSource::Webhook { workflow_id, .. } => vec![workflow_id.clone()],
            EventSource::Workflow { .. } => Vec::new(),
        };
        let start = StartEvent { name: event.name.clone(), id: event.id.clone(), payload: event.payload.clone() };
        let trigger = match event.source {
            EventSource::Api => Trigger::Event,
            EventSource::Webhook { .. } => Trigger::Webhook,
            EventSource::Workflow { .. } => Trigger::Workflow,
        };
        let mut suffix = event_execution_suffix(&event.id);
        if duplicate_bug {
            suffix = format!("{suffix}-dup{}", self.kept_executions());
        }
        let mut outcomes = Vec::new();
        let mut more = 0u32;
        for workflow_id in targets {
            let matched = self.workflows.get(&workflow_id).and_then(Workflow::active).is_some_and(|active| {
                active.spec.triggers.iter().any(|t| match (t.kind(), &event.source) {
                    (Some(TriggerKind::Event { name, filter }), EventSource::Api) => {
                        name == event.name && filter_matches(filter, &event.payload.0)
                    }
                    (Some(TriggerKind::Webhook { name, .. }), EventSource::Webhook { name: hook, .. }) => name == hook,
                    _ => false,
                })
            });
            if !matched {
                continue;
            }
            let execution_id = format!("{workflow_id}:{suffix}");
            let outcome = self.start_from(&workflow_id, execution_id, trigger, start.clone(), actor.clone(), now);
            if outcomes.len() < limits::MAX_EVENT_OUTCOMES_RECORDED {
                outcomes.push(outcome);
            } else {
                more += 1;
            }
        }
        let record = EventRecord {
            name: event.name,
            id: event.id,
            source: event.source,
            received_at_ms: now,
            by: actor,
            payload_sha256,
            payload_bytes: payload_text.len() as u32,
            outcomes,
            more_outcomes: more,
        };
        self.events.expire(now);
        self.events.insert(record.clone());
        Response::EventPublished { record: Box::new(record), repeated: false }
    }

    fn check_event(&self, event: &NewEvent) -> Result<(), Rejection> {
        if !is_event_name(&event.name) {
            return Err(Rejection::InvalidEvent(format!("name `{}` is not valid: {EVENT_NAME_RULE}", event.name)));
        }
        if !is_event_id(&event.id) {
            return Err(Rejection::InvalidEvent(format!("id `{}` is not valid: {EVENT_ID_RULE}", event.id)));
        }
        let size = event.payload.encoded_len();
        let limit = self.limits.max_params_bytes as usize;
        if size > limit {
            return Err(Rejection::TooLarge { what: "event payload".into(), size, limit });
        }
        if let EventSource::Workflow { .. } = &event.source {
            return Err(Rejection::InvalidEvent("a workflow's end is recorded by the cluster, never sent".into()));
        }
        if let EventSource::Webhook { workflow_id, name } = &event.source {
            let has_hook = self.workflows.get(workflow_id).and_then(Workflow::active).is_some_and(|a| {
                a.spec
                    .triggers
                    .iter()
                    .any(|t| matches!(t.kind(), Some(TriggerKind::Webhook { name: n, .. }) if n == name))
            });
            if !has_hook {
                return Err(Rejection::WebhookNotFound { workflow_id: workflow_id.clone(), name: name.clone() });
            }
        }
        Ok(())
    }

    /// Starts one execution of `workflow_id` for an event or an upstream ending, under the
    /// workflow's concurrency policy; a paused workflow records the event as skipped.
    fn start_from(
        &mut self,
        workflow_id: &str,
        execution_id: String,
        trigger: Trigger,
        event: StartEvent,
        actor: Option<String>,
        now: i64,
    ) -> EventOutcome {
        let outcome = |execution_id: Option<String>, skipped: Option<String>| EventOutcome {
            workflow_id: workflow_id.to_string(),
            execution_id,
            skipped,
        };
        if self.exists(&execution_id) {
            return outcome(Some(execution_id), None);
        }
        if self.workflows.get(workflow_id).is_some_and(|w| w.paused) {
            return outcome(None, Some("the workflow is paused".into()));
        }
        match self.create_execution(execution_id, workflow_id, trigger, None, Json::null(), actor, now) {
            Response::ExecutionCreated { execution_id } => {
                if let Some(e) = self.executions.get_mut(&execution_id) {
                    e.event = Some(event).into();
                }
                outcome(Some(execution_id), None)
            }
            Response::ExecutionExists { execution_id } => outcome(Some(execution_id), None),
            Response::TickSkipped { reason, .. } => outcome(None, Some(reason)),
            Response::Rejected(r) => outcome(None, Some(r.to_string())),
            other => outcome(None, Some(format!("{other:?}"))),
        }
    }

    /// Starts the chained workflows of every execution that ended during the command just
    /// applied (and of those, should one end at once).
    pub(super) fn start_chained(&mut self, now: i64) {
        while !self.ended.is_empty() {
            let ended = std::mem::take(&mut self.ended);
            for upstream_id in ended {
                self.chain_from(&upstream_id, now);
            }
        }
    }

    fn chain_from(&mut self, upstream_id: &str, now: i64) {
        let Some(upstream) = self.executions.get(upstream_id) else { return };
        let status = upstream.status;
        let Some(downstream) = self.triggers.downstream.get(&upstream.workflow_id) else { return };
        let upstream_workflow = upstream.workflow_id.clone();
        let wanted: Vec<String> = downstream
            .iter()
            .filter(|d| {
                self.workflows.get(d.as_str()).and_then(Workflow::active).is_some_and(|a| {
                    a.spec.triggers.iter().any(|t| match t.kind() {
                        Some(TriggerKind::Workflow { id, on }) => id == upstream_workflow && ends_as(on, status),
                        _ => false,
                    })
                })
            })
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let n = match self.executions.get_mut(upstream_id) {
            Some(e) => {
                *e.chained_ends += 1;
                *e.chained_ends
            }
            None => return,
        };
        let event = StartEvent {
            name: format!("workflow.{upstream_workflow}.{status}"),
            id: upstream_id.to_string(),
            payload: Json(serde_json::json!({
                "workflow_id": upstream_workflow,
                "execution_id": upstream_id,
                "status": status.to_string(),
            })),
        };
        let suffix = format!("after-{}-{n}", upstream_id.replace(':', "."));
        let mut outcomes = Vec::new();
        let mut more = 0u32;
        for workflow_id in wanted {
            let execution_id = format!("{workflow_id}:{suffix}");
            let outcome = self.start_from(&workflow_id, execution_id, Trigger::Workflow, event.clone(), None, now);
            if outcomes.len() < limits::MAX_EVENT_OUTCOMES_RECORDED {
                outcomes.push(outcome);
            } else {
                more += 1;
            }
        }
        // Remembered as an event too, under an id no client can send (it holds the `:` of the
        // execution id), so a skipped chained start is as visible as a skipped event.
        let payload_text = serde_json::to_vec(&event.payload.0).unwrap_or_default();
        self.events.insert(EventRecord {
            name: event.name,
            id: format!("{upstream_id}#{n}"),
            source: EventSource::Workflow { execution_id: upstream_id.to_string() },
            received_at_ms: now,
            by: None,
            payload_sha256: hex(&Sha256::digest(&payload_text)),
            payload_bytes: payload_text.len() as u32,
            outcomes,
            more_outcomes: more,
        });
    }

    /// Remembered events (see [`EventLog`]).
    pub fn events(&self) -> &EventLog {
        &self.events
    }
}

/// Whether an execution that ended `status` starts a chain waiting `on`.
fn ends_as(on: ChainOn, status: ExecutionStatus) -> bool {
    match on {
        ChainOn::Succeeded => status == ExecutionStatus::Succeeded,
        ChainOn::Failed => status == ExecutionStatus::Failed,
        ChainOn::Finished => status.is_terminal(),
    }
}
