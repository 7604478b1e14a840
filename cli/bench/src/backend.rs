//! The bench's own HTTP task backend on 127.0.0.1, and the rendezvous that times an arrival.
//!
//! The backend answers every task at once (success, empty output) and notes, per request, what
//! the scenario measures: the `bench_key` param's arrival (trigger -> task), the gap since the
//! previous task of the same execution was answered (chains), and how late a scheduled task is
//! (cron, from the `scheduled_at` input the workflow passes).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use linkloom::{Client, TaskAnswer};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::drive::{drive, is_warmup};
use crate::report::Measured;
use crate::{ms, BenchError, Plan};

/// How long a triggered task may take to arrive before the operation counts as failed, and a
/// chain to finish.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);
const CHAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Who waits for which key to arrive (at the backend or a worker), and when it did.
#[derive(Clone, Default)]
pub(crate) struct Arrivals(Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>);

impl Arrivals {
    /// Tells the waiter of `key`, if any, that it arrived at `at`.
    pub(crate) fn arrived(&self, key: &str, at: Instant) {
        if let Some(tell) = lock(&self.0).remove(key) {
            let _ = tell.send(at);
        }
    }

    /// Starts `workflow` with a fresh `bench_key` (a trigger's param, or an event's payload
    /// field that the workflow passes in its task's input) and waits until that key arrives:
    /// answers the execution and the time from sending the request to the arrival. The key, not
    /// the execution id, is what is awaited: the task may arrive before the request's answer.
    pub(crate) async fn timed_start(
        &self,
        client: &Client,
        workflow: &str,
        start: &Start,
        i: usize,
    ) -> Result<(String, f64), BenchError> {
        let key = format!("k{i}");
        let (tell, arrival) = oneshot::channel();
        lock(&self.0).insert(key.clone(), tell);
        let sent = Instant::now();
        let started = match start {
            Start::Trigger => client.trigger(workflow, json!({"bench_key": key})).await,
            Start::Event(name) => {
                let id = format!("{workflow}-{key}");
                client.send_event(name, Some(&id), json!({"bench_key": key})).await.and_then(|event| {
                    event.outcomes.into_iter().find_map(|o| o.execution_id).ok_or_else(|| {
                        linkloom::Error::Invalid(format!("event {id} started nothing: no workflow matched"))
                    })
                })
            }
        };
        let execution = match started {
            Ok(id) => id,
            Err(e) => {
                lock(&self.0).remove(&key);
                return Err(e.into());
            }
        };
        let at = match tokio::time::timeout(ARRIVAL_TIMEOUT, arrival).await {
            Ok(Ok(at)) => at,
            Ok(Err(_)) => return Err(BenchError::Failed("the bench's receiver stopped".into())),
            Err(_) => {
                lock(&self.0).remove(&key);
                return Err(BenchError::Failed(format!(
                    "execution {execution}: its task did not arrive within {} s",
                    ARRIVAL_TIMEOUT.as_secs()
                )));
            }
        };
        Ok((execution, ms(at.saturating_duration_since(sent))))
    }

    /// Starts `workflow` on `concurrency` lanes (see [`drive`]), each sample timed to the first
    /// task's arrival. With `chains`, each lane also waits for its execution to end before the
    /// next, and the executions measured (not warm-up ones) are answered, for the chain gaps.
    pub(crate) async fn trigger_load(
        &self,
        client: &Client,
        workflow: &str,
        start: Start,
        plan: &Plan,
        concurrency: usize,
        chains: bool,
    ) -> Result<(Measured, HashSet<String>), BenchError> {
        let kept = Arc::new(Mutex::new(HashSet::new()));
        let (client, workflow, arrivals, lanes_kept, start) =
            (client.clone(), workflow.to_string(), self.clone(), kept.clone(), Arc::new(start));
        let measured = drive(plan, concurrency, move |i| {
            let (client, workflow, arrivals, kept, start) =
                (client.clone(), workflow.clone(), arrivals.clone(), lanes_kept.clone(), start.clone());
            async move {
                let (execution, latency) = arrivals.timed_start(&client, &workflow, &start, i).await?;
                if chains {
                    client.wait_for_execution(&execution, CHAIN_TIMEOUT).await?;
                    if !is_warmup(i) {
                        lock(&kept).insert(execution);
                    }
                }
                Ok(latency)
            }
        })
        .await?;
        let kept = std::mem::take(&mut *lock(&kept));
        Ok((measured, kept))
    }
}

/// How a timed execution is started.
pub(crate) enum Start {
    /// `POST /api/v1/workflows/{id}/trigger`.
    Trigger,
    /// `POST /api/v1/events` with this name, which the workflow's trigger matches.
    Event(String),
}

/// What the backend saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// When each (execution, task) was answered: kept for chains only (nothing else reads it).
    answered: HashMap<(String, String), Instant>,
    /// chain: (execution, gap) for every task after the first.
    pub gaps_ms: Vec<(String, f64)>,
    /// cron: arrival minus the tick, per scheduled task.
    pub lateness_ms: Vec<f64>,
}

#[derive(Clone)]
struct Shared {
    chain: bool,
    arrived: Arc<AtomicU64>,
    arrivals: Arrivals,
    seen: Arc<Mutex<Seen>>,
}

/// A running backend; its server stops when this is dropped.
pub(crate) struct Backend {
    pub url: String,
    pub arrivals: Arrivals,
    /// Task requests received.
    pub arrived: Arc<AtomicU64>,
    seen: Arc<Mutex<Seen>>,
    server: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Starts a backend on 127.0.0.1; `chain` keeps answer times for chain gaps.
    pub(crate) async fn start(chain: bool) -> Result<Backend, BenchError> {
        let shared = Shared { chain, arrived: Arc::default(), arrivals: Arrivals::default(), seen: Arc::default() };
        let app = Router::new().route("/task", post(task)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::Failed(format!("cannot start the bench backend: {e}")))?;
        let addr = listener.local_addr().map_err(|e| BenchError::Failed(e.to_string()))?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Backend {
            url: format!("http://{addr}/task"),
            arrivals: shared.arrivals,
            arrived: shared.arrived,
            seen: shared.seen,
            server,
        })
    }

    pub(crate) fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn task(State(shared): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let arrived = Instant::now();
    shared.arrived.fetch_add(1, Ordering::Relaxed);
    let execution = body["execution_id"].as_str().unwrap_or_default().to_string();
    let task = body["task_id"].as_str().unwrap_or_default().to_string();
    {
        let mut seen = lock(&shared.seen);
        // chain: tasks are t0, t1, ...; the gap runs from the previous one's answer.
        let previous = task.strip_prefix('t').and_then(|n| n.parse::<usize>().ok()).and_then(|n| n.checked_sub(1));
        if let Some(previous) = previous {
            if let Some(answered) = seen.answered.remove(&(execution.clone(), format!("t{previous}"))) {
                seen.gaps_ms.push((execution.clone(), ms(arrived - answered)));
            }
        }
        if let Some(scheduled) = body["input"]["scheduled_at"].as_str() {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(scheduled) {
                let late = chrono::Utc::now().signed_duration_since(at).num_microseconds().unwrap_or(0);
                seen.lateness_ms.push(late as f64 / 1000.0);
            }
        }
        if shared.chain {
            seen.answered.insert((execution, task), Instant::now());
        }
    }
    // A trigger's param, or an event's payload field passed in the task's input.
    if let Some(key) = body["params"]["bench_key"].as_str().or_else(|| body["input"]["bench_key"].as_str()) {
        shared.arrivals.arrived(key, arrived);
    }
    Json(TaskAnswer::succeeded(json!({})).body())
}

/// Locks, taking the data of a lock whose holder panicked (the figures are still worth having).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
