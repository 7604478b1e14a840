//! The built `loom` binary against a real three-node cluster with tokens on: every command, the
//! exit codes scripts rely on, `-o json` as one document, and failover when the first `--server`
//! is down.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use linkloom_harness::worker::node_binary;
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::Value;

const LOOM: &str = env!("CARGO_BIN_EXE_loom");
const ADMIN: &str = "cli-admin-token-0123456789abcdef";

/// What one run of `loom` printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// Runs `loom` with `args`, its config in `home`, no `LOOM_*` from the test's environment.
fn loom(home: &Path, args: &[&str]) -> Run {
    let output = Command::new(LOOM)
        .args(args)
        .env_remove("LOOM_SERVER")
        .env_remove("LOOM_TOKEN")
        .env("LOOM_CONFIG_DIR", home)
        .env("NO_COLOR", "1")
        .output()
        .expect("run loom");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ok(home: &Path, args: &[&str]) -> Run {
    let run = loom(home, args);
    assert_eq!(run.code, 0, "loom {args:?} exited {}:\n{}{}", run.code, run.stdout, run.stderr);
    run
}

fn code(home: &Path, args: &[&str], expected: i32) -> Run {
    let run = loom(home, args);
    assert_eq!(run.code, expected, "loom {args:?}:\n{}{}", run.stdout, run.stderr);
    run
}

#[test]
fn every_command_against_a_cluster() {
    let node = node_binary().expect("loom-node is built");
    let mut cluster = Cluster::start(node, ClusterOptions::new(3).env("LOOM_ADMIN_TOKEN", ADMIN)).expect("start");
    let leader = cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();
    let dir = cluster.dir().to_path_buf();
    let urls: Vec<String> = cluster.ids().into_iter().map(|id| cluster.url(id)).collect();
    let servers = urls.join(",");

    // Tokens: created as the bootstrap admin, the operator's kept in the config file.
    let created = ok(
        home,
        &["--server", &servers, "--token", ADMIN, "token", "create", "ops", "--role", "operator", "-o", "json"],
    );
    let operator = created.json()["token"].as_str().expect("token").to_string();
    let viewer = ok(home, &["--server", &servers, "--token", ADMIN, "token", "create", "eyes", "--role", "viewer"]);
    let viewer = viewer.stdout.trim().to_string();
    assert!(viewer.starts_with("loom_"), "the secret alone on stdout: {viewer}");
    let pool = ok(
        home,
        &[
            "--server", &servers, "--token", ADMIN, "token", "create", "pool", "--role", "worker", "--queues", "b,a",
            "-o", "json",
        ],
    );
    assert_eq!(pool.json()["queues"], serde_json::json!(["a", "b"]), "a worker token limited to its queues");
    let limited = code(
        home,
        &["--server", &servers, "--token", ADMIN, "token", "create", "eyes2", "--role", "viewer", "--queues", "a"],
        2,
    );
    assert!(limited.stderr.contains("only worker tokens"), "{}", limited.stderr);
    let tokens = ok(home, &["--server", &servers, "--token", ADMIN, "token", "list"]).stdout;
    assert!(tokens.lines().any(|l| l.starts_with("pool") && l.contains("a,b")), "{tokens}");
    ok(home, &["config", "set", "server-url", &servers]);
    ok(home, &["config", "set", "token", &operator]);
    let listed = ok(home, &["config", "list"]).stdout;
    assert!(listed.contains("token = ***") && !listed.contains(&operator), "{listed}");
    assert_eq!(ok(home, &["config", "get", "server-url"]).stdout.trim(), servers);
    code(home, &["config", "set", "colour", "x"], 2);

    // Validation offline, every problem with its path.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nschedule: '0 25 * * *'\ntasks:\n  - {id: a, type: shell, command: [x], depends_on: [ghost]}\n",
    )
    .unwrap();
    let invalid = code(home, &["workflow", "validate", bad.to_str().unwrap()], 2);
    assert!(invalid.stderr.contains("schedule:") && invalid.stderr.contains("ghost"), "{}", invalid.stderr);

    let good = dir.join("etl.yaml");
    std::fs::write(
        &good,
        "id: etl\ntasks:\n  - id: extract\n    type: shell\n    command: \"echo extracted-{{ params.n }}\"\n  - id: load\n    type: shell\n    command: [\"sleep\", \"0.2\"]\n    depends_on: [extract]\nparams: {n: 1}\n",
    )
    .unwrap();
    ok(home, &["workflow", "validate", good.to_str().unwrap()]);
    ok(home, &["workflow", "create", good.to_str().unwrap()]);
    code(home, &["workflow", "create", good.to_str().unwrap()], 1);
    let applied = ok(home, &["workflow", "apply", good.to_str().unwrap(), "-o", "json"]).json();
    assert_eq!(applied["version"], 2);
    let list = ok(home, &["workflow", "list", "-o", "json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let table = ok(home, &["workflow", "list"]).stdout;
    assert!(table.starts_with("ID   VERSION  SCHEDULE  NEXT  PAUSED  TASKS  UPDATED\netl  2"), "{table}");
    let described = ok(home, &["workflow", "describe", "etl"]).stdout;
    let load: Vec<&str> =
        described.lines().find(|l| l.starts_with("load ")).expect("a row per task").split_whitespace().collect();
    assert_eq!(load, ["load", "shell", "extract", "sleep", "0.2"], "{described}");
    assert_eq!(ok(home, &["workflow", "versions", "etl", "-o", "json"]).json().as_array().map(Vec::len), Some(2));
    let yaml = ok(home, &["workflow", "describe", "etl", "-o", "yaml"]).stdout;
    assert!(yaml.contains("id: etl"), "{yaml}");

    // Trigger and wait: the final execution object, exit 0; a failing one exits 1.
    let done = ok(home, &["workflow", "trigger", "etl", "--param", "n=7", "--wait", "-o", "json"]).json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["params"]["n"], 7);
    assert_eq!(done["created_by"], "ops");
    let execution = done["id"].as_str().unwrap().to_string();
    let described = ok(home, &["execution", "describe", &execution]).stdout;
    assert!(described.contains("TIMELINE") && described.contains("extract  succeeded"), "{described}");
    assert!(ok(home, &["execution", "logs", &execution, "--task", "extract"]).stdout.contains("extracted-7"));
    assert!(ok(home, &["execution", "logs", &execution, "--follow"]).stdout.contains("extracted-7"));
    let listed = ok(home, &["execution", "list", "--workflow", "etl", "-o", "json"]).json();
    assert_eq!(listed[0]["id"], execution.as_str());

    let failing = dir.join("fails.yaml");
    std::fs::write(&failing, "id: fails\ntasks:\n  - {id: a, type: shell, command: \"exit 3\"}\n").unwrap();
    ok(home, &["workflow", "apply", failing.to_str().unwrap()]);
    let failed = code(home, &["workflow", "trigger", "fails", "--wait", "-o", "json"], 1).json();
    assert_eq!(failed["status"], "failed");
    let failed_id = failed["id"].as_str().unwrap().to_string();
    code(home, &["execution", "retry", &failed_id, "--wait"], 1);
    let status = ok(home, &["status", "-o", "json"]).json();
    assert_eq!((status["nodes"].as_u64(), status["nodes_up"].as_u64()), (Some(3), Some(3)));
    assert!(status["failed"].as_u64().unwrap() >= 1 && status["recent_failures"][0]["workflow_id"] == "fails");
    assert!(ok(home, &["status"]).stdout.contains("Recent failures:"));

    // Cancel a running execution; pause, resume, backfill a scheduled workflow.
    let slow = dir.join("slow.yaml");
    std::fs::write(
        &slow,
        "id: slow\nschedule: '0 * * * *'\ntasks:\n  - {id: a, type: shell, command: [sleep, '30']}\n",
    )
    .unwrap();
    ok(home, &["workflow", "apply", slow.to_str().unwrap()]);
    let running = ok(home, &["workflow", "trigger", "slow"]).stdout.trim().to_string();
    ok(home, &["execution", "cancel", &running]);
    code(home, &["execution", "cancel", &running], 1);
    ok(home, &["workflow", "pause", "slow"]);
    ok(home, &["workflow", "resume", "slow"]);
    let backfill = ok(
        home,
        &[
            "workflow",
            "backfill",
            "slow",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T02:30:00Z",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(backfill["created"], 3, "{backfill}");
    ok(home, &["workflow", "pause", "slow"]);

    // Membership: a fourth node joins as a learner, becomes a voter, and is removed.
    let joining = cluster.add_joining_node().expect("start a joining node");
    let addr = format!("127.0.0.1:{}", cluster.node(joining).port);
    let id = joining.to_string();
    code(home, &["cluster", "add", &id, &addr], 4);
    ok(home, &["--token", ADMIN, "cluster", "add", &id, &addr]);
    ok(home, &["--token", ADMIN, "cluster", "promote", &id]);
    let members = ok(home, &["cluster", "members", "-o", "json"]).json();
    let joined = members.as_array().unwrap().iter().find(|m| m["id"] == joining).expect("listed").clone();
    assert_eq!(joined["voter"], true, "{members}");
    ok(home, &["--token", ADMIN, "cluster", "remove", &id]);
    assert_eq!(ok(home, &["cluster", "members", "-o", "json"]).json().as_array().map(Vec::len), Some(3));
    cluster.kill(joining).expect("stop the removed node");

    // Filters, and deleting a workflow.
    let failures = ok(home, &["execution", "list", "--status", "failed", "-o", "json"]).json();
    assert!(
        failures.as_array().unwrap().iter().all(|e| e["status"] == "failed") && failures[0]["workflow_id"] == "fails"
    );
    code(home, &["execution", "list", "--status", "sideways"], 2);
    ok(home, &["workflow", "delete", "fails"]);
    code(home, &["workflow", "describe", "fails"], 5);

    // Workers, the cluster, tokens, limits.
    assert_eq!(ok(home, &["worker", "list", "-o", "json"]).json(), Value::Array(vec![]));
    let members = ok(home, &["cluster", "members", "-o", "json"]).json();
    assert_eq!(members.as_array().map(Vec::len), Some(3));
    let cluster_status = ok(home, &["cluster", "status"]).stdout;
    assert_eq!(cluster_status.matches("127.0.0.1:").count(), 3, "{cluster_status}");
    assert!(cluster_status.contains("leader"));
    let limits = ok(home, &["cluster", "limits", "-o", "json"]).json();
    assert_eq!(limits["max_tasks_per_workflow"], 500);
    code(home, &["cluster", "limits", "--set", "max_tasks_per_workflow=10"], 4);
    let admin_limits =
        ok(home, &["--token", ADMIN, "cluster", "limits", "--set", "max_tasks_per_workflow=400", "-o", "json"]);
    assert_eq!(admin_limits.json()["max_tasks_per_workflow"], 400);
    let tokens = ok(home, &["--token", ADMIN, "token", "list", "-o", "json"]).json();
    assert_eq!(tokens.as_array().map(Vec::len), Some(3));
    ok(home, &["--token", ADMIN, "token", "revoke", "eyes"]);

    // A backup: admin only, checked and written whole; never over a file without --force.
    let backup = dir.join("cluster.snap");
    let backup_arg = backup.to_str().unwrap();
    code(home, &["cluster", "snapshot", "save", backup_arg], 4);
    let saved = ok(home, &["--token", ADMIN, "cluster", "snapshot", "save", backup_arg, "-o", "json"]).json();
    let bytes = std::fs::read(&backup).expect("the backup file");
    assert_eq!(saved["bytes"].as_u64(), Some(bytes.len() as u64), "{saved}");
    assert_eq!(&bytes[..8], b"LOOMSNAP");
    assert_eq!(saved["sha256"].as_str().map(str::len), Some(64), "{saved}");
    code(home, &["--token", ADMIN, "cluster", "snapshot", "save", backup_arg], 2);
    let again = ok(home, &["--token", ADMIN, "cluster", "snapshot", "save", backup_arg, "--force"]).stdout;
    assert!(again.starts_with("saved ") && again.contains("sha256"), "{again}");

    // Events: a workflow started by one, once per id; `loom event list` shows what each started.
    let on_event = dir.join("on-event.yaml");
    std::fs::write(
        &on_event,
        "id: on-order\ntriggers: [{event: order.created, filter: {region: eu}}]\ntasks:\n  - id: say\n    type: shell\n    command: \"echo order {{ event.payload.order_id }}\"\n",
    )
    .unwrap();
    ok(home, &["workflow", "apply", on_event.to_str().unwrap()]);
    let payload = dir.join("order.json");
    std::fs::write(&payload, r#"{"order_id": 42, "region": "eu"}"#).unwrap();
    let payload_arg = format!("@{}", payload.display());
    let sent =
        ok(home, &["event", "send", "order.created", "--id", "o-42", "--payload", &payload_arg, "-o", "json"]).json();
    assert_eq!(sent["outcomes"][0]["execution_id"], "on-order:ev-o-42", "{sent}");
    let again = ok(home, &["event", "send", "order.created", "--id", "o-42", "--payload", &payload_arg]).stdout;
    assert!(again.contains("seen before") && again.contains("on-order:ev-o-42"), "{again}");
    let elsewhere = ok(home, &["event", "send", "order.created", "--payload", r#"{"region": "us"}"#]).stdout;
    assert!(elsewhere.contains("No workflow's trigger matched it"), "{elsewhere}");
    code(home, &["event", "send", "order.created", "--payload", "{oops"], 2);
    let listed = ok(home, &["event", "list", "--name", "order.created"]).stdout;
    assert!(listed.lines().nth(1).is_some_and(|l| l.contains("order.created")), "{listed}");
    assert!(listed.contains("o-42") && listed.contains("on-order:ev-o-42"), "{listed}");
    let run = ok(home, &["execution", "describe", "on-order:ev-o-42"]).stdout;
    assert!(run.contains("Trigger:    event") && run.contains("Event:      order.created `o-42`"), "{run}");

    // Exit codes a script can act on.
    code(home, &["--token", &viewer, "workflow", "list"], 4);
    code(home, &["--token", "loom_wrong", "workflow", "list"], 4);
    let forbidden = code(home, &["--token", ADMIN, "token", "create", "v2", "--role", "viewer"], 0);
    let v2 = forbidden.stdout.trim().to_string();
    let refused = code(home, &["--token", &v2, "workflow", "trigger", "etl"], 4);
    assert!(refused.stderr.contains("viewer"), "{}", refused.stderr);
    code(home, &["workflow", "describe", "nope"], 5);
    code(home, &["execution", "describe", "nope:1"], 5);
    code(home, &["workflow", "trigger", "etl", "--param", "novalue"], 2);
    code(home, &["--server", "http://127.0.0.1:1", "workflow", "list"], 3);
    code(home, &["-o", "xml", "workflow", "list"], 2);

    // Failover: the first server is down, the command still works through the next.
    let first = cluster.ids()[0];
    let rest: Vec<String> = cluster.ids().into_iter().filter(|id| *id != first).map(|id| cluster.url(id)).collect();
    cluster.kill(first).expect("kill a node");
    let with_dead_first = format!("{},{}", cluster.url(first), rest.join(","));
    cluster.wait_ready(Duration::from_secs(30)).expect("the others elect a leader");
    let after = ok(home, &["--server", &with_dead_first, "workflow", "trigger", "etl", "--wait", "-o", "json"]).json();
    assert_eq!(after["status"], "succeeded");
    let _ = leader;

    let completion = ok(home, &["completion", "bash"]).stdout;
    assert!(completion.contains("loom") && completion.contains("workflow"));
}

#[test]
fn every_bench_scenario_reports_its_figures() {
    let node = node_binary().expect("loom-node is built");
    let mut cluster = Cluster::start(node, ClusterOptions::new(3)).expect("start");
    cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    let home = tempfile::tempdir().expect("temp dir");
    let servers: Vec<String> = cluster.ids().into_iter().map(|id| cluster.url(id)).collect();
    let servers = servers.join(",");
    for (scenario, extra) in [
        ("writes", vec!["--count", "20"]),
        ("trigger-latency", vec!["--count", "10"]),
        ("chain", vec!["--count", "2", "--tasks", "4"]),
        ("throughput", vec!["--count", "20", "--concurrency", "4"]),
        ("events", vec!["--count", "20", "--concurrency", "4"]),
        ("workers", vec!["--count", "10", "--concurrency", "2", "--workers", "2"]),
        ("worker-chain", vec!["--count", "2", "--tasks", "3", "--workers", "2"]),
        ("worker-throughput", vec!["--duration", "2s", "--tasks", "5", "--workers", "2", "--slots", "2"]),
        ("cron", vec!["--workflows", "2", "--duration", "3s"]),
        ("history", vec!["--count", "40", "--workflows", "2", "--samples", "10"]),
    ] {
        let mut args = vec!["--server", servers.as_str(), "bench", scenario, "--warmup", "1", "-o", "json"];
        args.extend(extra);
        let report = ok(home.path(), &args).json();
        assert_eq!(report["scenario"], scenario);
        assert_eq!(report["errors"], 0, "{report}");
        let count = report["count"].as_u64().unwrap_or(0);
        assert!(count > 0, "{scenario} measured nothing: {report}");
        match scenario {
            "chain" => assert_eq!(count, 2 * 3, "three gaps per measured chain of four, warm-up excluded: {report}"),
            "history" => {
                assert_eq!((report["filled"].as_f64(), count), (Some(40.0), 10), "{report}");
                assert!(report["fill_per_s"].as_f64().is_some_and(|v| v > 0.0), "{report}");
            }
            "worker-chain" => {
                assert_eq!(count, 2 * 2, "two gaps per measured chain of three: {report}");
                assert!(report["first_task_p50_ms"].as_f64().is_some_and(|v| v > 0.0), "{report}");
            }
            _ => {}
        }
        assert!(report["rate_per_s"].as_f64().is_some_and(|v| v > 0.0), "{scenario}: rate in {report}");
        if scenario == "worker-throughput" {
            assert!(report["p50_ms"].is_null(), "a rate alone has no latencies: {report}");
            continue;
        }
        for key in ["p50_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(report[key].as_f64().is_some_and(|v| v >= 0.0), "{scenario}: {key} in {report}");
        }
        assert!(report["p50_ms"].as_f64() <= report["max_ms"].as_f64());
    }
    // failover needs the processes: refused with a pointer to the tool that has them.
    let refused = code(home.path(), &["--server", servers.as_str(), "bench", "failover"], 2);
    assert!(refused.stderr.contains("loom-bench failover"), "{}", refused.stderr);
    // history put the retention limits back as they were.
    let (_, limits) = cluster.get_json(1, "/api/v1/cluster/limits").unwrap();
    assert_eq!(limits["max_kept_executions_per_workflow"], 1_000, "{limits}");
    // Bench workflows are cleaned up.
    let (_, list) = cluster.get_json(1, "/api/v1/workflows").unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
}
