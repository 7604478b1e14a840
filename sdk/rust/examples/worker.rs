//! A demo worker: answers every task of its queues with the task's input as output.
//!
//! An input `{"sleep_ms": N}` makes it sleep first and `{"fail": true}` makes the attempt fail.
//! Each finished task prints one JSON line on stdout (what the cluster tests count).
//!
//! ```text
//! cargo run --release -p linkloom --example worker -- \
//!     --server http://127.0.0.1:8081,http://127.0.0.1:8082 --queue demo [--id NAME] [--concurrency N]
//!     [--token TOKEN]
//! ```

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use linkloom::{Client, TaskContext, TaskError, TaskResult, Worker};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "A Link Loom worker that echoes each task's input as its output")]
struct Args {
    /// Node URLs, comma separated; the worker moves to the next when one fails.
    #[arg(long, env = "LOOM_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Queue to serve; repeat or comma-separate for several.
    #[arg(long, required = true, value_delimiter = ',')]
    queue: Vec<String>,
    /// Worker id (default: <hostname>-<pid>).
    #[arg(long)]
    id: Option<String>,
    /// Tasks run at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Seconds a shutdown waits for running tasks before giving them back.
    #[arg(long, default_value_t = 30)]
    grace_secs: u64,
    /// A token with the `worker` role, for clusters that require tokens.
    #[arg(long, env = "LOOM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate to trust for https:// servers (a cluster with a private CA).
    #[arg(long, env = "LOOM_TLS_CA")]
    ca_file: Option<std::path::PathBuf>,
}

async fn echo(task: TaskContext) -> TaskResult {
    let input = task.input().clone();
    if let Some(ms) = input.get("sleep_ms").and_then(|v| v.as_u64()) {
        task.log(format!("sleeping {ms} ms"));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = task.cancelled() => return Err(TaskError::retryable("cancelled while sleeping")),
        }
    }
    let a = task.assignment();
    let outcome = if input.get("fail").and_then(|v| v.as_bool()) == Some(true) { "failed" } else { "succeeded" };
    let line = json!({
        "event": "done", "outcome": outcome, "attempt_id": a.attempt_id, "attempt": a.attempt,
        "execution_id": a.execution_id, "task_id": a.task_id, "queue": a.queue,
    });
    // One line per finished task, flushed at once so a test reading the pipe sees it.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if outcome == "failed" {
        return Err(TaskError::retryable("the input asked to fail"));
    }
    Ok(input)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOOM_LOG").unwrap_or_else(|_| "info,linkloom=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let servers = args.server.split(',').map(str::trim).filter(|s| !s.is_empty());
    let mut client = Client::builder().servers(servers);
    if let Some(token) = &args.token {
        client = client.token(token);
    }
    if let Some(path) = &args.ca_file {
        client = client.root_certificate_pem(std::fs::read(path)?);
    }
    let client = client.build()?;
    let mut builder =
        Worker::builder(client).concurrency(args.concurrency).shutdown_grace(Duration::from_secs(args.grace_secs));
    if let Some(id) = args.id {
        builder = builder.id(id);
    }
    for queue in &args.queue {
        builder = builder.handle(queue.clone(), echo);
    }
    let worker = builder.build()?;
    eprintln!("worker {} serving {:?} on {}", worker.id(), args.queue, args.server);
    worker.run().await?;
    Ok(())
}
