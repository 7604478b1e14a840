//! One client of the Jepsen-style test: a thread that picks an operation, sends it to a random
//! node, and records what happened with the times it was called and answered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkloom_history::exactly_once::Told;
use linkloom_history::register::{Input, Output};
use linkloom_history::Op;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{Clock, Options, Tally, TRIGGER_WORKFLOW};

/// Attempts of one mutating operation (each through another node) before it counts as unknown.
const MAX_ATTEMPTS: u32 = 6;
/// How long one mutating operation keeps retrying.
const RETRY_FOR: Duration = Duration::from_secs(15);

/// The registers clients work on: `slots` at a time, each replaced by a fresh one after
/// `ops_per_key` operations.
pub(crate) struct Keys {
    slots: Vec<Mutex<(u64, u64)>>,
    ops_per_key: u64,
}

impl Keys {
    pub(crate) fn new(slots: usize, ops_per_key: u64) -> Self {
        Keys { slots: (0..slots.max(1)).map(|_| Mutex::new((0, 0))).collect(), ops_per_key: ops_per_key.max(1) }
    }

    /// The register of `slot` for one more operation.
    fn take(&self, slot: usize) -> String {
        let mut entry = self.slots[slot % self.slots.len()].lock().unwrap_or_else(|p| p.into_inner());
        if entry.1 >= self.ops_per_key {
            *entry = (entry.0 + 1, 0);
        }
        entry.1 += 1;
        format!("jepsen-{slot}-{}", entry.0)
    }
}

/// A trigger as its client saw it.
#[derive(Debug, Clone)]
pub(crate) struct TriggerRecord {
    /// The unique id in the execution's params.
    pub op_id: String,
    pub told: Told,
}

/// A cancel as its client saw it (each execution is cancelled by one operation at most).
#[derive(Debug, Clone)]
pub(crate) struct CancelRecord {
    pub execution_id: String,
    pub told: Told,
}

/// Everything the clients recorded.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub registers: Vec<(String, Op<Input, Output>)>,
    pub triggers: Vec<TriggerRecord>,
    pub cancels: Vec<CancelRecord>,
    pub tally: Tally,
}

impl History {
    pub(crate) fn extend(&mut self, other: History) {
        self.registers.extend(other.registers);
        self.triggers.extend(other.triggers);
        self.cancels.extend(other.cancels);
        for (k, v) in other.tally {
            *self.tally.entry(k).or_default() += v;
        }
    }

    fn count(&mut self, what: &str) {
        *self.tally.entry(what.to_string()).or_default() += 1;
    }
}

/// What one HTTP request came to.
enum Answer {
    Status(u16, Value),
    /// No connection: the request never reached a node.
    Refused,
    /// Sent, but no answer arrived: it may or may not have been applied.
    Lost,
}

/// What one logical mutating operation came to, over its retries.
enum Mutation {
    Done(Value),
    /// A definite refusal (4xx), or no node took the request at all: nothing was applied.
    Failed,
    /// No definite answer: it may have been applied.
    Unknown,
}

pub(crate) struct Client {
    id: u32,
    urls: Vec<String>,
    http: reqwest::blocking::Client,
    rng: SmallRng,
    seed: u64,
    clock: Clock,
    keys: Arc<Keys>,
    slots: usize,
    ops: u64,
    done_ops: Arc<AtomicU64>,
    /// Executions this client triggered and may cancel.
    cancellable: Vec<String>,
    history: History,
}

impl Client {
    pub(crate) fn new(
        id: u32,
        urls: Vec<String>,
        options: &Options,
        clock: Clock,
        keys: Arc<Keys>,
        done_ops: Arc<AtomicU64>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        Ok(Client {
            id,
            urls,
            http,
            rng: SmallRng::seed_from_u64(options.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(id))),
            seed: options.seed,
            clock,
            keys,
            slots: options.slots.max(1),
            ops: 0,
            done_ops,
            cancellable: Vec::new(),
            history: History::default(),
        })
    }

    /// Runs operations until `stop` is set; returns what was recorded.
    pub(crate) fn run(mut self, stop: &AtomicBool) -> History {
        while !stop.load(Ordering::SeqCst) {
            let roll = self.rng.gen_range(0..100);
            match roll {
                0..30 => self.write(),
                30..80 => self.read(),
                80..92 => self.trigger(),
                _ if !self.cancellable.is_empty() => self.cancel(),
                _ => self.read(),
            }
            self.done_ops.fetch_add(1, Ordering::Relaxed);
        }
        self.history
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.ops += 1;
        format!("jepsen-{}-{kind}-{}-{}", self.seed, self.id, self.ops)
    }

    fn random_node(&mut self) -> usize {
        self.rng.gen_range(0..self.urls.len())
    }

    fn send(
        &self,
        node: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let writes = matches!(method, reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH);
        let mut request = self.http.request(method, format!("{}{path}", self.urls[node]));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        } else if writes {
            // Nodes take writes only with a JSON or YAML type, even without a body.
            request = request.header("content-type", "application/json");
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        match request.send() {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text() {
                    Ok(text) => Answer::Status(status, serde_json::from_str(&text).unwrap_or(Value::String(text))),
                    Err(_) => Answer::Lost,
                }
            }
            Err(e) if e.is_connect() => Answer::Refused,
            Err(_) => Answer::Lost,
        }
    }

    /// One logical mutating operation: one idempotency key, retried through other nodes while
    /// the answer is not definite.
    fn mutate(&mut self, path: &str, body: &Value, key: &str) -> Mutation {
        let deadline = Instant::now() + RETRY_FOR;
        let mut node = self.random_node();
        let mut indeterminate = false;
        for attempt in 0..MAX_ATTEMPTS {
            match self.send(node, reqwest::Method::POST, path, Some(body), Some(key)) {
                Answer::Status(status, value) if (200..300).contains(&status) => return Mutation::Done(value),
                Answer::Status(429, _) | Answer::Refused => {}
                Answer::Status(status, _) if status >= 500 => indeterminate = true,
                Answer::Status(status, value) => {
                    self.history.count(&format!("refused {status} {}", value["error"]["code"].as_str().unwrap_or("-")));
                    return Mutation::Failed;
                }
                Answer::Lost => indeterminate = true,
            }
            if Instant::now() >= deadline {
                break;
            }
            node = (node + 1) % self.urls.len();
            std::thread::sleep(Duration::from_millis(20 * u64::from(attempt + 1)));
        }
        if indeterminate {
            Mutation::Unknown
        } else {
            Mutation::Failed
        }
    }

    /// Writes a new version of a register with a unique description.
    fn write(&mut self) {
        let slot = self.rng.gen_range(0..self.slots);
        let key = self.keys.take(slot);
        let value = self.next_id("w");
        let spec = json!({
            "id": key,
            "description": value,
            "tasks": [{"id": "t", "type": "worker", "queue": "loom-jepsen-nobody"}],
        });
        let call = self.clock.now();
        let output = match self.mutate("/api/v1/workflows", &spec, &value) {
            Mutation::Done(answer) => match answer["version"].as_u64() {
                Some(version) => Some(Output::Written { version }),
                None => {
                    self.history.count("write answered without a version");
                    return;
                }
            },
            Mutation::Failed => {
                self.history.count("write failed");
                return;
            }
            Mutation::Unknown => None,
        };
        let ret = self.clock.now();
        self.history.count(if output.is_some() { "write ok" } else { "write unknown" });
        self.history.registers.push((key, Op { client: self.id, input: Input::Write(value), output, call, ret }));
    }

    /// Reads a register with the default consistency through a random node.
    fn read(&mut self) {
        let slot = self.rng.gen_range(0..self.slots);
        let key = self.keys.take(slot);
        let node = self.random_node();
        let call = self.clock.now();
        let seen = match self.send(node, reqwest::Method::GET, &format!("/api/v1/workflows/{key}"), None, None) {
            Answer::Status(200, v) => match (v["version"].as_u64(), v["spec"]["description"].as_str()) {
                (Some(version), Some(value)) => Some((version, value.to_string())),
                _ => {
                    self.history.count("read answered without a version");
                    return;
                }
            },
            Answer::Status(404, _) => None,
            _ => {
                // A read without an answer changed nothing: leave it out.
                self.history.count("read without answer");
                return;
            }
        };
        let ret = self.clock.now();
        self.history.count("read ok");
        self.history
            .registers
            .push((key, Op { client: self.id, input: Input::Read, output: Some(Output::Read(seen)), call, ret }));
    }

    /// Starts an execution whose params carry a unique op id.
    fn trigger(&mut self) {
        let op_id = self.next_id("t");
        let body = json!({"params": {"op": op_id}});
        let mutation = self.mutate(&format!("/api/v1/workflows/{TRIGGER_WORKFLOW}/trigger"), &body, &op_id);
        if let Mutation::Done(answer) = &mutation {
            if let Some(id) = answer["execution_id"].as_str() {
                self.cancellable.push(id.to_string());
            }
        }
        let told = self.tell("trigger", &mutation);
        self.history.triggers.push(TriggerRecord { op_id, told });
    }

    /// Cancels one of this client's executions (never the same one twice).
    fn cancel(&mut self) {
        let index = self.rng.gen_range(0..self.cancellable.len());
        let execution_id = self.cancellable.swap_remove(index);
        let key = self.next_id("c");
        let mutation = self.mutate(&format!("/api/v1/executions/{execution_id}/cancel"), &json!({}), &key);
        let told = self.tell("cancel", &mutation);
        self.history.cancels.push(CancelRecord { execution_id, told });
    }

    /// What a client was told about a `kind` operation, counted for the report.
    fn tell(&mut self, kind: &str, mutation: &Mutation) -> Told {
        let (told, word) = match mutation {
            Mutation::Done(_) => (Told::Succeeded, "ok"),
            Mutation::Failed => (Told::Failed, "failed"),
            Mutation::Unknown => (Told::Unknown, "unknown"),
        };
        self.history.count(&format!("{kind} {word}"));
        told
    }
}
