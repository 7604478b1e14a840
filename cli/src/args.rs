//! The command line: verbs grouped by what they act on, as in kubectl or nomad.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "loom", version, about = "Link Loom from the terminal: point it at any node of a cluster")]
pub struct Cli {
    /// Node URLs, comma separated; the next is tried when one cannot be reached.
    #[arg(long, global = true, env = "LOOM_SERVER")]
    pub server: Option<String>,
    /// API token (needed when the cluster runs with LOOM_ADMIN_TOKEN).
    #[arg(long, global = true, env = "LOOM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// table, json or yaml.
    #[arg(short = 'o', long, global = true)]
    pub output: Option<String>,
    /// No colors, even on a terminal.
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Workflows: list, describe, create, apply, validate, trigger, pause, resume, backfill.
    #[command(subcommand, alias = "wf")]
    Workflow(Workflow),
    /// Executions: list, describe, logs, cancel, retry.
    #[command(subcommand, alias = "exec")]
    Execution(Execution),
    /// Events: send one (starting the workflows whose triggers match), list recent ones.
    #[command(subcommand)]
    Event(Event),
    /// Workers connected to the cluster.
    #[command(subcommand)]
    Worker(Worker),
    /// The cluster: status, members, membership changes, limits.
    #[command(subcommand)]
    Cluster(Cluster),
    /// API tokens (admin).
    #[command(subcommand)]
    Token(Token),
    /// One screen: cluster health, leader, lag, running and failed executions, recent failures.
    Status,
    /// A full-screen live view that refreshes in place; q quits.
    Watch {
        /// Time between refreshes (`500ms`, `2s`).
        #[arg(long, default_value = "1s")]
        interval: String,
    },
    /// Defaults in ~/.loom/config.toml: server-url, token, output.
    #[command(subcommand)]
    Config(Config),
    /// Load generator and meter (the benchmark suite's scenarios; `loom bench --help` lists them).
    Bench {
        /// writes, trigger-latency, chain, throughput, events, workers, worker-chain, worker-throughput,
        /// cron (failover needs `loom-bench`, which owns the cluster's processes).
        #[arg(value_parser = parse_scenario)]
        scenario: linkloom_bench::Scenario,
        #[command(flatten)]
        options: linkloom_bench::Options,
    },
    /// Shell completion script.
    Completion {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Workflow {
    /// Live workflows.
    #[command(alias = "ls")]
    List,
    /// One workflow: its active version, schedule and tasks.
    Describe { id: String },
    /// Stores a new workflow from a YAML or JSON file (fails if the id exists).
    Create { file: String },
    /// Stores a workflow from a file, as a new version if the id exists.
    Apply { file: String },
    /// Deletes a workflow and cancels its unfinished executions.
    Delete { id: String },
    /// Checks a file offline with the server's own validation; prints every problem.
    Validate { file: String },
    /// Starts an execution now.
    Trigger {
        id: String,
        /// A parameter override, `key=value` (value parsed as JSON when it can be); repeatable.
        #[arg(long = "param", short = 'p')]
        params: Vec<String>,
        /// Wait for the execution to end; exit 1 if it did not succeed.
        #[arg(long)]
        wait: bool,
        /// Longest to wait (`30s`, `5m`); default 1h.
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Stops firing scheduled ticks.
    Pause { id: String },
    /// Fires scheduled ticks again.
    Resume { id: String },
    /// One execution per schedule tick between two times (RFC 3339).
    Backfill {
        id: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Every kept version, newest first.
    Versions { id: String },
}

#[derive(Debug, Subcommand)]
pub enum Execution {
    /// Executions, newest first.
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One execution: each task with its status, attempts, duration and a timeline bar.
    Describe { id: String },
    /// Logs, attempt by attempt; `--follow` streams until the task ends.
    Logs {
        id: String,
        #[arg(long)]
        task: Option<String>,
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancels an unfinished execution.
    Cancel { id: String },
    /// Runs the failed, cancelled and skipped tasks again.
    Retry {
        id: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        timeout: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Event {
    /// Sends an event: every workflow with a matching `event` trigger starts once per id.
    Send {
        /// The event's name, e.g. `order.created`.
        name: String,
        /// Makes the send idempotent: the same id again (within 24 h) starts nothing. Without
        /// one, loom draws a random id.
        #[arg(long)]
        id: Option<String>,
        /// The payload: JSON text, `@FILE` for a file's contents, or `@-` for standard input.
        #[arg(long)]
        payload: Option<String>,
    },
    /// Events the cluster remembers (the last 24 h), newest first, with what each started.
    #[command(alias = "ls")]
    List {
        /// Only events of this name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum Worker {
    #[command(alias = "ls")]
    List,
}

#[derive(Debug, Subcommand)]
pub enum Cluster {
    /// Every node's view: role, leader, term, applied index.
    Status,
    /// Members of the Raft configuration.
    Members,
    /// Adds a node as a learner.
    Add { id: u64, addr: String },
    /// Makes a learner a voter.
    Promote { id: u64 },
    /// Removes a member.
    Remove { id: u64 },
    /// The tunable limits; `--set key=value` changes them (admin).
    Limits {
        #[arg(long)]
        set: Vec<String>,
    },
    /// Backups of the cluster's state (admin).
    #[command(subcommand)]
    Snapshot(Snapshot),
}

#[derive(Debug, Subcommand)]
pub enum Snapshot {
    /// Writes a backup with every write acknowledged so far to FILE (checksummed; restore it
    /// with `loom-node restore FILE --data-dir DIR --node-id N --peers ...`).
    Save {
        file: std::path::PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Token {
    /// Creates a token; its secret is printed once.
    Create {
        name: String,
        #[arg(long, value_parser = ["admin", "operator", "viewer", "worker", "publisher"])]
        role: String,
        /// A worker token that may serve only these queues (comma-separated).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        queues: Option<Vec<String>>,
    },
    #[command(alias = "ls")]
    List,
    Revoke {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Config {
    Set { key: String, value: String },
    Get { key: String },
    List,
}

fn parse_scenario(text: &str) -> Result<linkloom_bench::Scenario, String> {
    text.parse().map_err(|e: linkloom_bench::BenchError| e.to_string())
}
