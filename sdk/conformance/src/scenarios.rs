//! The scenario driver (README §4): a real three-node cluster, an SDK's conformance program run
//! as workers and as one-shot client calls, and checks made through the cluster's own API.
//!
//! Every scenario names its own workflows, queues and workers, starts the processes it needs and
//! stops them (on failure too: [`Program`] processes die with their handles). Every wait is
//! bounded and polls for a condition; none sleeps for luck.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::{json, Value};

mod proxy;
use proxy::Proxy;

/// Heartbeat interval and lease the cluster runs with: short, so lease loss takes seconds.
pub const HEARTBEAT_MS: u64 = 200;
pub const LEASE_MS: u64 = 1500;
/// Requests per second per token on each node: low enough that a client loop meets 429.
pub const RATE_LIMIT: u32 = 60;

/// The longest any one scenario waits for a thing to happen.
const WAIT: Duration = Duration::from_secs(30);

/// A scenario's outcome: `Err` says what was wrong.
pub type Outcome = Result<(), String>;

/// A scenario: name, what it proves, the check.
pub struct Scenario {
    pub name: &'static str,
    pub proves: &'static str,
    pub run: fn(&mut Kit) -> Outcome,
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario { name: "task-output-passed-downstream", proves: "a worker task succeeds and its output feeds the next task's input", run: output_downstream },
        Scenario { name: "fatal-vs-retryable-failure", proves: "a fatal failure fails the task at once; a retryable one uses every attempt", run: fatal_vs_retryable },
        Scenario { name: "progress-and-logs", proves: "progress shows on the running attempt; log lines reach the execution's log", run: progress_and_logs },
        Scenario { name: "lease-kept-by-heartbeats", proves: "a task running past lease_ms keeps its one attempt through heartbeats", run: lease_kept },
        Scenario { name: "paused-worker-loses-its-lease", proves: "a worker frozen (SIGSTOP) past its lease loses the attempt; its late answer changes nothing", run: paused_worker },
        Scenario { name: "cancel-reaches-the-handler", proves: "cancelling an execution stops the running handler", run: cancel_reaches_handler },
        Scenario { name: "drain-releases-work", proves: "SIGTERM drains, waits the grace, releases what runs (no retry used), exits 0", run: drain_releases },
        Scenario { name: "node-killed-worker-moves", proves: "the worker's node killed: it reconnects to another and keeps its attempt", run: node_killed },
        Scenario { name: "concurrency-never-exceeded", proves: "the handler never runs more tasks at once than the declared concurrency", run: concurrency },
        Scenario { name: "no-worker-tasks-wait", proves: "without a worker, tasks wait visibly; a worker that connects runs them", run: tasks_wait },
        Scenario { name: "worker-token-cannot-trigger", proves: "a worker token is refused (403, typed) for client calls", run: worker_token },
        Scenario { name: "rate-limit-waited-out", proves: "429 answers are waited out and every call applies exactly once", run: rate_limited },
        Scenario { name: "client-calls", proves: "register, trigger with params, wait, list, logs, logs follow, cancel, retry", run: client_calls },
        Scenario { name: "typed-errors", proves: "401, 403, 404 and 422 come back as their typed errors", run: typed_errors },
        Scenario { name: "one-effect-across-a-lost-answer", proves: "every mutating call carries an Idempotency-Key, reused when resent to the next node; a trigger whose answer was lost applies once", run: one_effect },
    ]
}

/// What scenarios share: the cluster, the program, tokens.
pub struct Kit {
    pub cluster: Cluster,
    pub program: Vec<String>,
    pub admin: String,
    pub operator: String,
    pub worker_token: String,
    pub viewer: String,
    pub limited: String,
    pub logs: PathBuf,
    leader: u64,
}

impl Kit {
    /// Starts the cluster and makes the tokens.
    pub fn start(loom_node: &Path, program: Vec<String>, logs: PathBuf) -> anyhow::Result<Kit> {
        Kit::start_with(loom_node, program, logs, Some(RATE_LIMIT))
    }

    /// [`Kit::start`] with another per-token rate limit (`None`: the node's default).
    pub fn start_with(
        loom_node: &Path,
        program: Vec<String>,
        logs: PathBuf,
        rate_limit: Option<u32>,
    ) -> anyhow::Result<Kit> {
        let admin = format!("conformance-admin-{}", std::process::id());
        let mut options = ClusterOptions::new(3)
            .env("LOOM_ADMIN_TOKEN", &admin)
            .env("LOOM_WORKER_HEARTBEAT_MS", HEARTBEAT_MS)
            .env("LOOM_WORKER_LEASE_MS", LEASE_MS);
        if let Some(rate) = rate_limit {
            options = options.env("LOOM_RATE_LIMIT", rate).env("LOOM_RATE_BURST", rate);
        }
        let mut cluster = Cluster::start(loom_node, options)?;
        let leader = cluster.wait_ready(Duration::from_secs(60))?;
        let mut kit = Kit {
            cluster,
            program,
            admin,
            operator: String::new(),
            worker_token: String::new(),
            viewer: String::new(),
            limited: String::new(),
            logs,
            leader,
        };
        kit.operator = kit.token("conformance-operator", "operator")?;
        kit.worker_token = kit.token("conformance-worker", "worker")?;
        kit.viewer = kit.token("conformance-viewer", "viewer")?;
        kit.limited = kit.token("conformance-limited", "operator")?;
        Ok(kit)
    }

    fn token(&self, name: &str, role: &str) -> anyhow::Result<String> {
        let body = json!({"name": name, "role": role}).to_string();
        let (status, answer) = self.cluster.post(self.leader, "/api/v1/tokens", "application/json", body)?;
        anyhow::ensure!(status == 201 || status == 200, "creating token {name} answered {status}: {answer}");
        answer["token"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("no token in {answer}"))
    }

    /// Every node's URL, comma separated, starting at node `first`.
    pub fn servers_from(&self, first: u64) -> String {
        let ids = self.cluster.ids();
        let start = ids.iter().position(|id| *id == first).unwrap_or(0);
        (0..ids.len()).map(|i| self.cluster.url(ids[(start + i) % ids.len()])).collect::<Vec<_>>().join(",")
    }

    pub fn servers(&self) -> String {
        self.servers_from(self.cluster.ids()[0])
    }

    /// A node that is up and answers, for the driver's own reads.
    fn via(&mut self) -> u64 {
        let ids = self.cluster.ids();
        ids.into_iter().find(|id| self.cluster.is_running(*id)).unwrap_or(1)
    }

    /// The leader, as the nodes agree on it now.
    fn leader(&mut self) -> Result<u64, String> {
        self.leader = self.cluster.wait_ready(WAIT).map_err(|e| e.to_string())?;
        Ok(self.leader)
    }

    pub fn register(&mut self, yaml: &str) -> Outcome {
        let via = self.via();
        self.cluster.put_workflow(via, yaml).map(|_| ()).map_err(|e| e.to_string())
    }

    pub fn trigger(&mut self, workflow: &str, params: Value) -> Result<String, String> {
        let via = self.via();
        self.cluster.trigger(via, workflow, params).map_err(|e| e.to_string())
    }

    fn execution(&mut self, id: &str) -> Result<Value, String> {
        let via = self.via();
        self.cluster.execution(via, id).map_err(|e| e.to_string())
    }

    fn wait_execution(&mut self, id: &str) -> Result<Value, String> {
        let via = self.via();
        self.cluster.wait_execution(via, id, WAIT).map_err(|e| e.to_string())
    }

    /// Polls `check` on execution `id` until it answers `Some`.
    fn wait_on_execution<T>(
        &mut self,
        id: &str,
        what: &str,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + WAIT;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(v) = self.execution(id) {
                if let Some(found) = check(&v) {
                    return Ok(found);
                }
                last = v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("timed out waiting for {what}; execution last seen: {last}"))
    }

    fn get(&mut self, path: &str) -> Result<Value, String> {
        let via = self.via();
        match self.cluster.get_json(via, path) {
            Ok((200, v)) => Ok(v),
            Ok((status, v)) => Err(format!("GET {path} answered {status}: {v}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits until worker `id` is listed by the cluster; answers its entry.
    fn wait_worker_listed(&mut self, id: &str) -> Result<Value, String> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(list) = self.get("/api/v1/workers") {
                if let Some(w) = list["items"].as_array().and_then(|items| items.iter().find(|w| w["id"] == id)) {
                    return Ok(w.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("worker {id} never appeared in GET /api/v1/workers"))
    }

    /// Runs the program's worker.
    fn worker(&self, id: &str, queue: &str, concurrency: u32, grace_ms: u64, servers: &str) -> Result<Program, String> {
        self.worker_of(&self.program, id, queue, concurrency, grace_ms, servers)
    }

    /// Runs `program`'s worker (another SDK's, for comparisons).
    pub fn worker_of(
        &self,
        program: &[String],
        id: &str,
        queue: &str,
        concurrency: u32,
        grace_ms: u64,
        servers: &str,
    ) -> Result<Program, String> {
        let args: Vec<String> = [
            "worker",
            "--server",
            servers,
            "--queue",
            queue,
            "--id",
            id,
            "--concurrency",
            &concurrency.to_string(),
            "--grace-ms",
            &grace_ms.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Program::start(program, &args, &self.worker_token, &self.logs.join(format!("worker-{id}.log")))
    }

    /// One client call through the program; answers its `{"ok"}` / `{"error"}` line.
    fn call(&self, servers: &str, token: Option<&str>, call: Value) -> Result<Value, String> {
        let mut args = vec!["client".to_string(), "--server".into(), servers.into()];
        if let Some(token) = token {
            args.push("--token".into());
            args.push(token.into());
        }
        args.push(call.to_string());
        let name = call["op"].as_str().unwrap_or("call").to_string();
        let mut process = Program::start(&self.program, &args, "", &self.logs.join(format!("client-{name}.log")))?;
        process.wait_exit(Duration::from_secs(120))?;
        let lines = process.lines();
        lines
            .last()
            .cloned()
            .ok_or_else(|| format!("the client printed nothing for {call} (see {})", process.log.display()))
    }

    /// [`Kit::call`] as the operator, expecting `ok`.
    fn ok(&self, call: Value) -> Result<Value, String> {
        let answer = self.call(&self.servers(), Some(&self.operator), call.clone())?;
        answer.get("ok").cloned().ok_or_else(|| format!("{call} answered {answer}"))
    }
}

/// A process of the conformance program; killed when dropped.
pub struct Program {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<Value>>>,
    log: PathBuf,
}

impl Program {
    fn start(program: &[String], args: &[String], token: &str, log: &Path) -> Result<Program, String> {
        let (command, prefix) = program.split_first().ok_or("no program given")?;
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(command);
        cmd.args(prefix).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log_file));
        if token.is_empty() {
            cmd.env_remove("LOOM_TOKEN");
        } else {
            cmd.env("LOOM_TOKEN", token);
        }
        let mut child = cmd.spawn().map_err(|e| format!("starting {command}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(value);
            }
        });
        Ok(Program { child: Some(child), lines, log: log.to_path_buf() })
    }

    /// Every stdout line so far (JSON, or a string for a line that is not).
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn events(&self, event: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["event"] == event).collect()
    }

    /// Waits until a line matches `predicate`.
    fn wait_line(&self, what: &str, timeout: Duration, predicate: impl Fn(&Value) -> bool) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(line) = self.lines().into_iter().find(&predicate) {
                return Ok(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "timed out after {timeout:?} waiting for {what}; lines: {:?}; log tail: {}",
            self.lines(),
            self.log_tail()
        ))
    }

    pub fn wait_event(&self, event: &str, attempt_id: Option<&str>) -> Result<Value, String> {
        self.wait_line(&format!("`{event}` from the program"), WAIT, |l| {
            l["event"] == event && attempt_id.is_none_or(|id| l["attempt_id"] == id)
        })
    }

    fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    fn signal(&self, signal: i32) -> Result<(), String> {
        let pid = self.pid().ok_or("the program is not running")?;
        // SAFETY: kill(2) on a child this process started and has not reaped.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(format!("kill({pid}, {signal}) failed: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Waits (bounded) for the process to exit; answers its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>, String> {
        let Some(child) = self.child.as_mut() else { return Ok(None) };
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    // Let the reader thread take the last lines.
                    std::thread::sleep(Duration::from_millis(20));
                    return Ok(status.code());
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    return Err(format!("the program did not exit within {timeout:?}; log tail: {}", self.log_tail()));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// SIGTERM, then a bounded wait for the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Result<Option<i32>, String> {
        self.signal(libc::SIGTERM)?;
        self.wait_exit(timeout)
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().rev().take(15).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: as in `signal`; a frozen child dies of SIGKILL too, SIGCONT is for tidiness.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn task<'v>(execution: &'v Value, id: &str) -> &'v Value {
    execution["tasks"].as_array().and_then(|t| t.iter().find(|t| t["id"] == id)).unwrap_or(&Value::Null)
}

fn attempts(execution: &Value, id: &str) -> Vec<Value> {
    task(execution, id)["attempts"].as_array().cloned().unwrap_or_default()
}

fn ensure(condition: bool, why: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn output_downstream(kit: &mut Kit) -> Outcome {
    kit.register(
        r#"
id: cf-chain
tasks:
  - {id: first, type: worker, queue: cf-chain, input: {value: "{{ params.v }}", n: 7}}
  - {id: second, type: worker, queue: cf-chain, depends_on: [first], input: {got: "{{ tasks.first.output.value }}"}}
"#,
    )?;
    let worker = kit.worker("cf-chain-1", "cf-chain", 2, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let id = kit.trigger("cf-chain", json!({"v": "hello"}))?;
    let done = kit.wait_execution(&id)?;
    ensure(done["status"] == "succeeded", || format!("the execution did not succeed: {done}"))?;
    ensure(task(&done, "first")["output"] == json!({"value": "hello", "n": 7}), || format!("first's output: {done}"))?;
    ensure(task(&done, "second")["output"] == json!({"got": "hello"}), || format!("second's output: {done}"))?;
    ensure(worker.events("finished").len() == 2, || format!("expected 2 finished handlers: {:?}", worker.lines()))
}

fn fatal_vs_retryable(kit: &mut Kit) -> Outcome {
    kit.register(
        r#"
id: cf-fail
tasks:
  - {id: t, type: worker, queue: cf-fail, input: {fail: true, retryable: "{{ params.retryable }}", message: "no such customer"}, retry: {max_attempts: 3, backoff: 100ms}}
"#,
    )?;
    let worker = kit.worker("cf-fail-1", "cf-fail", 2, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let fatal = kit.trigger("cf-fail", json!({"retryable": false}))?;
    let retryable = kit.trigger("cf-fail", json!({"retryable": true}))?;
    let fatal = kit.wait_execution(&fatal)?;
    let retryable = kit.wait_execution(&retryable)?;
    let f = attempts(&fatal, "t");
    ensure(fatal["status"] == "failed" && f.len() == 1, || format!("a fatal failure must fail at once: {fatal}"))?;
    ensure(f[0]["error"].as_str().is_some_and(|e| e.contains("no such customer")), || {
        format!("the message is kept: {fatal}")
    })?;
    let r = attempts(&retryable, "t");
    ensure(retryable["status"] == "failed" && r.len() == 3, || {
        format!("a retryable failure uses all 3 attempts: {retryable}")
    })
}

fn progress_and_logs(kit: &mut Kit) -> Outcome {
    kit.register(
        r#"
id: cf-progress
tasks:
  - {id: t, type: worker, queue: cf-progress, input: {sleep_ms: 1500, progress: {done: 1, of: 2}, log: "hello from the handler"}}
"#,
    )?;
    let worker = kit.worker("cf-progress-1", "cf-progress", 1, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let id = kit.trigger("cf-progress", json!({}))?;
    kit.wait_on_execution(&id, "the running attempt to show its progress", |e| {
        attempts(e, "t").iter().find(|a| a["progress"] == json!({"done": 1, "of": 2})).map(|_| ())
    })?;
    let done = kit.wait_execution(&id)?;
    ensure(done["status"] == "succeeded", || format!("{done}"))?;
    let logs = kit.ok(json!({"op": "logs", "execution_id": id, "task": "t", "follow": false}))?;
    ensure(logs["text"].as_str().is_some_and(|t| t.contains("hello from the handler")), || {
        format!("the log line is missing: {logs}")
    })
}

fn lease_kept(kit: &mut Kit) -> Outcome {
    kit.register(
        r#"
id: cf-lease
tasks:
  - {id: t, type: worker, queue: cf-lease, input: {sleep_ms: 4000}, retry: {max_attempts: 3, backoff: 100ms}}
"#,
    )?;
    let worker = kit.worker("cf-lease-1", "cf-lease", 1, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let id = kit.trigger("cf-lease", json!({}))?;
    let done = kit.wait_execution(&id)?;
    let a = attempts(&done, "t");
    ensure(done["status"] == "succeeded" && a.len() == 1, || {
        format!("a {LEASE_MS} ms lease must survive a 4000 ms task through heartbeats, in one attempt: {done}")
    })
}

fn paused_worker(kit: &mut Kit) -> Outcome {
    kit.register(
        r#"
id: cf-paused
tasks:
  - {id: t, type: worker, queue: cf-paused, input: {sleep_ms: 3000}, retry: {max_attempts: 2, backoff: 100ms}}
"#,
    )?;
    let frozen = kit.worker("cf-paused-1", "cf-paused", 1, 2000, &kit.servers())?;
    frozen.wait_event("ready", None)?;
    let id = kit.trigger("cf-paused", json!({}))?;
    let started = frozen.wait_event("started", None)?;
    let first = started["attempt_id"].as_str().unwrap_or_default().to_string();
    // The rescuer is connected before the freeze; the retry must go to it, not back to the
    // frozen worker (still registered: its connection is open), which the cluster keeps out of
    // dispatch for a lease after it let one lapse.
    let rescuer = kit.worker("cf-paused-2", "cf-paused", 1, 2000, &kit.servers())?;
    rescuer.wait_event("ready", None)?;
    frozen.signal(libc::SIGSTOP)?;
    kit.wait_on_execution(&id, "the frozen worker's attempt to be lost", |e| {
        attempts(e, "t").iter().find(|a| a["id"] == first.as_str() && a["status"] == "lost").map(|_| ())
    })?;
    let done = kit.wait_execution(&id)?;
    frozen.signal(libc::SIGCONT)?;
    // The thawed worker learns its attempt is gone (heartbeat 409, or its completion refused);
    // either way its handler ends and nothing it sends changes the execution.
    frozen.wait_line("the thawed worker's handler to end", WAIT, |l| {
        (l["event"] == "cancelled" || l["event"] == "finished") && l["attempt_id"] == first.as_str()
    })?;
    let a = attempts(&done, "t");
    ensure(done["status"] == "succeeded" && a.len() == 2, || format!("{done}"))?;
    ensure(a[0]["status"] == "lost" && a[0]["worker_id"] == "cf-paused-1", || {
        format!("attempt 1 must stay lost: {done}")
    })?;
    ensure(a[1]["status"] == "succeeded" && a[1]["worker_id"] == "cf-paused-2", || {
        format!("attempt 2 by the rescuer: {done}")
    })?;
    // Give the thawed worker's requests time to land (two heartbeat intervals), then compare.
    std::thread::sleep(Duration::from_millis(2 * HEARTBEAT_MS));
    let after = kit.execution(&id)?;
    ensure(after == done, || format!("the late worker changed the execution:\nbefore {done}\nafter  {after}"))?;
    drop(rescuer);
    Ok(())
}

fn cancel_reaches_handler(kit: &mut Kit) -> Outcome {
    kit.register(
        "id: cf-cancel\ntasks:\n  - {id: t, type: worker, queue: cf-cancel, input: {wait_for_cancel: true}}\n",
    )?;
    let worker = kit.worker("cf-cancel-1", "cf-cancel", 1, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let id = kit.trigger("cf-cancel", json!({}))?;
    let started = worker.wait_event("started", None)?;
    let cancelled = kit.ok(json!({"op": "cancel", "execution_id": id}))?;
    ensure(cancelled["status"] == "cancelled", || format!("cancel answered {cancelled}"))?;
    worker.wait_event("cancelled", started["attempt_id"].as_str())?;
    let done = kit.wait_execution(&id)?;
    ensure(done["status"] == "cancelled", || format!("{done}"))
}

fn drain_releases(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-drain\ntasks:\n  - {id: t, type: worker, queue: cf-drain, input: {wait_for_cancel: true}, retry: {max_attempts: 1}}\n")?;
    let mut leaving = kit.worker("cf-drain-1", "cf-drain", 1, 500, &kit.servers())?;
    leaving.wait_event("ready", None)?;
    let id = kit.trigger("cf-drain", json!({}))?;
    let started = leaving.wait_event("started", None)?;
    let code = leaving.terminate(Duration::from_secs(15))?;
    ensure(code == Some(0), || {
        format!("the worker must exit 0 after SIGTERM, got {code:?}; log: {}", leaving.log_tail())
    })?;
    ensure(!leaving.events("stopped").is_empty(), || format!("no `stopped` line: {:?}", leaving.lines()))?;
    let first = started["attempt_id"].as_str().unwrap_or_default().to_string();
    kit.wait_on_execution(&id, "the attempt to be released", |e| {
        attempts(e, "t").iter().find(|a| a["id"] == first.as_str() && a["status"] == "released").map(|_| ())
    })?;
    // max_attempts 1: a release uses no retry, so the task runs again on the next worker.
    let next = kit.worker("cf-drain-2", "cf-drain", 1, 500, &kit.servers())?;
    next.wait_event("started", None)?;
    kit.ok(json!({"op": "cancel", "execution_id": id}))?;
    next.wait_event("cancelled", None)?;
    Ok(())
}

fn node_killed(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-kill\ntasks:\n  - {id: t, type: worker, queue: cf-kill, input: {sleep_ms: 3000}, retry: {max_attempts: 2, backoff: 100ms}}\n")?;
    let leader = kit.leader()?;
    let victim = kit.cluster.ids().into_iter().find(|id| *id != leader).ok_or("no follower")?;
    let worker = kit.worker("cf-kill-1", "cf-kill", 1, 2000, &kit.servers_from(victim))?;
    worker.wait_event("ready", None)?;
    let listed = kit.wait_worker_listed("cf-kill-1")?;
    ensure(listed["node_id"] == victim, || {
        format!("the worker should be on node {victim} (first in its list): {listed}")
    })?;
    let id = kit.trigger("cf-kill", json!({}))?;
    worker.wait_event("started", None)?;
    kit.cluster.kill(victim).map_err(|e| e.to_string())?;
    let outcome = (|| {
        let done = kit.wait_execution(&id)?;
        let a = attempts(&done, "t");
        ensure(done["status"] == "succeeded" && a.len() == 1, || {
            format!("the worker must keep its attempt across the move (one attempt, succeeded): {done}")
        })?;
        let moved = kit.wait_worker_listed("cf-kill-1")?;
        ensure(moved["node_id"] != victim, || format!("the worker should have moved off node {victim}: {moved}"))
    })();
    kit.cluster.restart(victim).map_err(|e| e.to_string())?;
    kit.leader()?;
    outcome
}

fn concurrency(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-conc\ntasks:\n  - {id: t, type: worker, queue: cf-conc, input: {sleep_ms: 300}}\n")?;
    let worker = kit.worker("cf-conc-1", "cf-conc", 2, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let ids: Vec<String> = (0..8).map(|_| kit.trigger("cf-conc", json!({}))).collect::<Result<_, _>>()?;
    let mut most_listed = 0;
    for id in &ids {
        let done = kit.wait_execution(id)?;
        ensure(done["status"] == "succeeded", || format!("{done}"))?;
        if let Ok(list) = kit.get("/api/v1/workers") {
            for w in list["items"].as_array().into_iter().flatten().filter(|w| w["id"] == "cf-conc-1") {
                most_listed = most_listed.max(w["running"].as_u64().unwrap_or(0));
            }
        }
    }
    let most = worker.events("started").iter().filter_map(|l| l["running"].as_u64()).max().unwrap_or(0);
    ensure(worker.events("finished").len() == 8, || format!("8 tasks, each run once: {:?}", worker.lines()))?;
    ensure(most <= 2 && most_listed <= 2, || {
        format!("concurrency 2 exceeded: handler saw {most}, cluster listed {most_listed}")
    })?;
    ensure(most == 2, || format!("with 8 queued tasks the worker should use both slots; most at once: {most}"))
}

fn tasks_wait(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-idle\ntasks:\n  - {id: t, type: worker, queue: cf-idle, input: {x: 1}}\n")?;
    let id = kit.trigger("cf-idle", json!({}))?;
    let deadline = Instant::now() + WAIT;
    let queue = loop {
        let queues = kit.get("/api/v1/queues")?;
        if let Some(q) = queues["items"].as_array().and_then(|i| i.iter().find(|q| q["queue"] == "cf-idle")).cloned() {
            if q["waiting"].as_u64().unwrap_or(0) >= 1 {
                break q;
            }
        }
        if Instant::now() > deadline {
            return Err(format!("queue cf-idle never showed a waiting task: {queues}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure(queue["workers"] == 0, || format!("no worker serves cf-idle yet: {queue}"))?;
    let running = kit.execution(&id)?;
    let waiting =
        matches!(running["status"].as_str(), Some("queued" | "running")) && attempts(&running, "t").is_empty();
    ensure(waiting, || format!("the task must wait, unstarted: {running}"))?;
    let worker = kit.worker("cf-idle-1", "cf-idle", 1, 2000, &kit.servers())?;
    let done = kit.wait_execution(&id)?;
    ensure(done["status"] == "succeeded", || format!("{done}"))?;
    ensure(worker.events("finished").len() == 1, || format!("{:?}", worker.lines()))
}

fn worker_token(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-forbidden\ntasks:\n  - {id: t, type: worker, queue: cf-forbidden}\n")?;
    let answer = kit.call(
        &kit.servers(),
        Some(&kit.worker_token.clone()),
        json!({"op": "trigger", "workflow": "cf-forbidden", "params": {}}),
    )?;
    ensure(answer["error"]["kind"] == "forbidden" && answer["error"]["status"] == 403, || {
        format!("a worker token must get 403 forbidden: {answer}")
    })?;
    let list = kit.ok(json!({"op": "list", "workflow": "cf-forbidden"}))?;
    ensure(list["execution_ids"] == json!([]), || format!("nothing was triggered: {list}"))
}

fn rate_limited(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-rate\ntasks:\n  - {id: t, type: worker, queue: cf-rate-idle}\n")?;
    let via = kit.via();
    let count = 3 * RATE_LIMIT as u64;
    let before = rate_limited_count(kit)?;
    let answer = kit.call(
        &kit.cluster.url(via),
        Some(&kit.limited.clone()),
        json!({"op": "trigger_many", "workflow": "cf-rate", "count": count}),
    )?;
    let ids =
        answer["ok"]["execution_ids"].as_array().cloned().ok_or_else(|| format!("trigger_many answered {answer}"))?;
    ensure(ids.len() as u64 == count, || format!("{count} triggers must all succeed: {answer}"))?;
    let after = rate_limited_count(kit)?;
    ensure(after > before, || {
        format!("{count} calls at over {RATE_LIMIT}/s should have met 429 (refusals counted {before} → {after})")
    })?;
    let listed = kit.ok(json!({"op": "list", "workflow": "cf-rate"}))?;
    let n = listed["execution_ids"].as_array().map_or(0, Vec::len);
    ensure(n as u64 == count, || format!("each call applies exactly once: {count} calls, {n} executions"))
}

/// Requests answered 429 by any node so far: the `status="429"` samples of
/// `loom_http_requests_total` (not the duration histogram's, which would count each many times).
fn rate_limited_count(kit: &mut Kit) -> Result<u64, String> {
    let mut total = 0;
    for id in kit.cluster.ids() {
        let url = format!("{}/metrics", kit.cluster.url(id));
        let text = kit.cluster.http().get(&url).send().and_then(|r| r.text()).map_err(|e| format!("GET {url}: {e}"))?;
        for line in text.lines().filter(|l| l.starts_with("loom_http_requests_total{") && l.contains("status=\"429\""))
        {
            total += line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        }
    }
    Ok(total)
}

fn client_calls(kit: &mut Kit) -> Outcome {
    let spec = json!({
        "id": "cf-client",
        "params": {"word": "default"},
        "tasks": [
            {"id": "first", "type": "worker", "queue": "cf-client", "input": {"log": "said {{ params.word }}", "sleep_ms": 800, "word": "{{ params.word }}"}},
            {"id": "second", "type": "worker", "queue": "cf-client", "depends_on": ["first"], "input": {"fail": "{{ params.fail_second }}", "retryable": false}}
        ]
    });
    let stored = kit.ok(json!({"op": "register", "spec": spec}))?;
    ensure(stored["workflow_id"] == "cf-client" && stored["version"].as_u64().is_some_and(|v| v >= 1), || {
        format!("register answered {stored}")
    })?;
    let worker = kit.worker("cf-client-1", "cf-client", 2, 2000, &kit.servers())?;
    worker.wait_event("ready", None)?;
    let first =
        kit.ok(json!({"op": "trigger", "workflow": "cf-client", "params": {"word": "loom", "fail_second": false}}))?;
    let first = first["execution_id"].as_str().ok_or("no execution_id")?.to_string();
    let followed = kit.ok(json!({"op": "logs", "execution_id": first, "task": "first", "follow": true}))?;
    ensure(followed["text"].as_str().is_some_and(|t| t.contains("said loom")), || format!("logs follow: {followed}"))?;
    let waited = kit.ok(json!({"op": "wait", "execution_id": first, "timeout_ms": 30000}))?;
    ensure(waited["status"] == "succeeded" && waited["tasks"]["first"]["output"]["word"] == "loom", || {
        format!("wait: {waited}")
    })?;
    let second =
        kit.ok(json!({"op": "trigger", "workflow": "cf-client", "params": {"word": "again", "fail_second": true}}))?;
    let second = second["execution_id"].as_str().ok_or("no execution_id")?.to_string();
    let failed = kit.ok(json!({"op": "wait", "execution_id": second, "timeout_ms": 30000}))?;
    ensure(failed["status"] == "failed", || format!("the second execution should fail: {failed}"))?;
    let listed = kit.ok(json!({"op": "list", "workflow": "cf-client"}))?;
    ensure(listed["execution_ids"] == json!([second, first]), || {
        format!("list, newest first: {listed} (expected [{second}, {first}])")
    })?;
    let logs = kit.ok(json!({"op": "logs", "execution_id": first, "task": null, "follow": false}))?;
    ensure(logs["text"].as_str().is_some_and(|t| t.contains("said loom")), || format!("logs: {logs}"))?;
    let retried = kit.ok(json!({"op": "retry", "execution_id": second}))?;
    ensure(retried["tasks_reset"].as_u64().is_some_and(|n| n >= 1), || format!("retry: {retried}"))?;
    kit.wait_on_execution(&second, "the retried task to fail again", |e| {
        (e["status"] == "failed" && attempts(e, "second").len() == 2).then_some(())
    })?;
    let third = kit.ok(json!({"op": "trigger", "workflow": "cf-client", "params": {"word": "stop"}}))?;
    let third = third["execution_id"].as_str().ok_or("no execution_id")?.to_string();
    worker.wait_line("the third execution to start", WAIT, |l| {
        l["event"] == "started" && l["execution_id"] == third.as_str()
    })?;
    let cancelled = kit.ok(json!({"op": "cancel", "execution_id": third}))?;
    ensure(cancelled["status"] == "cancelled", || format!("cancel: {cancelled}"))
}

fn typed_errors(kit: &mut Kit) -> Outcome {
    let servers = kit.servers();
    let expect = |answer: &Value, kind: &str, status: Option<u16>| -> Outcome {
        let e = &answer["error"];
        ensure(e["kind"] == kind && status.is_none_or(|s| e["status"] == s), || {
            format!("expected {kind} ({status:?}): {answer}")
        })
    };
    let trigger = json!({"op": "trigger", "workflow": "cf-chain", "params": {}});
    expect(&kit.call(&servers, None, trigger.clone())?, "unauthorized", Some(401))?;
    expect(&kit.call(&servers, Some("loom_not-a-real-token"), trigger.clone())?, "unauthorized", Some(401))?;
    expect(&kit.call(&servers, Some(&kit.viewer.clone()), trigger)?, "forbidden", Some(403))?;
    let op = kit.operator.clone();
    expect(
        &kit.call(&servers, Some(&op), json!({"op": "trigger", "workflow": "cf-no-such-workflow", "params": {}}))?,
        "not_found",
        Some(404),
    )?;
    expect(
        &kit.call(
            &servers,
            Some(&op),
            json!({"op": "wait", "execution_id": "cf-nope:20260101T000000Z", "timeout_ms": 5000}),
        )?,
        "not_found",
        Some(404),
    )?;
    // Found locally or by the server: either way an `invalid` error, and nothing stored.
    let bad =
        json!({"id": "cf-invalid", "tasks": [{"id": "a", "type": "worker", "queue": "q", "depends_on": ["missing"]}]});
    expect(&kit.call(&servers, Some(&op), json!({"op": "register", "spec": bad}))?, "invalid", None)?;
    let via = kit.via();
    let (status, _) = kit.cluster.get_json(via, "/api/v1/workflows/cf-invalid").map_err(|e| e.to_string())?;
    ensure(status == 404, || format!("an invalid workflow must not be stored (GET answered {status})"))
}

fn one_effect(kit: &mut Kit) -> Outcome {
    kit.register("id: cf-once\ntasks:\n  - {id: t, type: worker, queue: cf-once-idle}\n")?;
    let ids = kit.cluster.ids();
    // Every node behind a recording proxy; the first one loses the answer to the first trigger
    // after applying it, as a node that dies between commit and reply.
    let proxies: Vec<Proxy> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Proxy::start(kit.cluster.url(*id), (i == 0).then_some(("POST", "/trigger"))))
        .collect::<Result<_, _>>()?;
    let servers = proxies.iter().map(|p| p.url.clone()).collect::<Vec<_>>().join(",");
    let op = kit.operator.clone();
    let answer = kit.call(&servers, Some(&op), json!({"op": "trigger", "workflow": "cf-once", "params": {"n": 1}}))?;
    let id = answer["ok"]["execution_id"]
        .as_str()
        .ok_or_else(|| format!("the trigger must succeed through the next node: {answer}"))?
        .to_string();
    let listed = kit.ok(json!({"op": "list", "workflow": "cf-once"}))?;
    ensure(listed["execution_ids"] == json!([id]), || format!("one trigger, one execution: {listed}"))?;
    let seen: Vec<proxy::Seen> = proxies.iter().flat_map(|p| p.seen()).collect();
    let triggers: Vec<&proxy::Seen> =
        seen.iter().filter(|s| s.method == "POST" && s.path.ends_with("/trigger")).collect();
    ensure(triggers.len() == 2, || {
        format!("expected the trigger sent twice (lost answer, then the next node): {seen:?}")
    })?;
    ensure(triggers[0].dropped && !triggers[1].dropped, || format!("{seen:?}"))?;
    ensure(
        triggers[0].idempotency_key.is_some() && triggers[0].idempotency_key == triggers[1].idempotency_key,
        || format!("the resend must carry the first send's Idempotency-Key: {triggers:?}"),
    )?;
    // Every other mutating call carries a key too.
    kit.call(&servers, Some(&op), json!({"op": "cancel", "execution_id": id}))?;
    let spec = json!({"id": "cf-once-2", "tasks": [{"id": "t", "type": "worker", "queue": "cf-once-idle"}]});
    kit.call(&servers, Some(&op), json!({"op": "register", "spec": spec}))?;
    let seen: Vec<proxy::Seen> = proxies.iter().flat_map(|p| p.seen()).collect();
    let writes: Vec<&proxy::Seen> =
        seen.iter().filter(|s| matches!(s.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")).collect();
    ensure(writes.len() >= 4, || format!("expected trigger ×2, cancel and register through the proxies: {seen:?}"))?;
    ensure(writes.iter().all(|s| s.idempotency_key.is_some()), || {
        format!("a mutating call without an Idempotency-Key: {writes:?}")
    })
}

/// Runs `command` (the SDK's kit tests: vectors and transcripts) as one scenario.
pub fn kit_tests(command: &str, log: &Path) -> Outcome {
    let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let status = Command::new("bash")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .status()
        .map_err(|e| format!("running {command}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        Err(format!("`{command}` failed ({status}):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n")))
    }
}
