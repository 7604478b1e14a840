//! Batches and client requests apply once, whoever sends them again.

use super::*;

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
