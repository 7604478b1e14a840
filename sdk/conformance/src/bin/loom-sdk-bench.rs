//! `loom-sdk-bench`: worker throughput and delivery latency of SDKs, side by side, on one local
//! three-node cluster.
//!
//! ```text
//! loom-sdk-bench --workers 8 --concurrency 8 --tasks 2000 \
//!     --sdk rust=target/release/loom-conformance-rust \
//!     --sdk "python=$HOME/.cache/linkloom/venv-py311/bin/python sdk/python/conformance/program.py"
//! ```
//!
//! For each SDK in turn: one workflow of one worker task, `--workers` processes of the SDK's
//! conformance program (each a worker with `--concurrency` slots, spread over the nodes), then
//! `--tasks` executions triggered by eight client threads as fast as the cluster takes them.
//! Reports tasks per second (first trigger to last handler finished) and ready → received
//! latency: from the execution's creation (the leader's clock, in its id) to the handler being
//! called (the worker's `received_at_ms`), both on this machine's clock. The SDK program's
//! command is split on whitespace.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use linkloom_conformance::scenarios::Kit;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Worker throughput and delivery latency of SDKs on a local cluster")]
struct Args {
    /// Worker processes per SDK.
    #[arg(long, default_value_t = 8)]
    workers: u32,
    /// Slots per worker.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// Executions per SDK.
    #[arg(long, default_value_t = 2000)]
    tasks: u32,
    /// NAME=COMMAND of an SDK's conformance program (repeatable; run in the order given).
    #[arg(long = "sdk", required = true)]
    sdks: Vec<String>,
    #[arg(long)]
    loom_node: Option<std::path::PathBuf>,
}

/// One SDK's figures.
struct Figures {
    name: String,
    seconds: f64,
    tasks: usize,
    p50_ms: i64,
    p99_ms: i64,
    max_ms: i64,
    /// Handler calls beyond one per execution (attempts lost or released and run again).
    redeliveries: usize,
}

/// The creation time (Unix ms) in a manual execution id: `WORKFLOW:20261130T190842.567Z-<hex>`
/// (a whole second is written without the fraction: `...T190842Z-<hex>`).
fn created_ms(execution_id: &str) -> Option<i64> {
    let stamp = execution_id.rsplit_once(':')?.1.split_once('Z')?.0;
    let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.f").ok()?;
    Some(at.and_utc().timestamp_millis())
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run_one(kit: &mut Kit, args: &Args, name: &str, program: &[String]) -> anyhow::Result<Figures> {
    let workflow = format!("bench-{name}");
    kit.register(&format!("id: {workflow}\ntasks:\n  - {{id: t, type: worker, queue: {workflow}, input: {{n: 1}}}}\n"))
        .map_err(|e| anyhow!(e))?;
    let ids = kit.cluster.ids();
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let first = ids[i as usize % ids.len()];
        let id = format!("{workflow}-{i}");
        workers.push(
            kit.worker_of(program, &id, &workflow, args.concurrency, 5_000, &kit.servers_from(first))
                .map_err(|e| anyhow!(e))?,
        );
    }
    for w in &workers {
        w.wait_event("ready", None).map_err(|e| anyhow!(e))?;
    }
    let started = Instant::now();
    let threads = 8;
    let (cluster, ids) = (&kit.cluster, &ids);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let workflow = workflow.clone();
                scope.spawn(move || {
                    let via = ids[t % ids.len()];
                    let mut failures = Vec::new();
                    for _ in (t as u32..args.tasks).step_by(threads) {
                        if let Err(e) = cluster.trigger(via, &workflow, json!({})) {
                            failures.push(e.to_string());
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec!["a trigger thread panicked".into()]))
            .collect()
    });
    if !failures.is_empty() {
        bail!("{} triggers failed, the first: {}", failures.len(), failures[0]);
    }
    let deadline = Instant::now() + Duration::from_secs(60 + u64::from(args.tasks) / 10);
    // Executions whose task a handler finished (an attempt lost under load runs again).
    let finished_executions = |workers: &[linkloom_conformance::scenarios::Program]| -> usize {
        let attempts: std::collections::BTreeSet<String> = workers
            .iter()
            .flat_map(|w| w.events("finished"))
            .filter_map(|l| l["attempt_id"].as_str().map(str::to_string))
            .collect();
        let executions: std::collections::BTreeSet<String> = workers
            .iter()
            .flat_map(|w| w.events("started"))
            .filter(|l| l["attempt_id"].as_str().is_some_and(|a| attempts.contains(a)))
            .filter_map(|l| l["execution_id"].as_str().map(str::to_string))
            .collect();
        executions.len()
    };
    let done = loop {
        let finished = finished_executions(&workers);
        if finished >= args.tasks as usize {
            break started.elapsed();
        }
        if Instant::now() > deadline {
            bail!("{name}: only {finished} of {} tasks finished in time", args.tasks);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The first delivery of each execution's task.
    let mut first: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    let mut deliveries = 0usize;
    for line in workers.iter().flat_map(|w| w.events("started")) {
        let (Some(id), Some(at)) = (line["execution_id"].as_str(), line["received_at_ms"].as_i64()) else { continue };
        let Some(created) = created_ms(id) else { continue };
        deliveries += 1;
        let entry = first.entry(id.to_string()).or_insert(at - created);
        *entry = (*entry).min(at - created);
    }
    let mut latencies: Vec<i64> = first.into_values().collect();
    latencies.sort_unstable();
    for w in &mut workers {
        let _ = w.terminate(Duration::from_secs(15));
    }
    if latencies.len() < args.tasks as usize {
        let unreadable: Vec<serde_json::Value> = workers
            .iter()
            .flat_map(|w| w.events("started"))
            .filter(|l| {
                l["execution_id"].as_str().and_then(created_ms).is_none() || l["received_at_ms"].as_i64().is_none()
            })
            .take(3)
            .collect();
        let started: usize = workers.iter().map(|w| w.events("started").len()).sum();
        bail!(
            "{name}: {} of {} tasks have a delivery time ({started} started lines; unreadable: {unreadable:?})",
            latencies.len(),
            args.tasks
        );
    }
    Ok(Figures {
        redeliveries: deliveries.saturating_sub(latencies.len()),
        name: name.to_string(),
        seconds: done.as_secs_f64(),
        tasks: args.tasks as usize,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut sdks = Vec::new();
    for spec in &args.sdks {
        let (name, command) = spec.split_once('=').with_context(|| format!("--sdk `{spec}` is not NAME=COMMAND"))?;
        let program: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if program.is_empty() {
            bail!("--sdk `{spec}` has no command");
        }
        sdks.push((name.to_string(), program));
    }
    let node = linkloom_harness::loom_node_binary(args.loom_node.clone())?;
    let logs = tempfile::Builder::new().prefix("loom-sdk-bench-").tempdir()?.keep();
    // The node's default rate limit: the kit's low one would measure the limiter.
    let mut kit = Kit::start_with(&node, sdks[0].1.clone(), logs.clone(), None)?;
    println!(
        "loom-sdk-bench: 3 nodes on 127.0.0.1, {} workers x concurrency {} per SDK, {} executions of one worker task each (logs in {})",
        args.workers,
        args.concurrency,
        args.tasks,
        logs.display()
    );
    println!(
        "{:<10} {:>8} {:>10} {:>16} {:>16} {:>10}",
        "sdk", "tasks", "tasks/s", "received p50 ms", "received p99 ms", "max ms"
    );
    for (name, program) in &sdks {
        let f = run_one(&mut kit, &args, name, program)?;
        println!(
            "{:<10} {:>8} {:>10.0} {:>16} {:>16} {:>10} {:>12}",
            f.name,
            f.tasks,
            f.tasks as f64 / f.seconds,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.redeliveries
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_creation_time_in_an_execution_id() {
        assert_eq!(created_ms("bench:20261130T190842.567Z-ce73fbc9"), Some(1_796_065_722_567));
        assert_eq!(created_ms("bench:20261130T190842Z-ce73fbc9"), Some(1_796_065_722_000));
        assert_eq!(created_ms("no-time"), None);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 99.0), 4);
    }
}
