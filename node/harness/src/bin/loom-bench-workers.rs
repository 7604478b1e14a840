//! Worker benchmarks on a fresh 3-node cluster (release `loom-node`) with SDK workers
//! (`linkloom::Worker`) in this process, connected round-robin to the three nodes.
//!
//! ```text
//! loom-bench-workers dispatch [--chains 50]                      idle workers: ready -> received
//! loom-bench-workers throughput [--seconds 30] [--shape fan|single]   worker tasks finished per second
//! ```
//!
//! `dispatch` runs chains of 10 worker tasks one at a time, so every worker is idle when a task
//! becomes ready, and reports the gap between a handler returning (the worker then sends its
//! completion, which is what makes the next task ready) and the next task's handler starting:
//! that gap holds the completion request, its commit, the leader's hand-over, its commit, and
//! the delivery down the next worker's stream, so it is an upper bound of "ready -> received".
//! It also reports trigger -> first task received.
//!
//! `throughput` keeps about twice the workers' slots of tasks outstanding (triggered and not yet
//! finished, as the workers count them) for the given time and counts tasks finished at the
//! workers: `fan` executions have 50 independent tasks each (two commands per task: hand-over
//! and completion), `single` executions one task each (four commands per task: create, assign,
//! hand-over, completion). Both print tasks per second over the measured window.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use linkloom::{Client, Worker};
use linkloom_harness::{print_percentiles, Cluster, ClusterOptions};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// The loom-node binary (default: next to this one).
    #[arg(long, global = true)]
    loom_node: Option<PathBuf>,
    /// Worker processes' worth of SDK workers to run.
    #[arg(long, global = true, default_value_t = 8)]
    workers: usize,
}

#[derive(Subcommand)]
enum Scenario {
    Dispatch {
        #[arg(long, default_value_t = 50)]
        chains: usize,
    },
    Throughput {
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, value_enum, default_value_t = Shape::Fan)]
        shape: Shape,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 8)]
        concurrency: u32,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shape {
    Fan,
    Single,
}

/// When each (execution, task) handler started and returned, and how many finished.
#[derive(Default)]
struct Record {
    started: Mutex<BTreeMap<(String, String), Instant>>,
    returned: Mutex<BTreeMap<(String, String), Instant>>,
    finished: AtomicU64,
}

fn start_workers(
    rt: &tokio::runtime::Runtime,
    urls: &[String],
    count: usize,
    concurrency: u32,
    record: Arc<Record>,
) -> anyhow::Result<tokio::sync::watch::Sender<bool>> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for i in 0..count {
        // Each worker starts at a different node, and fails over to the others.
        let order: Vec<String> = (0..urls.len()).map(|k| urls[(i + k) % urls.len()].clone()).collect();
        let client = Client::new(order)?;
        let record = record.clone();
        let worker = Worker::builder(client)
            .id(format!("bench-{i}"))
            .concurrency(concurrency)
            .handle("bench", move |task| {
                let record = record.clone();
                async move {
                    let key = (task.assignment().execution_id.clone(), task.assignment().task_id.clone());
                    record.started.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), Instant::now());
                    record.finished.fetch_add(1, Ordering::Relaxed);
                    record.returned.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Instant::now());
                    Ok(json!({}))
                }
            })
            .build()?;
        let mut stopped = stopped.clone();
        rt.spawn(worker.run_until(async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
    }
    Ok(stop)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = linkloom_harness::loom_node_binary(args.loom_node)?;
    let mut cluster = Cluster::start(&binary, ClusterOptions::new(3).env("LOOM_LOG", "warn"))?;
    let leader = cluster.wait_ready(Duration::from_secs(30))?;
    let urls: Vec<String> = cluster.ids().into_iter().map(|id| cluster.url(id)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let record = Arc::new(Record::default());

    match args.scenario {
        Scenario::Dispatch { chains } => {
            let mut yaml = String::from("id: chain\ntasks:\n");
            for i in 0..10 {
                let deps = if i == 0 { String::new() } else { format!(", depends_on: [t{}]", i - 1) };
                yaml.push_str(&format!("  - {{id: t{i}, type: worker, queue: bench{deps}}}\n"));
            }
            cluster.put_workflow(leader, &yaml)?;
            let stop = start_workers(&rt, &urls, args.workers, 1, record.clone())?;
            wait_workers(&cluster, leader, args.workers)?;
            let client = Client::new(urls.clone())?;
            let (mut gaps, mut firsts) = (Vec::new(), Vec::new());
            for n in 0..chains + 5 {
                let sent = Instant::now();
                let id = rt.block_on(client.trigger("chain", json!({})))?;
                rt.block_on(client.wait_for_execution(&id, Duration::from_secs(30)))?;
                if n < 5 {
                    continue; // warm-up
                }
                let started = record.started.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let returned = record.returned.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let at = |map: &BTreeMap<(String, String), Instant>, t: usize| {
                    map.get(&(id.clone(), format!("t{t}"))).copied()
                };
                if let Some(first) = at(&started, 0) {
                    firsts.push(first.duration_since(sent).as_secs_f64() * 1000.0);
                }
                for t in 1..10 {
                    if let (Some(done), Some(next)) = (at(&returned, t - 1), at(&started, t)) {
                        gaps.push(next.duration_since(done).as_secs_f64() * 1000.0);
                    }
                }
            }
            print_percentiles("completion_to_next_task_received", gaps);
            print_percentiles("trigger_to_first_task_received", firsts);
            let _ = stop.send(true);
        }
        Scenario::Throughput { seconds, shape, concurrency } => {
            let width = if shape == Shape::Fan { 50 } else { 1 };
            let mut yaml = String::from("id: load\ntasks:\n");
            for i in 0..width {
                yaml.push_str(&format!("  - {{id: t{i}, type: worker, queue: bench}}\n"));
            }
            cluster.put_workflow(leader, &yaml)?;
            let stop = start_workers(&rt, &urls, args.workers, concurrency, record.clone())?;
            wait_workers(&cluster, leader, args.workers)?;
            // Keep about twice the workers' slots of tasks outstanding (triggered, not finished),
            // without polling executions: the workers' own count is the feedback.
            let target = (args.workers as u64 * u64::from(concurrency)) * 2;
            let triggered = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(seconds + 5);
            let mut triggers = Vec::new();
            let clients = 16;
            for c in 0..clients {
                let client = Client::new(vec![urls[c % urls.len()].clone()])?;
                let (triggered, record) = (triggered.clone(), record.clone());
                triggers.push(rt.spawn(async move {
                    while Instant::now() < deadline {
                        let outstanding = triggered.load(Ordering::Relaxed) * width as u64
                            - record
                                .finished
                                .load(Ordering::Relaxed)
                                .min(triggered.load(Ordering::Relaxed) * width as u64);
                        if outstanding >= target {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            continue;
                        }
                        triggered.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = client.trigger("load", json!({})).await {
                            triggered.fetch_sub(1, Ordering::Relaxed);
                            eprintln!("trigger failed: {e}");
                        }
                    }
                }));
            }
            // 5 s warm-up, then the measured window.
            std::thread::sleep(Duration::from_secs(5));
            let (from, at) = (record.finished.load(Ordering::Relaxed), Instant::now());
            std::thread::sleep(Duration::from_secs(seconds));
            let (to, elapsed) = (record.finished.load(Ordering::Relaxed), at.elapsed());
            let rate = (to - from) as f64 / elapsed.as_secs_f64();
            println!(
                "throughput shape={} workers={} concurrency={concurrency} outstanding_tasks={target} tasks={} seconds={:.1} tasks_per_s={rate:.0}",
                if shape == Shape::Fan { "fan50" } else { "single" },
                args.workers,
                to - from,
                elapsed.as_secs_f64(),
            );
            let _ = stop.send(true);
            for t in triggers {
                t.abort();
            }
        }
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// Waits (bounded) until `n` workers are listed.
fn wait_workers(cluster: &Cluster, via: u64, n: usize) -> anyhow::Result<()> {
    cluster.wait_for(&format!("{n} workers to connect"), Duration::from_secs(30), |c| {
        c.get_json(via, "/api/v1/workers")
            .ok()
            .and_then(|(_, v)| v["items"].as_array().map(Vec::len))
            .is_some_and(|len| len >= n)
    })
}
