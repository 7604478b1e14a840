//! Real worker processes (the Rust SDK's `worker` example) for cluster tests: started with a
//! server list and a queue, their stdout (one JSON line per finished task) collected, killed with
//! SIGKILL on request and always on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context};
use serde_json::Value;

/// A file under the running test binary's profile directory (`target/<profile>/deps/<test>` →
/// `target/<profile>/<relative>`), or how to build it if it is missing.
fn beside_tests(relative: &str, build: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).ok_or_else(|| anyhow!("no target dir above {exe:?}"))?;
    let path = profile_dir.join(relative);
    if !path.exists() {
        anyhow::bail!("{} is missing: build it with `{build}` (cargo test does)", path.display());
    }
    Ok(path)
}

/// The SDK's `worker` example (`cargo test` builds examples of every workspace member into
/// `target/<profile>/examples`).
pub fn example_worker_binary() -> anyhow::Result<PathBuf> {
    beside_tests("examples/worker", "cargo build -p linkloom --example worker")
}

/// The `loom-node` binary, for tests outside the node package (the CLI's).
pub fn node_binary() -> anyhow::Result<PathBuf> {
    beside_tests("loom-node", "cargo build -p linkloom-node")
}

/// A running worker process.
pub struct WorkerProcess {
    pub id: String,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<Value>>>,
    pub log_path: PathBuf,
}

impl WorkerProcess {
    /// Starts `binary --server servers --queue queue --id id --concurrency n`, logging to
    /// `log_dir/worker-<id>.log`.
    pub fn start(
        binary: &Path,
        servers: &str,
        queue: &str,
        id: &str,
        concurrency: u32,
        log_dir: &Path,
    ) -> anyhow::Result<WorkerProcess> {
        Self::start_with_env(binary, servers, queue, id, concurrency, log_dir, &[])
    }

    /// Like [`WorkerProcess::start`], with extra environment (`LOOM_TOKEN`, `LOOM_TLS_CA`).
    pub fn start_with_env(
        binary: &Path,
        servers: &str,
        queue: &str,
        id: &str,
        concurrency: u32,
        log_dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<WorkerProcess> {
        let log_path = log_dir.join(format!("worker-{id}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(binary);
        command.envs(env.iter().copied());
        let mut child = command
            .args(["--server", servers, "--queue", queue, "--id", id, "--concurrency", &concurrency.to_string()])
            .env("LOOM_LOG", "info,linkloom=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(value);
                }
            }
        });
        Ok(WorkerProcess { id: id.to_string(), child: Some(child), lines, log_path })
    }

    /// The tasks it reported finished so far (one JSON object each).
    pub fn finished(&self) -> Vec<Value> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// What it logged (stderr).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
