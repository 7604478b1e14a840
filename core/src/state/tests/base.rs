//! Where history lives changes nothing: a state whose finished executions move to a base at
//! checkpoints answers every command, and every read, as a state that keeps everything in
//! memory.

use std::sync::Arc;

use proptest::prelude::*;

use super::properties::arb_command;
use super::*;

/// A checkpoint under way, the way a node takes one: a copy of the state, its checkpoint, the
/// commands applied since the copy, and whether the base has taken the writes yet.
struct Pending {
    copy: State,
    checkpoint: Checkpoint,
    since: Vec<Command>,
    written: bool,
}

/// What readers see of a state, beyond its digest.
fn reads(s: &State) -> (Vec<String>, Vec<String>, Vec<Option<String>>, Kept) {
    let by_id = s.executions_after(None).map(|e| e.id.clone()).collect();
    let newest = s.executions_newest(None, None).map(|e| e.id.clone()).collect();
    let logs = (0..14).map(|a| s.attempt_log(a).map(|l| l.text())).collect();
    // Where the finished ones are is the one thing allowed to differ.
    let kept = Kept { finished_in_memory: 0, ..s.kept() };
    (by_id, newest, logs, kept)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn where_history_lives_changes_no_answer_and_no_read(
        commands in prop::collection::vec(arb_command(), 0..150),
        plan in prop::collection::vec(0u8..8, 150),
    ) {
        check_split(&commands, &plan)?;
    }

    #[test]
    fn where_history_lives_changes_nothing_under_heavy_churn(
        commands in prop::collection::vec(arb_churn(), 0..200),
        plan in prop::collection::vec(0u8..8, 201),
    ) {
        let mut all = vec![Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 0 }];
        all.extend(commands);
        check_split(&all, &plan)?;
    }
}

/// Commands that fill and drop history fast: many executions ending, retried, logged, pruned
/// under small limits.
fn arb_churn() -> impl Strategy<Value = Command> {
    let exec = (0u8..10).prop_map(|i| format!("wf:e{i}"));
    let at = 0i64..10_000;
    prop_oneof![
        4 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::CreateExecution {
            execution_id: e, workflow_id: "wf".into(), trigger: Trigger::Manual,
            scheduled_at_ms: None, params: Json::null(), actor: None, at_ms }),
        4 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::CancelExecution { execution_id: e, actor: None, at_ms }),
        2 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::RetryExecution { execution_id: e, actor: None, at_ms }),
        2 => (exec.clone(), at.clone()).prop_map(|(e, at_ms)| Command::AssignExecution { execution_id: e, node_id: 1, at_ms }),
        3 => (exec, at.clone()).prop_map(|(e, at_ms)| Command::StartAttempt {
            execution_id: e, task_id: "a".into(), node_id: 1, worker_id: None, lease_expires_at_ms: None,
            callback_token_hash: None, at_ms }),
        2 => (1u64..14, "[a-z]{1,12}", at.clone()).prop_map(|(attempt_id, text, at_ms)| Command::AppendLog { attempt_id, text, at_ms }),
        3 => (1u64..14, any::<bool>(), at.clone()).prop_map(|(attempt_id, ok, at_ms)| Command::FinishAttempt {
            attempt_id, by: Reporter::Owner,
            result: if ok { AttemptResult::Succeeded { output: Json::null() } } else { AttemptResult::Failed { error: "x".into(), retryable: false } },
            logs: Some("done".into()), jitter_permille: 0, at_ms }),
        1 => at.clone().prop_map(|at_ms| Command::PruneExecutions { at_ms }),
        1 => (0u32..6, 0u32..8, 0u32..100, 0u32..5, at.clone()).prop_map(|(per_workflow, kept, log_bytes, age, at_ms)| Command::SetLimits {
            limits: crate::limits::Tunable {
                max_kept_executions_per_workflow: per_workflow, max_kept_executions: kept, max_kept_log_bytes: log_bytes,
                max_finished_age_secs: age, ..crate::limits::Tunable::default()
            },
            actor: None, at_ms }),
        1 => at.prop_map(|at_ms| Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms }),
    ]
}

/// Applies `commands` to a state that keeps everything in memory and to one with a base,
/// checkpointing, writing, absorbing and restarting the second as `plan` says, and compares
/// every answer and every read.
fn check_split(commands: &[Command], plan: &[u8]) -> Result<(), TestCaseError> {
    {
        let mut plain = State::default();
        let mut store = Arc::new(MemoryStore::default());
        let mut split = State::default();
        split.attach(store.clone());
        let mut pending: Option<Pending> = None;
        for (c, &step) in commands.iter().zip(plan) {
            let expected = plain.apply(c.clone());
            prop_assert_eq!(&split.apply(c.clone()), &expected, "{:?}", c);
            prop_assert_eq!(split.history_fault(), None);
            if let Some(p) = pending.as_mut() {
                p.since.push(c.clone());
            }
            match (step, pending.take()) {
                // Copy and checkpoint; more commands may apply before the base takes it.
                (0 | 1, None) => {
                    let copy = split.clone();
                    let checkpoint = copy.checkpoint().map_err(TestCaseError::fail)?;
                    pending = Some(Pending { copy, checkpoint, since: Vec::new(), written: false });
                }
                (2, Some(mut p)) if !p.written => {
                    store.apply(&p.checkpoint.writes);
                    p.written = true;
                    pending = Some(p);
                }
                (3, Some(p)) if p.written => {
                    split.absorb(&p.copy);
                    prop_assert_eq!(split.check_invariants(), Ok(()));
                }
                // A restart from the checkpoint's snapshot and the base, replaying the log since.
                (4, Some(p)) if p.written => {
                    let bytes = p.checkpoint.hot.to_snapshot().map_err(|e| TestCaseError::fail(e.to_string()))?;
                    split = State::from_snapshot(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    split.attach(store.clone());
                    for c in p.since {
                        split.apply(c);
                    }
                    prop_assert_eq!(split.check_invariants(), Ok(()));
                }
                // A follower installing the snapshot into an empty base.
                (5, Some(p)) if p.written => {
                    let fresh = Arc::new(MemoryStore::default());
                    fresh.apply(&store.entries());
                    store = fresh;
                    let bytes = p.checkpoint.hot.to_snapshot().map_err(|e| TestCaseError::fail(e.to_string()))?;
                    split = State::from_snapshot(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    split.attach(store.clone());
                    for c in p.since {
                        split.apply(c);
                    }
                }
                (_, p) => pending = p,
            }
            prop_assert_eq!(reads(&split), reads(&plain));
        }
        prop_assert_eq!(split.digest(), plain.digest());
        prop_assert_eq!(split.check_invariants(), Ok(()));
    }
    Ok(())
}

#[test]
fn a_checkpoint_moves_finished_executions_out_of_memory() {
    let mut s = State::default();
    let store = Arc::new(MemoryStore::default());
    s.attach(store.clone());
    s.apply(Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 1 });
    for i in 0..5 {
        create(&mut s, &format!("wf:e{i}"), 2);
        s.apply(Command::CancelExecution { execution_id: format!("wf:e{i}"), actor: None, at_ms: 3 });
    }
    create(&mut s, "wf:open", 4);
    let before = s.changed_since(0);
    assert_eq!(before.executions.len(), 6);
    let copy = s.clone();
    let checkpoint = copy.checkpoint().unwrap();
    store.apply(&checkpoint.writes);
    s.absorb(&copy);
    assert_eq!(s.executions.len(), 1, "only the unfinished execution stays in memory");
    // The change journal lets the absorbed go too, and tells a reader from before that it did.
    let since_start = s.changed_since(0);
    assert_eq!((since_start.executions, since_start.complete), (vec!["wf:open".to_string()], false));
    let since_read = s.changed_since(before.next);
    assert!(since_read.complete && since_read.executions.is_empty(), "{since_read:?}");
    assert_eq!(s.kept().finished_executions, 5);
    assert_eq!(s.execution("wf:e3").map(|e| e.status), Some(ExecutionStatus::Cancelled));
    assert_eq!(s.executions_of("wf").count(), 6);
    // Retrying one brings it back into memory; the base's copy stays hidden behind it.
    let r = s.apply(Command::RetryExecution { execution_id: "wf:e3".into(), actor: None, at_ms: 5 });
    assert!(matches!(r, Response::ExecutionReopened { .. }), "{r:?}");
    assert_eq!(s.executions.len(), 2);
    assert_eq!(s.executions_of("wf").count(), 6);
    assert_eq!(s.check_invariants(), Ok(()));
}

#[test]
fn a_damaged_base_is_a_fault_not_a_hang() {
    // The base's order names an execution the base does not hold, and its counts say it is
    // there: retention asks to drop it.
    let store = Arc::new(MemoryStore::default());
    let summary =
        crate::state::base::Summary { finished: 2, per_workflow: [("wf".to_string(), 2)].into(), ..Default::default() };
    store.apply(&[
        (crate::state::base::Index::Finished(None).key(5, "wf:ghost"), Some(Vec::new())),
        (crate::state::base::Index::Finished(Some("wf")).key(5, "wf:ghost"), Some(Vec::new())),
        crate::state::base::put_summary(&summary).unwrap(),
    ]);
    let mut s = State::default();
    s.attach(store);
    assert_eq!(s.kept().finished_executions, 2);
    let mut limits = s.limits();
    limits.max_kept_executions = 1;
    let r = s.apply(Command::SetLimits { limits, actor: None, at_ms: 10 });
    assert!(matches!(r, Response::LimitsSet { .. }), "{r:?}");
    let fault = s.history_fault().expect("the damage is a fault");
    assert!(fault.contains("wf:ghost"), "{fault}");
}

#[test]
fn an_execution_dropped_and_created_again_alike_during_a_checkpoint_stays_visible() {
    // Found by the churn property: `wf:x` is checkpointed, then dropped by retention and created
    // and cancelled again, equal in every field to the checkpointed copy. Absorbing the checkpoint
    // took the new one out of memory as if the base held it, while the drop hid the base's record:
    // the execution vanished.
    let cancel = |id: &str| Command::CancelExecution { execution_id: id.into(), actor: None, at_ms: 0 };
    let create = |id: &str| Command::CreateExecution {
        execution_id: id.into(),
        workflow_id: "wf".into(),
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: Json::null(),
        actor: None,
        at_ms: 0,
    };
    let keep = |per_workflow| Command::SetLimits {
        limits: crate::limits::Tunable {
            max_kept_executions_per_workflow: per_workflow,
            ..crate::limits::Tunable::default()
        },
        actor: None,
        at_ms: 0,
    };
    let default_keep = crate::limits::Tunable::default().max_kept_executions_per_workflow;
    // Everything at time 0, so the second `wf:x` equals the first in every field.
    let commands = vec![
        Command::PutWorkflow { spec: spec(DAG), actor: None, at_ms: 0 },
        create("wf:x"),
        cancel("wf:x"),
        keep(1),
        create("wf:y"),
        cancel("wf:y"),
        keep(default_keep),
        create("wf:x"),
        cancel("wf:x"),
        Command::PruneExecutions { at_ms: 0 },
    ];
    // After the first `cancel`: copy and checkpoint (0); write it (2); `wf:y` finishing pushes
    // the first `wf:x` out; after the second `cancel`: absorb (3).
    let plan = [7, 7, 0, 2, 7, 7, 7, 7, 3, 7];
    check_split(&commands, &plan).expect("a state with a base answers and reads as one without");
}
