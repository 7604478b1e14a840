//! Worker tasks: handing out by queue and capacity, leases on replicated time, timeouts,
//! disconnects and drain.

use super::*;

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
    assert_eq!(s.attempt(id).map(|at| at.attempt().node_id), Some(2));
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
    assert_eq!(s.attempt(id).and_then(|at| at.attempt().deadline_ms), Some(31_000));
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
    assert_eq!(s.attempt(id).map(|at| at.attempt().status), Some(AttemptStatus::TimedOut));
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

#[test]
fn the_dispatcher_looks_only_at_executions_with_worker_tasks() {
    let mut s = State::default();
    put(&mut s, DAG, 1);
    create(&mut s, "wf:shell", 2);
    // Version 2 of the same workflow pulls its task from a worker queue.
    put(&mut s, WORKER_WF, 3);
    create(&mut s, "wf:pull", 4);
    let ids = |it: Box<dyn Iterator<Item = &Execution> + '_>| it.map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(Box::new(s.unfinished_executions())), ["wf:pull", "wf:shell"]);
    assert_eq!(ids(Box::new(s.unfinished_worker_executions())), ["wf:pull"]);
    assert_eq!(s.queued_worker_tasks(5).len(), 1);
    assert_eq!(s.check_invariants(), Ok(()));
    s.apply(Command::CancelExecution { execution_id: "wf:pull".into(), actor: None, at_ms: 6 });
    assert_eq!(ids(Box::new(s.unfinished_worker_executions())), Vec::<String>::new());
    assert!(s.queued_worker_tasks(7).is_empty());
    assert_eq!(s.check_invariants(), Ok(()));
}

#[test]
fn a_worker_that_let_a_lease_lapse_gets_no_new_task_until_it_shows_life() {
    let mut s = State::default();
    put(&mut s, WORKER_WF, 1);
    create(&mut s, "wf:a", 2);
    create(&mut s, "wf:b", 2);
    connect(&mut s, "w1", 1, &["q"], 2, 3);
    let seen = |s: &mut State, at_ms: i64| {
        s.apply(Command::WorkerSeen { worker_id: "w1".into(), session: 1, expires_at_ms: at_ms + 3_000, at_ms })
    };
    // Frozen: its node still renews the registration (the connection is open), but it sends
    // no heartbeat, so the lease granted at 4 (10 s) runs out at 10_004.
    let first = started_id(hand(&mut s, "wf:a", "pull", "w1", 4));
    for at in (1_000..=10_000).step_by(1_000) {
        assert!(matches!(seen(&mut s, at), Response::WorkerRenewed { .. }));
    }
    let r = s.apply(Command::ExpireWorkerAttempts { jitter_permille: 0, at_ms: 10_004 });
    assert!(matches!(r, Response::WorkerAttemptsExpired { ref lost, .. } if lost == &vec![first]), "{r:?}");
    seen(&mut s, 10_500);
    let entry = s.workers().find(|w| w.id == "w1").cloned().expect("still registered");
    assert!(entry.is_live(10_500) && !entry.takes_new_work(10_500), "{entry:?}");
    // For one lease length (10 s) the retry and other work go to anyone but w1.
    assert!(unavailable(&hand(&mut s, "wf:b", "pull", "w1", 10_600)));
    seen(&mut s, 12_000);
    connect(&mut s, "w2", 1, &["q"], 2, 12_000);
    let second = started_id(hand(&mut s, "wf:a", "pull", "w2", 12_001));
    // A late heartbeat for the lost attempt is refused and proves nothing.
    let late = s.apply(Command::HeartbeatAttempt {
        attempt_id: first,
        by: Reporter::Worker { worker_id: "w1".into(), token: None },
        lease_expires_at_ms: Some(30_000),
        progress: None,
        logs: None,
        at_ms: 12_002,
    });
    assert!(matches!(late, Response::Rejected(Rejection::StaleAttempt { .. })), "{late:?}");
    assert!(unavailable(&hand(&mut s, "wf:b", "pull", "w1", 12_003)));
    // Once the stall has lasted a lease, the worker is eligible again.
    assert!(matches!(worker_finish(&mut s, second, "w2", ok_output(), 12_004), Response::AttemptFinished { .. }));
    seen(&mut s, 20_100);
    let b = started_id(hand(&mut s, "wf:b", "pull", "w1", 20_100));
    create(&mut s, "wf:c", 20_200);
    seen(&mut s, 24_000);
    let c = started_id(hand(&mut s, "wf:c", "pull", "w1", 25_000));
    // b lapses while c is heartbeaten: the stall is lifted by the next accepted heartbeat.
    seen(&mut s, 28_000);
    let lapsed = s.apply(Command::ExpireWorkerAttempts { jitter_permille: 0, at_ms: 30_100 });
    assert!(matches!(lapsed, Response::WorkerAttemptsExpired { ref lost, .. } if lost == &vec![b]), "{lapsed:?}");
    assert!(s.workers().find(|w| w.id == "w1").is_some_and(|w| w.is_stalled(30_101)));
    let beat = s.apply(Command::HeartbeatAttempt {
        attempt_id: c,
        by: Reporter::Worker { worker_id: "w1".into(), token: None },
        lease_expires_at_ms: Some(40_000),
        progress: None,
        logs: None,
        at_ms: 30_200,
    });
    assert!(matches!(beat, Response::HeartbeatRecorded { .. }), "{beat:?}");
    assert!(s.workers().find(|w| w.id == "w1").is_some_and(|w| w.takes_new_work(30_201)));
    // A reconnect starts afresh too.
    let w = s.workers().find(|w| w.id == "w1").cloned().expect("registered");
    let mut stalled = s.clone();
    if let Some(entry) = stalled.workers.get_mut("w1") {
        entry.stalled_until_ms = Some(99_000);
    }
    connect(&mut stalled, "w1", 2, &["q"], 2, 30_300);
    assert!(stalled.workers().find(|w| w.id == "w1").is_some_and(|w| w.takes_new_work(30_301)), "{w:?}");
}
