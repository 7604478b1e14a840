//! Ticks under each concurrency policy.

use super::*;

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
    let position = s.changed_since(0).next;
    s.apply(Command::CancelExecution { execution_id: first.clone(), actor: None, at_ms: 17_000 });
    assert_eq!(s.ready_tasks(&second, 17_000), vec!["a".to_string()]);
    // The change journal names the cancelled execution and the one it released, and nothing else.
    let changed = s.changed_since(position).executions;
    assert_eq!(changed, [first, second]);
}
