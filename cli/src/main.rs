//! `loom`: every operator task from the terminal. It talks to the cluster only through the Rust
//! SDK's client (failover across `--server` URLs, the token, the error shape), and maps what
//! happened to exit codes scripts can act on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation, or the awaited execution, failed |
//! | 2 | usage or validation error |
//! | 3 | no server could be reached |
//! | 4 | authentication or authorization refused |
//! | 5 | not found |

mod args;
mod bench;
mod commands;
mod config;
mod output;
mod watch;

use clap::Parser;

use crate::args::Cli;
use crate::output::{Format, Out};

/// Why `loom` stopped early: what to tell the person, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { code: 2, message: message.into() }
    }

    pub fn failed(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }
}

impl From<linkloom::Error> for Failure {
    fn from(e: linkloom::Error) -> Failure {
        use linkloom::Error;
        match &e {
            Error::Connect { urls, source } => {
                Failure { code: 3, message: format!("cannot reach any server (tried {}): {source}", urls.join(", ")) }
            }
            Error::Timeout { .. } => Failure::failed(e.to_string()),
            Error::Api { status: 401, message, .. } => Failure {
                code: 4,
                message: format!("{message} (401): pass a token with --token, LOOM_TOKEN or `loom config set token`"),
            },
            Error::Api { status: 403, message, .. } => Failure { code: 4, message: format!("{message} (403)") },
            Error::Api { status: 404, message, .. } => Failure { code: 5, message: message.clone() },
            Error::Api { status: 400 | 413 | 415 | 422, message, .. } => {
                let problems = e.problems();
                let mut text = message.clone();
                for p in problems {
                    text.push_str(&format!("\n  {}: {}", p.path, p.message));
                }
                Failure { code: 2, message: text }
            }
            Error::Api { status, code, message, .. } => {
                Failure { code: 1, message: format!("{message} ({status} {code})") }
            }
            Error::Invalid(m) => Failure::usage(m.clone()),
            _ => Failure::failed(e.to_string()),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::usage(format!("{e:#}"))
    }
}

fn main() {
    // Like any Unix tool, end quietly when the reader of our output goes away (`loom ... | head`)
    // instead of failing to print. Rust ignores SIGPIPE by default; restore the default action.
    // SAFETY: called first thing, before any other thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("loom: {}", failure.message);
            failure.code
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32, Failure> {
    let settings = config::load()?;
    let format_text = cli.output.clone().or_else(|| settings.get("output").cloned()).unwrap_or_else(|| "table".into());
    let format = Format::parse(&format_text)
        .ok_or_else(|| Failure::usage(format!("output `{format_text}` is not one of table, json, yaml")))?;
    let out = Out::new(format, cli.no_color);
    // Commands that need no server.
    match &cli.command {
        args::Command::Config(c) => return commands::config(c, out),
        args::Command::Completion { shell } => return commands::completion(shell),
        args::Command::Workflow(args::Workflow::Validate { file }) => return commands::validate(file, out),
        _ => {}
    }
    let servers = cli
        .server
        .clone()
        .or_else(|| settings.get("server-url").cloned())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let mut builder = linkloom::Client::builder()
        .servers(servers.split(',').map(str::trim).filter(|s| !s.is_empty()))
        .connect_timeout(std::time::Duration::from_secs(3));
    let token = cli.token.clone().or_else(|| settings.get("token").cloned());
    if let Some(token) = &token {
        builder = builder.token(token);
    }
    if let Some(ca) = std::env::var_os("LOOM_TLS_CA") {
        let pem = std::fs::read(&ca).map_err(|e| Failure::usage(format!("reading LOOM_TLS_CA: {e}")))?;
        builder = builder.root_certificate_pem(pem);
    }
    let ctx = commands::Ctx { client: builder.build()?, token };
    // The bench runs its load lanes, its backend and its worker side by side: give it threads.
    let runtime = match &cli.command {
        args::Command::Bench { .. } => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    }
    .map_err(|e| Failure::failed(format!("cannot start the runtime: {e}")))?;
    if let args::Command::Watch { interval } = &cli.command {
        let interval = interval
            .parse::<linkloom_core::DurationMs>()
            .map_err(|e| Failure::usage(format!("--interval `{interval}`: {e}")))?;
        let interval = std::time::Duration::from_millis(interval.as_millis().max(100));
        return watch::run(&runtime, &ctx.client, interval);
    }
    runtime.block_on(commands::dispatch(&ctx, cli.command, out))
}
