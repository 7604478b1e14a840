//! Simulated users of the cluster: a client that registers workflows, triggers, cancels, backfills
//! and reads through random nodes, recording what the cluster acknowledged; and SDK-like workers
//! that speak the worker protocol (docs/workers.md) over turmoil's network.
//!
//! The Rust SDK itself cannot run here (reqwest cannot take turmoil's connector), so the workers
//! are a small second implementation of the protocol, which also checks that the document is
//! enough to write one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use linkloom_history::exactly_once::Told;
use linkloom_history::register::{Input, Output};
use linkloom_history::Op;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::backend::{BACKEND_HOST, BACKEND_PORT};
use crate::net::SimConnector;
use crate::node::node_addr;
use crate::world::{sim_now, Ack, World};

/// HTTP clients of one simulated user, one connection pool per node.
///
/// hyper's pool keeps its hosts in a `HashMap`: one pool for every node would close the
/// connections to them, when dropped, in an order that varies from process to process, and each
/// close draws from the simulation's RNG. One pool per node, kept in an ordered map, closes them
/// in node order, so a seed replays exactly.
#[derive(Clone)]
pub(crate) struct HttpClient {
    pools: Arc<BTreeMap<u64, Client<SimConnector, Full<Bytes>>>>,
}

impl HttpClient {
    pub(crate) fn new(nodes: u64) -> Self {
        let pool =
            || Client::builder(TokioExecutor::new()).pool_timer(hyper_util::rt::TokioTimer::new()).build(SimConnector);
        HttpClient { pools: Arc::new((1..=nodes).map(|n| (n, pool())).collect()) }
    }

    async fn request(
        &self,
        node: u64,
        request: http::Request<Full<Bytes>>,
    ) -> Option<Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>> {
        Some(self.pools.get(&node)?.request(request).await)
    }
}

/// One request with a timeout, with an `Idempotency-Key` if `key` is given; `None` when there was
/// no answer (the outcome is unknown).
pub(crate) async fn send(
    client: &HttpClient,
    method: &str,
    node: u64,
    path: &str,
    content_type: &str,
    body: Bytes,
    key: Option<&str>,
) -> Option<(u16, Value)> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", node_addr(node)))
        .header("content-type", content_type);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let request = request.body(Full::new(body)).ok()?;
    let call = async {
        let response = client.request(node, request).await?.ok()?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(3), call).await.ok().flatten()
}

/// [`send`] with a JSON body (or none).
pub(crate) async fn request(
    client: &HttpClient,
    method: &str,
    node: u64,
    path: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    send(client, method, node, path, "application/json", body, None).await
}

/// What one logical write came to over its retries.
pub(crate) enum Mutation {
    Done(Value),
    /// A definite refusal (4xx): nothing was applied.
    Refused,
    /// No definite answer: it may have been applied.
    Unknown,
}

/// Attempts of one write, each through the next node, before its outcome counts as unknown.
const WRITE_ATTEMPTS: u64 = 4;

/// One logical write as the SDKs make it: one idempotency key, sent again through the next node
/// while no definite answer comes.
pub(crate) async fn mutate(
    client: &HttpClient,
    nodes: u64,
    first_node: u64,
    path: &str,
    body: &Value,
    key: &str,
) -> Mutation {
    mutate_with(client, nodes, first_node, path, body, Some(key)).await
}

/// [`mutate`], with or without an idempotency key (an event's own id makes it idempotent).
pub(crate) async fn mutate_with(
    client: &HttpClient,
    nodes: u64,
    first_node: u64,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> Mutation {
    let mut node = first_node;
    for _ in 0..WRITE_ATTEMPTS {
        let bytes = Bytes::from(body.to_string());
        match send(client, "POST", node, path, "application/json", bytes, key).await {
            Some((status, value)) if (200..300).contains(&status) => return Mutation::Done(value),
            Some((status, _)) if status < 500 && status != 429 => return Mutation::Refused,
            _ => {}
        }
        node = node % nodes + 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Mutation::Unknown
}

/// Simulated time in ns, the clock of the register history.
fn now_ns() -> u64 {
    sim_now().as_nanos() as u64
}

/// Registers the register clients write and read (workflows with one never-run task).
pub const REGISTERS: u64 = 3;
/// Register clients running at once in the client host.
const REGISTER_CLIENTS: u32 = 2;

/// A client of the registers: writes each a new version with a unique description, reads them
/// with the default consistency, through random nodes, recording every call and answer.
async fn run_register_client(world: World, client: HttpClient, nodes: u64, seed: u64, id: u32, stop: Arc<Mutex<bool>>) {
    let mut rng = SmallRng::seed_from_u64(seed ^ (0x0005_e915_7e55 + u64::from(id)));
    let mut writes = 0u64;
    while !*stop.lock().unwrap_or_else(|p| p.into_inner()) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..200))).await;
        let key = format!("reg-{}", rng.gen_range(0..REGISTERS));
        let node = rng.gen_range(1..=nodes);
        let call = now_ns();
        let (input, output) = if rng.gen_bool(0.4) {
            writes += 1;
            let value = format!("r{id}-{writes}");
            let spec =
                json!({"id": key, "description": value, "tasks": [{"id": "t", "type": "worker", "queue": "nobody"}]});
            let output = match mutate(&client, nodes, node, "/api/v1/workflows", &spec, &value).await {
                Mutation::Done(answer) => match answer["version"].as_u64() {
                    Some(version) => Some(Output::Written { version }),
                    None => continue,
                },
                Mutation::Refused => continue,
                Mutation::Unknown => None,
            };
            (Input::Write(value), output)
        } else {
            let seen = match request(&client, "GET", node, &format!("/api/v1/workflows/{key}"), None).await {
                Some((200, v)) => match (v["version"].as_u64(), v["spec"]["description"].as_str()) {
                    (Some(version), Some(value)) => Some((version, value.to_string())),
                    _ => continue,
                },
                Some((404, _)) => None,
                _ => continue,
            };
            (Input::Read, Some(Output::Read(seen)))
        };
        let op = Op { client: id, input, output, call, ret: now_ns() };
        world.with(|w| w.registers.push((key, op)));
    }
}

/// The workflows every run registers.
pub fn workflows() -> Vec<String> {
    let url = format!("http://{BACKEND_HOST}:{BACKEND_PORT}/task");
    vec![
        format!(
            "id: chain\ntasks:\n  - {{id: a, type: http, url: \"{url}\", timeout: 2s, retry: {{max_attempts: 3, backoff: 200ms}}}}\n  - {{id: b, type: http, url: \"{url}\", depends_on: [a], timeout: 2s, retry: {{max_attempts: 3, backoff: 300ms}}, input: {{from: \"{{{{ tasks.a.output.task }}}}\"}}}}\n  - {{id: c, type: http, url: \"{url}\", depends_on: [b], when: all_done, timeout: 2s}}\n"
        ),
        "id: pull\ntasks:\n  - {id: p1, type: worker, queue: q, timeout: 8s, retry: {max_attempts: 4, backoff: 200ms}}\n  - {id: p2, type: worker, queue: q, depends_on: [p1], timeout: 8s, retry: {max_attempts: 4, backoff: 200ms}}\n".to_string(),
        format!(
            "id: tick\nschedule: '*/2 * * * * *'\ncatchup: all\ntasks:\n  - {{id: t, type: http, url: \"{url}\", timeout: 2s, retry: {{max_attempts: 2, backoff: 100ms}}}}\n"
        ),
        format!(
            "id: on-event\ntriggers: [{{event: sim.order, filter: {{region: eu}}}}]\ntasks:\n  - {{id: e, type: http, url: \"{url}\", timeout: 2s, retry: {{max_attempts: 2, backoff: 100ms}}, input: {{order: \"{{{{ event.payload.order }}}}\"}}}}\n"
        ),
        format!(
            "id: after-chain\ntriggers: [{{workflow: chain, on: finished}}]\ntasks:\n  - {{id: f, type: http, url: \"{url}\", timeout: 2s, input: {{upstream: \"{{{{ event.id }}}}\"}}}}\n"
        ),
    ]
}

/// Event ids the client draws from: small enough that ids are sent again, across whatever
/// faults run in between.
const EVENT_IDS: u64 = 12;

/// Whether event `k`'s payload matches `on-event`'s filter (fixed per id, so a resend carries
/// the same payload).
pub fn event_matches(k: u64) -> bool {
    !k.is_multiple_of(3)
}

/// Drives the workload until `stop` is set; every acknowledged write goes to the world.
pub async fn run_client(
    world: World,
    nodes: u64,
    seed: u64,
    stop: Arc<Mutex<bool>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x00c1_1e47);
    let client = HttpClient::new(nodes);
    // Register the workflows, retrying through whatever faults are running.
    for yaml in workflows() {
        loop {
            let node = rng.gen_range(1..=nodes);
            let body = Bytes::from(yaml.clone());
            let answer = send(&client, "POST", node, "/api/v1/workflows", "application/yaml", body, None).await;
            if let Some((201, body)) = answer {
                let workflow_id = body["id"].as_str().unwrap_or_default().to_string();
                let version = body["version"].as_u64().unwrap_or_default() as u32;
                world.ack(sim_now(), Ack::WorkflowVersion { workflow_id, version });
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let registers: Vec<_> = (0..REGISTER_CLIENTS)
        .map(|id| tokio::spawn(run_register_client(world.clone(), client.clone(), nodes, seed, id, stop.clone())))
        .collect();
    let mut created: Vec<String> = Vec::new();
    let mut triggers = 0u64;
    while !*stop.lock().unwrap_or_else(|p| p.into_inner()) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..400))).await;
        let node = rng.gen_range(1..=nodes);
        let roll = rng.gen_range(0..125);
        let now = sim_now();
        if roll >= 100 {
            // An event, its id often one sent before: it starts `on-event` once per id, and only
            // for ids whose payload matches the filter.
            let k = rng.gen_range(0..EVENT_IDS);
            let id = format!("sim-ev-{k}");
            let region = if event_matches(k) { "eu" } else { "us" };
            let body = json!({"name": "sim.order", "id": id, "payload": {"order": k, "region": region}});
            let told = match mutate_with(&client, nodes, node, "/api/v1/events", &body, None).await {
                Mutation::Done(_) => Told::Succeeded,
                Mutation::Refused => Told::Failed,
                Mutation::Unknown => Told::Unknown,
            };
            world.event(sim_now(), format!("event {id} sent: {told:?}"));
            world.with(|w| w.sent_events.push((id, event_matches(k), told)));
        } else if roll < 70 {
            // A trigger with a unique op id in its params, retried with one idempotency key.
            triggers += 1;
            let workflow = if roll < 40 { "chain" } else { "pull" };
            let op_id = format!("op-{triggers}");
            let body = json!({"params": {"n": rng.gen_range(0..1000), "op": op_id}});
            let path = format!("/api/v1/workflows/{workflow}/trigger");
            let told = match mutate(&client, nodes, node, &path, &body, &op_id).await {
                Mutation::Done(answer) => {
                    let execution_id = answer["execution_id"].as_str().unwrap_or_default().to_string();
                    created.push(execution_id.clone());
                    world.ack(now, Ack::ExecutionCreated { execution_id });
                    Told::Succeeded
                }
                Mutation::Refused => Told::Failed,
                Mutation::Unknown => Told::Unknown,
            };
            world.with(|w| w.triggers.push((op_id, told)));
        } else if roll < 80 && !created.is_empty() {
            let id = created[rng.gen_range(0..created.len())].clone();
            if let Some((200, _)) =
                request(&client, "POST", node, &format!("/api/v1/executions/{id}/cancel"), None).await
            {
                world.ack(now, Ack::ExecutionCancelled { execution_id: id });
            }
        } else if roll < 85 {
            // Backfill the last ten seconds of ticks: most already fired, so each must stay one.
            let to = linkloom_core::ids::rfc3339(turmoil::since_epoch().map_or(0, |d| d.as_millis() as i64));
            let from = linkloom_core::ids::rfc3339(turmoil::since_epoch().map_or(0, |d| d.as_millis() as i64) - 10_000);
            let body = json!({"from": from, "to": to});
            if let Some((202, answer)) =
                request(&client, "POST", node, "/api/v1/workflows/tick/backfill", Some(body)).await
            {
                for id in answer["execution_ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    world.ack(now, Ack::ExecutionCreated { execution_id: id.to_string() });
                }
            }
        } else if !created.is_empty() {
            let id = created[rng.gen_range(0..created.len())].clone();
            let _ = request(&client, "GET", node, &format!("/api/v1/executions/{id}"), None).await;
        }
    }
    for register_client in registers {
        let _ = register_client.await;
    }
    // Stop the schedule so the cluster can settle; retried until it takes.
    loop {
        let node = rng.gen_range(1..=nodes);
        if let Some((200, _)) = request(&client, "POST", node, "/api/v1/workflows/tick/pause", None).await {
            world.event(sim_now(), "tick paused");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a simulated worker is running.
struct Running {
    cancelled: Arc<Mutex<bool>>,
}

/// A worker serving queue `q`: connects to a node (moving on when it fails), runs each task for a
/// random while, heartbeats, and completes through any node, retrying through partitions for
/// longer than a lease (so late completions happen and must be refused).
pub async fn run_worker(world: World, name: String, nodes: u64, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let rng =
        Arc::new(Mutex::new(SmallRng::seed_from_u64(seed ^ name.bytes().fold(7u64, |h, b| h * 31 + u64::from(b)))));
    let running: Arc<Mutex<BTreeMap<String, Running>>> = Arc::default();
    let client = HttpClient::new(nodes);
    let mut node = rng.lock().unwrap_or_else(|p| p.into_inner()).gen_range(1..=nodes);
    loop {
        let hello = json!({
            "id": name, "queues": ["q"], "concurrency": 2,
            "running": running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect::<Vec<_>>(),
        });
        let request = http::Request::post(format!("http://{}/api/v1/workers/connect", node_addr(node)))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(hello.to_string())))?;
        let connected = tokio::time::timeout(Duration::from_secs(2), client.request(node, request)).await;
        let Ok(Some(Ok(response))) = connected else {
            node = node % nodes + 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if response.status() != 200 {
            node = node % nodes + 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut body = response.into_body();
        let mut buffer = Vec::new();
        // Read events until the stream ends or goes silent (no ping for 1.5 s).
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_millis(1500), body.frame()).await {
            let Ok(data) = frame.into_data() else { continue };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
                match event["type"].as_str() {
                    Some("task") => {
                        let attempt_id = event["attempt_id"].as_str().unwrap_or_default().to_string();
                        let cancelled = Arc::new(Mutex::new(false));
                        {
                            let mut map = running.lock().unwrap_or_else(|p| p.into_inner());
                            if map.contains_key(&attempt_id) {
                                continue;
                            }
                            map.insert(attempt_id.clone(), Running { cancelled: cancelled.clone() });
                        }
                        let work_ms = rng.lock().unwrap_or_else(|p| p.into_inner()).gen_range(50..1500);
                        let (world, name, running, client) =
                            (world.clone(), name.clone(), running.clone(), client.clone());
                        tokio::spawn(async move {
                            run_task(&world, &client, &name, nodes, node, &attempt_id, work_ms, &cancelled).await;
                            running.lock().unwrap_or_else(|p| p.into_inner()).remove(&attempt_id);
                        });
                    }
                    Some("cancel") => {
                        let attempt_id = event["attempt_id"].as_str().unwrap_or_default();
                        if let Some(r) = running.lock().unwrap_or_else(|p| p.into_inner()).get(attempt_id) {
                            *r.cancelled.lock().unwrap_or_else(|p| p.into_inner()) = true;
                        }
                    }
                    Some("closing") => break,
                    _ => {}
                }
            }
        }
        node = node % nodes + 1;
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_task(
    world: &World,
    client: &HttpClient,
    name: &str,
    nodes: u64,
    first_node: u64,
    attempt_id: &str,
    work_ms: u64,
    cancelled: &Arc<Mutex<bool>>,
) {
    let is_cancelled = || *cancelled.lock().unwrap_or_else(|p| p.into_inner());
    let mut node = first_node;
    // Work, heartbeating every 500 ms; a 409 means the attempt is no longer ours.
    let mut worked = 0;
    while worked < work_ms {
        let step = (work_ms - worked).min(500);
        tokio::time::sleep(Duration::from_millis(step)).await;
        worked += step;
        if is_cancelled() {
            return;
        }
        if worked < work_ms {
            let path = format!("/api/v1/workers/{name}/attempts/{attempt_id}/heartbeat");
            match request(client, "POST", node, &path, Some(json!({"progress": worked}))).await {
                Some((409, _)) => return,
                Some(_) => {}
                None => node = node % nodes + 1,
            }
        }
    }
    // Complete, retrying for up to 15 s (longer than a lease: a late answer must be refused).
    let path = format!("/api/v1/workers/{name}/attempts/{attempt_id}/complete");
    let body = json!({"status": "succeeded", "output": {"worker": name, "worked_ms": work_ms}});
    let deadline = sim_now() + Duration::from_secs(15);
    let id: u64 = attempt_id.parse().unwrap_or_default();
    while sim_now() < deadline {
        if is_cancelled() {
            return;
        }
        match request(client, "POST", node, &path, Some(body.clone())).await {
            Some((200, _)) => {
                world.ack(sim_now(), Ack::Completion { attempt_id: id });
                return;
            }
            Some((409, _)) => return,
            _ => {
                node = node % nodes + 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
