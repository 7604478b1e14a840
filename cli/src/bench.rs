//! `loom bench SCENARIO`: a load generator and meter against a running cluster, like `nats bench`.
//!
//! Scenarios that need a task to land somewhere run their own HTTP backend on 127.0.0.1 (the
//! cluster must be able to reach it, so run the bench on one of its machines) or an in-process
//! SDK worker. Each prints a latency summary (p50/p90/p99/max) and a rate; `-o json` prints it as
//! one object. Bench workflows are named `bench-<scenario>-<random>` and deleted afterwards.
//!
//! What each measures:
//! - `writes`: workflow puts acknowledged (committed and applied), at `--concurrency`.
//! - `trigger-latency`: a trigger sent → the first HTTP task request received by the backend.
//! - `chain`: in a chain of `--tasks` sequential HTTP tasks, a task's answer sent → the next task's
//!   request received (completion → next dispatch).
//! - `throughput`: single-task executions, `--concurrency` at a time: trigger → task received,
//!   and the sustained rate.
//! - `workers`: worker tasks handed to an in-process SDK worker: trigger → handler started, rate.
//! - `cron`: `--workflows` workflows firing every second: tick → task received (tick lateness
//!   plus dispatch).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use linkloom::{Client, TaskAnswer};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::output::{Out, Table};
use crate::Failure;

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: String,
    pub concurrency: usize,
    pub count: usize,
    pub duration: Option<Duration>,
    pub warmup: usize,
    pub tasks: usize,
    pub workflows: usize,
}

pub const SCENARIOS: [&str; 6] = ["writes", "trigger-latency", "chain", "throughput", "workers", "cron"];

/// Latency samples of one run, and how long it took.
struct Measured {
    samples_ms: Vec<f64>,
    elapsed: Duration,
}

pub async fn run(client: &Client, options: Options, out: Out) -> Result<i32, Failure> {
    if options.concurrency == 0 || options.count == 0 || options.tasks < 2 || options.workflows == 0 {
        return Err(Failure::usage("--concurrency, --count and --workflows must be at least 1, --tasks at least 2"));
    }
    let suffix: u32 = rand_suffix();
    let name = format!("bench-{}-{suffix:08x}", options.scenario);
    let measured = match options.scenario.as_str() {
        "writes" => writes(client, &name, &options).await,
        "trigger-latency" => http_scenario(client, &name, &options, Shape::Single, 1).await,
        "throughput" => http_scenario(client, &name, &options, Shape::Single, options.concurrency).await,
        "chain" => http_scenario(client, &name, &options, Shape::Chain(options.tasks), 1).await,
        "workers" => workers(client, &name, &options).await,
        "cron" => cron(client, &name, &options).await,
        other => Err(Failure::usage(format!("scenario `{other}` is not one of {}", SCENARIOS.join(", ")))),
    };
    cleanup(client, &name, &options).await;
    let measured = measured?;
    report(&options, measured, out);
    Ok(0)
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

async fn cleanup(client: &Client, name: &str, options: &Options) {
    let ids: Vec<String> = if options.scenario == "cron" {
        (0..options.workflows).map(|i| format!("{name}-{i}")).collect()
    } else {
        vec![name.to_string()]
    };
    for id in ids {
        let _ = client.delete_workflow(&id).await;
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(options: &Options, measured: Measured, out: Out) {
    let mut samples = measured.samples_ms;
    samples.sort_by(|a, b| a.total_cmp(b));
    let rate = samples.len() as f64 / measured.elapsed.as_secs_f64().max(1e-9);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let doc = json!({
        "scenario": options.scenario,
        "count": samples.len(),
        "rate_per_s": round(rate),
        "p50_ms": round(percentile(&samples, 0.5)),
        "p90_ms": round(percentile(&samples, 0.9)),
        "p99_ms": round(percentile(&samples, 0.99)),
        "max_ms": round(percentile(&samples, 1.0)),
        "concurrency": options.concurrency,
        "elapsed_s": round(measured.elapsed.as_secs_f64()),
    });
    if out.document(&doc) {
        return;
    }
    let mut table = Table::new(&["SCENARIO", "COUNT", "RATE/S", "P50 MS", "P90 MS", "P99 MS", "MAX MS"]);
    table.row(vec![
        options.scenario.clone(),
        samples.len().to_string(),
        format!("{rate:.1}"),
        format!("{:.2}", percentile(&samples, 0.5)),
        format!("{:.2}", percentile(&samples, 0.9)),
        format!("{:.2}", percentile(&samples, 0.99)),
        format!("{:.2}", percentile(&samples, 1.0)),
    ]);
    print!("{}", table.render());
}

/// Runs `one(i)` for i in 0..total, `concurrency` at a time (after `warmup` unmeasured ones),
/// until `total` are done or `duration` has passed; collects the latencies they return.
async fn drive<F, Fut>(options: &Options, concurrency: usize, one: F) -> Result<Measured, Failure>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<f64, Failure>> + Send + 'static,
{
    let one = Arc::new(one);
    // Warm-up operations get indexes from the top, which scenarios can tell apart.
    for i in 0..options.warmup {
        one(usize::MAX - i).await?;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = options.duration.map(|d| Instant::now() + d);
    let started = Instant::now();
    let mut lanes = Vec::new();
    for _ in 0..concurrency {
        let (one, next, total) = (one.clone(), next.clone(), options.count);
        lanes.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if deadline.map_or(i >= total, |d| Instant::now() >= d) {
                    return Ok::<_, Failure>(samples);
                }
                samples.push(one(i).await?);
            }
        }));
    }
    let mut samples_ms = Vec::new();
    for lane in lanes {
        samples_ms.extend(lane.await.map_err(|e| Failure::failed(format!("a bench lane died: {e}")))??);
    }
    Ok(Measured { samples_ms, elapsed: started.elapsed() })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn put_yaml(client: &Client, yaml: &str) -> Result<(), Failure> {
    let spec = linkloom_core::spec::parse_yaml(yaml).map_err(|e| Failure::failed(e.to_string()))?;
    client.put_workflow(&spec).await?;
    Ok(())
}

async fn trigger(client: &Client, workflow: &str, params: Value) -> Result<String, Failure> {
    Ok(client.trigger(workflow, params).await?)
}

/// Who waits for which bench key to arrive (at the backend or the worker), and when it did.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

/// Tells the waiter of `key`, if any, that it arrived at `at`.
fn arrived(waiters: &Waiters, key: &str, at: Instant) {
    if let Some(tell) = waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(key) {
        let _ = tell.send(at);
    }
}

/// Triggers `workflow` with a fresh key and waits until the key arrives; the execution and the
/// time from sending the trigger to the arrival.
async fn timed_trigger(client: &Client, workflow: &str, waiters: &Waiters, i: usize) -> Result<(String, f64), Failure> {
    let key = format!("k{i}");
    let (tell, arrival) = oneshot::channel();
    waiters.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), tell);
    let sent = Instant::now();
    let execution = trigger(client, workflow, json!({"bench_key": key})).await?;
    let at = tokio::time::timeout(Duration::from_secs(30), arrival)
        .await
        .map_err(|_| Failure::failed(format!("execution {execution}: its task did not arrive within 30 s")))?
        .map_err(|_| Failure::failed("the bench's receiver stopped"))?;
    Ok((execution, ms(at.saturating_duration_since(sent))))
}

// ----- writes -----

async fn writes(client: &Client, name: &str, options: &Options) -> Result<Measured, Failure> {
    let (client, name) = (client.clone(), name.to_string());
    drive(options, options.concurrency, move |i| {
        let (client, name) = (client.clone(), name.clone());
        async move {
            let yaml = format!(
                "id: {name}\ndescription: write {i}\ntasks:\n  - {{id: a, type: worker, queue: bench-never}}\n"
            );
            let started = Instant::now();
            put_yaml(&client, &yaml).await?;
            Ok(ms(started.elapsed()))
        }
    })
    .await
}

// ----- the bench's own HTTP backend -----

/// What the backend saw: when each (key, task) request arrived and when it was answered.
#[derive(Default)]
struct Seen {
    /// Whether answers are kept for the next task's gap (chains only: nothing else reads them).
    chain: bool,
    waiting: Waiters,
    answered: HashMap<(String, String), Instant>,
    /// chain: (execution, gap) for every task after the first.
    gaps_ms: Vec<(String, f64)>,
    /// chain: the executions measured (warm-up ones are not).
    measured: Vec<String>,
    lateness_ms: Vec<f64>,
}

type Backend = Arc<Mutex<Seen>>;

async fn task(State(seen): State<Backend>, Json(body): Json<Value>) -> Json<Value> {
    let arrived = Instant::now();
    let execution = body["execution_id"].as_str().unwrap_or_default().to_string();
    let task = body["task_id"].as_str().unwrap_or_default().to_string();
    let key = body["params"]["bench_key"].as_str().map(String::from);
    {
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        // chain: the gap since the previous task of the same execution was answered.
        let previous_task = task.strip_prefix('t').and_then(|n| n.parse::<usize>().ok()).and_then(|n| n.checked_sub(1));
        if let Some(previous) = previous_task {
            if let Some(previous) = seen.answered.remove(&(execution.clone(), format!("t{previous}"))) {
                seen.gaps_ms.push((execution.clone(), ms(arrived - previous)));
            }
        }
        if let Some(scheduled) = body["input"]["scheduled_at"].as_str() {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(scheduled) {
                let late = chrono::Utc::now().signed_duration_since(at).num_microseconds().unwrap_or(0);
                seen.lateness_ms.push(late as f64 / 1000.0);
            }
        }
        if let Some(key) = key {
            self::arrived(&seen.waiting, &key, arrived);
        }
        if seen.chain {
            seen.answered.insert((execution, task), Instant::now());
        }
    }
    Json(TaskAnswer::succeeded(json!({})).body())
}

async fn start_backend(chain: bool) -> Result<(SocketAddr, Backend), Failure> {
    let seen: Backend = Arc::new(Mutex::new(Seen { chain, ..Seen::default() }));
    let app = Router::new().route("/task", post(task)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::failed(format!("cannot start the bench backend: {e}")))?;
    let addr = listener.local_addr().map_err(|e| Failure::failed(e.to_string()))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, seen))
}

#[derive(Clone, Copy)]
enum Shape {
    Single,
    Chain(usize),
}

async fn http_scenario(
    client: &Client,
    name: &str,
    options: &Options,
    shape: Shape,
    concurrency: usize,
) -> Result<Measured, Failure> {
    let (addr, seen) = start_backend(matches!(shape, Shape::Chain(_))).await?;
    let mut yaml = format!("id: {name}\ntasks:\n");
    let tasks = match shape {
        Shape::Single => 1,
        Shape::Chain(n) => n,
    };
    for i in 0..tasks {
        yaml.push_str(&format!("  - {{id: t{i}, type: http, url: \"http://{addr}/task\""));
        if i > 0 {
            yaml.push_str(&format!(", depends_on: [t{}]", i - 1));
        }
        yaml.push_str("}\n");
    }
    put_yaml(client, &yaml).await?;
    let waiters = seen.lock().unwrap_or_else(|p| p.into_inner()).waiting.clone();
    let (client2, name2, seen2) = (client.clone(), name.to_string(), seen.clone());
    let measured = drive(options, concurrency, move |i| {
        let (client, name, seen, waiters) = (client2.clone(), name2.clone(), seen2.clone(), waiters.clone());
        async move {
            let (execution, latency) = timed_trigger(&client, &name, &waiters, i).await?;
            if let Shape::Chain(_) = shape {
                wait_done(&client, &execution).await?;
                if i < usize::MAX / 2 {
                    seen.lock().unwrap_or_else(|p| p.into_inner()).measured.push(execution.clone());
                }
            }
            Ok(latency)
        }
    })
    .await?;
    if let Shape::Chain(_) = shape {
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        let gaps = seen.gaps_ms.iter().filter(|(e, _)| seen.measured.contains(e)).map(|(_, gap)| *gap).collect();
        return Ok(Measured { samples_ms: gaps, elapsed: measured.elapsed });
    }
    Ok(measured)
}

/// Waits until an execution ends (chains are measured one execution at a time).
async fn wait_done(client: &Client, id: &str) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if client.get_execution(id).await?.status.is_terminal() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Failure::failed(format!("execution {id} did not end in 60 s")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ----- workers -----

async fn workers(client: &Client, name: &str, options: &Options) -> Result<Measured, Failure> {
    let queue = name.to_string();
    let waiting: Waiters = Arc::default();
    let handler_waiting = waiting.clone();
    let worker = linkloom::Worker::builder(client.clone())
        .id(format!("{name}-worker"))
        .concurrency(options.concurrency.max(1) as u32 * 2)
        .handle(queue.clone(), move |task| {
            let waiting = handler_waiting.clone();
            async move {
                let at = Instant::now();
                if let Some(key) = task.params()["bench_key"].as_str() {
                    arrived(&waiting, key, at);
                }
                Ok(json!({}))
            }
        })
        .build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    put_yaml(client, &format!("id: {name}\ntasks:\n  - {{id: w, type: worker, queue: {queue}}}\n")).await?;
    let (client2, name2) = (client.clone(), name.to_string());
    let measured = drive(options, options.concurrency, move |i| {
        let (client, name, waiting) = (client2.clone(), name2.clone(), waiting.clone());
        async move { Ok(timed_trigger(&client, &name, &waiting, i).await?.1) }
    })
    .await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    measured
}

// ----- cron -----

async fn cron(client: &Client, name: &str, options: &Options) -> Result<Measured, Failure> {
    let (addr, seen) = start_backend(false).await?;
    for i in 0..options.workflows {
        let yaml = format!(
            "id: {name}-{i}\nschedule: \"* * * * * *\"\ncatchup: none\ntasks:\n  - id: t\n    type: http\n    url: \"http://{addr}/task\"\n    input: {{scheduled_at: \"{{{{ execution.scheduled_at }}}}\"}}\n"
        );
        put_yaml(client, &yaml).await?;
    }
    let duration = options.duration.unwrap_or(Duration::from_secs(10));
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    for i in 0..options.workflows {
        let _ = client.pause(&format!("{name}-{i}")).await;
    }
    let lateness = std::mem::take(&mut seen.lock().unwrap_or_else(|p| p.into_inner()).lateness_ms);
    Ok(Measured { samples_ms: lateness, elapsed: started.elapsed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&samples, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
