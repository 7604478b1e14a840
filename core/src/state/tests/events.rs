//! Events, webhooks and chaining: each (workflow, event) starts at most one execution, filters
//! and pauses are honoured, chains start once per upstream end and never close a cycle, and a
//! state that uses none of it encodes exactly as release 0.1.0 did.

use super::*;
use crate::render::RenderContext;

const ORDERS: &str = r#"
id: fulfil
triggers:
  - event: order.created
    filter: {region: eu}
tasks:
  - {id: ship, type: shell, command: ["echo", "{{ event.payload.order_id }}"]}
"#;

const AUDIT: &str = r#"
id: audit
triggers: [{event: order.created}]
tasks: [{id: log, type: shell, command: ["true"]}]
"#;

fn event(name: &str, id: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent { name: name.into(), id: id.into(), payload: Json(payload), source: EventSource::Api }
}

fn publish(state: &mut State, e: NewEvent, at_ms: i64) -> Response {
    state.apply(Command::PublishEvent { event: e, actor: Some("shop".into()), at_ms })
}

fn outcome_ids(r: &Response) -> Vec<Option<String>> {
    match r {
        Response::EventPublished { record, .. } => record.outcomes.iter().map(|o| o.execution_id.clone()).collect(),
        other => panic!("expected EventPublished, got {other:?}"),
    }
}

#[test]
fn an_event_starts_one_execution_per_matching_workflow_once() {
    let mut s = State::default();
    put(&mut s, ORDERS, 1);
    put(&mut s, AUDIT, 1);
    let payload = serde_json::json!({"order_id": "o-7", "region": "eu"});
    let first = publish(&mut s, event("order.created", "ev-1", payload.clone()), 10);
    assert_eq!(outcome_ids(&first), vec![Some("audit:ev-ev-1".into()), Some("fulfil:ev-ev-1".into())]);
    let e = s.execution("fulfil:ev-ev-1").expect("started").into_owned();
    assert_eq!(e.trigger, Trigger::Event);
    let start = e.event.as_ref().expect("the event is recorded");
    assert_eq!((start.name.as_str(), start.id.as_str()), ("order.created", "ev-1"));
    // The payload reaches templates.
    let ctx = RenderContext { execution: &e };
    assert_eq!(
        ctx.render_str("order {{ event.payload.order_id }} ({{ event.name }})").unwrap(),
        "order o-7 (order.created)"
    );

    // Sent again: the first answer, nothing new.
    let kept = s.kept_executions();
    match publish(&mut s, event("order.created", "ev-1", payload.clone()), 20) {
        Response::EventPublished { repeated: true, record } => assert_eq!(record.outcomes.len(), 2),
        other => panic!("expected a repeat, got {other:?}"),
    }
    assert_eq!(s.kept_executions(), kept);
    // The same id for something else is a mistake, not a retry, and changes nothing.
    let before = s.digest();
    let reused = publish(&mut s, event("order.created", "ev-1", serde_json::json!({"order_id": "o-8"})), 30);
    assert!(matches!(reused, Response::Rejected(Rejection::EventIdReused { .. })), "{reused:?}");
    let mut at_30 = s.clone();
    at_30.clock_ms = 20;
    assert_eq!(at_30.digest(), before, "only the replicated clock moved");
    assert_eq!(s.events().size().2, 1, "one event accepted");
}

#[test]
fn filters_and_names_decide_what_matches() {
    let mut s = State::default();
    put(&mut s, ORDERS, 1);
    let us = publish(&mut s, event("order.created", "ev-us", serde_json::json!({"region": "us"})), 10);
    assert!(outcome_ids(&us).is_empty(), "the filter does not match");
    let other = publish(&mut s, event("order.paid", "ev-2", serde_json::json!({"region": "eu"})), 10);
    assert!(outcome_ids(&other).is_empty());
    assert_eq!(s.kept_executions(), 0);
    // The record of an event that matched nothing is kept too: it was accepted.
    assert!(s.events().get("ev-us").is_some());
}

#[test]
fn a_paused_workflow_records_the_event_as_skipped_and_concurrency_applies() {
    let mut s = State::default();
    put(&mut s, ORDERS, 1);
    s.apply(Command::SetPaused { workflow_id: "fulfil".into(), paused: true, actor: None, at_ms: 2 });
    let eu = serde_json::json!({"region": "eu"});
    match publish(&mut s, event("order.created", "ev-1", eu.clone()), 10) {
        Response::EventPublished { record, .. } => {
            assert_eq!(record.outcomes[0].skipped.as_deref(), Some("the workflow is paused"));
            assert_eq!(record.outcomes[0].execution_id, None);
        }
        other => panic!("{other:?}"),
    }
    s.apply(Command::SetPaused { workflow_id: "fulfil".into(), paused: false, actor: None, at_ms: 11 });
    put(&mut s, &ORDERS.replace("triggers:", "concurrency: forbid\ntriggers:"), 12);
    assert_eq!(
        outcome_ids(&publish(&mut s, event("order.created", "ev-2", eu.clone()), 20)),
        vec![Some("fulfil:ev-ev-2".into())]
    );
    match publish(&mut s, event("order.created", "ev-3", eu), 21) {
        Response::EventPublished { record, .. } => {
            assert!(record.outcomes[0].skipped.as_deref().is_some_and(|r| r.contains("forbid")), "{record:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_events_are_refused_and_change_nothing() {
    let mut s = State::default();
    put(&mut s, ORDERS, 1);
    let before = s.digest();
    let bad_name = publish(&mut s, event("no spaces", "ev-1", serde_json::json!({})), 1);
    assert!(matches!(&bad_name, Response::Rejected(Rejection::InvalidEvent(m)) if m.contains("name")), "{bad_name:?}");
    let bad_id = publish(&mut s, event("a", "a/b", serde_json::json!({})), 1);
    assert!(matches!(&bad_id, Response::Rejected(Rejection::InvalidEvent(m)) if m.contains("id")), "{bad_id:?}");
    let huge = publish(&mut s, event("a", "x", serde_json::json!({"blob": "x".repeat(70_000)})), 1);
    assert!(matches!(huge, Response::Rejected(Rejection::TooLarge { .. })));
    let hook = s.apply(Command::PublishEvent {
        event: NewEvent {
            name: "hook.fulfil.nope".into(),
            id: "d-1".into(),
            payload: Json::null(),
            source: EventSource::Webhook { workflow_id: "fulfil".into(), name: "nope".into() },
        },
        actor: None,
        at_ms: 1,
    });
    assert!(matches!(hook, Response::Rejected(Rejection::WebhookNotFound { .. })), "{hook:?}");
    assert_eq!(s.digest(), before);
}

#[test]
fn a_webhook_event_starts_only_its_workflow() {
    let mut s = State::default();
    put(&mut s, AUDIT, 1);
    put(
        &mut s,
        "id: deploy\ntriggers: [{webhook: github, auth: github, secret: gh}]\ntasks: [{id: d, type: shell, command: ['true']}]\n",
        1,
    );
    let r = s.apply(Command::PublishEvent {
        event: NewEvent {
            name: "order.created".into(),
            id: "d-1".into(),
            payload: Json(serde_json::json!({"ref": "main"})),
            source: EventSource::Webhook { workflow_id: "deploy".into(), name: "github".into() },
        },
        actor: None,
        at_ms: 5,
    });
    assert_eq!(outcome_ids(&r), vec![Some("deploy:ev-d-1".into())], "audit's event trigger is not a webhook");
    assert_eq!(s.execution("deploy:ev-d-1").unwrap().trigger, Trigger::Webhook);
}

fn run_to_end(s: &mut State, exec: &str, succeed: bool, at_ms: i64) {
    s.apply(Command::AssignExecution { execution_id: exec.into(), node_id: 1, at_ms });
    let task = s.execution(exec).unwrap().tasks[0].id.clone();
    let attempt = started_id(start(s, exec, &task, at_ms));
    let result = if succeed { ok_output() } else { AttemptResult::Failed { error: "boom".into(), retryable: false } };
    finish(s, attempt, result, at_ms + 1);
}

#[test]
fn a_chained_workflow_starts_once_per_upstream_end() {
    let mut s = State::default();
    put(&mut s, "id: up\ntasks: [{id: t, type: shell, command: ['true']}]\n", 1);
    put(&mut s, "id: down\ntriggers: [{workflow: up}]\ntasks: [{id: t, type: shell, command: ['true']}]\n", 1);
    put(
        &mut s,
        "id: alarm\ntriggers: [{workflow: up, on: failed}]\ntasks: [{id: t, type: shell, command: ['true']}]\n",
        1,
    );
    put(
        &mut s,
        "id: tally\ntriggers: [{workflow: up, on: finished}]\ntasks: [{id: t, type: shell, command: ['true']}]\n",
        1,
    );
    s.apply(Command::CreateExecution {
        execution_id: "up:1".into(),
        workflow_id: "up".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: Json::null(),
        actor: None,
        at_ms: 2,
    });
    run_to_end(&mut s, "up:1", false, 3);
    assert!(s.execution("alarm:after-up.1-1").is_some(), "failed: alarm starts");
    assert!(s.execution("tally:after-up.1-1").is_some(), "finished: tally starts");
    assert!(s.execution("down:after-up.1-1").is_none(), "succeeded only: down does not");
    let chained = s.execution("alarm:after-up.1-1").unwrap();
    assert_eq!(chained.trigger, Trigger::Workflow);
    assert_eq!(chained.event.as_ref().unwrap().name, "workflow.up.failed");
    assert_eq!(chained.event.as_ref().unwrap().payload.0["execution_id"], "up:1");

    // Retried, the upstream ends again: a second end, a second chained run.
    s.apply(Command::RetryExecution { execution_id: "up:1".into(), actor: None, at_ms: 10 });
    run_to_end(&mut s, "up:1", true, 11);
    assert!(s.execution("down:after-up.1-2").is_some());
    assert!(s.execution("tally:after-up.1-2").is_some());
    assert!(s.execution("alarm:after-up.1-2").is_none());
    assert_eq!(s.kept_executions(), 5);
    // Each end is remembered like an event, with what it started.
    let first_end = s.events().get("up:1#1").expect("the first end is recorded");
    assert_eq!(first_end.name, "workflow.up.failed");
    assert_eq!(first_end.outcomes.len(), 2);

    // A paused chained workflow skips, visibly.
    s.apply(Command::SetPaused { workflow_id: "tally".into(), paused: true, actor: None, at_ms: 20 });
    s.apply(Command::CreateExecution {
        execution_id: "up:2".into(),
        workflow_id: "up".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: Json::null(),
        actor: None,
        at_ms: 21,
    });
    s.apply(Command::CancelExecution { execution_id: "up:2".into(), actor: None, at_ms: 22 });
    let cancelled = s.events().get("up:2#1").expect("the cancelled end is recorded");
    assert_eq!(cancelled.name, "workflow.up.cancelled");
    assert_eq!(cancelled.outcomes[0].skipped.as_deref(), Some("the workflow is paused"), "{cancelled:?}");
    assert!(s.execution("tally:after-up.2-1").is_none());
}

#[test]
fn chaining_cycles_are_refused_with_their_path() {
    let mut s = State::default();
    put(&mut s, "id: a\ntriggers: [{workflow: c}]\ntasks: [{id: t, type: shell, command: ['true']}]\n", 1);
    put(&mut s, "id: b\ntriggers: [{workflow: a}]\ntasks: [{id: t, type: shell, command: ['true']}]\n", 1);
    let before = s.digest();
    // c does not exist yet, but a waits for it: c after b closes a -> b -> c -> a.
    let r = put(
        &mut s,
        "id: c\ntriggers: [{event: x}, {workflow: b}]\ntasks: [{id: t, type: shell, command: ['true']}]\n",
        1,
    );
    match r {
        Response::Rejected(Rejection::InvalidSpec(m)) => {
            assert!(m.contains("triggers[1].workflow: chaining cycle: c -> a -> b -> c"), "{m}")
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    assert_eq!(s.digest(), before);
    // Deleting b breaks the cycle.
    s.apply(Command::DeleteWorkflow { workflow_id: "b".into(), actor: None, at_ms: 2 });
    let ok = put(&mut s, "id: c\ntriggers: [{workflow: b}]\ntasks: [{id: t, type: shell, command: ['true']}]\n", 3);
    assert!(matches!(ok, Response::WorkflowStored { .. }), "{ok:?}");
}

#[test]
fn the_event_log_is_bounded_by_its_window() {
    let mut s = State::default();
    put(&mut s, AUDIT, 1);
    publish(&mut s, event("order.created", "ev-1", serde_json::json!({})), 1_000);
    let window = i64::from(limits::EVENT_WINDOW_SECS) * 1_000;
    publish(&mut s, event("other", "ev-2", serde_json::json!({})), 1_000 + window);
    assert!(s.events().get("ev-1").is_none(), "forgotten after the window");
    // The execution it started still makes the same event start nothing twice.
    let again = publish(&mut s, event("order.created", "ev-1", serde_json::json!({})), 2_000 + window);
    assert_eq!(outcome_ids(&again), vec![Some("audit:ev-ev-1".into())]);
    assert_eq!(s.kept_executions(), 1);
}

#[test]
fn a_state_without_events_encodes_in_the_previous_format_and_one_with_them_round_trips() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:1", 2);
    let old = s.to_snapshot().unwrap();
    assert_eq!(old[0], codec::OLDEST_FORMAT, "nothing new is used: release 0.1.0 reads it");
    assert_eq!(State::from_snapshot(&old).unwrap(), s);

    put(&mut s, ORDERS, 3);
    let uses_triggers = s.to_snapshot().unwrap();
    assert_eq!(uses_triggers[0], codec::FORMAT_VERSION);
    publish(&mut s, event("order.created", "ev-1", serde_json::json!({"region": "eu", "order_id": 1})), 4);
    let new = s.to_snapshot().unwrap();
    let loaded = State::from_snapshot(&new).unwrap();
    assert_eq!(loaded, s);
    assert_eq!(loaded.digest(), s.digest());
    // The rebuilt trigger index matches: the next event starts the same executions.
    let mut a = s.clone();
    let mut b = loaded;
    let e = event("order.created", "ev-2", serde_json::json!({"region": "eu", "order_id": 2}));
    assert_eq!(publish(&mut a, e.clone(), 5), publish(&mut b, e, 5));
    assert_eq!(a.digest(), b.digest());

    // A command without new fields is written as release 0.1.0 wrote it.
    let plain = Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 1 };
    assert_eq!(codec::encode(&plain).unwrap()[0], codec::OLDEST_FORMAT);
    let with = Command::PutWorkflow { spec: spec(ORDERS), actor: None, at_ms: 1 };
    let bytes = codec::encode(&with).unwrap();
    assert_eq!(bytes[0], codec::FORMAT_VERSION);
    assert_eq!(codec::decode::<Command>(&bytes).unwrap(), with);
}

#[test]
fn the_previous_releases_variants_keep_their_numbers() {
    // The encoding numbers enum variants by position, and logs and snapshots hold what release
    // 0.1.0 wrote: a variant added anywhere but last would renumber the ones after it (the
    // fixtures test in node/tests caught exactly that once). These are 0.1.0's last variants.
    let tag = |bytes: Vec<u8>| bytes[1];
    let batch = Command::Batch { origin: None, commands: Vec::new() };
    assert_eq!(tag(codec::encode(&batch).unwrap()), 27, "Command::Batch");
    let rejected = codec::encode(&Response::Rejected(Rejection::InvalidRequest("x".into()))).unwrap();
    assert_eq!((rejected[1], rejected[2]), (30, 28), "Response::Rejected(Rejection::InvalidRequest)");
    assert_eq!(tag(codec::encode(&Trigger::Backfill).unwrap()), 2, "Trigger::Backfill");
    assert_eq!(tag(codec::encode(&Role::Worker).unwrap()), 3, "Role::Worker");
    assert_eq!(tag(codec::encode(&AttemptStatus::Released).unwrap()), 6, "AttemptStatus::Released");
}
