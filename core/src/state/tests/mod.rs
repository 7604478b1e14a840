//! The state machine's tests, one file per concern; the helpers below drive `apply` the way a
//! node does.

mod base;
mod events;
mod fencing;
mod idempotence;
mod lifecycle;
mod properties;
mod schedule;
mod tokens;
mod workers;

use proptest::prelude::*;

use super::*;
use crate::json::Json;
use crate::spec::{parse_yaml, WorkflowSpec};

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

const HASH_A: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

const HASH_B: &str = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9";

/// The state without the exactly-once bookkeeping (which counts copies it refused).
fn domain(state: &State) -> [u8; 32] {
    let mut plain = state.clone();
    plain.sessions = requests::Sessions::default();
    plain.requests = requests::ClientRequests::default();
    plain.clock_ms = 0;
    plain.digest()
}

const WORKER_WF: &str = r#"
id: wf
tasks:
  - {id: pull, type: worker, queue: q, timeout: 30s, retry: {max_attempts: 2, backoff: 1s}}
  - {id: next, type: worker, queue: q, depends_on: [pull], input: {from: "{{ tasks.pull.output.v }}"}}
"#;

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

fn from_node(seq: u64, answered_below: u64, commands: Vec<Command>) -> Command {
    Command::Batch { origin: Some(Origin { node: 2, session: 99, seq, answered_below }), commands }
}

fn once(key: &str, fingerprint: u8, command: Command) -> Command {
    Command::Idempotent {
        request: RequestId { scope: "ops".into(), key: key.into() },
        fingerprint: [fingerprint; 16],
        command: Box::new(command),
    }
}
