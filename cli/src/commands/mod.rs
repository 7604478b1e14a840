//! One function per verb, one file per noun. Each asks the cluster through the Rust SDK's typed
//! calls (the wire's own types, so `loom` cannot drift from the API), then prints either the
//! answer as one document (`-o json|yaml`) or a table for people.

mod cluster;
mod event;
mod execution;
mod local;
mod token;
mod workflow;

use std::time::Duration;

use linkloom::Client;

use crate::args::{self, Command};
use crate::output::{Out, Table};
use crate::Failure;

pub use local::{completion, config, validate};

type Done = Result<i32, Failure>;

/// The client, and what it was built with that one-off clients (one per member) need too.
pub struct Ctx {
    pub client: Client,
    pub token: Option<String>,
}

pub async fn dispatch(ctx: &Ctx, command: Command, out: Out) -> Done {
    let client = &ctx.client;
    match command {
        Command::Workflow(w) => workflow::run(client, w, out).await,
        Command::Execution(e) => execution::run(client, e, out).await,
        Command::Event(e) => event::run(client, e, out).await,
        Command::Worker(args::Worker::List) => cluster::workers(client, out).await,
        Command::Cluster(c) => cluster::run(ctx, c, out).await,
        Command::Token(t) => token::run(client, t, out).await,
        Command::Status => cluster::status(ctx, out).await,
        Command::Bench { scenario, options } => crate::bench::run(client, scenario, &options, out).await,
        Command::Config(_) | Command::Completion { .. } | Command::Watch { .. } => {
            unreachable!("handled before dispatch")
        }
    }
}

fn parse_duration(text: Option<&str>, default: Duration) -> Result<Duration, Failure> {
    match text {
        None => Ok(default),
        Some(t) => t
            .parse::<linkloom_core::DurationMs>()
            .map(|d| Duration::from_millis(d.as_millis()))
            .map_err(|e| Failure::usage(format!("duration `{t}`: {e}"))),
    }
}

fn print_table(table: &Table, empty: &str) {
    if table.is_empty() {
        eprintln!("{empty}");
    } else {
        print!("{}", table.render());
    }
}
