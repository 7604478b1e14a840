//! `loom-bench SCENARIO`: the benchmark suite (`linkloom-bench`, the same scenarios and options
//! as `loom bench`) on a fresh cluster of release `loom-node` processes on 127.0.0.1 that this
//! program starts and stops. Owning the processes adds what `loom bench` cannot do: each node's
//! RSS and data on disk after the run, the `failover` scenario (it SIGKILLs leaders), and the etcd
//! baseline for `writes` (`--baseline etcd`: a 3-member etcd loaded by the same driver).
//!
//! ```text
//! cargo build --release -p linkloom-node -p linkloom-harness
//! $CARGO_TARGET_DIR/release/loom-bench writes --concurrency 64 --count 20000 --baseline etcd
//! $CARGO_TARGET_DIR/release/loom-bench failover --count 20
//! $CARGO_TARGET_DIR/release/loom-bench trigger-latency --url http://127.0.0.1:8082   # a running cluster
//! ```
//!
//! Writes and triggers go through a follower (the client's first server), as most clients'
//! would; SDK workers start at each node in turn.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::Parser;
use linkloom_bench::{Faults, Options, Report, Scenario};
use linkloom_harness::etcd::{Etcd, EtcdWriter};
use linkloom_harness::{Cluster, ClusterOptions};

#[derive(Parser)]
#[command(about = "The benchmark suite on a fresh 3-node cluster this program starts")]
struct Args {
    #[arg(value_parser = parse_scenario)]
    scenario: Scenario,
    #[command(flatten)]
    options: Options,
    /// Nodes in the fresh cluster.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// A `LOOM_*` setting for every node, as KEY=VALUE (repeatable), e.g. election timeouts.
    #[arg(long = "node-env")]
    node_env: Vec<String>,
    /// The loom-node binary (default: next to this one).
    #[arg(long)]
    loom_node: Option<PathBuf>,
    /// Load a running cluster at these comma-separated URLs instead of starting one (no process
    /// figures, no failover).
    #[arg(long)]
    url: Option<String>,
    /// writes: also load this baseline system with the same driver (`etcd`).
    #[arg(long, value_parser = ["etcd"])]
    baseline: Option<String>,
    /// The etcd binary for `--baseline etcd`.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Print the reports as JSON, one document per line.
    #[arg(long)]
    json: bool,
}

fn parse_scenario(text: &str) -> Result<Scenario, String> {
    text.parse().map_err(|e: linkloom_bench::BenchError| e.to_string())
}

/// The harness's cluster as the suite's fault injector.
struct ClusterFaults {
    cluster: Mutex<Cluster>,
    killed: Mutex<Option<u64>>,
}

impl Faults for ClusterFaults {
    fn kill_leader(&self) -> Result<String, String> {
        let mut cluster = self.cluster.lock().map_err(|_| "the cluster lock is poisoned".to_string())?;
        let leader =
            cluster.wait_ready(Duration::from_secs(60)).map_err(|e| format!("the cluster did not settle: {e}"))?;
        cluster.kill(leader).map_err(|e| format!("killing node {leader}: {e}"))?;
        *self.killed.lock().map_err(|_| "poisoned")? = Some(leader);
        Ok(cluster.url(leader))
    }

    fn restart_follower(&self) -> Result<Duration, String> {
        let mut cluster = self.cluster.lock().map_err(|_| "the cluster lock is poisoned".to_string())?;
        let leader =
            cluster.wait_ready(Duration::from_secs(60)).map_err(|e| format!("the cluster did not settle: {e}"))?;
        let follower = cluster.ids().into_iter().find(|id| *id != leader).ok_or("no follower")?;
        cluster.kill(follower).map_err(|e| format!("killing node {follower}: {e}"))?;
        let started = Instant::now();
        cluster.restart(follower).map_err(|e| format!("restarting node {follower}: {e}"))?;
        cluster
            .wait_for(&format!("node {follower} to be ready again"), Duration::from_secs(120), |c| {
                matches!(c.get_json(follower, "/readyz"), Ok((200, _)))
            })
            .map_err(|e| e.to_string())?;
        Ok(started.elapsed())
    }

    fn restart_killed(&self) -> Result<(), String> {
        let Some(id) = self.killed.lock().map_err(|_| "poisoned")?.take() else { return Ok(()) };
        let mut cluster = self.cluster.lock().map_err(|_| "the cluster lock is poisoned".to_string())?;
        cluster.restart(id).map_err(|e| format!("restarting node {id}: {e}"))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    linkloom_harness::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut reports = Vec::new();
    if let Some(urls) = &args.url {
        let client = linkloom::Client::from_list(urls)?;
        let faults = None;
        reports.push(runtime.block_on(linkloom_bench::run(args.scenario, &client, &args.options, faults))?);
    } else {
        let binary = linkloom_harness::loom_node_binary(args.loom_node.clone())?;
        let mut options = ClusterOptions::new(args.nodes).env("LOOM_LOG", "warn");
        for pair in &args.node_env {
            let (k, v) = pair.split_once('=').with_context(|| format!("--node-env takes KEY=VALUE, not `{pair}`"))?;
            options = options.env(k, v);
        }
        let mut cluster = Cluster::start(&binary, options)?;
        let leader = cluster.wait_ready(Duration::from_secs(30))?;
        // Followers first: writes and triggers go through one; the leader is the last resort.
        let mut ids = cluster.ids();
        ids.sort_by_key(|id| *id == leader);
        let client = linkloom::Client::new(ids.iter().map(|id| cluster.url(*id)))?;
        eprintln!("loom-bench: {} nodes, leader {leader}, sending through node {}", args.nodes, ids[0]);
        let faults = ClusterFaults { cluster: Mutex::new(cluster), killed: Mutex::new(None) };
        let report = runtime.block_on(linkloom_bench::run(args.scenario, &client, &args.options, Some(&faults)))?;
        let cluster = faults.cluster.into_inner().map_err(|_| anyhow!("the cluster lock is poisoned"))?;
        reports.push(with_process_figures(report, &cluster));
    }
    if let Some(baseline) = &args.baseline {
        if args.scenario != Scenario::Writes {
            eprintln!("loom-bench: --baseline applies to writes only; skipped");
        } else if !args.etcd.exists() {
            eprintln!("loom-bench: {} not found, baseline skipped (apt-get install etcd-server)", args.etcd.display());
        } else {
            eprintln!("loom-bench: baseline {baseline}");
            let etcd = Etcd::start(&args.etcd)?;
            let mut report = runtime.block_on(async {
                let writer = EtcdWriter::new(etcd.follower().await?, args.options.value_bytes)?;
                Ok::<_, anyhow::Error>(linkloom_bench::writes_with(std::sync::Arc::new(writer), &args.options).await?)
            })?;
            report.scenario = format!("writes ({baseline} baseline)");
            reports.push(report);
        }
    }
    for report in &reports {
        if args.json {
            println!("{}", serde_json::to_string(report)?);
        } else {
            println!("{}", report.line());
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// Adds each node's RSS and the cluster's data on disk, read from /proc and the data directories,
/// and what building snapshots cost (the slowest node's mean, from its `/metrics`).
fn with_process_figures(mut report: Report, cluster: &Cluster) -> Report {
    let (mut copy_ms, mut build_ms, mut bytes) = (0.0f64, 0.0f64, 0.0f64);
    for id in cluster.ids() {
        if let Some(kib) = cluster.node(id).pid().and_then(rss_kib) {
            report = report.with(&format!("node{id}_rss_mib"), kib as f64 / 1024.0);
        }
        if let Ok((200, serde_json::Value::String(text))) = cluster.get_json(id, "/metrics") {
            let mean_ms = |family: &str| {
                let count = sample(&text, &format!("{family}_count")).unwrap_or(0.0);
                (count > 0.0).then(|| sample(&text, &format!("{family}_sum")).unwrap_or(0.0) / count * 1000.0)
            };
            copy_ms = copy_ms.max(mean_ms("loom_raft_snapshot_copy_seconds").unwrap_or(0.0));
            build_ms = build_ms.max(mean_ms("loom_raft_snapshot_build_seconds").unwrap_or(0.0));
            bytes = bytes.max(sample(&text, "loom_raft_snapshot_bytes").unwrap_or(0.0));
        }
    }
    if build_ms > 0.0 {
        report = report
            .with("snapshot_copy_ms_mean", copy_ms)
            .with("snapshot_build_ms_mean", build_ms)
            .with("snapshot_mib", bytes / 1_048_576.0);
    }
    report.with("disk_mib", walk_size(cluster.dir()) as f64 / 1_048_576.0)
}

/// The value of an unlabelled sample in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Resident set size of a process, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn walk_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
