//! Property tests over generated command sequences: replay, batching, duplicates, snapshots,
//! rejections, terminal states and retention.

use super::*;

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

/// A workflow started by events, by a webhook and by `wf` ending.
const TRIGGERED: &str = r#"
id: ev
concurrency: buffer_one
triggers:
  - {event: go, filter: {region: eu}}
  - {workflow: wf, on: finished}
  - {webhook: h, auth: bearer, secret: s}
tasks:
  - {id: a, type: shell, command: ["echo", "{{ event.payload.region }}"]}
"#;

pub(super) fn arb_command() -> impl Strategy<Value = Command> {
    let exec = prop::sample::select(vec!["wf:e0", "wf:e1", "wf:e2", "ev:ev-x1"]);
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
    let event_id = prop::sample::select(vec!["x1", "x2", "x3"]);
    let region = prop::sample::select(vec!["eu", "us"]);
    prop_oneof![
        1 => at.clone().prop_map(|at_ms| Command::PutWorkflow { spec: spec(MIXED_DAG), actor: None, at_ms }),
        1 => at.clone().prop_map(|at_ms| Command::PutWorkflow { spec: spec(TRIGGERED), actor: None, at_ms }),
        2 => (event_id, region, any::<bool>(), at.clone()).prop_map(|(id, region, hook, at_ms)| Command::PublishEvent {
            event: NewEvent {
                name: "go".into(),
                id: id.into(),
                payload: Json(serde_json::json!({"region": region})),
                source: if hook { EventSource::Webhook { workflow_id: "ev".into(), name: "h".into() } } else { EventSource::Api },
            },
            actor: None,
            at_ms,
        }),
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
        1 => at.clone().prop_map(|at_ms| Command::PruneExecutions { at_ms }),
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
        1 => (0u32..6, 0u32..300, 0u32..200, 0u32..40, (0u32..4, 0u32..4, 0u32..200), at).prop_map(|(tasks, params, output, log, (per_workflow, kept, kept_log), at_ms)| Command::SetLimits {
            limits: crate::limits::Tunable {
                max_tasks_per_workflow: tasks, max_params_bytes: params, max_output_bytes: output, max_log_bytes_per_attempt: log,
                max_kept_executions_per_workflow: per_workflow, max_kept_executions: kept, max_kept_log_bytes: kept_log,
                ..crate::limits::Tunable::default()
            },
            actor: None, at_ms }),
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
            // Commands that can end executions (and so, under small retention limits, see one
            // they ended dropped at once as the oldest finished).
            let ends_executions = matches!(
                c,
                Command::CancelExecution { .. }
                    | Command::DeleteWorkflow { .. }
                    | Command::FinishAttempt { .. }
                    | Command::TimeOutExecution { .. }
                    | Command::ExpireWorkerAttempts { .. }
                    | Command::DisconnectWorker { .. }
                    | Command::CreateExecution { .. }
                    | Command::Idempotent { .. }
                    | Command::Batch { .. }
            );
            let before = state.clone();
            state.apply(c);
            for old in before.executions.values() {
                let Some(new) = state.execution(&old.id) else {
                    // Only retention removes executions, and only finished ones: finished before
                    // this command, or by it.
                    prop_assert!(old.status.is_terminal() || ends_executions);
                    continue;
                };
                if old.status.is_terminal() && !is_retry {
                    prop_assert_eq!(old, &*new);
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
    fn retention_caps_hold_after_every_command_and_a_snapshot_rebuilds_the_index(
        commands in prop::collection::vec(arb_command(), 0..150),
    ) {
        let mut state = State::default();
        let mut limits = state.limits();
        limits.max_kept_executions_per_workflow = 2;
        limits.max_kept_executions = 1;
        limits.max_kept_log_bytes = 64;
        limits.max_finished_age_secs = 2;
        state.apply(Command::SetLimits { limits, actor: None, at_ms: 0 });
        for c in commands {
            state.apply(c);
            // Generated commands may set other limits: check those in force.
            let (kept, limits) = (state.kept(), state.limits());
            prop_assert!(kept.finished_executions <= limits.max_kept_executions as usize, "{kept:?}");
            // Only logs of unfinished executions may stand over the byte cap.
            if kept.log_bytes > u64::from(limits.max_kept_log_bytes) {
                prop_assert_eq!(kept.finished_executions, 0, "{:?}", kept);
            }
            prop_assert_eq!(kept.unfinished_executions, state.unfinished_executions().count());
        }
        let loaded = State::from_snapshot(&state.to_snapshot().unwrap()).unwrap();
        prop_assert_eq!(loaded.kept(), state.kept());
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
                    let holder = before.attempt(*attempt_id).and_then(|at| at.attempt().worker_id.clone());
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
            let spec = state.execution_spec(&e).unwrap().clone();
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
        let spec = state.execution_spec(&state.execution("wf:e").unwrap()).unwrap().clone();
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
