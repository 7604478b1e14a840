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
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::backend::{BACKEND_HOST, BACKEND_PORT};
use crate::net::SimConnector;
use crate::node::node_addr;
use crate::world::{sim_now, Ack, World};

type HttpClient = Client<SimConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(SimConnector)
}

/// One request with a timeout; `None` when there was no answer (the outcome is unknown).
async fn send(
    client: &HttpClient,
    method: &str,
    node: u64,
    path: &str,
    content_type: &str,
    body: Bytes,
) -> Option<(u16, Value)> {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", node_addr(node)))
        .header("content-type", content_type)
        .body(Full::new(body))
        .ok()?;
    let call = async {
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(3), call).await.ok().flatten()
}

/// [`send`] with a JSON body (or none).
async fn request(
    client: &HttpClient,
    method: &str,
    node: u64,
    path: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    send(client, method, node, path, "application/json", body).await
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
    ]
}

/// Drives the workload until `stop` is set; every acknowledged write goes to the world.
pub async fn run_client(
    world: World,
    nodes: u64,
    seed: u64,
    stop: Arc<Mutex<bool>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x00c1_1e47);
    let client = http_client();
    // Register the workflows, retrying through whatever faults are running.
    for yaml in workflows() {
        loop {
            let node = rng.gen_range(1..=nodes);
            let body = Bytes::from(yaml.clone());
            let answer = send(&client, "POST", node, "/api/v1/workflows", "application/yaml", body).await;
            if let Some((201, body)) = answer {
                let workflow_id = body["id"].as_str().unwrap_or_default().to_string();
                let version = body["version"].as_u64().unwrap_or_default() as u32;
                world.ack(sim_now(), Ack::WorkflowVersion { workflow_id, version });
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut created: Vec<String> = Vec::new();
    while !*stop.lock().unwrap_or_else(|p| p.into_inner()) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..400))).await;
        let node = rng.gen_range(1..=nodes);
        let roll = rng.gen_range(0..100);
        let now = sim_now();
        if roll < 40 {
            let body = json!({"params": {"n": rng.gen_range(0..1000)}});
            if let Some((202, answer)) =
                request(&client, "POST", node, "/api/v1/workflows/chain/trigger", Some(body)).await
            {
                let execution_id = answer["execution_id"].as_str().unwrap_or_default().to_string();
                created.push(execution_id.clone());
                world.ack(now, Ack::ExecutionCreated { execution_id });
            }
        } else if roll < 70 {
            if let Some((202, answer)) = request(&client, "POST", node, "/api/v1/workflows/pull/trigger", None).await {
                let execution_id = answer["execution_id"].as_str().unwrap_or_default().to_string();
                created.push(execution_id.clone());
                world.ack(now, Ack::ExecutionCreated { execution_id });
            }
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
    let client = http_client();
    let mut node = rng.lock().unwrap_or_else(|p| p.into_inner()).gen_range(1..=nodes);
    loop {
        let hello = json!({
            "id": name, "queues": ["q"], "concurrency": 2,
            "running": running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect::<Vec<_>>(),
        });
        let request = http::Request::post(format!("http://{}/api/v1/workers/connect", node_addr(node)))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(hello.to_string())))?;
        let connected = tokio::time::timeout(Duration::from_secs(2), client.request(request)).await;
        let Ok(Ok(response)) = connected else {
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
