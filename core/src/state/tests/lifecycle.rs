//! Versions, a DAG run with retries and its failure handler, cancel, tuned limits, bounded logs,
//! leases, replicated time, retention, snapshots and ids.

use super::*;

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
    let spec = s.execution_spec(&s.execution("wf:e").unwrap()).unwrap().clone();
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
    let e = s.execution("wf:e").unwrap();
    let a = e.task("a").unwrap();
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
    let e = s.execution("wf:e").unwrap();
    let task = e.task("a").unwrap();
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

fn set_limit(s: &mut State, name: &str, value: u32) {
    let mut limits = s.limits();
    match name {
        "per_workflow" => limits.max_kept_executions_per_workflow = value,
        "kept" => limits.max_kept_executions = value,
        "log_bytes" => limits.max_kept_log_bytes = value,
        "age_secs" => limits.max_finished_age_secs = value,
        _ => unreachable!(),
    }
    assert!(matches!(s.apply(Command::SetLimits { limits, actor: None, at_ms: 0 }), Response::LimitsSet { .. }));
}

/// `n` cancelled executions of `wf`, the i-th finished at `10 + i`; then one left running.
fn finished_and_one_live(s: &mut State, n: i64) {
    put(s, DAG, 1);
    for i in 0..n {
        let id = format!("wf:e{i}");
        create(s, &id, 1);
        s.apply(Command::CancelExecution { execution_id: id, actor: None, at_ms: 10 + i });
    }
    create(s, "wf:live", 30);
}

#[test]
fn a_workflow_keeps_its_newest_finished_executions_as_they_finish() {
    let mut s = State::default();
    set_limit(&mut s, "per_workflow", 2);
    finished_and_one_live(&mut s, 5);
    // Enforced by the commands that finished them, not only by a later prune.
    assert!(s.execution("wf:e2").is_none() && s.execution("wf:e3").is_some() && s.execution("wf:e4").is_some());
    assert!(s.execution("wf:live").is_some(), "an unfinished execution is never dropped");
    assert_eq!((s.kept().finished_executions, s.kept().unfinished_executions), (2, 1));
}

#[test]
fn the_cluster_keeps_at_most_its_cap_of_finished_executions_oldest_first() {
    let mut s = State::default();
    finished_and_one_live(&mut s, 4);
    set_limit(&mut s, "kept", 1);
    assert_eq!(s.kept().finished_executions, 1);
    assert!(s.execution("wf:e3").is_some() && s.execution("wf:e2").is_none() && s.execution("wf:live").is_some());
    // Lowering a limit takes effect at once; raising it brings nothing back.
    set_limit(&mut s, "kept", 10);
    assert_eq!(s.kept().finished_executions, 1);
}

#[test]
fn prune_drops_what_finished_longer_ago_than_the_age_limit() {
    let mut s = State::default();
    finished_and_one_live(&mut s, 3);
    set_limit(&mut s, "age_secs", 1);
    // At 1,011 ms e0 (finished at 10) is over a second old; e1 (11) is exactly a second old.
    assert_eq!(s.apply(Command::PruneExecutions { at_ms: 1_011 }), Response::ExecutionsPruned { count: 1 });
    assert!(s.execution("wf:e0").is_none() && s.execution("wf:e1").is_some());
    assert_eq!(s.apply(Command::PruneExecutions { at_ms: 1_000_000 }), Response::ExecutionsPruned { count: 2 });
    assert!(s.execution("wf:live").is_some(), "however old, an unfinished execution stays");
}

#[test]
fn log_bytes_past_the_cap_take_the_oldest_finished_executions_whole() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    for i in 0..3 {
        let id = format!("wf:e{i}");
        create(&mut s, &id, 1);
        let attempt = started_id(start(&mut s, &id, "a", 2));
        s.apply(Command::AppendLog { attempt_id: attempt, text: "x".repeat(100), at_ms: 3 });
        s.apply(Command::CancelExecution { execution_id: id, actor: None, at_ms: 10 + i });
    }
    assert_eq!(s.kept().log_bytes, 300);
    set_limit(&mut s, "log_bytes", 150);
    assert_eq!((s.kept().log_bytes, s.kept().finished_executions), (100, 1));
    assert!(s.execution("wf:e2").is_some(), "the newest stays");
}

#[test]
fn a_retried_execution_leaves_the_history_and_a_loaded_snapshot_rebuilds_it() {
    let mut s = State::default();
    finished_and_one_live(&mut s, 2);
    s.apply(Command::RetryExecution { execution_id: "wf:e0".into(), actor: None, at_ms: 40 });
    assert_eq!((s.kept().finished_executions, s.kept().unfinished_executions), (1, 2));
    let unfinished: Vec<&str> = s.unfinished_executions().map(|e| e.id.as_str()).collect();
    assert_eq!(unfinished, ["wf:e0", "wf:live"]);
    let loaded = State::from_snapshot(&s.to_snapshot().unwrap()).unwrap();
    assert_eq!(loaded.kept(), s.kept());
    assert_eq!(loaded, s);
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
    assert_eq!(s.executions_of("wf").map(|e| e.id.clone()).collect::<Vec<_>>(), vec!["wf:a"]);
}

#[test]
fn the_change_journal_names_each_changed_execution_once_from_any_position() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:a", 2);
    create(&mut s, "wf:b", 3);
    let changes = s.changed_since(0);
    assert_eq!(changes.executions, ["wf:a", "wf:b"]);
    assert!(changes.complete);
    let position = changes.next;
    s.apply(Command::CancelExecution { execution_id: "wf:a".into(), actor: None, at_ms: 4 });
    let changes = s.changed_since(position);
    assert_eq!(changes.executions, ["wf:a"], "only what changed since the position");
    let next = changes.next;
    assert!(s.changed_since(next).executions.is_empty());
    // Changed again later: listed once, at its latest change.
    assert_eq!(s.changed_since(0).executions, ["wf:b", "wf:a"]);
    // A reopened execution changed too; a snapshot starts the journal again with everything.
    s.apply(Command::RetryExecution { execution_id: "wf:a".into(), actor: None, at_ms: 5 });
    assert_eq!(s.changed_since(next).executions, ["wf:a"]);
    let loaded = State::from_snapshot(&s.to_snapshot().unwrap()).unwrap();
    assert_eq!(loaded.changed_since(0).executions, ["wf:a", "wf:b"]);
    assert_eq!(loaded, s, "the journal is how the state got here, not what it is");
}
