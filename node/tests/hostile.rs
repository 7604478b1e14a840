//! A hostile workflow against real nodes: each test runs the attack a security review found (a
//! real shell child, a real symlink, a real `setsid`) and checks that it is refused, or that it
//! runs and reaches nothing, and that nothing secret is stored or logged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use linkloom_harness::backend::Backend;
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);

const ADMIN: &str = "hostile-admin-token-5b0e71f3c2a9";
const CLUSTER_SECRET: &str = "hostile-cluster-secret-9e4d2a71";
const SIGNING: &str = "hostile-signing-secret-3c8f1b05";
const KEYS: &str = "billing=hostile-billing-key-77d1a0";

fn secured(extra: &[(&str, &str)]) -> (Cluster, u64) {
    let mut options = ClusterOptions::new(1)
        .env("LOOM_ADMIN_TOKEN", ADMIN)
        .env("LOOM_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("LOOM_SIGNING_SECRET", SIGNING)
        .env("LOOM_SIGNING_KEYS", KEYS);
    for (k, v) in extra {
        options = options.env(k, v);
    }
    let mut cluster = Cluster::start(BIN, options).expect("start cluster");
    let node = cluster.wait_ready(READY).expect("ready");
    (cluster, node)
}

fn task<'v>(execution: &'v Value, id: &str) -> &'v Value {
    execution["tasks"].as_array().and_then(|t| t.iter().find(|t| t["id"] == id)).unwrap_or(&Value::Null)
}

fn error_of(execution: &Value, id: &str) -> String {
    task(execution, id)["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .map_or(String::new(), |a| a["error"].as_str().unwrap_or_default().to_string())
}

fn logs(cluster: &Cluster, node: u64, execution: &str, task: &str) -> String {
    let url = format!("{}/api/v1/executions/{execution}/logs?task={task}", cluster.url(node));
    cluster.http().get(url).send().and_then(|r| r.text()).unwrap_or_default()
}

fn run(cluster: &Cluster, node: u64, yaml: &str) -> (String, Value) {
    cluster.put_workflow(node, yaml).expect("stored");
    let id = yaml.lines().next().and_then(|l| l.strip_prefix("id: ")).expect("an id line first").to_string();
    let execution = cluster.trigger(node, &id, json!({})).expect("triggered");
    let done = cluster.wait_execution(node, &execution, RUN).expect("ended");
    (execution, done)
}

/// The user shell tasks run as on a node started by this test process.
fn task_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    match unsafe { libc::geteuid() } {
        0 => 65_534,
        me => me,
    }
}

/// A directory shell tasks (maybe `nobody`) can write to.
fn shared_scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn no_secret_of_the_node_reaches_a_task() {
    let (cluster, node) = secured(&[("LOOM_SHELL_PASS_ENV", "PASSED_ON"), ("PASSED_ON", "yes"), ("KEPT_BACK", "no")]);
    let yaml = r#"id: snoop
tasks:
  - {id: printenv, type: shell, command: [printenv]}
  - {id: named, type: shell, command: [printenv, LOOM_ADMIN_TOKEN]}
  - {id: parent, type: shell, command: "tr '\\0' '\\n' < /proc/$PPID/environ; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; id -u"}
"#;
    let (execution, done) = run(&cluster, node, yaml);
    let everything = ["printenv", "named", "parent"].map(|t| logs(&cluster, node, &execution, t)).join("\n");
    for secret in [ADMIN, CLUSTER_SECRET, SIGNING, "hostile-billing-key-77d1a0"] {
        assert!(!everything.contains(secret), "a task read a node secret:\n{everything}");
        assert!(!done.to_string().contains(secret));
        assert!(!cluster.log_text(node).contains(secret), "the node logged a secret");
    }
    let env = logs(&cluster, node, &execution, "printenv");
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    for expected in ["PATH", "HOME", "LANG", "TMPDIR", "LOOM_OUTPUT", "LOOM_EXECUTION_ID", "PASSED_ON"] {
        assert!(names.contains(&expected), "{expected} missing from the task's environment:\n{env}");
    }
    for absent in ["KEPT_BACK", "LOOM_ADMIN_TOKEN", "LOOM_CLUSTER_SECRET", "LOOM_SIGNING_SECRET", "LOOM_DATA_DIR"] {
        assert!(!names.contains(&absent), "{absent} reached the task:\n{env}");
    }
    assert_eq!(task(&done, "named")["status"], "failed", "printenv of an unset variable exits 1");
    // The node's own environment block and command line, read as root can read them, hold no
    // secret value either (scrubbed in place at start-up).
    let pid = cluster.node(node).pid().expect("running");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let text = String::from_utf8_lossy(&environ);
    assert!(text.contains("LOOM_ADMIN_TOKEN=*"), "the variable is still there, its value overwritten");
    for secret in [ADMIN, CLUSTER_SECRET, SIGNING] {
        assert!(!text.contains(secret), "the node's environment block still holds a secret");
    }
    let parent = logs(&cluster, node, &execution, "parent");
    assert!(parent.lines().any(|l| l.trim() == task_uid().to_string()), "the task's uid: {parent}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let dumpable = std::fs::metadata(format!("/proc/{pid}/environ")).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    assert_eq!(dumpable.ok(), Some(0), "the node is not dumpable: its /proc files are root's\n{status}");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).unwrap();
    let mut cluster = Cluster::start(
        BIN,
        ClusterOptions::new(1).env("LOOM_ADMIN_TOKEN_FILE", token_file.display()).env("LOOM_ADMIN_TOKEN", ""),
    )
    .expect("start");
    // The harness sends no token for this check: the node must require one.
    let node = cluster.wait_ready(READY).expect("ready");
    let url = format!("{}/api/v1/workflows", cluster.url(node));
    let anonymous = reqwest::blocking::Client::new().get(&url).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "the file's token turned authentication on");
    let admitted = reqwest::blocking::Client::new().get(&url).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(admitted.status().as_u16(), 200, "the trailing newline is not part of the token");
    let pid = cluster.node(node).pid().expect("running");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&environ).contains(ADMIN));
}

#[test]
fn loader_and_interpreter_hooks_are_refused_at_registration() {
    let (cluster, node) = secured(&[]);
    for (name, value) in [
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("BASH_ENV", "/tmp/evil.sh"),
        ("NODE_OPTIONS", "--require /tmp/evil.js"),
        ("PYTHONSTARTUP", "/tmp/evil.py"),
        ("LOOM_OUTPUT", "/etc/shadow"),
    ] {
        let yaml = format!(
            "id: hook\ntasks:\n  - {{id: a, type: shell, command: [\"true\"], env: {{{name}: \"{value}\"}}}}\n"
        );
        let (status, body) = cluster.post(node, "/api/v1/workflows", "application/yaml", yaml).unwrap();
        assert_eq!(status, 422, "{name}: {body}");
        assert!(body.to_string().contains(name), "the error names {name}: {body}");
    }
    let (_, listed) = cluster.get_json(node, "/api/v1/workflows").unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was stored");
}

#[test]
fn rendered_values_stay_data_in_scripts_and_urls() {
    let backend = Backend::start().expect("backend");
    let (cluster, node) = secured(&[]);
    let scratch = shared_scratch();
    let pwned = scratch.path().join("pwned");
    // From whoever triggers the run, and (without quotes, which would not be valid JSON from
    // printf) from an upstream task's output.
    let payload = format!("x; touch {0}; $(touch {0}) `touch {0}` ' \" \\ & | > {0}", pwned.display());
    let from_output = format!("y; touch {0} && id > {0}", pwned.display());
    let yaml = format!(
        r#"id: inject
tasks:
  - id: source
    type: shell
    command: ["sh", "-c", "printf '{{\"v\": \"%s\"}}' \"$V\" > $LOOM_OUTPUT"]
    env: {{V: "{from_output}"}}
  - id: plain
    type: shell
    depends_on: [source]
    command: "printf 'got %s %s\\n' {{{{ params.v }}}} {{{{ tasks.source.output.v }}}}"
  - id: double
    type: shell
    depends_on: [source]
    command: "printf '%s\\n' \"in double quotes: {{{{ params.v }}}} {{{{ tasks.source.output.v }}}}\""
  - id: single
    type: shell
    depends_on: [source]
    command: "printf '%s\\n' 'in single quotes: {{{{ params.v }}}} {{{{ tasks.source.output.v }}}}'"
  - id: call
    type: http
    depends_on: [source]
    url: "{}/echo/{{{{ params.v }}}}?q={{{{ tasks.source.output.v }}}}"
"#,
        backend.url
    );
    cluster.put_workflow(node, &yaml).expect("stored");
    let execution = cluster.trigger(node, "inject", json!({"v": payload})).expect("triggered");
    let done = cluster.wait_execution(node, &execution, RUN).expect("ended");
    assert_eq!(task(&done, "source")["output"]["v"], from_output, "{done:#}");
    for t in ["plain", "double", "single"] {
        assert_eq!(task(&done, t)["status"], "succeeded", "{t}: {done:#}");
        let log = logs(&cluster, node, &execution, t);
        assert!(log.contains(&format!("{payload} {from_output}")), "{t} printed the values as they are: {log}");
    }
    assert!(!pwned.exists(), "a rendered value ran as a command");
    let raw = backend.raw();
    let called = raw.iter().find(|r| r.path.starts_with("/echo/")).expect("the backend was called");
    assert_eq!(called.path.matches('/').count(), 2, "the param is one path segment: {called:?}");
    let query = called.path_and_query.split_once('?').map(|(_, q)| q).unwrap_or_default();
    assert!(query.starts_with("q=y%3B%20touch") && !query.contains('&'), "one query value: {query}");

    // The host cannot come from a value.
    for url in ["{{ params.u }}", "http://{{ params.host }}/x", "http://127.0.0.1:{{ params.port }}/x"] {
        let yaml = format!("id: steer\ntasks:\n  - {{id: a, type: http, url: \"{url}\"}}\n");
        let (status, body) = cluster.post(node, "/api/v1/workflows", "application/yaml", yaml).unwrap();
        assert_eq!(status, 422, "{url}: {body}");
    }
    // Nor can a here-document hold one.
    let yaml = "id: heredoc\ntasks:\n  - {id: a, type: shell, command: \"cat <<EOF\\n{{ params.v }}\\nEOF\"}\n";
    let (status, body) = cluster.post(node, "/api/v1/workflows", "application/yaml", yaml).unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("here-document"), "{body}");
}

#[test]
fn the_output_file_is_never_followed_or_waited_on() {
    let (cluster, node) = secured(&[]);
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), r#"{"stolen": "node-only-secret"}"#).unwrap();
    std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let yaml = format!(
        r#"id: outputs
tasks:
  - {{id: secret_link, type: shell, command: "ln -s {} $LOOM_OUTPUT"}}
  - {{id: zero_link, type: shell, command: "ln -s /dev/zero $LOOM_OUTPUT"}}
  - {{id: fifo, type: shell, command: "mkfifo $LOOM_OUTPUT"}}
  - {{id: huge, type: shell, command: "head -c 5000000 /dev/zero | tr '\\0' ' ' > $LOOM_OUTPUT"}}
  - {{id: fine, type: shell, command: "echo '{{\"ok\": true}}' > $LOOM_OUTPUT"}}
"#,
        secret.path().display()
    );
    let (_, done) = run(&cluster, node, &yaml);
    assert!(error_of(&done, "secret_link").contains("symbolic link"), "{done:#}");
    assert!(error_of(&done, "zero_link").contains("symbolic link"), "{done:#}");
    assert!(error_of(&done, "fifo").contains("not a regular file"), "{done:#}");
    assert!(error_of(&done, "huge").contains("the limit is"), "{done:#}");
    assert_eq!(task(&done, "fine")["output"], json!({"ok": true}));
    assert!(!done.to_string().contains("node-only-secret"));
    // The node is healthy and answers at once.
    let (status, _) = cluster.get_json(node, "/healthz").unwrap();
    assert_eq!(status, 200);
}

/// Waits (bounded) until `pid` is gone or a zombie.
fn wait_dead(cluster: &Cluster, pid: u32, what: &str) {
    cluster
        .wait_for(what, Duration::from_secs(15), |_| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) == Some("Z"),
        })
        .unwrap();
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok())
}

/// A process that left the attempt's process group and session (`setsid`) dies with the
/// attempt: on timeout, on cancel, and when the script exits leaving it behind.
fn escapees_die_with_their_attempt(extra: &[(&str, &str)], expect_cgroup: bool) {
    let (cluster, node) = secured(extra);
    let scratch = shared_scratch();
    let dir = scratch.path().display();
    let yaml = format!(
        r#"id: escape
tasks:
  - {{id: timed, type: shell, timeout: 2s, command: "setsid sh -c 'echo $$ > {dir}/timed; exec sleep 300' & sleep 300"}}
  - {{id: leftover, type: shell, command: "setsid sh -c 'echo $$ > {dir}/leftover; exec sleep 300' & sleep 0.5; echo '{{}}' > $LOOM_OUTPUT"}}
  - {{id: limit, type: shell, command: "grep 'Max processes' /proc/self/limits"}}
"#
    );
    let (execution, done) = run(&cluster, node, &yaml);
    assert_eq!(task(&done, "timed")["attempts"][0]["status"], "timed_out", "{done:#}");
    assert_eq!(task(&done, "leftover")["status"], "succeeded", "{done:#}");
    for name in ["timed", "leftover"] {
        let pid = read_pid(&scratch.path().join(name)).expect("the escapee wrote its pid");
        wait_dead(&cluster, pid, &format!("the {name} escapee to be killed"));
    }
    let limit = logs(&cluster, node, &execution, "limit");
    let expected = extra.iter().find(|(k, _)| *k == "LOOM_SHELL_PROCESSES").map_or("4096", |(_, v)| v);
    let soft = limit.lines().find(|l| l.starts_with("Max processes")).and_then(|l| l.split_whitespace().nth(2));
    assert_eq!(soft, Some(expected), "RLIMIT_NPROC reaches the task: {limit}");

    // Cancel, too.
    let yaml = format!(
        "id: cancelled\ntasks:\n  - {{id: nap, type: shell, command: \"setsid sh -c 'echo $$ > {dir}/cancelled; exec sleep 300' & sleep 300\"}}\n"
    );
    cluster.put_workflow(node, &yaml).unwrap();
    let id = cluster.trigger(node, "cancelled", json!({})).unwrap();
    let mut pid = None;
    cluster
        .wait_for("the escapee to start", RUN, |_| {
            pid = read_pid(&scratch.path().join("cancelled"));
            pid.is_some()
        })
        .unwrap();
    let (status, body) =
        cluster.post(node, &format!("/api/v1/executions/{id}/cancel"), "application/json", "{}").unwrap();
    assert_eq!(status, 200, "{body}");
    wait_dead(&cluster, pid.unwrap_or_default(), "the cancelled escapee to be killed");
    let log = cluster.log_text(node);
    assert_eq!(log.contains("cgroup=true"), expect_cgroup, "cgroups used as expected:\n{log}");
}

/// A root process on a machine with a cgroup v2 hierarchy can give attempts their own cgroups
/// (this is the CI machine's case; elsewhere the fallback is what runs, and is what is checked).
fn cgroups_expected() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    root && std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(" - cgroup2 "))
}

#[test]
fn escapees_die_with_their_attempt_in_a_cgroup() {
    escapees_die_with_their_attempt(&[("LOOM_SHELL_PROCESSES", "512")], cgroups_expected());
}

#[test]
fn escapees_die_with_their_attempt_without_cgroups() {
    escapees_die_with_their_attempt(&[("LOOM_SHELL_CGROUPS", "off")], false);
}
