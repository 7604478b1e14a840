use proptest::prelude::*;

use super::*;
use crate::spec::parse_yaml;

const DAG: &str = r#"
id: wf
params: {region: eu}
tasks:
  - {id: a, type: shell, command: ["true"], retry: {max_attempts: 2, backoff: 1s}}
  - {id: b, type: shell, command: ["true"], depends_on: [a]}
  - {id: c, type: shell, command: ["true"], depends_on: [b]}
  - {id: cleanup, type: shell, command: ["true"], depends_on: [c], when: any_failed}
"#;

/// The same shape with worker tasks, for the property tests: `b` and `cleanup` are pulled by
/// workers of queue `q`, and `b` has a timeout.
const MIXED_DAG: &str = r#"
id: wf
params: {region: eu}
tasks:
  - {id: a, type: shell, command: ["true"], retry: {max_attempts: 2, backoff: 1s}}
  - {id: b, type: worker, queue: q, depends_on: [a], timeout: 5s, retry: {max_attempts: 3, backoff: 1s}}
  - {id: c, type: shell, command: ["true"], depends_on: [b]}
  - {id: cleanup, type: worker, queue: q, depends_on: [c], when: any_failed}
"#;

fn spec(yaml: &str) -> WorkflowSpec {
    parse_yaml(yaml).expect("test spec parses")
}

fn put(state: &mut State, yaml: &str, at_ms: i64) -> Response {
    state.apply(Command::PutWorkflow { spec: spec(yaml), actor: None, at_ms })
}

/// Creates an execution and assigns it to node 1, as the engine does.
fn create(state: &mut State, id: &str, at_ms: i64) -> Response {
    let created = state.apply(Command::CreateExecution {
        execution_id: id.into(),
        workflow_id: "wf".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: Json(serde_json::json!({"region": "us"})),
        actor: None,
        at_ms,
    });
    state.apply(Command::AssignExecution { execution_id: id.into(), node_id: 1, at_ms });
    created
}

fn scheduled(state: &mut State, tick: i64) -> Response {
    state.apply(Command::CreateExecution {
        execution_id: crate::ids::scheduled_execution_id("wf", tick),
        workflow_id: "wf".into(),
        trigger: Trigger::Schedule,
        scheduled_at_ms: Some(tick),
        params: Json::null(),
        actor: None,
        at_ms: tick,
    })
}

fn start(state: &mut State, exec: &str, task: &str, at_ms: i64) -> Response {
    state.apply(Command::StartAttempt {
        execution_id: exec.into(),
        task_id: task.into(),
        node_id: 1,
        worker_id: None,
        lease_expires_at_ms: None,
        callback_token_hash: None,
        at_ms,
    })
}

fn finish(state: &mut State, attempt_id: u64, result: AttemptResult, at_ms: i64) -> Response {
    state.apply(Command::FinishAttempt {
        attempt_id,
        by: Reporter::Owner,
        result,
        logs: None,
        jitter_permille: 1000,
        at_ms,
    })
}

fn heartbeat(attempt_id: u64, at_ms: i64) -> Command {
    Command::HeartbeatAttempt {
        attempt_id,
        by: Reporter::Owner,
        lease_expires_at_ms: None,
        progress: None,
        logs: None,
        at_ms,
    }
}

fn started_id(r: Response) -> u64 {
    match r {
        Response::AttemptStarted { attempt_id, .. } => attempt_id,
        other => panic!("expected AttemptStarted, got {other:?}"),
    }
}

fn ok_output() -> AttemptResult {
    AttemptResult::Succeeded { output: Json(serde_json::json!({"rows": 3})) }
}

#[test]
fn each_put_makes_a_new_version_and_delete_hides_it() {
    let mut s = State::default();
    assert_eq!(put(&mut s, DAG, 1), Response::WorkflowStored { workflow_id: "wf".into(), version: 1 });
    assert_eq!(put(&mut s, DAG, 2), Response::WorkflowStored { workflow_id: "wf".into(), version: 2 });
    assert_eq!(s.workflow("wf").map(|w| w.latest), Some(2));
    assert!(matches!(
        s.apply(Command::DeleteWorkflow { workflow_id: "wf".into(), actor: None, at_ms: 3 }),
        Response::WorkflowDeleted { .. }
    ));
    assert!(s.workflow("wf").is_none());
    assert!(matches!(
        s.apply(Command::DeleteWorkflow { workflow_id: "wf".into(), actor: None, at_ms: 4 }),
        Response::Rejected(Rejection::WorkflowNotFound(_))
    ));
    // Re-creating continues the version counter.
    assert_eq!(put(&mut s, DAG, 5), Response::WorkflowStored { workflow_id: "wf".into(), version: 3 });
}

#[test]
fn an_invalid_spec_is_rejected_by_apply_too() {
    let mut s = State::default();
    let mut bad = spec(DAG);
    bad.tasks[0].depends_on = vec!["c".into()];
    let before = s.digest();
    let r = s.apply(Command::PutWorkflow { spec: bad, actor: None, at_ms: 0 });
    assert!(matches!(r, Response::Rejected(Rejection::InvalidSpec(ref m)) if m.contains("cycle")), "{r:?}");
    assert_eq!(s.digest(), before);
}

#[test]
fn a_second_create_with_the_same_id_is_a_noop_that_says_so() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    let id = crate::ids::scheduled_execution_id("wf", 60_000);
    assert_eq!(create(&mut s, &id, 2), Response::ExecutionCreated { execution_id: id.clone() });
    let digest = s.digest();
    assert_eq!(create(&mut s, &id, 2), Response::ExecutionExists { execution_id: id.clone() });
    assert_eq!(s.digest(), digest);
    assert_eq!(s.execution(&id).unwrap().params.0["region"], "us");
}

#[test]
fn a_dag_runs_to_success_and_skips_the_failure_handler() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let spec = s.execution_spec(s.execution("wf:e").unwrap()).unwrap().clone();
    assert_eq!(s.execution("wf:e").unwrap().ready_tasks(&spec, 2), vec!["a"]);
    assert!(matches!(start(&mut s, "wf:e", "b", 3), Response::Rejected(Rejection::TaskNotReady { .. })));
    for (t, task) in ["a", "b", "c"].iter().enumerate() {
        let id = started_id(start(&mut s, "wf:e", task, 10 + t as i64));
        finish(&mut s, id, ok_output(), 20 + t as i64);
    }
    let e = s.execution("wf:e").unwrap();
    assert_eq!(e.status, ExecutionStatus::Succeeded);
    assert_eq!(e.task("cleanup").unwrap().status, TaskStatus::Skipped);
    assert_eq!(e.task("c").unwrap().output.0["rows"], 3);
}

#[test]
fn retries_follow_the_policy_then_fail_and_run_the_handler() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let first = started_id(start(&mut s, "wf:e", "a", 10));
    let r = finish(&mut s, first, AttemptResult::Failed { error: "503".into(), retryable: true }, 20);
    assert_eq!(
        r,
        Response::AttemptFinished { task_status: TaskStatus::Retrying, execution_status: ExecutionStatus::Running }
    );
    // jitter 1000 = the full backoff (1s): not ready before 1020.
    assert!(matches!(start(&mut s, "wf:e", "a", 500), Response::Rejected(Rejection::TaskNotReady { .. })));
    let second = started_id(start(&mut s, "wf:e", "a", 1020));
    // The first attempt is fenced off now.
    assert!(matches!(finish(&mut s, first, ok_output(), 1030), Response::Rejected(Rejection::StaleAttempt { .. })));
    let r = finish(&mut s, second, AttemptResult::Failed { error: "503".into(), retryable: true }, 1040);
    assert!(matches!(r, Response::AttemptFinished { task_status: TaskStatus::Failed, .. }), "{r:?}");
    let e = s.execution("wf:e").unwrap();
    assert_eq!(e.task("b").unwrap().status, TaskStatus::Skipped);
    assert_eq!(e.task("c").unwrap().status, TaskStatus::Skipped);
    // cleanup depends on c, which was skipped, not failed: any_failed does not hold.
    assert_eq!(e.task("cleanup").unwrap().status, TaskStatus::Skipped);
    assert_eq!(e.status, ExecutionStatus::Failed);

    // Retry re-runs failed and skipped tasks with a fresh budget, keeping the old attempts.
    let r = s.apply(Command::RetryExecution { execution_id: "wf:e".into(), actor: None, at_ms: 2000 });
    assert_eq!(r, Response::ExecutionReopened { execution_id: "wf:e".into(), tasks_reset: 4 });
    let third = started_id(start(&mut s, "wf:e", "a", 2001));
    finish(&mut s, third, ok_output(), 2002);
    let a = s.execution("wf:e").unwrap().task("a").unwrap();
    assert_eq!(a.attempts.len(), 3);
    assert_eq!(a.status, TaskStatus::Succeeded);
}

#[test]
fn a_non_retryable_failure_ends_the_task_at_once() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let id = started_id(start(&mut s, "wf:e", "a", 3));
    let r = finish(&mut s, id, AttemptResult::Failed { error: "400".into(), retryable: false }, 4);
    assert!(matches!(r, Response::AttemptFinished { task_status: TaskStatus::Failed, .. }));
}

#[test]
fn cancel_ends_running_attempts_and_is_final() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let id = started_id(start(&mut s, "wf:e", "a", 3));
    assert!(matches!(
        s.apply(Command::CancelExecution { execution_id: "wf:e".into(), actor: None, at_ms: 4 }),
        Response::ExecutionCancelled { .. }
    ));
    let e = s.execution("wf:e").unwrap();
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    assert_eq!(e.task("a").unwrap().attempts[0].status, AttemptStatus::Cancelled);
    assert!(matches!(finish(&mut s, id, ok_output(), 5), Response::Rejected(Rejection::StaleAttempt { .. })));
    assert!(matches!(
        s.apply(Command::CancelExecution { execution_id: "wf:e".into(), actor: None, at_ms: 6 }),
        Response::Rejected(Rejection::ExecutionFinished { .. })
    ));
}

#[test]
fn tuned_limits_apply_to_what_comes_after() {
    let mut s = State::default();
    let tight = limits::Tunable {
        max_tasks_per_workflow: 2,
        max_params_bytes: 100,
        max_output_bytes: 20,
        max_log_bytes_per_attempt: 10,
        ..limits::Tunable::default()
    };
    let bad = limits::Tunable { max_output_bytes: limits::CEILINGS.max_output_bytes + 1, ..tight };
    match s.apply(Command::SetLimits { limits: bad, actor: None, at_ms: 1 }) {
        Response::Rejected(Rejection::InvalidLimits(m)) => assert!(m.contains("max_output_bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.limits(), limits::Tunable::default(), "a refused change changes nothing");
    assert_eq!(
        s.apply(Command::SetLimits { limits: tight, actor: None, at_ms: 1 }),
        Response::LimitsSet { limits: tight }
    );
    // DAG has three tasks: over the tuned limit, though within the ceiling.
    match put(&mut s, DAG, 2) {
        Response::Rejected(Rejection::InvalidSpec(m)) => {
            assert!(m.contains("at most 2 (max_tasks_per_workflow)"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    s.apply(Command::SetLimits {
        limits: limits::Tunable { max_tasks_per_workflow: 10, ..tight },
        actor: None,
        at_ms: 3,
    });
    put(&mut s, DAG, 4);
    let big_params = Json(serde_json::json!({"p": "y".repeat(200)}));
    let refused = s.apply(Command::CreateExecution {
        execution_id: "wf:big".into(),
        workflow_id: "wf".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: big_params,
        actor: None,
        at_ms: 5,
    });
    assert!(matches!(refused, Response::Rejected(Rejection::TooLarge { limit: 100, .. })), "{refused:?}");
    create(&mut s, "wf:e", 6);
    let id = started_id(start(&mut s, "wf:e", "a", 7));
    s.apply(Command::AppendLog { attempt_id: id, text: "0123456789".into(), at_ms: 8 });
    s.apply(Command::AppendLog { attempt_id: id, text: "abcdef".into(), at_ms: 9 });
    assert_eq!(s.attempt_log(id).unwrap().kept_bytes, 6, "only the newest chunk fits in 10 bytes");
    finish(&mut s, id, AttemptResult::Succeeded { output: Json(serde_json::json!({"v": "z".repeat(50)})) }, 10);
    let task = s.execution("wf:e").unwrap().task("a").unwrap();
    assert!(task.output.0.is_null(), "an output over the limit is not stored");
    assert!(task.attempts[0].error.as_deref().unwrap().contains("the limit is 20"), "{:?}", task.attempts[0]);
}

#[test]
fn logs_are_bounded_per_attempt_with_a_marker() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let id = started_id(start(&mut s, "wf:e", "a", 3));
    let chunk = "x".repeat(limits::MAX_LOG_APPEND_BYTES);
    let appends = limits::MAX_LOG_BYTES_PER_ATTEMPT / chunk.len() + 3;
    for i in 0..appends {
        s.apply(Command::AppendLog { attempt_id: id, text: chunk.clone(), at_ms: 4 + i as i64 });
    }
    let log = s.attempt_log(id).unwrap();
    assert!(log.kept_bytes <= limits::MAX_LOG_BYTES_PER_ATTEMPT as u64);
    assert_eq!(log.dropped_bytes, 3 * chunk.len() as u64);
    assert!(log.text().starts_with("[... "));
    let too_big = "y".repeat(limits::MAX_LOG_APPEND_BYTES + 1);
    let r = s.apply(Command::AppendLog { attempt_id: id, text: too_big, at_ms: 100 });
    assert!(matches!(r, Response::Rejected(Rejection::TooLarge { .. })));
}

#[test]
fn leases_exclude_other_holders_until_expiry() {
    let mut s = State::default();
    let acquire = |s: &mut State, holder: &str, exp: i64, at: i64| {
        s.apply(Command::AcquireLease { key: "k".into(), holder: holder.into(), expires_at_ms: exp, at_ms: at })
    };
    assert!(matches!(acquire(&mut s, "n1", 100, 0), Response::LeaseGranted { token: 1, .. }));
    assert!(matches!(acquire(&mut s, "n2", 200, 50), Response::Rejected(Rejection::LeaseHeld { .. })));
    let renew = s.apply(Command::RenewLease { key: "k".into(), holder: "n1".into(), expires_at_ms: 150, at_ms: 60 });
    assert!(matches!(renew, Response::LeaseGranted { expires_at_ms: 150, .. }));
    assert!(matches!(acquire(&mut s, "n2", 300, 149), Response::Rejected(_)));
    assert!(matches!(acquire(&mut s, "n2", 300, 150), Response::LeaseGranted { token: 2, .. }));
    let expired = s.apply(Command::ExpireLeases { at_ms: 301 });
    assert_eq!(expired, Response::LeasesExpired { keys: vec!["k".into()] });
}

#[test]
fn replicated_time_never_goes_backwards() {
    let mut s = State::default();
    s.apply(Command::ExpireLeases { at_ms: 1000 });
    s.apply(Command::ExpireLeases { at_ms: 10 });
    assert_eq!(s.clock_ms(), 1000);
}

#[test]
fn prune_keeps_the_newest_finished_executions() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    for i in 0..5 {
        let id = format!("wf:e{i}");
        create(&mut s, &id, 10 + i);
        s.apply(Command::CancelExecution { execution_id: id, actor: None, at_ms: 20 + i });
    }
    create(&mut s, "wf:live", 30);
    assert_eq!(
        s.apply(Command::PruneExecutions { keep_per_workflow: 2, at_ms: 40 }),
        Response::ExecutionsPruned { count: 3 }
    );
    assert!(s.execution("wf:e0").is_none() && s.execution("wf:e3").is_some() && s.execution("wf:live").is_some());
}

#[test]
fn snapshots_round_trip() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    started_id(start(&mut s, "wf:e", "a", 3));
    let restored = State::from_snapshot(&s.to_snapshot().unwrap()).unwrap();
    assert_eq!(restored, s);
    assert_eq!(restored.digest(), s.digest());
}

#[test]
fn an_execution_id_must_start_with_its_workflow() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    let r = s.apply(Command::CreateExecution {
        execution_id: "other:1".into(),
        workflow_id: "wf".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: Json::null(),
        actor: None,
        at_ms: 2,
    });
    assert!(matches!(r, Response::Rejected(Rejection::InvalidParams(ref m)) if m.contains("wf:")), "{r:?}");
    create(&mut s, "wf:a", 3);
    assert_eq!(s.executions_of("wf").map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["wf:a"]);
}

#[test]
fn a_batch_applies_in_order_and_answers_each_command() {
    let mut s = State::default();
    let batch = Command::Batch {
        origin: None,
        commands: vec![
            Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 1 },
            Command::DeleteWorkflow { workflow_id: "nope".into(), actor: None, at_ms: 2 },
            Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 3 },
        ],
    };
    let answers = match s.apply(batch) {
        Response::Batch(answers) => answers,
        other => panic!("{other:?}"),
    };
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0], Response::WorkflowStored { workflow_id: "wf".into(), version: 1 });
    assert!(matches!(answers[1], Response::Rejected(Rejection::WorkflowNotFound(_))));
    assert_eq!(answers[2], Response::WorkflowStored { workflow_id: "wf".into(), version: 2 });
    assert_eq!(s.clock_ms(), 3);
    let nested = Command::Batch { origin: None, commands: vec![Command::Batch { origin: None, commands: vec![] }] };
    let before = s.digest();
    assert_eq!(s.apply(nested), Response::Rejected(Rejection::NestedBatch));
    assert_eq!(s.digest(), before);
}

fn put_at(n: i64) -> Command {
    Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: n }
}

fn from_node(seq: u64, answered_below: u64, commands: Vec<Command>) -> Command {
    Command::Batch { origin: Some(Origin { node: 2, session: 99, seq, answered_below }), commands }
}

#[test]
fn a_batch_its_node_sends_again_is_applied_once_and_answered_the_same() {
    let mut s = State::default();
    let first = s.apply(from_node(0, 0, vec![put_at(1), put_at(2)]));
    assert_eq!(
        first,
        Response::Batch(vec![
            Response::WorkflowStored { workflow_id: "wf".into(), version: 1 },
            Response::WorkflowStored { workflow_id: "wf".into(), version: 2 },
        ])
    );
    // The leader died before answering; the node sends the same batch to the next one.
    assert_eq!(s.apply(from_node(0, 0, vec![put_at(1), put_at(2)])), first);
    assert_eq!(s.workflow("wf").map(|w| w.latest), Some(2));
    // Once the node confirms the answer, a late copy is refused, not applied.
    s.apply(from_node(1, 1, vec![put_at(3)]));
    assert_eq!(
        s.apply(from_node(0, 0, vec![put_at(1), put_at(2)])),
        Response::Batch(vec![Response::Rejected(Rejection::DuplicateProposal); 2])
    );
    assert_eq!(s.workflow("wf").map(|w| w.latest), Some(3));
    assert_eq!(s.request_tables().0, 1);
}

fn once(key: &str, fingerprint: u8, command: Command) -> Command {
    Command::Idempotent {
        request: RequestId { scope: "ops".into(), key: key.into() },
        fingerprint: [fingerprint; 16],
        command: Box::new(command),
    }
}

#[test]
fn a_client_request_retried_gets_its_first_answer() {
    let mut s = State::default();
    let first = s.apply(once("k1", 1, put_at(1)));
    assert_eq!(first, Response::WorkflowStored { workflow_id: "wf".into(), version: 1 });
    assert_eq!(s.apply(once("k1", 1, put_at(5))), Response::Replayed(Box::new(first)));
    assert_eq!(s.workflow("wf").map(|w| w.latest), Some(1));
    // A refusal is an answer too: the retry gets the same refusal, even if it would pass now.
    let refused = s.apply(once("k2", 1, Command::DeleteWorkflow { workflow_id: "x".into(), actor: None, at_ms: 6 }));
    assert!(matches!(refused, Response::Rejected(Rejection::WorkflowNotFound(_))));
    s.apply(Command::PutWorkflow { spec: spec(&DAG.replace("id: wf", "id: x")), actor: None, at_ms: 7 });
    let again = s.apply(once("k2", 1, Command::DeleteWorkflow { workflow_id: "x".into(), actor: None, at_ms: 8 }));
    assert_eq!(again, Response::Replayed(Box::new(refused)));
    // The same key for a different request is refused and changes nothing.
    let before = s.workflow("wf").cloned();
    assert_eq!(
        s.apply(once("k1", 2, put_at(9))),
        Response::Rejected(Rejection::IdempotencyKeyReused { key: "k1".into() })
    );
    assert_eq!(s.workflow("wf").cloned(), before);
}

#[test]
fn a_client_request_is_remembered_for_the_window_only() {
    let mut s = State::default();
    let window_ms = i64::from(s.limits().request_window_secs) * 1_000;
    s.apply(once("k", 1, put_at(0)));
    assert!(matches!(s.apply(once("k", 1, put_at(window_ms - 1))), Response::Replayed(_)));
    assert_eq!(
        s.apply(once("k", 1, put_at(window_ms))),
        Response::WorkflowStored { workflow_id: "wf".into(), version: 2 }
    );
    assert_eq!(s.request_tables().2, 1);
}

#[test]
fn a_full_request_table_forgets_the_oldest_first() {
    let mut s = State::default();
    let limits = limits::Tunable { max_remembered_requests: 2, ..limits::Tunable::default() };
    s.apply(Command::SetLimits { limits, actor: None, at_ms: 0 });
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        s.apply(once(key, 1, put_at(i as i64 + 1)));
    }
    assert_eq!(s.request_tables(), (0, 0, 2, 1));
    assert!(matches!(s.apply(once("c", 1, put_at(10))), Response::Replayed(_)));
    assert!(matches!(s.apply(once("a", 1, put_at(11))), Response::WorkflowStored { .. }));
}

#[test]
fn a_client_request_must_wrap_one_valid_command() {
    let mut s = State::default();
    let before = s.digest();
    let wrapped_batch = once("k", 1, Command::Batch { origin: None, commands: vec![put_at(1)] });
    assert!(matches!(s.apply(wrapped_batch), Response::Rejected(Rejection::InvalidRequest(_))));
    assert!(matches!(s.apply(once("bad key", 1, put_at(1))), Response::Rejected(Rejection::InvalidRequest(_))));
    assert_eq!(s.workflow("wf"), None);
    assert_ne!(s.digest(), before, "the clock moved");
}

#[test]
fn a_backend_reports_only_with_its_attempts_callback_token() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let token_hash = HASH_A.to_string();
    let r = s.apply(Command::StartAttempt {
        execution_id: "wf:e".into(),
        task_id: "a".into(),
        node_id: 1,
        worker_id: None,
        lease_expires_at_ms: None,
        callback_token_hash: Some(token_hash.clone()),
        at_ms: 3,
    });
    let id = started_id(r);
    let before = s.clone();
    let forged = Reporter::Backend { token_hash: HASH_B.into() };
    for by in [forged, Reporter::Worker { worker_id: "w1".into(), token: None }] {
        let r = s.apply(Command::FinishAttempt {
            attempt_id: id,
            by,
            result: ok_output(),
            logs: None,
            jitter_permille: 0,
            at_ms: 4,
        });
        assert_eq!(r, Response::Rejected(Rejection::NotAttemptHolder { attempt_id: id }));
        let Response::Rejected(why) = &r else { panic!("{r:?}") };
        assert!(!why.to_string().contains("w1"), "the refusal names no holder: {why}");
    }
    assert_eq!(domain(&before), domain(&s), "refused reports change nothing");
    let r = s.apply(Command::FinishAttempt {
        attempt_id: id,
        by: Reporter::Backend { token_hash },
        result: ok_output(),
        logs: None,
        jitter_permille: 0,
        at_ms: 5,
    });
    assert!(matches!(r, Response::AttemptFinished { .. }), "{r:?}");
}

#[test]
fn a_worker_stays_bound_to_the_token_it_connected_with() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:a", 2);
    s.apply(Command::CreateToken {
        name: "pool-a".into(),
        role: Role::Worker,
        hash: HASH_A.into(),
        queues: Some(vec!["q".into()]),
        actor: None,
        at_ms: 2,
    });
    let connect = |queues: Vec<String>, token: Option<&str>, session: u64| Command::ConnectWorker {
        worker_id: "w1".into(),
        session,
        node_id: 1,
        queues,
        concurrency: 1,
        token: token.map(String::from),
        expires_at_ms: 60_000,
        at_ms: 3,
    };
    let r = s.apply(connect(vec!["other".into()], Some("pool-a"), 1));
    assert!(matches!(&r, Response::Rejected(Rejection::InvalidWorker(m)) if m.contains("`other`")), "{r:?}");
    assert!(matches!(s.apply(connect(vec!["q".into()], Some("pool-a"), 1)), Response::WorkerConnected { .. }));
    // Another token cannot take the worker over, drain it, or answer for its attempts.
    let r = s.apply(connect(vec!["q".into()], Some("intruder"), 2));
    assert_eq!(r, Response::Rejected(Rejection::WorkerTokenMismatch { worker_id: "w1".into() }));
    let r =
        s.apply(Command::DrainWorker { worker_id: "w1".into(), session: 1, token: Some("intruder".into()), at_ms: 4 });
    assert_eq!(r, Response::Rejected(Rejection::WorkerTokenMismatch { worker_id: "w1".into() }));
    let id = started_id(hand(&mut s, "wf:a", "pull", "w1", 5));
    let intruder = Reporter::Worker { worker_id: "w1".into(), token: Some("intruder".into()) };
    let r = s.apply(Command::HeartbeatAttempt {
        attempt_id: id,
        by: intruder,
        lease_expires_at_ms: Some(90_000),
        progress: None,
        logs: None,
        at_ms: 6,
    });
    assert_eq!(r, Response::Rejected(Rejection::NotAttemptHolder { attempt_id: id }));
    let owner = Reporter::Worker { worker_id: "w1".into(), token: Some("pool-a".into()) };
    let r = s.apply(Command::FinishAttempt {
        attempt_id: id,
        by: owner,
        result: AttemptResult::Succeeded { output: Json(serde_json::json!({"v": 1})) },
        logs: None,
        jitter_permille: 0,
        at_ms: 7,
    });
    assert!(matches!(r, Response::AttemptFinished { .. }), "{r:?}");
    // Queue lists belong to worker tokens only.
    let r = s.apply(Command::CreateToken {
        name: "ops".into(),
        role: Role::Operator,
        hash: HASH_B.into(),
        queues: Some(vec!["q".into()]),
        actor: None,
        at_ms: 8,
    });
    assert!(matches!(r, Response::Rejected(Rejection::InvalidToken(_))), "{r:?}");
}

#[test]
fn only_the_owner_starts_attempts() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let r = s.apply(Command::StartAttempt {
        execution_id: "wf:e".into(),
        task_id: "a".into(),
        node_id: 2,
        worker_id: None,
        lease_expires_at_ms: None,
        callback_token_hash: None,
        at_ms: 3,
    });
    assert!(matches!(r, Response::Rejected(Rejection::NotOwner { owner: Some(1), .. })), "{r:?}");
    s.apply(Command::AssignExecution { execution_id: "wf:e".into(), node_id: 2, at_ms: 4 });
    let r = s.apply(Command::StartAttempt {
        execution_id: "wf:e".into(),
        task_id: "a".into(),
        node_id: 2,
        worker_id: None,
        lease_expires_at_ms: None,
        callback_token_hash: None,
        at_ms: 5,
    });
    assert!(matches!(r, Response::AttemptStarted { .. }), "{r:?}");
}

#[test]
fn an_execution_past_its_timeout_fails_and_not_before() {
    let mut s = State::default();
    put(&mut s, &format!("{DAG}execution_timeout: 10s\n"), 1);
    create(&mut s, "wf:e", 1_000);
    let id = started_id(start(&mut s, "wf:e", "a", 1_001));
    let early = s.apply(Command::TimeOutExecution { execution_id: "wf:e".into(), at_ms: 10_999 });
    assert!(matches!(early, Response::Rejected(Rejection::NotTimedOut { .. })), "{early:?}");
    let r = s.apply(Command::TimeOutExecution { execution_id: "wf:e".into(), at_ms: 11_000 });
    assert_eq!(r, Response::ExecutionTimedOut { execution_id: "wf:e".into() });
    let e = s.execution("wf:e").unwrap();
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.task("a").unwrap().status, TaskStatus::Failed);
    assert_eq!(e.task("a").unwrap().attempts[0].status, AttemptStatus::TimedOut);
    assert_eq!(e.task("b").unwrap().status, TaskStatus::Skipped);
    assert!(matches!(finish(&mut s, id, ok_output(), 11_001), Response::Rejected(Rejection::StaleAttempt { .. })));
}

#[test]
fn heartbeats_are_fenced_like_completions() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:e", 2);
    let id = started_id(start(&mut s, "wf:e", "a", 3));
    assert_eq!(s.apply(heartbeat(id, 4)), Response::HeartbeatRecorded { attempt_id: id, lease_expires_at_ms: None });
    assert_eq!(s.attempt(id).map(|(_, _, a)| a.last_heartbeat_ms), Some(Some(4)));
    finish(&mut s, id, AttemptResult::Lost { reason: "node died".into() }, 5);
    assert!(matches!(s.apply(heartbeat(id, 6)), Response::Rejected(Rejection::StaleAttempt { .. })));
}

fn with_concurrency(policy: &str) -> String {
    format!("{DAG}concurrency: {policy}\nschedule: '*/5 * * * * *'\n")
}

#[test]
fn a_tick_fired_twice_creates_one_execution() {
    let mut s = State::default();
    put(&mut s, &with_concurrency("allow"), 0);
    assert!(matches!(scheduled(&mut s, 5_000), Response::ExecutionCreated { .. }));
    assert!(matches!(scheduled(&mut s, 5_000), Response::ExecutionExists { .. }));
    assert_eq!(s.workflow("wf").and_then(|w| w.last_tick_ms), Some(5_000));
}

#[test]
fn forbid_skips_a_tick_while_one_runs() {
    let mut s = State::default();
    put(&mut s, &with_concurrency("forbid"), 0);
    scheduled(&mut s, 5_000);
    let r = scheduled(&mut s, 10_000);
    assert!(matches!(r, Response::TickSkipped { scheduled_at_ms: 10_000, .. }), "{r:?}");
    assert_eq!(s.workflow("wf").map(|w| (w.skipped_ticks, w.last_tick_ms)), Some((1, Some(10_000))));
}

#[test]
fn replace_cancels_the_running_execution() {
    let mut s = State::default();
    put(&mut s, &with_concurrency("replace"), 0);
    scheduled(&mut s, 5_000);
    scheduled(&mut s, 10_000);
    let first = crate::ids::scheduled_execution_id("wf", 5_000);
    assert_eq!(s.execution(&first).map(|e| e.status), Some(ExecutionStatus::Cancelled));
}

#[test]
fn buffer_one_queues_one_and_skips_the_rest() {
    let mut s = State::default();
    put(&mut s, &with_concurrency("buffer_one"), 0);
    scheduled(&mut s, 5_000);
    let first = crate::ids::scheduled_execution_id("wf", 5_000);
    let second = crate::ids::scheduled_execution_id("wf", 10_000);
    assert!(matches!(scheduled(&mut s, 10_000), Response::ExecutionCreated { .. }));
    assert!(matches!(scheduled(&mut s, 15_000), Response::TickSkipped { .. }));
    s.apply(Command::AssignExecution { execution_id: second.clone(), node_id: 1, at_ms: 16_000 });
    assert!(s.ready_tasks(&second, 16_000).is_empty());
    let r = s.apply(Command::StartAttempt {
        execution_id: second.clone(),
        task_id: "a".into(),
        node_id: 1,
        worker_id: None,
        lease_expires_at_ms: None,
        callback_token_hash: None,
        at_ms: 16_000,
    });
    assert!(matches!(r, Response::Rejected(Rejection::Blocked { .. })), "{r:?}");
    s.apply(Command::CancelExecution { execution_id: first, actor: None, at_ms: 17_000 });
    assert_eq!(s.ready_tasks(&second, 17_000), vec!["a".to_string()]);
}

// ----- workers -----

const WORKER_WF: &str = r#"
id: wf
tasks:
  - {id: pull, type: worker, queue: q, timeout: 30s, retry: {max_attempts: 2, backoff: 1s}}
  - {id: next, type: worker, queue: q, depends_on: [pull], input: {from: "{{ tasks.pull.output.v }}"}}
"#;

fn connect(state: &mut State, worker: &str, session: u64, queues: &[&str], concurrency: u32, at_ms: i64) -> Response {
    state.apply(Command::ConnectWorker {
        worker_id: worker.into(),
        session,
        node_id: 2,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        concurrency,
        token: None,
        expires_at_ms: at_ms + 3_000,
        at_ms,
    })
}

fn hand(state: &mut State, exec: &str, task: &str, worker: &str, at_ms: i64) -> Response {
    state.apply(Command::StartAttempt {
        execution_id: exec.into(),
        task_id: task.into(),
        node_id: 1,
        worker_id: Some(worker.into()),
        lease_expires_at_ms: Some(at_ms + 10_000),
        callback_token_hash: None,
        at_ms,
    })
}

fn worker_finish(state: &mut State, attempt_id: u64, worker: &str, result: AttemptResult, at_ms: i64) -> Response {
    state.apply(Command::FinishAttempt {
        attempt_id,
        by: Reporter::Worker { worker_id: worker.into(), token: None },
        result,
        logs: None,
        jitter_permille: 0,
        at_ms,
    })
}

fn unavailable(r: &Response) -> bool {
    matches!(r, Response::Rejected(Rejection::WorkerUnavailable { .. }))
}

#[test]
fn a_worker_task_goes_only_to_a_connected_worker_of_its_queue_with_a_free_slot() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:a", 2);
    create(&mut s, "wf:b", 2);
    assert!(unavailable(&hand(&mut s, "wf:a", "pull", "w1", 3)), "not connected");
    assert!(matches!(start(&mut s, "wf:a", "pull", 3), Response::Rejected(Rejection::TaskNotReady { .. })));
    connect(&mut s, "w1", 1, &["other"], 1, 4);
    assert!(unavailable(&hand(&mut s, "wf:a", "pull", "w1", 5)), "wrong queue");
    connect(&mut s, "w1", 1, &["q"], 1, 6);
    let id = started_id(hand(&mut s, "wf:a", "pull", "w1", 7));
    // Recorded on the node the worker is connected to (2), not the proposer (1).
    assert_eq!(s.attempt(id).map(|(_, _, a)| a.node_id), Some(2));
    assert!(unavailable(&hand(&mut s, "wf:b", "pull", "w1", 8)), "its one slot is busy");
    assert_eq!(s.worker_running("w1"), 1);
    // Its registration lapses (the node serving it died): no more tasks for it.
    connect(&mut s, "w2", 1, &["q"], 4, 9);
    assert!(unavailable(&hand(&mut s, "wf:b", "pull", "w2", 3_009 + 1)));
}

#[test]
fn an_expired_lease_loses_the_attempt_retries_it_and_fences_the_late_answer() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:a", 2);
    connect(&mut s, "w1", 1, &["q"], 2, 3);
    let first = started_id(hand(&mut s, "wf:a", "pull", "w1", 4));
    // A heartbeat from another worker is refused; the holder's extends the lease.
    let foreign = Command::HeartbeatAttempt {
        attempt_id: first,
        by: Reporter::Worker { worker_id: "w2".into(), token: None },
        lease_expires_at_ms: Some(60_000),
        progress: None,
        logs: None,
        at_ms: 5,
    };
    assert!(matches!(s.apply(foreign), Response::Rejected(Rejection::NotAttemptHolder { .. })));
    let beat = Command::HeartbeatAttempt {
        attempt_id: first,
        by: Reporter::Worker { worker_id: "w1".into(), token: None },
        lease_expires_at_ms: Some(12_000),
        progress: Some(Json(serde_json::json!({"done": 3}))),
        logs: Some("working\n".into()),
        at_ms: 6,
    };
    assert_eq!(s.apply(beat), Response::HeartbeatRecorded { attempt_id: first, lease_expires_at_ms: Some(12_000) });
    assert_eq!(s.attempt_log(first).map(|l| l.text()), Some("working\n".to_string()));
    let nothing = s.apply(Command::ExpireWorkerAttempts { jitter_permille: 0, at_ms: 11_999 });
    assert!(matches!(nothing, Response::WorkerAttemptsExpired { ref lost, .. } if lost.is_empty()), "{nothing:?}");
    let r = s.apply(Command::ExpireWorkerAttempts { jitter_permille: 0, at_ms: 12_000 });
    assert!(matches!(r, Response::WorkerAttemptsExpired { ref lost, .. } if lost == &vec![first]), "{r:?}");
    let task = s.execution("wf:a").unwrap().task("pull").unwrap().clone();
    assert_eq!(task.status, TaskStatus::Retrying);
    assert_eq!(task.attempts[0].status, AttemptStatus::Lost);
    assert_eq!(s.worker_running("w1"), 0);
    // The retry goes to another worker; the first worker's late answer changes nothing.
    connect(&mut s, "w2", 1, &["q"], 2, 13_000);
    let second = started_id(hand(&mut s, "wf:a", "pull", "w2", 13_001));
    let mut before = s.clone();
    let late = worker_finish(&mut s, first, "w1", ok_output(), 13_002);
    assert!(matches!(late, Response::Rejected(Rejection::StaleAttempt { .. })), "{late:?}");
    let impostor = worker_finish(&mut s, second, "w1", ok_output(), 13_002);
    assert!(matches!(impostor, Response::Rejected(Rejection::NotAttemptHolder { .. })), "{impostor:?}");
    before.clock_ms = s.clock_ms;
    assert_eq!(before.digest(), s.digest(), "refused answers change nothing");
    let done = worker_finish(
        &mut s,
        second,
        "w2",
        AttemptResult::Succeeded { output: Json(serde_json::json!({"v": 7})) },
        13_003,
    );
    assert!(matches!(done, Response::AttemptFinished { task_status: TaskStatus::Succeeded, .. }), "{done:?}");
    assert_eq!(s.ready_tasks("wf:a", 13_004), vec!["next".to_string()]);
}

#[test]
fn leases_last_their_length_on_replicated_time_whatever_the_proposers_clock() {
    let mut s = State::default();
    // Another node's clock, 3 s ahead, set replicated time.
    s.apply(Command::ExpireLeases { at_ms: 10_000 });
    // This node's clock is 3 s behind: it asks for 3 s from its 7_000.
    connect(&mut s, "w1", 1, &["q"], 1, 7_000);
    let entry = s.worker("w1").unwrap();
    assert_eq!(entry.expires_at_ms, 13_000, "3 s from replicated time (10 s), not 10 s itself");
    assert!(entry.is_live(s.clock_ms()));
    let granted = s.apply(Command::AcquireLease {
        key: "node/1".into(),
        holder: "n1".into(),
        expires_at_ms: 10_000,
        at_ms: 7_000,
    });
    assert!(matches!(granted, Response::LeaseGranted { expires_at_ms: 13_000, .. }), "{granted:?}");
}

#[test]
fn a_worker_task_past_its_timeout_times_out() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:a", 2);
    connect(&mut s, "w1", 1, &["q"], 2, 3);
    let id = started_id(hand(&mut s, "wf:a", "pull", "w1", 1_000));
    assert_eq!(s.attempt(id).and_then(|(_, _, a)| a.deadline_ms), Some(31_000));
    let beat = Command::HeartbeatAttempt {
        attempt_id: id,
        by: Reporter::Worker { worker_id: "w1".into(), token: None },
        lease_expires_at_ms: Some(60_000),
        progress: None,
        logs: None,
        at_ms: 30_000,
    };
    s.apply(beat);
    let r = s.apply(Command::ExpireWorkerAttempts { jitter_permille: 0, at_ms: 31_000 });
    assert!(matches!(r, Response::WorkerAttemptsExpired { ref timed_out, .. } if timed_out == &vec![id]), "{r:?}");
    assert_eq!(s.attempt(id).map(|(_, _, a)| a.status), Some(AttemptStatus::TimedOut));
}

#[test]
fn disconnecting_releases_undelivered_attempts_without_spending_the_retry_budget() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:a", 2);
    connect(&mut s, "w1", 7, &["q"], 2, 3);
    let id = started_id(hand(&mut s, "wf:a", "pull", "w1", 4));
    // Another session's disconnect (an old connection closing late) changes nothing.
    let stale = s.apply(Command::DisconnectWorker { worker_id: "w1".into(), session: 6, release: vec![id], at_ms: 5 });
    assert!(matches!(stale, Response::Rejected(Rejection::WorkerNotConnected { .. })), "{stale:?}");
    let r = s.apply(Command::DisconnectWorker { worker_id: "w1".into(), session: 7, release: vec![id], at_ms: 6 });
    assert_eq!(r, Response::WorkerDisconnected { worker_id: "w1".into(), released: 1 });
    assert!(s.worker("w1").is_none());
    let task = s.execution("wf:a").unwrap().task("pull").unwrap().clone();
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.attempts[0].status, AttemptStatus::Released);
    // Both attempts of the budget are still there: fail twice, the second fails the task.
    connect(&mut s, "w2", 1, &["q"], 2, 7);
    let a = started_id(hand(&mut s, "wf:a", "pull", "w2", 8));
    let failed = AttemptResult::Failed { error: "x".into(), retryable: true };
    assert!(matches!(
        worker_finish(&mut s, a, "w2", failed.clone(), 9),
        Response::AttemptFinished { task_status: TaskStatus::Retrying, .. }
    ));
    let b = started_id(hand(&mut s, "wf:a", "pull", "w2", 2_000));
    assert!(matches!(
        worker_finish(&mut s, b, "w2", failed, 2_001),
        Response::AttemptFinished { task_status: TaskStatus::Failed, .. }
    ));
}

#[test]
fn a_draining_worker_takes_nothing_new_and_the_queue_shows_its_age() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:old", 2);
    create(&mut s, "wf:new", 5);
    let queued = s.queued_worker_tasks(10);
    let order: Vec<(&str, i64)> = queued.iter().map(|q| (q.execution_id.as_str(), q.ready_since_ms)).collect();
    assert_eq!(order, vec![("wf:old", 2), ("wf:new", 5)]);
    assert!(queued.iter().all(|q| q.queue == "q" && q.task_id == "pull"));
    connect(&mut s, "w1", 1, &["q"], 4, 11);
    assert!(matches!(
        s.apply(Command::DrainWorker { worker_id: "w1".into(), session: 1, token: None, at_ms: 12 }),
        Response::WorkerDraining { .. }
    ));
    assert!(unavailable(&hand(&mut s, "wf:old", "pull", "w1", 13)));
    // A worker that reconnects is a new session: it takes tasks again.
    connect(&mut s, "w1", 2, &["q"], 4, 14);
    started_id(hand(&mut s, "wf:old", "pull", "w1", 15));
    assert_eq!(s.queued_worker_tasks(16).len(), 1);
}

// ----- tokens and audit -----

const HASH_A: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const HASH_B: &str = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9";

fn create_token(state: &mut State, name: &str, role: Role, hash: &str) -> Response {
    state.apply(Command::CreateToken {
        name: name.into(),
        role,
        hash: hash.into(),
        queues: None,
        actor: Some("admin".into()),
        at_ms: 5,
    })
}

#[test]
fn tokens_are_found_by_hash_until_revoked() {
    let mut state = State::default();
    assert_eq!(
        create_token(&mut state, "ci", Role::Operator, HASH_A),
        Response::TokenCreated { name: "ci".into(), role: Role::Operator }
    );
    let found = state.token_by_hash(HASH_A).expect("stored");
    assert_eq!((found.name.as_str(), found.role, found.created_by.as_deref()), ("ci", Role::Operator, Some("admin")));
    assert!(state.token_by_hash(HASH_B).is_none());
    assert_eq!(
        state.apply(Command::RevokeToken { name: "ci".into(), actor: None, at_ms: 6 }),
        Response::TokenRevoked { name: "ci".into() }
    );
    assert!(state.token_by_hash(HASH_A).is_none());
    assert_eq!(
        state.apply(Command::RevokeToken { name: "ci".into(), actor: None, at_ms: 7 }),
        Response::Rejected(Rejection::TokenNotFound("ci".into()))
    );
}

#[test]
fn bad_tokens_are_refused_and_named() {
    let mut state = State::default();
    create_token(&mut state, "ci", Role::Viewer, HASH_A);
    let refused = |r: Response| match r {
        Response::Rejected(rejection) => rejection.to_string(),
        other => panic!("accepted: {other:?}"),
    };
    assert_eq!(refused(create_token(&mut state, "ci", Role::Viewer, HASH_B)), "a token named `ci` exists");
    assert!(refused(create_token(&mut state, "has space", Role::Viewer, HASH_B)).contains("has ` `"));
    assert!(refused(create_token(&mut state, "admin", Role::Admin, HASH_B)).contains("reserved"));
    assert!(refused(create_token(&mut state, "other", Role::Viewer, "XYZ")).contains("64 lowercase hex"));
    assert!(refused(create_token(&mut state, "other", Role::Viewer, HASH_A)).contains("secret exists"));
    assert_eq!(state.tokens().count(), 1);
}

#[test]
fn cancels_and_retries_record_who() {
    let mut state = State::default();
    put(&mut state, MIXED_DAG, 0);
    state.apply(Command::CreateExecution {
        execution_id: "wf:e0".into(),
        workflow_id: "wf".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: Json::null(),
        actor: Some("carol".into()),
        at_ms: 1,
    });
    state.apply(Command::CancelExecution { execution_id: "wf:e0".into(), actor: Some("alice".into()), at_ms: 2 });
    state.apply(Command::RetryExecution { execution_id: "wf:e0".into(), actor: Some("bob".into()), at_ms: 3 });
    let execution = state.execution("wf:e0").expect("exists");
    assert_eq!(execution.created_by.as_deref(), Some("carol"));
    let trail: Vec<(AuditAction, Option<&str>, i64)> =
        execution.audit.iter().map(|a| (a.action, a.by.as_deref(), a.at_ms)).collect();
    assert_eq!(trail, vec![(AuditAction::Cancelled, Some("alice"), 2), (AuditAction::Retried, Some("bob"), 3)]);
}

// ----- property tests -----

const TASKS: [&str; 4] = ["a", "b", "c", "cleanup"];
const HOLDERS: [&str; 3] = ["n1", "n2", "n3"];

const WORKERS: [Option<&str>; 3] = [Some("w1"), Some("w2"), None];

/// The reporter a generated command uses: the worker it names, or the owner node.
fn reporter(worker_id: Option<String>) -> Reporter {
    match worker_id {
        Some(worker_id) => Reporter::Worker { worker_id, token: None },
        None => Reporter::Owner,
    }
}

fn arb_command() -> impl Strategy<Value = Command> {
    let exec = prop::sample::select(vec!["wf:e0", "wf:e1", "wf:e2"]);
    let task = prop::sample::select(TASKS.to_vec());
    let holder = prop::sample::select(HOLDERS.to_vec());
    let key = prop::sample::select(vec!["k1", "k2"]);
    let worker = prop::sample::select(WORKERS.to_vec()).prop_map(|w| w.map(String::from));
    let worker_name = prop::sample::select(vec!["w1", "w2"]).prop_map(String::from);
    let queues = prop::sample::select(vec![vec!["q"], vec!["other"], vec!["other", "q"]])
        .prop_map(|q| q.into_iter().map(String::from).collect::<Vec<_>>());
    let at = 0i64..10_000;
    let token_name = prop::sample::select(vec!["alice", "bob", "admin", "bad name"]);
    let token_hash = prop::sample::select(vec![HASH_A, HASH_B, "not-hex"]);
    let actor = prop::sample::select(vec![None, Some("alice")]);
    let result = prop_oneof![
        Just(AttemptResult::Succeeded { output: Json(serde_json::json!({"ok": true})) }),
        any::<bool>().prop_map(|retryable| AttemptResult::Failed { error: "boom".into(), retryable }),
        Just(AttemptResult::TimedOut),
        Just(AttemptResult::Lost { reason: "node died".into() }),
        Just(AttemptResult::Released { reason: "shutting down".into() }),
    ];
    prop_oneof![
        1 => at.clone().prop_map(|at_ms| Command::PutWorkflow { spec: spec(MIXED_DAG), actor: None, at_ms }),
        1 => at.clone().prop_map(|at_ms| Command::DeleteWorkflow { workflow_id: "wf".into(), actor: None, at_ms }),
        1 => (any::<bool>(), at.clone()).prop_map(|(paused, at_ms)| Command::SetPaused { workflow_id: "wf".into(), paused, actor: None, at_ms }),
        3 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::CreateExecution {
            execution_id: e.into(), workflow_id: "wf".into(), trigger: Trigger::Schedule,
            scheduled_at_ms: Some(at_ms), params: Json::null(), actor: None, at_ms }),
        2 => (exec.clone(), 1u64..3, at.clone()).prop_map(|(e, node_id, at_ms)| Command::AssignExecution {
            execution_id: e.into(), node_id, at_ms }),
        8 => (exec.clone(), task, 1u64..3, worker.clone(), 0i64..12_000, at.clone()).prop_map(|(e, t, node_id, worker_id, lease, at_ms)| Command::StartAttempt {
            execution_id: e.into(), task_id: t.into(), node_id, worker_id, lease_expires_at_ms: Some(lease), callback_token_hash: None, at_ms }),
        2 => (1u64..12, worker.clone(), 0i64..12_000, at.clone()).prop_map(|(attempt_id, worker_id, lease, at_ms)| Command::HeartbeatAttempt {
            attempt_id, by: reporter(worker_id), lease_expires_at_ms: Some(lease), progress: Some(Json(serde_json::json!(0.5))), logs: Some("beat".into()), at_ms }),
        1 => (0i64..10_000, at.clone()).prop_map(|(tick_ms, at_ms)| Command::AdvanceSchedule { workflow_id: "wf".into(), tick_ms, at_ms }),
        8 => (1u64..12, worker.clone(), result, 0u16..=1000, at.clone()).prop_map(|(attempt_id, worker_id, result, jitter_permille, at_ms)|
            Command::FinishAttempt { attempt_id, by: reporter(worker_id), result, logs: None, jitter_permille, at_ms }),
        1 => (exec.clone(), actor.clone(), at.clone()).prop_map(|(e, actor, at_ms)| Command::CancelExecution { execution_id: e.into(), actor: actor.map(String::from), at_ms }),
        1 => (exec.clone(), actor.clone(), at.clone()).prop_map(|(e, actor, at_ms)| Command::RetryExecution { execution_id: e.into(), actor: actor.map(String::from), at_ms }),
        1 => (exec, at.clone()).prop_map(|(e, at_ms)| Command::TimeOutExecution { execution_id: e.into(), at_ms }),
        2 => (1u64..12, "[a-z ]{0,20}", at.clone()).prop_map(|(attempt_id, text, at_ms)| Command::AppendLog { attempt_id, text, at_ms }),
        2 => (key.clone(), holder.clone(), 0i64..12_000, at.clone()).prop_map(|(k, h, exp, at_ms)|
            Command::AcquireLease { key: k.into(), holder: h.into(), expires_at_ms: exp, at_ms }),
        1 => (key.clone(), holder.clone(), 0i64..12_000, at.clone()).prop_map(|(k, h, exp, at_ms)|
            Command::RenewLease { key: k.into(), holder: h.into(), expires_at_ms: exp, at_ms }),
        1 => (key, holder, at.clone()).prop_map(|(k, h, at_ms)| Command::ReleaseLease { key: k.into(), holder: h.into(), at_ms }),
        1 => at.clone().prop_map(|at_ms| Command::ExpireLeases { at_ms }),
        1 => (0u32..3, at.clone()).prop_map(|(keep_per_workflow, at_ms)| Command::PruneExecutions { keep_per_workflow, at_ms }),
        3 => (worker_name.clone(), 1u64..3, 1u64..4, queues, 1u32..3, 0i64..12_000, at.clone()).prop_map(
            |(worker_id, session, node_id, queues, concurrency, expires_at_ms, at_ms)| Command::ConnectWorker {
                worker_id, session, node_id, queues, concurrency, token: None, expires_at_ms, at_ms }),
        1 => (worker_name.clone(), 1u64..3, 0i64..12_000, at.clone()).prop_map(|(worker_id, session, expires_at_ms, at_ms)|
            Command::WorkerSeen { worker_id, session, expires_at_ms, at_ms }),
        1 => (worker_name.clone(), 1u64..3, at.clone()).prop_map(|(worker_id, session, at_ms)| Command::DrainWorker { worker_id, session, token: None, at_ms }),
        1 => (worker_name, 1u64..3, prop::collection::vec(1u64..12, 0..3), at.clone()).prop_map(|(worker_id, session, release, at_ms)|
            Command::DisconnectWorker { worker_id, session, release, at_ms }),
        2 => (0u16..=1000, at.clone()).prop_map(|(jitter_permille, at_ms)| Command::ExpireWorkerAttempts { jitter_permille, at_ms }),
        1 => (token_name.clone(), prop::sample::select(Role::ALL.to_vec()), token_hash, actor, at.clone()).prop_map(|(name, role, hash, actor, at_ms)|
            Command::CreateToken { name: name.into(), role, hash: hash.into(), queues: None, actor: actor.map(String::from), at_ms }),
        1 => (token_name, at.clone()).prop_map(|(name, at_ms)| Command::RevokeToken { name: name.into(), actor: None, at_ms }),
        1 => (0u32..6, 0u32..300, 0u32..200, 0u32..40, at).prop_map(|(tasks, params, output, log, at_ms)| Command::SetLimits {
            limits: crate::limits::Tunable { max_tasks_per_workflow: tasks, max_params_bytes: params, max_output_bytes: output, max_log_bytes_per_attempt: log, ..crate::limits::Tunable::default() },
            actor: None, at_ms }),
    ]
}

/// The state without the exactly-once bookkeeping (which counts copies it refused).
fn domain(state: &State) -> [u8; 32] {
    let mut plain = state.clone();
    plain.sessions = requests::Sessions::default();
    plain.requests = requests::ClientRequests::default();
    plain.clock_ms = 0;
    plain.digest()
}

fn run(commands: &[Command]) -> (State, Vec<Response>) {
    let mut state = State::default();
    let responses = commands.iter().cloned().map(|c| state.apply(c)).collect();
    (state, responses)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replay_gives_the_same_state_and_answers(commands in prop::collection::vec(arb_command(), 0..120)) {
        let (a, ra) = run(&commands);
        let (b, rb) = run(&commands);
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(ra, rb);
        prop_assert_eq!(a.check_invariants(), Ok(()));
    }

    #[test]
    fn batching_changes_nothing_but_the_answer_shape(commands in prop::collection::vec(arb_command(), 0..120), size in 1usize..8) {
        let (one_by_one, answers) = run(&commands);
        let mut batched = State::default();
        let mut batched_answers = Vec::new();
        for chunk in commands.chunks(size) {
            match batched.apply(Command::Batch { origin: None, commands: chunk.to_vec() }) {
                Response::Batch(a) => batched_answers.extend(a),
                other => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert_eq!(one_by_one.digest(), batched.digest());
        prop_assert_eq!(answers, batched_answers);
    }

    #[test]
    fn batches_sent_again_change_nothing(
        commands in prop::collection::vec(arb_command(), 0..80),
        size in 1usize..6,
        again in prop::collection::vec((0usize..40, 0usize..3), 0..20),
    ) {
        // A node proposes its commands in numbered batches; some batches reach the log again,
        // later (a retry after a lost answer), while earlier ones are confirmed. The state and
        // every first answer are those of proposing each batch once.
        let batches: Vec<Vec<Command>> = commands.chunks(size).map(<[Command]>::to_vec).collect();
        let mut once_only = State::default();
        let mut with_copies = State::default();
        let mut first_answers: Vec<Response> = Vec::new();
        for (seq, batch) in batches.iter().enumerate() {
            // Confirmed: everything two batches back.
            let answered_below = seq.saturating_sub(2) as u64;
            let first = once_only.apply(from_node(seq as u64, answered_below, batch.clone()));
            prop_assert_eq!(&with_copies.apply(from_node(seq as u64, answered_below, batch.clone())), &first);
            first_answers.push(first);
            // Copies of this batch or an older one, arriving now.
            for (target, lag) in &again {
                if target + lag != seq || *target >= batches.len() {
                    continue;
                }
                let copy = with_copies.apply(from_node(*target as u64, answered_below, batches[*target].clone()));
                if (*target as u64) < answered_below {
                    let refused = vec![Response::Rejected(Rejection::DuplicateProposal); batches[*target].len()];
                    prop_assert_eq!(copy, Response::Batch(refused));
                } else {
                    prop_assert_eq!(&copy, &first_answers[*target]);
                }
            }
        }
        prop_assert_eq!(domain(&once_only), domain(&with_copies));
    }

    #[test]
    fn client_requests_sent_again_change_nothing(
        commands in prop::collection::vec(arb_command(), 0..80),
        again in prop::collection::vec(0usize..80, 0..30),
    ) {
        let mut once_only = State::default();
        let mut with_copies = State::default();
        for (i, command) in commands.iter().enumerate() {
            if matches!(command, Command::Batch { .. }) {
                continue;
            }
            let key = format!("op-{i}");
            let first = once_only.apply(once(&key, 1, command.clone()));
            prop_assert_eq!(&with_copies.apply(once(&key, 1, command.clone())), &first);
            for _ in again.iter().filter(|a| **a == i) {
                prop_assert_eq!(with_copies.apply(once(&key, 1, command.clone())), Response::Replayed(Box::new(first.clone())));
            }
        }
        prop_assert_eq!(domain(&once_only), domain(&with_copies));
    }

    #[test]
    fn snapshot_then_restore_is_identical(commands in prop::collection::vec(arb_command(), 0..120), split in 0usize..120) {
        // Snapshot midway, restore, apply the rest: same as applying everything.
        let split = split.min(commands.len());
        let (mid, _) = run(&commands[..split]);
        let mut restored = State::from_snapshot(&mid.to_snapshot().unwrap()).unwrap();
        prop_assert_eq!(restored.digest(), mid.digest());
        for c in &commands[split..] {
            restored.apply(c.clone());
        }
        let (full, _) = run(&commands);
        prop_assert_eq!(restored.digest(), full.digest());
    }

    #[test]
    fn rejections_change_nothing_but_the_clock(commands in prop::collection::vec(arb_command(), 0..120)) {
        let mut state = State::default();
        for c in commands {
            let at_ms = c.at_ms();
            let mut before = state.clone();
            let response = state.apply(c);
            if matches!(response, Response::Rejected(_)) {
                before.clock_ms = before.clock_ms.max(at_ms);
                prop_assert_eq!(before.digest(), state.digest());
            }
        }
    }

    #[test]
    fn terminal_states_change_only_through_retry(commands in prop::collection::vec(arb_command(), 0..150)) {
        let mut state = State::default();
        for c in commands {
            let is_retry = matches!(c, Command::RetryExecution { .. });
            let is_prune = matches!(c, Command::PruneExecutions { .. });
            let before = state.clone();
            state.apply(c);
            for old in before.executions.values() {
                let Some(new) = state.execution(&old.id) else {
                    // Only pruning removes executions, and only finished ones.
                    prop_assert!(is_prune && old.status.is_terminal());
                    continue;
                };
                if old.status.is_terminal() && !is_retry {
                    prop_assert_eq!(old, new);
                }
                for (ot, nt) in old.tasks.iter().zip(&new.tasks) {
                    if ot.status.is_terminal() && !is_retry {
                        prop_assert_eq!(ot, nt);
                    }
                    // Finished attempts never change, whatever the command.
                    for (oa, na) in ot.attempts.iter().zip(&nt.attempts) {
                        if oa.status != AttemptStatus::Running {
                            prop_assert_eq!(oa, na);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn at_most_one_live_lease_per_key(commands in prop::collection::vec(arb_command(), 0..150)) {
        let mut state = State::default();
        for c in commands {
            let before = state.clone();
            let response = state.apply(c.clone());
            if let (Command::AcquireLease { key, holder, .. }, Response::LeaseGranted { .. }) = (&c, &response) {
                if let Some(old) = before.lease(key) {
                    // Granted over a live lease only to the same holder.
                    prop_assert!(!old.is_live(state.clock_ms()) || &old.holder == holder);
                }
            }
            // Fencing tokens only grow.
            for (key, lease) in state.leases() {
                if let Some(old) = before.lease(key) {
                    prop_assert!(lease.token >= old.token);
                }
            }
        }
    }

    #[test]
    fn workers_are_never_over_filled_and_only_holders_end_their_attempts(commands in prop::collection::vec(arb_command(), 0..150)) {
        let mut state = State::default();
        for c in commands {
            let before = state.clone();
            let response = state.apply(c.clone());
            match (&c, &response) {
                // A start handed to a worker respects its declared concurrency.
                (Command::StartAttempt { worker_id: Some(w), .. }, Response::AttemptStarted { .. }) => {
                    let entry = state.worker(w).expect("a worker that took a task is connected");
                    prop_assert!(state.worker_running(w) <= entry.concurrency as usize);
                    prop_assert!(entry.is_live(state.clock_ms()) && !entry.draining);
                }
                // Only the holder of an attempt ends it or extends its lease.
                (Command::FinishAttempt { attempt_id, by, .. }, Response::AttemptFinished { .. })
                | (Command::HeartbeatAttempt { attempt_id, by, .. }, Response::HeartbeatRecorded { .. }) => {
                    let holder = before.attempt(*attempt_id).and_then(|(_, _, a)| a.worker_id.clone());
                    let reporter = match by { Reporter::Worker { worker_id, .. } => Some(worker_id.clone()), _ => None };
                    prop_assert_eq!(&holder, &reporter);
                }
                _ => {}
            }
            // Released attempts never count against the retry budget.
            for e in state.executions.values() {
                for t in &e.tasks {
                    let counted = t.attempts.iter().skip(t.attempts_before_reopen as usize)
                        .filter(|a| a.status != AttemptStatus::Released).count();
                    let max = state.execution_spec(e).and_then(|s| s.task(&t.id).map(|ts| s.retry_policy(ts).max_attempts)).unwrap_or(1);
                    prop_assert!(counted as u32 <= max, "{}/{} made {} attempts, policy allows {}", e.id, t.id, counted, max);
                }
            }
        }
    }

    #[test]
    fn every_dag_run_ends_consistently(outcomes in prop::collection::vec(0u8..4, 1..40)) {
        // Drive one execution with random outcomes until nothing is ready: it must have ended,
        // and each task's final status must agree with its `when` rule.
        let mut state = State::default();
        put(&mut state, DAG, 0);
        create(&mut state, "wf:e", 0);
        let mut now = 1;
        let mut outcomes = outcomes.into_iter().cycle();
        for _ in 0..100 {
            let e = state.execution("wf:e").unwrap();
            let spec = state.execution_spec(e).unwrap().clone();
            now += 60_000;
            let ready: Vec<String> = e.ready_tasks(&spec, now).into_iter().map(String::from).collect();
            if ready.is_empty() { break; }
            for task in ready {
                let id = started_id(start(&mut state, "wf:e", &task, now));
                let result = match outcomes.next().unwrap_or(0) {
                    0 | 1 => ok_output(),
                    2 => AttemptResult::Failed { error: "x".into(), retryable: true },
                    _ => AttemptResult::Failed { error: "x".into(), retryable: false },
                };
                finish(&mut state, id, result, now);
            }
        }
        let e = state.execution("wf:e").unwrap();
        prop_assert!(e.status.is_terminal(), "{:?}", e.status);
        let status = |id: &str| e.task(id).unwrap().status;
        for t in &e.tasks {
            prop_assert!(t.status.is_terminal());
        }
        let b_ran = status("a") == TaskStatus::Succeeded;
        prop_assert_eq!(status("b") != TaskStatus::Skipped, b_ran);
        prop_assert_eq!(status("cleanup") != TaskStatus::Skipped, status("c") == TaskStatus::Failed);
        let any_failed = e.tasks.iter().any(|t| t.status == TaskStatus::Failed);
        prop_assert_eq!(e.status == ExecutionStatus::Failed, any_failed);
    }
}

// ----- random DAGs -----

/// A random DAG: task i may depend on any earlier task, with a random `when` rule.
fn arb_dag() -> impl Strategy<Value = String> {
    (1usize..9).prop_flat_map(|n| {
        let tasks: Vec<_> = (0..n)
            .map(|i| (prop::collection::vec(any::<bool>(), i), 0u8..3))
            .collect();
        tasks.prop_map(|tasks| {
            let mut yaml = String::from("id: wf\ntasks:\n");
            for (i, (deps, when)) in tasks.iter().enumerate() {
                let deps: Vec<String> = deps.iter().enumerate().filter(|(_, d)| **d).map(|(j, _)| format!("t{j}")).collect();
                // any_failed needs a dependency (validation says so).
                let when = if deps.is_empty() { ["all_success", "all_done", "all_done"][*when as usize] } else { ["all_success", "all_done", "any_failed"][*when as usize] };
                yaml.push_str(&format!(
                    "  - {{id: t{i}, type: shell, command: [x], depends_on: [{}], when: {when}, retry: {{max_attempts: 2, backoff: 1s}}}}\n",
                    deps.join(", ")
                ));
            }
            yaml
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_dags_end_with_every_task_consistent_with_its_rule(
        yaml in arb_dag(),
        outcomes in prop::collection::vec(0u8..4, 1..64),
    ) {
        let mut state = State::default();
        let stored = matches!(put(&mut state, &yaml, 0), Response::WorkflowStored { .. });
        prop_assert!(stored, "the generated DAG was rejected:\n{}", yaml);
        create(&mut state, "wf:e", 0);
        let spec = state.execution_spec(state.execution("wf:e").unwrap()).unwrap().clone();
        let mut outcomes = outcomes.into_iter().cycle();
        let mut now = 1;
        // Each round starts every ready task; a task has at most 2 attempts, so this ends.
        for _ in 0..(spec.tasks.len() * 3 + 2) {
            now += 10_000;
            let ready = state.ready_tasks("wf:e", now);
            if ready.is_empty() { break; }
            for task in ready {
                let id = started_id(start(&mut state, "wf:e", &task, now));
                let result = match outcomes.next().unwrap_or(0) {
                    0 | 1 => ok_output(),
                    2 => AttemptResult::Failed { error: "x".into(), retryable: true },
                    _ => AttemptResult::Lost { reason: "node died".into() },
                };
                finish(&mut state, id, result, now);
            }
        }
        let e = state.execution("wf:e").unwrap();
        prop_assert!(e.status.is_terminal(), "execution still {}: {:?}", e.status, e.tasks);
        for t in &spec.tasks {
            let run = e.task(&t.id).unwrap();
            prop_assert!(run.status.is_terminal(), "{} is {}", t.id, run.status);
            let deps: Vec<TaskStatus> = t.depends_on.iter().map(|d| e.task(d).unwrap().status).collect();
            let rule_holds = match t.when {
                crate::spec::When::AllSuccess => deps.iter().all(|s| *s == TaskStatus::Succeeded),
                crate::spec::When::AllDone => true,
                crate::spec::When::AnyFailed => deps.contains(&TaskStatus::Failed),
            };
            // A task runs exactly when its rule holds; otherwise it is skipped and never ran.
            prop_assert_eq!(run.status != TaskStatus::Skipped, rule_holds, "{}: deps {:?}", t.id, deps);
            prop_assert_eq!(run.attempts.is_empty(), run.status == TaskStatus::Skipped);
            prop_assert!(run.attempts.len() <= 2, "{} ran {} attempts, policy allows 2", t.id, run.attempts.len());
        }
        let any_failed = e.tasks.iter().any(|t| t.status == TaskStatus::Failed);
        prop_assert_eq!(e.status == ExecutionStatus::Failed, any_failed);
        prop_assert_eq!(e.status == ExecutionStatus::Succeeded, !any_failed);
    }
}
