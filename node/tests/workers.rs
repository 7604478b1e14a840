//! Workers on a real three-node cluster, with real worker processes (the Rust SDK's `worker`
//! example): outputs passed downstream, a worker killed mid-task (its task moves on after the
//! lease, its late answer is refused), the node a worker talks to killed (it reconnects and
//! finishes), and a thousand tasks across four workers, each run exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use linkloom_harness::worker::{example_worker_binary, WorkerProcess};
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);

fn cluster(options: ClusterOptions) -> (Cluster, u64, Vec<u64>) {
    let mut cluster = Cluster::start(BIN, options).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    let followers = cluster.ids().into_iter().filter(|id| *id != leader).collect();
    (cluster, leader, followers)
}

fn worker(cluster: &Cluster, nodes: &[u64], id: &str, concurrency: u32) -> WorkerProcess {
    let servers: Vec<String> = nodes.iter().map(|n| cluster.url(*n)).collect();
    let binary = example_worker_binary().expect("the worker example is built");
    WorkerProcess::start(&binary, &servers.join(","), "demo", id, concurrency, cluster.dir()).expect("start worker")
}

fn workers_listed(cluster: &Cluster, via: u64) -> Vec<Value> {
    match cluster.get_json(via, "/api/v1/workers") {
        Ok((200, body)) => body["items"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn wait_listed(cluster: &Cluster, via: u64, id: &str) {
    cluster
        .wait_for(&format!("worker {id} to be listed"), READY, |c| workers_listed(c, via).iter().any(|w| w["id"] == id))
        .unwrap();
}

fn task<'v>(execution: &'v Value, id: &str) -> &'v Value {
    execution["tasks"].as_array().and_then(|t| t.iter().find(|t| t["id"] == id)).expect("task in execution")
}

/// The first attempt of `task_id`, once it runs on a worker.
fn wait_running_attempt(cluster: &Cluster, via: u64, execution_id: &str, task_id: &str) -> Value {
    let mut attempt = Value::Null;
    cluster
        .wait_for(&format!("{execution_id}/{task_id} to run on a worker"), RUN, |c| {
            let Ok(e) = c.execution(via, execution_id) else { return false };
            attempt = task(&e, task_id)["attempts"][0].clone();
            attempt["status"] == "running" && attempt["worker_id"].is_string()
        })
        .unwrap();
    attempt
}

#[test]
fn worker_tasks_pass_outputs_downstream_and_the_registry_shows_workers() {
    let (cluster, leader, followers) = cluster(ClusterOptions::new(3));
    let mut w = worker(&cluster, &[followers[0]], "echo-1", 2);
    wait_listed(&cluster, leader, "echo-1");
    let listed = workers_listed(&cluster, followers[1]);
    let entry = listed.iter().find(|x| x["id"] == "echo-1").expect("listed on every node");
    assert_eq!(entry["node_id"], followers[0], "{entry}");
    assert_eq!(entry["queues"], json!(["demo"]));
    assert_eq!(entry["concurrency"], 2);
    for field in ["running", "connected_at", "last_seen_at"] {
        assert!(!entry[field].is_null(), "{field} in {entry}");
    }

    let yaml = r#"
id: relay
tasks:
  - {id: first, type: worker, queue: demo, input: {v: 7, word: "{{ params.word }}"}}
  - {id: second, type: worker, queue: demo, depends_on: [first], input: {got: "{{ tasks.first.output.v }}", word: "{{ tasks.first.output.word }}"}}
"#;
    cluster.put_workflow(leader, yaml).unwrap();
    let id = cluster.trigger(followers[1], "relay", json!({"word": "loom"})).unwrap();
    let done = cluster.wait_execution(leader, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(task(&done, "first")["output"], json!({"v": 7, "word": "loom"}));
    assert_eq!(task(&done, "second")["output"], json!({"got": 7, "word": "loom"}));
    assert_eq!(task(&done, "second")["attempts"][0]["worker_id"], "echo-1");
    assert_eq!(w.finished().len(), 2);

    // A worker that vanishes leaves the list within about one heartbeat interval (1 s here).
    w.kill().unwrap();
    let gone_from = Instant::now();
    cluster
        .wait_for("the killed worker to leave the list", Duration::from_secs(10), |c| {
            !workers_listed(c, leader).iter().any(|x| x["id"] == "echo-1")
        })
        .unwrap();
    let took = gone_from.elapsed();
    eprintln!("the killed worker left the list after {took:?}");
    assert!(took < Duration::from_millis(2_500), "took {took:?}");
}

#[test]
fn a_killed_workers_task_completes_on_another_worker_and_its_late_answer_is_refused() {
    let options = ClusterOptions::new(3).env("LOOM_WORKER_LEASE_MS", 3_000);
    let (cluster, leader, followers) = cluster(options);
    let yaml = r#"
id: slow
tasks:
  - {id: nap, type: worker, queue: demo, input: {sleep_ms: 4000}, retry: {max_attempts: 2, backoff: 100ms}}
"#;
    cluster.put_workflow(leader, yaml).unwrap();
    let mut first = worker(&cluster, &[followers[0]], "doomed", 1);
    wait_listed(&cluster, leader, "doomed");
    let id = cluster.trigger(leader, "slow", json!({})).unwrap();
    let attempt = wait_running_attempt(&cluster, leader, &id, "nap");
    assert_eq!(attempt["worker_id"], "doomed");
    first.kill().unwrap();

    let second = worker(&cluster, &[followers[1], leader], "rescuer", 1);
    let done = cluster.wait_execution(leader, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let attempts = task(&done, "nap")["attempts"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(Value, Value)> = attempts.iter().map(|a| (a["status"].clone(), a["worker_id"].clone())).collect();
    assert_eq!(summary, vec![(json!("lost"), json!("doomed")), (json!("succeeded"), json!("rescuer"))]);
    assert_eq!(task(&done, "nap")["output"], json!({"sleep_ms": 4000}));
    assert_eq!(second.finished().len(), 1);

    // The dead worker's answer arrives late: refused, nothing changes.
    let path = format!("/api/v1/workers/doomed/attempts/{}/complete", attempt["id"].as_str().unwrap());
    let body = json!({"status": "succeeded", "output": {"late": true}}).to_string();
    let (status, answer) = cluster.post(followers[0], &path, "application/json", body.clone()).unwrap();
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "stale_attempt");
    // So is an answer for the live attempt from a worker that does not hold it.
    let live = format!("/api/v1/workers/doomed/attempts/{}/heartbeat", attempts[1]["id"].as_str().unwrap());
    assert_eq!(cluster.post(leader, &live, "application/json", "{}").unwrap().0, 409);
    let after = cluster.execution(leader, &id).unwrap();
    assert_eq!(after, done);
}

#[test]
fn a_worker_whose_node_dies_reconnects_and_finishes_its_task() {
    let (mut cluster, leader, followers) = cluster(ClusterOptions::new(3));
    let yaml = r#"
id: patient
tasks:
  - {id: nap, type: worker, queue: demo, input: {sleep_ms: 3000}}
"#;
    cluster.put_workflow(leader, yaml).unwrap();
    let (doomed_node, other) = (followers[0], followers[1]);
    let w = worker(&cluster, &[doomed_node, other], "mover", 1);
    wait_listed(&cluster, leader, "mover");
    let id = cluster.trigger(leader, "patient", json!({})).unwrap();
    wait_running_attempt(&cluster, leader, &id, "nap");
    cluster.kill(doomed_node).unwrap();

    cluster
        .wait_for("the worker to reconnect to the other node", RUN, |c| {
            workers_listed(c, leader).iter().any(|x| x["id"] == "mover" && x["node_id"] == other)
        })
        .unwrap();
    let done = cluster.wait_execution(leader, &id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}\n{}", w.log_text());
    // One attempt: the lease outlived the move.
    let attempts = task(&done, "nap")["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 1, "{done:#}");
    assert_eq!(attempts[0]["status"], "succeeded");
    assert_eq!(w.finished().len(), 1);
}

#[test]
fn a_thousand_tasks_across_four_workers_run_exactly_once_each() {
    let (cluster, leader, followers) = cluster(ClusterOptions::new(3));
    let nodes = [leader, followers[0], followers[1], leader];
    let workers: Vec<WorkerProcess> = (0..4)
        .map(|i| {
            let start_at = nodes[i];
            let order: Vec<u64> =
                std::iter::once(start_at).chain(cluster.ids().into_iter().filter(|n| *n != start_at)).collect();
            worker(&cluster, &order, &format!("bulk-{i}"), 8)
        })
        .collect();
    for w in &workers {
        wait_listed(&cluster, leader, &w.id);
    }
    cluster
        .put_workflow(
            leader,
            "id: bulk\ntasks:\n  - {id: one, type: worker, queue: demo, input: {n: \"{{ params.n }}\"}}\n",
        )
        .unwrap();
    const N: usize = 1_000;
    let mut ids = Vec::with_capacity(N);
    for n in 0..N {
        let via = cluster.ids()[n % 3];
        ids.push(cluster.trigger(via, "bulk", json!({"n": n})).unwrap());
    }
    let finished = |ws: &[WorkerProcess]| ws.iter().map(|w| w.finished().len()).sum::<usize>();
    cluster
        .wait_for("every task to finish at the workers", Duration::from_secs(120), |_| finished(&workers) >= N)
        .unwrap();

    // Every execution succeeded.
    let mut succeeded = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/executions?workflow=bulk&status=succeeded&limit=500".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (_, page) = cluster.get_json(leader, &path).unwrap();
        succeeded += page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(succeeded, N);

    // Counted at the workers: each execution's task ran exactly once, and all four worked.
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for w in &workers {
        for line in w.finished() {
            *runs.entry(line["execution_id"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
    }
    let per_worker: Vec<usize> = workers.iter().map(|w| w.finished().len()).collect();
    eprintln!("tasks per worker: {per_worker:?}");
    assert_eq!(runs.len(), N, "distinct executions run");
    assert!(
        runs.values().all(|n| *n == 1),
        "some ran twice: {:?}",
        runs.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(finished(&workers), N);
    assert!(ids.iter().all(|id| runs.contains_key(id)));
    assert!(per_worker.iter().all(|n| *n > 0), "{per_worker:?}");
}

#[test]
fn a_node_stopped_with_sigterm_closes_worker_streams_and_exits_promptly() {
    let (mut cluster, leader, followers) = cluster(ClusterOptions::new(3));
    let (stopping, other) = (followers[0], followers[1]);
    let _w = worker(&cluster, &[stopping, other], "migrant", 1);
    cluster
        .wait_for("the worker to connect to the first node", READY, |c| {
            workers_listed(c, leader).iter().any(|x| x["id"] == "migrant" && x["node_id"] == stopping)
        })
        .unwrap();
    let started = Instant::now();
    let code = cluster.terminate(stopping, Duration::from_secs(15)).unwrap();
    assert_eq!(code, Some(0), "{}", cluster.log_text(stopping));
    eprintln!("the node stopped {:?} after SIGTERM", started.elapsed());
    cluster
        .wait_for("the worker to move to the other node", RUN, |c| {
            workers_listed(c, leader).iter().any(|x| x["id"] == "migrant" && x["node_id"] == other)
        })
        .unwrap();
}

#[test]
fn tasks_wait_visibly_for_a_worker_and_cancel_and_timeout_reach_the_worker() {
    let (cluster, leader, followers) = cluster(ClusterOptions::new(3));
    let yaml = r#"
id: long
tasks:
  - {id: nap, type: worker, queue: demo, input: {sleep_ms: 60000}, timeout: 2s}
"#;
    cluster.put_workflow(leader, yaml).unwrap();
    // No worker yet: the task waits, counted with its age.
    let timed = cluster.trigger(leader, "long", json!({})).unwrap();
    cluster
        .wait_for("the queue to show a waiting task", READY, |c| {
            let Ok((200, body)) = c.get_json(followers[0], "/api/v1/queues") else { return false };
            body["items"].as_array().is_some_and(|items| {
                items.iter().any(|q| {
                    q["queue"] == "demo" && q["waiting"] == 1 && q["workers"] == 0 && q["oldest_waiting_ms"].is_u64()
                })
            })
        })
        .unwrap();
    // And in /metrics, for alerts on queue age (deploy/monitoring).
    let metrics = cluster.http().get(format!("{}/metrics", cluster.url(followers[1]))).send().unwrap().text().unwrap();
    assert!(metrics.lines().any(|l| l == "loom_worker_tasks_waiting 1"), "{metrics}");
    let oldest = metrics
        .lines()
        .find_map(|l| l.strip_prefix("loom_worker_task_oldest_waiting_seconds "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(oldest.is_some_and(|s| s >= 0.0), "{metrics}");

    let w = worker(&cluster, &[followers[0]], "sleeper", 2);
    // The task's timeout ends the attempt on the cluster and stops the worker's handler.
    let done = cluster.wait_execution(leader, &timed, RUN).unwrap();
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(task(&done, "nap")["attempts"][0]["status"], "timed_out");

    // A cancel reaches the worker too.
    let cancelled = cluster.trigger(leader, "long", json!({})).unwrap();
    wait_running_attempt(&cluster, leader, &cancelled, "nap");
    let (status, body) =
        cluster.post(leader, &format!("/api/v1/executions/{cancelled}/cancel"), "application/json", "{}").unwrap();
    assert_eq!(status, 200, "{body}");
    // Each attempt's end reaches the worker by whichever comes first: the node's `cancel` event,
    // or a heartbeat answered 409 (the attempt is no longer current). Either stops its handler.
    let told = |log: &str| -> std::collections::BTreeSet<String> {
        strip_ansi(log)
            .lines()
            .filter(|l| l.contains("attempt cancelled by the cluster") || l.contains("lease lost"))
            .filter_map(|l| l.split("attempt_id=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next().map(|id| id.trim_matches('"').to_string()))
            .collect()
    };
    if let Err(e) = cluster.wait_for("the worker to be told of both", RUN, |_| told(&w.log_text()).len() >= 2) {
        panic!("{e}\nworker log:\n{}", w.log_text());
    }
    // Its slots are free again and nothing finished at the worker.
    cluster
        .wait_for("the worker's slots to be free", RUN, |c| {
            workers_listed(c, leader).iter().any(|x| x["id"] == "sleeper" && x["running"] == 0)
        })
        .unwrap();
    assert!(w.finished().is_empty(), "{:?}", w.finished());
    // It did not send results the cluster had already decided.
    assert!(!w.log_text().contains("completion refused"), "{}", w.log_text());
}

/// `text` without ANSI colour sequences (the worker's log is coloured).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
