//! What released versions wrote must load in every later one. `node/tests/fixtures/<release>/`
//! holds, for each release, a node's data directory (stopped cleanly) and a backup it took, both
//! of a cluster with a bit of everything (workflows with schedules, DAGs and versions, executions
//! that succeeded, failed, were cancelled or still wait, tokens, changed limits), plus
//! `expected.json`, what the API showed before the node stopped. This build must start on each
//! data directory, restore each backup, and show the same.
//!
//! `LOOM_WRITE_FIXTURES=<release>` writes this build's fixtures under that name (once per release,
//! when it is tagged; never rewrite an existing release's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use linkloom_harness::backend::Backend;
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
/// Not a secret: the fixtures' own cluster, on 127.0.0.1, in tests only.
const ADMIN_TOKEN: &str = "fixture-admin-token-not-a-secret";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn options() -> ClusterOptions {
    ClusterOptions::new(1).env("LOOM_ADMIN_TOKEN", ADMIN_TOKEN)
}

/// What the API shows of the state: the part every release must keep reading the same.
fn observe(cluster: &Cluster, via: u64) -> Value {
    let get = |path: &str| {
        let (status, body) = cluster.get_json(via, path).expect("read");
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let mut workflows = BTreeMap::new();
    for w in get("/api/v1/workflows?limit=500")["items"].as_array().into_iter().flatten() {
        let id = w["id"].as_str().expect("id");
        let one = get(&format!("/api/v1/workflows/{id}"));
        workflows
            .insert(id.to_string(), json!({"version": one["version"], "paused": one["paused"], "spec": one["spec"]}));
    }
    let mut executions = BTreeMap::new();
    for e in get("/api/v1/executions?limit=500")["items"].as_array().into_iter().flatten() {
        let id = e["id"].as_str().expect("id");
        let one = get(&format!("/api/v1/executions/{id}"));
        let tasks: Vec<Value> = one["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| json!({"id": t["id"], "status": t["status"], "output": t["output"]}))
            .collect();
        executions.insert(id.to_string(), json!({"status": one["status"], "params": one["params"], "tasks": tasks}));
    }
    let tokens: Vec<Value> = get("/api/v1/tokens")["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| json!({"name": t["name"], "role": t["role"], "queues": t["queues"]}))
        .collect();
    // The limits in force (their ceilings are the code's, and may rise in a later release).
    let mut limits = get("/api/v1/cluster/limits");
    if let Some(fields) = limits.as_object_mut() {
        fields.remove("ceilings");
    }
    json!({"workflows": workflows, "executions": executions, "tokens": tokens, "limits": limits})
}

/// Copies a directory tree (fixtures are read-only inputs: the node writes to its data).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Starts this build on a copy of `data` (a one-node cluster) and answers what it shows.
fn observe_data_dir(data: &Path) -> Value {
    let mut cluster = Cluster::prepare(BIN, options()).expect("prepare");
    copy_tree(data, &cluster.node(1).data_dir.clone());
    cluster.restart(1).expect("start on the fixture's data");
    cluster.wait_ready(READY).expect("ready on an earlier release's data");
    observe(&cluster, 1)
}

/// Restores `backup` with this build into a new one-node cluster and answers what it shows.
fn observe_restored(backup: &Path) -> Value {
    let mut cluster = Cluster::prepare(BIN, options()).expect("prepare");
    let dir = cluster.node(1).data_dir.clone();
    let out = std::process::Command::new(BIN)
        .args(["restore", backup.to_str().expect("utf-8")])
        .args(["--data-dir", dir.to_str().expect("utf-8"), "--node-id", "1", "--peers", cluster.peers()])
        .output()
        .expect("run loom-node restore");
    assert!(
        out.status.success(),
        "restore: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.restart(1).expect("start the restored node");
    cluster.wait_ready(READY).expect("ready after restoring an earlier release's backup");
    observe(&cluster, 1)
}

/// Builds a cluster with a bit of everything and stores it as `release`'s fixtures.
fn write_fixtures(release: &str) {
    let target = fixtures().join(release);
    assert!(!target.exists(), "{} exists: a release's fixtures are never rewritten", target.display());
    let backend = Backend::start().expect("backend");
    let mut cluster = Cluster::start(BIN, options()).expect("start");
    cluster.wait_ready(READY).expect("ready");
    let put = |yaml: String| cluster.put_workflow(1, &yaml).expect("workflow");
    put("id: nightly\nschedule: \"0 3 * * *\"\ntimezone: Europe/Paris\ntasks:\n  - {id: report, type: worker, queue: reports}\n".into());
    put("id: nightly\nschedule: \"30 3 * * *\"\ntimezone: Europe/Paris\ntasks:\n  - {id: report, type: worker, queue: reports, timeout: 10m}\n".into());
    put(format!(
        "id: pipeline\nparams: {{region: eu}}\ntasks:\n  - {{id: extract, type: http, url: {url}/echo, input: {{rows: 3}}}}\n  - {{id: load, type: shell, depends_on: [extract], command: [\"true\"]}}\n",
        url = backend.url
    ));
    put(format!("id: broken\ntasks:\n  - {{id: call, type: http, url: {url}/reject}}\n", url = backend.url));
    put("id: waits\ntasks:\n  - {id: a, type: worker, queue: q}\n  - {id: b, type: worker, queue: q, depends_on: [a]}\n".into());
    let (status, body) = cluster.post(1, "/api/v1/workflows/nightly/pause", "application/json", "{}").expect("pause");
    assert_eq!(status, 200, "{body}");

    let ok = cluster.trigger(1, "pipeline", json!({"region": "us"})).expect("trigger");
    let failed = cluster.trigger(1, "broken", json!({})).expect("trigger");
    let waiting = cluster.trigger(1, "waits", json!({})).expect("trigger");
    let cancelled = cluster.trigger(1, "waits", json!({})).expect("trigger");
    assert_eq!(cluster.wait_execution(1, &ok, READY).expect("ends")["status"], "succeeded");
    assert_eq!(cluster.wait_execution(1, &failed, READY).expect("ends")["status"], "failed");
    let (status, body) =
        cluster.post(1, &format!("/api/v1/executions/{cancelled}/cancel"), "application/json", "{}").expect("cancel");
    assert!(status < 300, "{body}");
    let _ = waiting;
    for (name, role, queues) in [("ci", "operator", None), ("w1", "worker", Some(json!(["q"])))] {
        let mut body = json!({"name": name, "role": role});
        if let Some(q) = queues {
            body["queues"] = q;
        }
        let (status, answer) = cluster.post(1, "/api/v1/tokens", "application/json", body.to_string()).expect("token");
        assert_eq!(status, 201, "{answer}");
    }
    let (status, body) = cluster
        .put_json(1, "/api/v1/cluster/limits", &json!({"max_kept_executions_per_workflow": 500}))
        .expect("limits");
    assert_eq!(status, 200, "{body}");

    let expected = observe(&cluster, 1);
    let (status, backup) = cluster.get_bytes(1, "/api/v1/cluster/snapshot", Duration::from_secs(60)).expect("backup");
    assert_eq!(status, 200);
    cluster.terminate(1, Duration::from_secs(30)).expect("clean stop");
    copy_tree(&cluster.node(1).data_dir.clone(), &target.join("data"));
    std::fs::write(target.join("backup.snap"), backup).expect("write backup");
    let text = serde_json::to_string_pretty(&expected).expect("json") + "\n";
    std::fs::write(target.join("expected.json"), text).expect("write expected");
    println!("wrote {}", target.display());
}

#[test]
fn every_releases_data_and_backups_load_in_this_build() {
    if let Ok(release) = std::env::var("LOOM_WRITE_FIXTURES") {
        write_fixtures(&release);
    }
    let mut releases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("node/tests/fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    releases.sort();
    assert!(!releases.is_empty(), "no release fixtures under {}", fixtures().display());
    for release in &releases {
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(release.join("expected.json")).expect("expected.json"))
                .expect("expected.json is JSON");
        assert!(expected["executions"].as_object().is_some_and(|e| e.len() >= 4), "thin fixture {}", release.display());
        assert_eq!(expected["limits"]["max_kept_executions_per_workflow"], 500, "{}", release.display());
        let name = release.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        assert_eq!(observe_data_dir(&release.join("data")), expected, "{name}'s data directory, read by this build");
        assert_eq!(observe_restored(&release.join("backup.snap")), expected, "{name}'s backup, restored by this build");
        println!("{name}: data directory and backup load, and show what {name} showed");
    }
}
