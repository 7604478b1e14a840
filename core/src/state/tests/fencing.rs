//! Who may report on an attempt, start one, or heartbeat it: stale and foreign answers change
//! nothing.

use super::*;

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
    assert_eq!(s.attempt(id).map(|at| at.attempt().last_heartbeat_ms), Some(Some(4)));
    finish(&mut s, id, AttemptResult::Lost { reason: "node died".into() }, 5);
    assert!(matches!(s.apply(heartbeat(id, 6)), Response::Rejected(Rejection::StaleAttempt { .. })));
}
