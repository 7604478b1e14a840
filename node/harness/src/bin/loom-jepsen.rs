//! Jepsen-style test of a real three-node Link Loom cluster: concurrent clients, a nemesis that
//! kills and pauses nodes, and a linearizability check of everything the clients saw.
//!
//! ```text
//! cargo run --release -p linkloom-harness --bin loom-jepsen -- --duration 90 --seed 7
//! # jepsen: seed=7 elapsed=97.1s operations=171234 faults=17 {"kill-leader": 6, ...}
//! # ...
//! #   verdict: PASS
//! ```
//!
//! Exit status: 0 when every check passed, 1 when one failed (the report says which and shows the
//! operations around the first answer no order explains), 2 when the test could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use linkloom_harness::jepsen::{self, Fault, Options};
use linkloom_harness::Netns;

#[derive(Parser)]
#[command(about = "Jepsen-style linearizability and exactly-once test of a real 3-node cluster")]
struct Args {
    /// Seconds the clients run.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    #[arg(long, default_value_t = 12)]
    clients: usize,
    /// Seed of the clients' and the nemesis's choices (timing still varies from run to run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults to pick from, comma-separated: kill-leader, pause-leader, kill-node, pause-node,
    /// and with --netns isolate-leader, isolate-node, cut-one-way; `none` for a run without
    /// faults. Default: the first three, and the partitions with --netns.
    #[arg(long)]
    faults: Option<String>,
    /// Run each node in its own network namespace (10.78.0.N, made with deploy/netns/net.sh;
    /// needs root), so partitions are real.
    #[arg(long)]
    netns: bool,
    /// Seconds between faults.
    #[arg(long, default_value_t = 5.0)]
    fault_every: f64,
    /// Seconds a killed node stays down.
    #[arg(long, default_value_t = 1.5)]
    down_for: f64,
    /// Registers in use at once, and operations on each before it is replaced.
    #[arg(long, default_value_t = 4)]
    slots: usize,
    #[arg(long, default_value_t = 400)]
    ops_per_key: u64,
    /// A `LOOM_*` setting for every node, as KEY=VALUE (repeatable).
    #[arg(long = "node-env")]
    node_env: Vec<String>,
    /// The loom-node binary (default: next to this one).
    #[arg(long)]
    loom_node: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let loom_node = match args
        .loom_node
        .clone()
        .or_else(|| std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("loom-node"))))
    {
        Some(path) if path.exists() => path,
        other => {
            eprintln!("loom-jepsen: no loom-node at {other:?}; build it or pass --loom-node");
            return ExitCode::from(2);
        }
    };
    let mut options = Options::new(loom_node);
    options.duration = Duration::from_secs(args.duration);
    options.clients = args.clients.max(1);
    options.seed = args.seed;
    options.fault_every = Duration::from_secs_f64(args.fault_every.max(0.5));
    options.down_for = Duration::from_secs_f64(args.down_for.max(0.0));
    options.slots = args.slots.max(1);
    options.ops_per_key = args.ops_per_key.max(1);
    if args.netns {
        let netns = Netns { prefix: "ljep".into(), subnet: "10.78.0".into() };
        if let Some(why) = netns.unavailable() {
            eprintln!("loom-jepsen: --netns is not possible here: {why}");
            return ExitCode::from(2);
        }
        options.netns = Some(netns);
    }
    let faults = args.faults.clone().unwrap_or_else(|| {
        let partitions = if args.netns { ",isolate-leader,isolate-node,cut-one-way" } else { "" };
        format!("kill-leader,pause-leader,kill-node{partitions}")
    });
    options.faults = if faults == "none" {
        Vec::new()
    } else {
        let mut chosen = Vec::new();
        for name in faults.split(',').map(str::trim) {
            match Fault::parse(name) {
                Some(f) => chosen.push(f),
                None => {
                    let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                    eprintln!("loom-jepsen: unknown fault `{name}` ({}, none)", known.join(", "));
                    return ExitCode::from(2);
                }
            }
        }
        chosen
    };
    for pair in &args.node_env {
        match pair.split_once('=') {
            Some((k, v)) => options.node_env.push((k.to_string(), v.to_string())),
            None => {
                eprintln!("loom-jepsen: --node-env takes KEY=VALUE, not `{pair}`");
                return ExitCode::from(2);
            }
        }
    }
    match jepsen::run(&options) {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loom-jepsen: {e:#}");
            ExitCode::from(2)
        }
    }
}
