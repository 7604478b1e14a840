//! Tokens and the audit of who cancelled or retried.

use super::*;

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
