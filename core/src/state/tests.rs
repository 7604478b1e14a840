use proptest::prelude::*;

use super::*;
use crate::spec::parse_yaml;

const DAG: &str = r#"
id: wf
params: {region: eu}
tasks:
  - {id: a, type: worker, queue: q, retry: {max_attempts: 2, backoff: 1s}}
  - {id: b, type: worker, queue: q, depends_on: [a]}
  - {id: c, type: worker, queue: q, depends_on: [b]}
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
        at_ms,
    })
}

fn finish(state: &mut State, attempt_id: u64, result: AttemptResult, at_ms: i64) -> Response {
    state.apply(Command::FinishAttempt { attempt_id, result, logs: None, jitter_permille: 1000, at_ms })
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
    let batch = Command::Batch(vec![
        Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 1 },
        Command::DeleteWorkflow { workflow_id: "nope".into(), actor: None, at_ms: 2 },
        Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 3 },
    ]);
    let answers = match s.apply(batch) {
        Response::Batch(answers) => answers,
        other => panic!("{other:?}"),
    };
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0], Response::WorkflowStored { workflow_id: "wf".into(), version: 1 });
    assert!(matches!(answers[1], Response::Rejected(Rejection::WorkflowNotFound(_))));
    assert_eq!(answers[2], Response::WorkflowStored { workflow_id: "wf".into(), version: 2 });
    assert_eq!(s.clock_ms(), 3);
    let nested = Command::Batch(vec![Command::Batch(vec![])]);
    let before = s.digest();
    assert_eq!(s.apply(nested), Response::Rejected(Rejection::NestedBatch));
    assert_eq!(s.digest(), before);
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
        at_ms: 3,
    });
    assert!(matches!(r, Response::Rejected(Rejection::NotOwner { owner: Some(1), .. })), "{r:?}");
    s.apply(Command::AssignExecution { execution_id: "wf:e".into(), node_id: 2, at_ms: 4 });
    let r = s.apply(Command::StartAttempt {
        execution_id: "wf:e".into(),
        task_id: "a".into(),
        node_id: 2,
        worker_id: None,
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
    assert_eq!(
        s.apply(Command::HeartbeatAttempt { attempt_id: id, at_ms: 4 }),
        Response::HeartbeatRecorded { attempt_id: id }
    );
    assert_eq!(s.attempt(id).map(|(_, _, a)| a.last_heartbeat_ms), Some(Some(4)));
    finish(&mut s, id, AttemptResult::Lost { reason: "node died".into() }, 5);
    assert!(matches!(
        s.apply(Command::HeartbeatAttempt { attempt_id: id, at_ms: 6 }),
        Response::Rejected(Rejection::StaleAttempt { .. })
    ));
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
        at_ms: 16_000,
    });
    assert!(matches!(r, Response::Rejected(Rejection::Blocked { .. })), "{r:?}");
    s.apply(Command::CancelExecution { execution_id: first, actor: None, at_ms: 17_000 });
    assert_eq!(s.ready_tasks(&second, 17_000), vec!["a".to_string()]);
}

// ----- property tests -----

const TASKS: [&str; 4] = ["a", "b", "c", "cleanup"];
const HOLDERS: [&str; 3] = ["n1", "n2", "n3"];

fn arb_command() -> impl Strategy<Value = Command> {
    let exec = prop::sample::select(vec!["wf:e0", "wf:e1", "wf:e2"]);
    let task = prop::sample::select(TASKS.to_vec());
    let holder = prop::sample::select(HOLDERS.to_vec());
    let key = prop::sample::select(vec!["k1", "k2"]);
    let at = 0i64..10_000;
    let result = prop_oneof![
        Just(AttemptResult::Succeeded { output: Json(serde_json::json!({"ok": true})) }),
        any::<bool>().prop_map(|retryable| AttemptResult::Failed { error: "boom".into(), retryable }),
        Just(AttemptResult::TimedOut),
        Just(AttemptResult::Lost { reason: "node died".into() }),
    ];
    prop_oneof![
        1 => at.clone().prop_map(|at_ms| Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms }),
        1 => at.clone().prop_map(|at_ms| Command::DeleteWorkflow { workflow_id: "wf".into(), actor: None, at_ms }),
        1 => (any::<bool>(), at.clone()).prop_map(|(paused, at_ms)| Command::SetPaused { workflow_id: "wf".into(), paused, actor: None, at_ms }),
        3 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::CreateExecution {
            execution_id: e.into(), workflow_id: "wf".into(), trigger: Trigger::Schedule,
            scheduled_at_ms: Some(at_ms), params: Json::null(), actor: None, at_ms }),
        2 => (exec.clone(), 1u64..3, at.clone()).prop_map(|(e, node_id, at_ms)| Command::AssignExecution {
            execution_id: e.into(), node_id, at_ms }),
        6 => (exec.clone(), task, 1u64..3, at.clone()).prop_map(|(e, t, node_id, at_ms)| Command::StartAttempt {
            execution_id: e.into(), task_id: t.into(), node_id, worker_id: None, at_ms }),
        1 => (1u64..12, at.clone()).prop_map(|(attempt_id, at_ms)| Command::HeartbeatAttempt { attempt_id, at_ms }),
        1 => (0i64..10_000, at.clone()).prop_map(|(tick_ms, at_ms)| Command::AdvanceSchedule { workflow_id: "wf".into(), tick_ms, at_ms }),
        6 => (1u64..12, result, 0u16..=1000, at.clone()).prop_map(|(attempt_id, result, jitter_permille, at_ms)|
            Command::FinishAttempt { attempt_id, result, logs: None, jitter_permille, at_ms }),
        1 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::CancelExecution { execution_id: e.into(), actor: None, at_ms }),
        1 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::RetryExecution { execution_id: e.into(), actor: None, at_ms }),
        1 => (exec, at.clone()).prop_map(|(e, at_ms)| Command::TimeOutExecution { execution_id: e.into(), at_ms }),
        2 => (1u64..12, "[a-z ]{0,20}", at.clone()).prop_map(|(attempt_id, text, at_ms)| Command::AppendLog { attempt_id, text, at_ms }),
        2 => (key.clone(), holder.clone(), 0i64..12_000, at.clone()).prop_map(|(k, h, exp, at_ms)|
            Command::AcquireLease { key: k.into(), holder: h.into(), expires_at_ms: exp, at_ms }),
        1 => (key.clone(), holder.clone(), 0i64..12_000, at.clone()).prop_map(|(k, h, exp, at_ms)|
            Command::RenewLease { key: k.into(), holder: h.into(), expires_at_ms: exp, at_ms }),
        1 => (key, holder, at.clone()).prop_map(|(k, h, at_ms)| Command::ReleaseLease { key: k.into(), holder: h.into(), at_ms }),
        1 => at.clone().prop_map(|at_ms| Command::ExpireLeases { at_ms }),
        1 => (0u32..3, at).prop_map(|(keep_per_workflow, at_ms)| Command::PruneExecutions { keep_per_workflow, at_ms }),
    ]
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
            match batched.apply(Command::Batch(chunk.to_vec())) {
                Response::Batch(a) => batched_answers.extend(a),
                other => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert_eq!(one_by_one.digest(), batched.digest());
        prop_assert_eq!(answers, batched_answers);
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
