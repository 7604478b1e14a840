//! Worker scenarios: `--workers` SDK workers in this process (each `--slots` tasks at once,
//! worker `i` connected first to server `i`, failing over round the list) serve the run's queue.
//! - `workers`: single-task executions, `--concurrency` in flight: trigger -> handler started.
//! - `worker-chain`: chains of `--tasks` worker tasks, one at a time, so every worker is idle when
//!   a task becomes ready; a sample is a handler returning -> the next task's handler starting
//!   (the completion's request and commit, the hand-over's commit, the delivery down the next
//!   worker's stream: an upper bound of "ready -> received"). Also reports trigger -> first task.
//! - `worker-throughput`: executions of `--tasks` independent worker tasks, keeping about twice
//!   the workers' slots outstanding for `--duration`; the rate is tasks finished at the workers
//!   per second (each task costs two commands: hand-over and completion).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkloom::{Client, Worker};
use serde_json::json;
use tokio::sync::watch;

use crate::backend::{lock, Arrivals, Start};
use crate::report::{percentile, Measured, Report};
use crate::{ms, BenchError, Plan, Scenario};

/// How long workers may take to show up in the cluster's list.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Clients sending triggers in worker-throughput.
const TRIGGER_LANES: usize = 16;

/// When each (execution, task) handler started and returned, and how many finished.
#[derive(Default)]
struct Record {
    started: Mutex<BTreeMap<(String, String), Instant>>,
    returned: Mutex<BTreeMap<(String, String), Instant>>,
    finished: AtomicU64,
}

/// The run's workers; they drain and stop when this is dropped or `stop` is called.
struct Pool {
    stop: watch::Sender<bool>,
    running: Vec<tokio::task::JoinHandle<Result<(), linkloom::Error>>>,
}

impl Pool {
    async fn start(
        client: &Client,
        name: &str,
        plan: &Plan,
        record: Arc<Record>,
        arrivals: Arrivals,
    ) -> Result<Pool, BenchError> {
        let (stop, stopped) = watch::channel(false);
        let chains = plan.scenario == Scenario::WorkerChain;
        let mut running = Vec::new();
        for i in 0..plan.options.workers {
            let (record, arrivals) = (record.clone(), arrivals.clone());
            let worker = Worker::builder(client.starting_at(i))
                .id(format!("{name}-w{i}"))
                .concurrency(plan.options.slots)
                .handle(name.to_string(), move |task| {
                    let (record, arrivals) = (record.clone(), arrivals.clone());
                    async move {
                        let at = Instant::now();
                        if let Some(key) = task.params()["bench_key"].as_str() {
                            arrivals.arrived(key, at);
                        }
                        let key = (task.assignment().execution_id.clone(), task.assignment().task_id.clone());
                        if chains {
                            lock(&record.started).insert(key.clone(), at);
                            lock(&record.returned).insert(key, Instant::now());
                        }
                        record.finished.fetch_add(1, Ordering::Relaxed);
                        Ok(json!({}))
                    }
                })
                .build()?;
            let mut stopped = stopped.clone();
            running.push(tokio::spawn(worker.run_until(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        let pool = Pool { stop, running };
        pool.wait_connected(client, name, plan.options.workers).await?;
        Ok(pool)
    }

    /// Waits (bounded) until the cluster lists all `n` of the run's workers.
    async fn wait_connected(&self, client: &Client, name: &str, n: usize) -> Result<(), BenchError> {
        let prefix = format!("{name}-w");
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let listed = client.workers().await?.iter().filter(|w| w.id.starts_with(&prefix)).count();
            if listed >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Failed(format!(
                    "{listed} of {n} bench workers connected within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the workers (they drain) and waits for them, bounded.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.running {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
        }
    }
}

pub(crate) async fn run(client: &Client, name: &str, plan: &Plan) -> Result<Report, BenchError> {
    let width = match plan.scenario {
        Scenario::Workers => 1,
        _ => plan.options.tasks,
    };
    let chain = plan.scenario == Scenario::WorkerChain;
    let mut yaml = format!("id: {name}\ntasks:\n");
    for i in 0..width {
        let after = if chain && i > 0 { format!(", depends_on: [t{}]", i - 1) } else { String::new() };
        yaml.push_str(&format!("  - {{id: t{i}, type: worker, queue: {name}{after}}}\n"));
    }
    client.put_workflow_yaml(&yaml).await?;
    let (record, arrivals) = (Arc::new(Record::default()), Arrivals::default());
    let pool = Pool::start(client, name, plan, record.clone(), arrivals.clone()).await?;
    let report = match plan.scenario {
        Scenario::WorkerThroughput => throughput(client, name, plan, width, &record).await,
        _ => latency(client, name, plan, chain, &record, arrivals).await,
    };
    pool.stop().await;
    report
}

/// `workers` and `worker-chain`.
async fn latency(
    client: &Client,
    name: &str,
    plan: &Plan,
    chain: bool,
    record: &Arc<Record>,
    arrivals: Arrivals,
) -> Result<Report, BenchError> {
    let concurrency = plan.concurrency;
    let (measured, kept) = arrivals.trigger_load(client, name, Start::Trigger, plan, concurrency, chain).await?;
    if !chain {
        return Ok(Report::new(plan.scenario, concurrency, measured));
    }
    let (started, returned) = (lock(&record.started).clone(), lock(&record.returned).clone());
    let mut gaps = Vec::new();
    for execution in &kept {
        let at = |map: &BTreeMap<(String, String), Instant>, t: usize| {
            map.get(&(execution.clone(), format!("t{t}"))).copied()
        };
        for t in 1..plan.options.tasks {
            if let (Some(done), Some(next)) = (at(&returned, t - 1), at(&started, t)) {
                gaps.push(ms(next.saturating_duration_since(done)));
            }
        }
    }
    let mut firsts = measured.samples_ms.clone();
    firsts.sort_by(|a, b| a.total_cmp(b));
    let report = Report::new(plan.scenario, concurrency, Measured { samples_ms: gaps, ..measured })
        .with("first_task_p50_ms", percentile(&firsts, 0.5))
        .with("first_task_p99_ms", percentile(&firsts, 0.99));
    Ok(report)
}

/// `worker-throughput`: tasks finished per second with about twice the slots outstanding.
async fn throughput(
    client: &Client,
    name: &str,
    plan: &Plan,
    width: usize,
    record: &Arc<Record>,
) -> Result<Report, BenchError> {
    let width = width as u64;
    let target = plan.options.workers as u64 * u64::from(plan.options.slots) * 2;
    let triggered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let (stop, stopped) = watch::channel(false);
    let mut lanes = Vec::new();
    for lane in 0..TRIGGER_LANES {
        let client = client.starting_at(lane);
        let (name, triggered, record, errors, first_error) =
            (name.to_string(), triggered.clone(), record.clone(), errors.clone(), first_error.clone());
        let stopped = stopped.clone();
        lanes.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                // Feedback from the workers' own count: no polling of executions.
                let sent = triggered.load(Ordering::Relaxed) * width;
                let outstanding = sent.saturating_sub(record.finished.load(Ordering::Relaxed));
                if outstanding >= target {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                triggered.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = client.trigger(&name, json!({})).await {
                    triggered.fetch_sub(1, Ordering::Relaxed);
                    errors.fetch_add(1, Ordering::Relaxed);
                    lock(&first_error).get_or_insert_with(|| e.to_string());
                }
            }
        }));
    }
    // Warm-up: the first `--warmup` executions' tasks finish before the window opens (bounded).
    let warm = plan.warmup as u64 * width;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while record.finished.load(Ordering::Relaxed) < warm && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let window = plan.duration.unwrap_or(Duration::from_secs(10));
    let (from, opened) = (record.finished.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(window).await;
    let (to, elapsed) = (record.finished.load(Ordering::Relaxed), opened.elapsed());
    let _ = stop.send(true);
    for lane in lanes {
        let _ = tokio::time::timeout(Duration::from_secs(10), lane).await;
    }
    if to == from {
        let why = lock(&first_error).clone().unwrap_or_else(|| "no trigger failed".into());
        return Err(BenchError::Failed(format!("no worker task finished in the window ({why})")));
    }
    let mut report = Report::rate_only(plan.scenario, TRIGGER_LANES, (to - from) as usize, elapsed)
        .with("outstanding_tasks", target as f64)
        .with("tasks_per_execution", width as f64);
    report.errors = errors.load(Ordering::Relaxed);
    report.first_error = lock(&first_error).clone();
    Ok(report)
}
