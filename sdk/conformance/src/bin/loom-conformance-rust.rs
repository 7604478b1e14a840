//! The Rust SDK's conformance program (sdk/conformance/README.md §3):
//!
//! ```text
//! loom-conformance-rust worker --server URL[,URL...] --queue Q[,Q...] --id ID --concurrency N --grace-ms MS [--token T]
//! loom-conformance-rust client --server URL[,URL...] [--token T] CALL_JSON
//! ```

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use linkloom::{Client, Worker};
use linkloom_conformance::program::{call, handler, Events};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "The Rust SDK's conformance program")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a worker with the conformance handler until SIGTERM or SIGINT.
    Worker {
        #[arg(long)]
        server: String,
        #[arg(long, value_delimiter = ',', required = true)]
        queue: Vec<String>,
        #[arg(long)]
        id: String,
        #[arg(long, default_value_t = 4)]
        concurrency: u32,
        #[arg(long, default_value_t = 5000)]
        grace_ms: u64,
        #[arg(long, env = "LOOM_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Makes one client call and prints its result as one JSON line.
    Client {
        #[arg(long)]
        server: String,
        #[arg(long, env = "LOOM_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The call, e.g. `{"op": "trigger", "workflow": "w", "params": {}}`.
        call: String,
    },
}

fn print(line: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn client(server: &str, token: Option<&str>) -> anyhow::Result<Client> {
    let mut builder = Client::builder().servers(server.split(',').map(str::trim).filter(|s| !s.is_empty()));
    if let Some(token) = token {
        builder = builder.token(token);
    }
    Ok(builder.build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOOM_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Command::Worker { server, queue, id, concurrency, grace_ms, token } => {
            let events: Events = Arc::new(|line| print(&line));
            let client = client(&server, token.as_deref())?;
            let mut builder = Worker::builder(client)
                .id(id)
                .concurrency(concurrency)
                .shutdown_grace(Duration::from_millis(grace_ms))
                .on_connected({
                    let (events, once) = (events.clone(), std::sync::Once::new());
                    move |_| once.call_once(|| events(json!({"event": "ready"})))
                });
            for q in &queue {
                builder = builder.handle(q.clone(), handler(events.clone()));
            }
            builder.build()?.run().await?;
            print(&json!({"event": "stopped"}));
        }
        Command::Client { server, token, call: text } => {
            let call_value: Value =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("CALL_JSON is not JSON: {e}"))?;
            let client = client(&server, token.as_deref())?;
            let line = call(&client, &call_value).await.map_err(anyhow::Error::msg)?;
            print(&line);
        }
    }
    Ok(())
}
