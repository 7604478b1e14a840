//! The engine on a real three-node cluster with a real HTTP backend on 127.0.0.1: DAGs with
//! outputs passed downstream, retries, timeouts, callbacks, shell tasks, cancel, retry, cron
//! across a leader failover, and an owner node killed mid-run.

use std::collections::BTreeSet;
use std::time::Duration;

use linkloom_harness::backend::Backend;
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);

fn cluster() -> (Cluster, u64, u64) {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");
    (cluster, leader, follower)
}

fn task<'v>(execution: &'v Value, id: &str) -> &'v Value {
    execution["tasks"].as_array().and_then(|t| t.iter().find(|t| t["id"] == id)).expect("task in execution")
}

/// Waits (bounded) until process `pid` is gone, or a zombie waiting for its reaper.
fn wait_until_killed(cluster: &Cluster, pid: u32) {
    cluster
        .wait_for(&format!("process {pid} to be killed"), Duration::from_secs(15), |_| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z")
        })
        .unwrap();
}

fn attempt_statuses(execution: &Value, id: &str) -> Vec<String> {
    task(execution, id)["attempts"]
        .as_array()
        .map(|a| a.iter().map(|a| a["status"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_dag_passes_outputs_downstream_and_retries_and_times_out() {
    let backend = Backend::start().expect("backend");
    let (cluster, _, via) = cluster();
    let yaml = format!(
        r#"
id: pipeline
params: {{region: eu}}
tasks:
  - id: extract
    type: http
    url: {url}/echo
    input: {{rows: 3, region: "{{{{ params.region }}}}"}}
  - id: transform
    type: http
    url: {url}/flaky/transform
    depends_on: [extract]
    retry: {{max_attempts: 3, backoff: 100ms}}
    input: {{rows: "{{{{ tasks.extract.output.rows }}}}"}}
  - id: load
    type: shell
    depends_on: [transform]
    command: 'echo loading; echo "{{\"loaded\": {{{{ tasks.transform.output.rows }}}}}}" > $LOOM_OUTPUT'
"#,
        url = backend.url
    );
    cluster.put_workflow(via, &yaml).unwrap();
    let id = cluster.trigger(via, "pipeline", json!({"region": "us"})).unwrap();
    let done = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(task(&done, "load")["output"], json!({"loaded": 3}));
    assert_eq!(attempt_statuses(&done, "transform"), ["failed", "failed", "succeeded"]);

    // The backend saw the contract: rendered input (typed), params, attempt numbers, keys.
    assert!(backend.raw().iter().all(|r| r.signature.is_none()), "no signing secret, no signature");
    let extract = &backend.received_for("extract")[0];
    assert_eq!(extract.body["input"], json!({"rows": 3, "region": "us"}));
    assert_eq!(extract.body["params"], json!({"region": "us"}));
    assert_eq!(extract.idempotency_key.as_deref(), Some(format!("{id}/extract/1").as_str()));
    let transform = backend.received_for("transform");
    assert_eq!(transform.len(), 3);
    assert_eq!(transform[2].body["attempt"], 3);
    assert_eq!(transform[2].body["input"]["rows"], 3);
    let (_, logs) = cluster.get_json(via, &format!("/api/v1/executions/{id}/logs?task=load")).unwrap();
    assert!(logs.as_str().unwrap_or_default().contains("loading"), "{logs}");

    // A timeout: the backend answers after 3 s, the task allows 300 ms, once.
    let slow =
        format!("id: slow\ntasks:\n  - {{id: wait, type: http, url: {}/slow/3000, timeout: 300ms}}\n", backend.url);
    cluster.put_workflow(via, &slow).unwrap();
    let id = cluster.trigger(via, "slow", Value::Null).unwrap();
    let done = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(done["status"], "failed");
    assert_eq!(attempt_statuses(&done, "wait"), ["timed_out"]);

    // A 4xx is a failure that is not retried, whatever the policy.
    let reject = format!(
        "id: rejected\ntasks:\n  - {{id: r, type: http, url: {}/reject, retry: {{max_attempts: 5}}}}\n",
        backend.url
    );
    cluster.put_workflow(via, &reject).unwrap();
    let id = cluster.trigger(via, "rejected", Value::Null).unwrap();
    let done = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(attempt_statuses(&done, "r"), ["failed"]);
    assert!(task(&done, "r")["attempts"][0]["error"].as_str().unwrap_or_default().contains("400"));
}

#[test]
fn a_202_completes_through_the_callback_and_a_second_callback_is_refused() {
    let backend = Backend::start().expect("backend");
    let (cluster, _, via) = cluster();
    cluster
        .put_workflow(
            via,
            &format!("id: later\ntasks:\n  - {{id: job, type: http, url: {}/async, timeout: 30s}}\n", backend.url),
        )
        .unwrap();
    let id = cluster.trigger(via, "later", Value::Null).unwrap();
    let mut callback_url = String::new();
    let mut token = String::new();
    cluster
        .wait_for("the backend to receive the task", RUN, |_| match backend.received_for("job").first() {
            Some(r) => {
                callback_url = r.body["callback_url"].as_str().unwrap_or_default().to_string();
                token = r.body["callback_token"].as_str().unwrap_or_default().to_string();
                true
            }
            None => false,
        })
        .unwrap();
    assert!(token.len() >= 40, "each attempt gets its own random callback token: `{token}`");
    let attempt_path = callback_url.split("/api/v1/").nth(1).map(|p| format!("/api/v1/{p}")).expect("callback path");
    let heartbeat = attempt_path.replace("/callback", "/heartbeat");
    assert_eq!(cluster.post_as(via, &heartbeat, &token, "application/json", "").unwrap().0, 200);
    let running = cluster.execution(via, &id).unwrap();
    assert_eq!(task(&running, "job")["status"], "running");

    let answer =
        json!({"status": "succeeded", "output": {"report": "ready"}, "logs": "built the report\n"}).to_string();
    // Without the attempt's token, or with another one, the callback changes nothing.
    let (status, body) = cluster.post(via, &attempt_path, "application/json", answer.clone()).unwrap();
    assert_eq!(status, 401, "{body}");
    let (status, body) =
        cluster.post_as(via, &attempt_path, "loomcb_guess", "application/json", answer.clone()).unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("stale_attempt")), "{body}");
    assert_eq!(task(&cluster.execution(via, &id).unwrap(), "job")["status"], "running");
    let (status, body) = cluster.post_as(via, &attempt_path, &token, "application/json", answer.clone()).unwrap();
    assert_eq!(status, 200, "{body}");
    let done = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(task(&done, "job")["output"], json!({"report": "ready"}));
    // Fencing: the attempt is over, so a repeated callback or heartbeat changes nothing.
    let (status, body) = cluster.post_as(via, &attempt_path, &token, "application/json", answer).unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("stale_attempt")), "{body}");
    assert_eq!(cluster.post_as(via, &heartbeat, &token, "application/json", "").unwrap().0, 409);
}

#[test]
fn shell_tasks_fail_on_exit_codes_are_cancelled_by_killing_them_and_can_be_retried() {
    let (cluster, _, via) = cluster();
    let scratch = shared_scratch();
    let marker = scratch.path().join("ready");
    let pidfile = scratch.path().join("pid");

    // A failing exit code fails the task; retry after fixing the cause re-runs only it.
    let yaml = format!(
        "id: fragile\ntasks:\n  - {{id: check, type: shell, command: 'echo checking; test -f {}; exit $(( $? * 3 ))'}}\n  - {{id: after, type: shell, command: [\"true\"], depends_on: [check]}}\n",
        marker.display()
    );
    cluster.put_workflow(via, &yaml).unwrap();
    let id = cluster.trigger(via, "fragile", Value::Null).unwrap();
    let failed = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(task(&failed, "check")["attempts"][0]["error"].as_str().unwrap_or_default().contains("exited with code 3"));
    assert_eq!(task(&failed, "after")["status"], "skipped");
    std::fs::write(&marker, "").unwrap();
    let (status, body) = cluster.post(via, &format!("/api/v1/executions/{id}/retry"), "application/json", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let done = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(attempt_statuses(&done, "check"), ["failed", "succeeded"]);

    // Cancel kills the whole process group, grandchildren included.
    let yaml = format!(
        "id: sleepy\ntasks:\n  - {{id: nap, type: shell, command: 'sleep 120 & echo $! > {}; wait'}}\n",
        pidfile.display()
    );
    cluster.put_workflow(via, &yaml).unwrap();
    let id = cluster.trigger(via, "sleepy", Value::Null).unwrap();
    let mut pid = 0u32;
    cluster
        .wait_for("the shell task to start its sleep", RUN, |_| {
            pid = std::fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
            pid != 0
        })
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let (status, body) = cluster.post(via, &format!("/api/v1/executions/{id}/cancel"), "application/json", "").unwrap();
    assert_eq!(status, 200, "{body}");
    wait_until_killed(&cluster, pid);
    let cancelled = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(attempt_statuses(&cancelled, "nap"), ["cancelled"]);
}

#[test]
fn the_owner_of_a_running_execution_dies_and_another_node_finishes_it() {
    let (mut cluster, _, _) = cluster();
    let yaml = "id: resilient\ntasks:\n  - {id: long, type: shell, command: 'sleep 2; echo done', retry: {max_attempts: 3, backoff: 100ms}}\n";
    cluster.put_workflow(1, yaml).unwrap();
    let id = cluster.trigger(1, "resilient", Value::Null).unwrap();
    let mut owner = 0;
    cluster
        .wait_for("the task to run on its owner", RUN, |c| {
            let e = c.execution(1, &id).unwrap_or(Value::Null);
            owner = e["owner_node_id"].as_u64().unwrap_or(0);
            owner != 0 && task(&e, "long")["status"] == "running"
        })
        .unwrap();
    cluster.kill(owner).unwrap();
    let survivor = cluster.ids().into_iter().find(|n| *n != owner).unwrap();
    let done = cluster.wait_execution(survivor, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let attempts = task(&done, "long")["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts[0]["status"], "lost", "{done:#}");
    let last = attempts.last().unwrap();
    assert_eq!(last["status"], "succeeded");
    assert_ne!(last["node_id"].as_u64(), Some(owner), "the last attempt ran on the dead node");
    assert_ne!(done["owner_node_id"].as_u64(), Some(owner));
}

#[test]
fn a_two_second_cron_fires_each_tick_once_across_a_leader_restart() {
    let (mut cluster, leader, via) = cluster();
    let yaml = "id: heartbeat\nschedule: '*/2 * * * * *'\ncatchup: all\ntasks:\n  - {id: beat, type: shell, command: ['true']}\n";
    cluster.put_workflow(via, yaml).unwrap();
    let scheduled = |c: &Cluster, node: u64| -> Vec<String> {
        c.get_json(node, "/api/v1/executions?workflow=heartbeat&limit=500")
            .ok()
            .and_then(|(_, v)| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["scheduled_at"].as_str().map(str::to_string))
            .collect()
    };
    cluster.wait_for("three ticks", RUN, |c| scheduled(c, via).len() >= 3).unwrap();
    cluster.kill(leader).unwrap();
    let before = scheduled(&cluster, via).len();
    cluster.wait_for("ticks under the new leader", RUN, |c| scheduled(c, via).len() >= before + 3).unwrap();
    cluster.restart(leader).unwrap();
    let before = scheduled(&cluster, via).len();
    cluster.wait_for("ticks after the restart", RUN, |c| scheduled(c, via).len() >= before + 2).unwrap();
    // The workflow says when it fires next (a 2 s grid point) and which tick it handled last.
    let (_, wf) = cluster.get_json(via, "/api/v1/workflows/heartbeat").unwrap();
    let next = wf["next_fire_at"].as_str().unwrap_or_else(|| panic!("no next_fire_at: {wf}"));
    assert_eq!(chrono_free_millis(next) % 2_000, 0, "{wf}");
    assert!(wf["last_tick_at"].is_string(), "{wf}");
    let (status, _) = cluster.post(via, "/api/v1/workflows/heartbeat/pause", "application/json", "").unwrap();
    assert_eq!(status, 200);
    let (_, wf) = cluster.get_json(via, "/api/v1/workflows/heartbeat").unwrap();
    assert!(wf["next_fire_at"].is_null(), "a paused workflow has no next fire: {wf}");

    let ticks = scheduled(&cluster, via);
    let unique: BTreeSet<&String> = ticks.iter().collect();
    assert_eq!(unique.len(), ticks.len(), "a tick fired twice: {ticks:?}");
    // catchup: all — no tick between the first and the last is missing.
    let millis: Vec<i64> = unique.iter().map(|t| chrono_free_millis(t)).collect();
    for pair in millis.windows(2) {
        assert_eq!(pair[1] - pair[0], 2_000, "a gap between ticks: {ticks:?}");
    }
}

/// Milliseconds of an RFC 3339 UTC time like `2026-11-25T20:32:46.000Z` within its day, enough to
/// compare ticks of one short test.
fn chrono_free_millis(text: &str) -> i64 {
    let time = text.split('T').nth(1).unwrap_or_default().trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let m: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let s: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
    (h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64
}

#[test]
fn logs_stream_live_from_any_node_and_backfill_creates_each_tick_once() {
    let (cluster, leader, via) = cluster();
    let yaml = "id: chatty\ntasks:\n  - {id: talk, type: shell, command: 'for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done'}\n";
    cluster.put_workflow(via, yaml).unwrap();
    let id = cluster.trigger(via, "chatty", Value::Null).unwrap();
    // Follow from a node that may not own the execution; the stream ends when the task ends.
    let started = std::time::Instant::now();
    let response = cluster
        .http()
        .get(format!("{}/api/v1/executions/{id}/logs?task=talk&follow=true", cluster.url(leader)))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().contains("text/event-stream"));
    let stream = response.text().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1000), "the stream ended before the task did");
    for i in 1..=5 {
        assert!(stream.contains(&format!("line {i}")), "missing line {i} in {stream}");
    }
    assert!(stream.contains("event: end"), "{stream}");

    // Backfill: one execution per tick in the range, and again changes nothing.
    cluster
        .put_workflow(via, "id: hourly\nschedule: '0 * * * *'\ntasks:\n  - {id: t, type: shell, command: ['true']}\n")
        .unwrap();
    let range = json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T03:00:00Z"}).to_string();
    let (status, first) =
        cluster.post(via, "/api/v1/workflows/hourly/backfill", "application/json", range.clone()).unwrap();
    assert_eq!(status, 202, "{first}");
    assert_eq!((first["created"].as_u64(), first["existing"].as_u64()), (Some(4), Some(0)), "{first}");
    let (_, again) = cluster.post(via, "/api/v1/workflows/hourly/backfill", "application/json", range).unwrap();
    assert_eq!((again["created"].as_u64(), again["existing"].as_u64()), (Some(0), Some(4)), "{again}");
    let ids: Vec<String> =
        first["execution_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(ids.contains(&"hourly:20260101T020000Z".to_string()), "{ids:?}");
    let done = cluster.wait_execution(via, &ids[0], RUN).unwrap();
    assert_eq!((done["trigger"].as_str(), done["status"].as_str()), (Some("backfill"), Some("succeeded")));
    let (status, bad) = cluster
        .post(via, "/api/v1/workflows/hourly/backfill", "application/json", json!({"from": "yesterday"}).to_string())
        .unwrap();
    assert_eq!(status, 400, "{bad}");
    // Well-formed, but contradicting itself: 422, naming both ends.
    let backwards = json!({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}).to_string();
    let (status, bad) = cluster.post(via, "/api/v1/workflows/hourly/backfill", "application/json", backwards).unwrap();
    assert_eq!((status, bad["error"]["code"].as_str()), (422, Some("invalid_range")), "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap_or_default().contains("2026-01-02T00:00:00Z"), "{bad}");
    let years = json!({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}).to_string();
    let (status, bad) = cluster.post(via, "/api/v1/workflows/hourly/backfill", "application/json", years).unwrap();
    assert_eq!((status, bad["error"]["code"].as_str()), (422, Some("invalid_range")), "{bad}");
    // A workflow without a schedule has nothing to backfill: its state forbids it.
    cluster.put_workflow(via, "id: unscheduled\ntasks:\n  - {id: t, type: shell, command: [\"true\"]}\n").unwrap();
    let range = json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T03:00:00Z"}).to_string();
    let (status, bad) = cluster.post(via, "/api/v1/workflows/unscheduled/backfill", "application/json", range).unwrap();
    assert_eq!((status, bad["error"]["code"].as_str()), (409, Some("conflict")), "{bad}");
}

#[test]
fn an_execution_past_its_timeout_fails_and_its_process_is_killed() {
    let (cluster, _, via) = cluster();
    let scratch = shared_scratch();
    let pidfile = scratch.path().join("pid");
    let yaml = format!(
        "id: bounded\nexecution_timeout: 2s\ntasks:\n  - {{id: forever, type: shell, command: 'echo $$ > {}; exec sleep 120'}}\n",
        pidfile.display()
    );
    cluster.put_workflow(via, &yaml).unwrap();
    let id = cluster.trigger(via, "bounded", Value::Null).unwrap();
    let done = cluster.wait_execution(via, &id, RUN).unwrap();
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(attempt_statuses(&done, "forever"), ["timed_out"]);
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    wait_until_killed(&cluster, pid);
}

#[test]
fn panicking_execution_actors_are_restarted_from_replicated_state_and_counted() {
    // Chaos hook: every 4th look an execution actor takes at state panics.
    let mut cluster =
        Cluster::start(BIN, ClusterOptions::new(3).env("LOOM_CHAOS_ACTOR_PANIC_EVERY", 4)).expect("start");
    let leader = cluster.wait_ready(READY).expect("ready");
    let via = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let yaml = "id: bumpy\ndefaults: {retry: {max_attempts: 10, backoff: 50ms}}\ntasks:\n  - {id: a, type: shell, command: 'echo \"{\\\"n\\\": 1}\" > $LOOM_OUTPUT'}\n  - {id: b, type: shell, command: 'echo \"{\\\"n\\\": {{ tasks.a.output.n }}}\" > $LOOM_OUTPUT', depends_on: [a]}\n  - {id: c, type: shell, command: ['true'], depends_on: [b]}\n";
    cluster.put_workflow(via, yaml).unwrap();
    let ids: Vec<String> = (0..3).map(|_| cluster.trigger(via, "bumpy", Value::Null).unwrap()).collect();
    for id in &ids {
        let done = cluster.wait_execution(via, id, RUN).unwrap();
        assert_eq!(done["status"], "succeeded", "{done:#}");
        assert_eq!(task(&done, "b")["output"], json!({"n": 1}));
        // Restarted actors adopt the attempts their predecessors started: none is lost.
        for t in ["a", "b", "c"] {
            assert_eq!(attempt_statuses(&done, t), ["succeeded"], "{done:#}");
        }
    }
    let restarts: u64 = cluster
        .ids()
        .iter()
        .filter_map(|id| cluster.get_json(*id, "/api/v1/cluster").ok())
        .map(|(_, v)| v["engine"]["actor_restarts"].as_u64().unwrap_or(0))
        .sum();
    assert!(restarts > 0, "no actor was restarted: the chaos hook did not fire");
    let logs: String = cluster.ids().iter().map(|id| cluster.log_text(*id)).collect();
    assert!(logs.contains("execution actor failed, restarting from replicated state"));
}

/// A scratch directory shell tasks can write to: a node running as root runs them as `nobody`.
fn shared_scratch() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}
