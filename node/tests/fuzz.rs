//! Schema-driven fuzzing of the public API against a running three-node cluster with tokens on.
//!
//! Requests are generated from `docs/openapi.json` (the committed description, which a test keeps
//! equal to what the code serves): every operation, path parameters drawn from ids seen in
//! earlier answers or made up, query parameters and bodies built from their schemas and then
//! often broken (a required field dropped, a wrong type, an unknown field, a huge or odd string,
//! garbage bytes, the wrong media type, a missing or bad token). It runs for `LOOM_FUZZ_SECS`
//! (default 20) with seed `LOOM_FUZZ_SEED` (default: time-based, printed).
//!
//! Checked on every answer: no 5xx, an `X-Request-Id`, and errors in the one error shape.
//! Checked at the end: no node crashed (they are debug builds, so every apply also checks the
//! state's invariants and a violation aborts the node), the cluster is ready, and every node
//! holds the same workflows and executions.
//!
//! Node-to-node endpoints (`/raft/*`) are left out: they are not client API and need the cluster
//! secret.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use linkloom_harness::{url_escape, Cluster, ClusterOptions};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::blocking::Client;
use serde_json::{json, Map, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const ADMIN: &str = "fuzz-admin-token-0123456789abcdef";

struct Fuzzer {
    rng: SmallRng,
    doc: Value,
    /// Ids seen in answers, by the path parameter they fit.
    seen: BTreeMap<&'static str, Vec<String>>,
}

const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "..",
    "../../etc/passwd",
    "%00",
    "a/b",
    "ünïcødé-☃",
    "'; DROP TABLE x; --",
    "{{params.x}}",
    "-1",
    "18446744073709551616",
    "0",
    "null",
    "\u{0}",
    "a:b",
];

impl Fuzzer {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                &self.doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn odd_string(&mut self) -> String {
        match self.rng.gen_range(0..4) {
            0 => "x".repeat(self.rng.gen_range(1..70_000)),
            1 => (0..self.rng.gen_range(1..40)).map(|_| char::from(self.rng.gen_range(0x20u8..0x7f))).collect(),
            _ => ODD_STRINGS.choose(&mut self.rng).copied().unwrap_or_default().to_string(),
        }
    }

    fn plain_string(&mut self) -> String {
        let words = ["demo", "etl", "a", "b", "job-1", "nightly", "x_y"];
        format!("{}{}", words.choose(&mut self.rng).copied().unwrap_or("a"), self.rng.gen_range(0..5))
    }

    fn random_value(&mut self, depth: u32) -> Value {
        match self.rng.gen_range(0..if depth > 3 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.rng.gen::<bool>()),
            2 => json!(self.rng.gen_range(-1_000_000i64..1_000_000)),
            3 => json!(self.rng.gen::<f64>() * 1e12),
            4 => json!(self.odd_string()),
            5 => Value::Array((0..self.rng.gen_range(0..4)).map(|_| self.random_value(depth + 1)).collect()),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.rng.gen_range(0..4) {
                    let key = self.plain_string();
                    map.insert(key, self.random_value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }

    /// A value for `schema`: valid most of the time, broken some of the time.
    fn value(&mut self, schema: &Value, depth: u32) -> Value {
        let schema = self.resolve(schema).clone();
        if depth > 6 || self.rng.gen_ratio(1, 25) {
            return self.random_value(depth);
        }
        if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
            let pick = options.choose(&mut self.rng).cloned().unwrap_or(Value::Null);
            return self.value(&pick, depth + 1);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values.choose(&mut self.rng).cloned().unwrap_or(Value::Null);
        }
        if let Some(value) = schema.get("const") {
            return value.clone();
        }
        let kind = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(types) => types.choose(&mut self.rng).and_then(Value::as_str).unwrap_or("null").to_string(),
            _ => return self.random_value(depth),
        };
        match kind.as_str() {
            "null" => Value::Null,
            "boolean" => json!(self.rng.gen::<bool>()),
            "integer" => {
                let min = schema["minimum"].as_i64().unwrap_or(0);
                let max = schema["maximum"].as_i64().unwrap_or(min + 20);
                json!(self.rng.gen_range(min..=max.max(min)))
            }
            "number" => json!(self.rng.gen_range(1.0..4.0)),
            "string" if schema["format"] == "date-time" => {
                let t = chrono::Utc::now() - chrono::Duration::minutes(self.rng.gen_range(0..600));
                json!(t.to_rfc3339())
            }
            "string" if self.rng.gen_ratio(1, 6) => json!(self.odd_string()),
            "string" => json!(self.plain_string()),
            "array" => {
                let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
                let n = self.rng.gen_range(min..=min + 3);
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                Value::Array((0..n).map(|_| self.value(&items, depth + 1)).collect())
            }
            "object" => {
                let mut map = Map::new();
                let required: Vec<String> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                if let Some(properties) = schema["properties"].as_object() {
                    for (name, property) in properties {
                        let needed = required.contains(name);
                        let dropped = needed && self.rng.gen_ratio(1, 15);
                        if (needed && !dropped) || (!needed && self.rng.gen_ratio(1, 2)) {
                            let v = self.value(property, depth + 1);
                            map.insert(name.clone(), v);
                        }
                    }
                }
                if self.rng.gen_ratio(1, 15) {
                    map.insert("unexpected_field".into(), self.random_value(depth + 1));
                }
                Value::Object(map)
            }
            _ => self.random_value(depth),
        }
    }

    fn path_param(&mut self, name: &str) -> String {
        let bucket: &'static str = match name {
            "id" => "id",
            "version" => "version",
            "attempt_id" => "attempt_id",
            "worker_id" => "worker_id",
            "name" => "name",
            _ => "other",
        };
        let known = self.seen.get(bucket).cloned().unwrap_or_default();
        if !known.is_empty() && self.rng.gen_ratio(3, 4) {
            return known.choose(&mut self.rng).cloned().unwrap_or_default();
        }
        match self.rng.gen_range(0..3) {
            0 => self.rng.gen_range(0..100_000u64).to_string(),
            1 => self.plain_string(),
            _ => self.odd_string(),
        }
    }

    /// Remembers ids from an answer, for later path parameters.
    fn learn(&mut self, body: &Value) {
        let mut add = |bucket: &'static str, v: &Value| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return,
            };
            let list = self.seen.entry(bucket).or_default();
            if list.len() < 200 && !list.contains(&text) {
                list.push(text);
            }
        };
        let items: Vec<&Value> = match body.get("items").and_then(Value::as_array) {
            Some(items) => items.iter().collect(),
            None => vec![body],
        };
        for item in items {
            if let Some(id) = item.get("id") {
                add("id", id);
            }
            if let Some(id) = item.get("execution_id") {
                add("id", id);
            }
            if let Some(v) = item.get("version") {
                add("version", v);
            }
            if let Some(n) = item.get("name") {
                add("name", n);
            }
            for task in item["tasks"].as_array().into_iter().flatten() {
                for attempt in task["attempts"].as_array().into_iter().flatten() {
                    add("attempt_id", &attempt["id"]);
                    if let Some(w) = attempt.get("worker_id") {
                        add("worker_id", w);
                    }
                }
            }
        }
    }
}

const SPECS: &[&str] = &[
    "id: fz-shell\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n  - id: b\n    type: shell\n    command: \"exit 3\"\n    depends_on: [a]\n",
    "id: fz-cron\nschedule: \"*/2 * * * * *\"\ntasks:\n  - id: a\n    type: shell\n    command: [\"sleep\", \"1\"]\n",
    "id: fz-worker\ntasks:\n  - id: w\n    type: worker\n    queue: fuzz\n    timeout: 2s\n",
];

#[test]
fn the_api_survives_schema_driven_fuzzing() {
    let secs: u64 = std::env::var("LOOM_FUZZ_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("LOOM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs())
    });
    println!("fuzzing for {secs} s with LOOM_FUZZ_SEED={seed}");
    let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).expect("docs/openapi.json");
    let mut cluster =
        Cluster::start(BIN, ClusterOptions::new(3).env("LOOM_ADMIN_TOKEN", ADMIN).env("LOOM_RATE_LIMIT", "0"))
            .expect("start cluster");
    cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    for spec in SPECS {
        cluster.put_workflow(1, spec).expect("seed workflow");
    }
    linkloom_harness::install_crypto_provider();
    let http = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let mut fuzz = Fuzzer { rng: SmallRng::seed_from_u64(seed), doc: doc.clone(), seen: BTreeMap::new() };

    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if path.starts_with("/raft/") {
            continue;
        }
        for (method, operation) in item.as_object().expect("operations") {
            operations.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sent = 0u64;
    while Instant::now() < deadline && failures.len() < 20 {
        let (method, path, operation) = operations.choose(&mut fuzz.rng).cloned().expect("operations");
        let mut target = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            target.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                // URLs stay below what an HTTP client will send (long values go into bodies).
                Some(name) => {
                    target.push_str(&url_escape(&fuzz.path_param(name).chars().take(2000).collect::<String>()))
                }
                None => target.push_str(segment),
            }
        }
        let mut query = Vec::new();
        for param in operation["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query") {
            if fuzz.rng.gen_ratio(1, 2) {
                let name = param["name"].as_str().unwrap_or_default();
                // Following logs would hold the connection until a task ends.
                if name == "follow" {
                    continue;
                }
                let value = fuzz.value(&param["schema"], 0);
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let text: String = text.chars().take(2000).collect();
                query.push(format!("{}={}", url_escape(name), url_escape(&text)));
            }
        }
        if !query.is_empty() {
            target.push('?');
            target.push_str(&query.join("&"));
        }
        let node = *cluster.ids().choose(&mut fuzz.rng).expect("nodes");
        let mut request = http.request(method.parse().expect("method"), format!("{}{target}", cluster.url(node)));
        request = match fuzz.rng.gen_range(0..20) {
            0 => request,
            1 => request.bearer_auth("loom_wrong"),
            _ => request.bearer_auth(ADMIN),
        };
        // Idempotency keys: often a reused one (replays), sometimes a malformed one.
        let takes_key = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["$ref"].as_str().is_some_and(|r| r.ends_with("/Idempotency-Key")));
        if takes_key && fuzz.rng.gen_ratio(1, 2) {
            let key = match fuzz.rng.gen_range(0..6) {
                0 => fuzz.odd_string().chars().take(2000).collect(),
                1 => "k".repeat(fuzz.rng.gen_range(250..260)),
                _ => format!("fuzz-{}", fuzz.rng.gen_range(0..20)),
            };
            if let Ok(value) = reqwest::header::HeaderValue::from_str(&key) {
                request = request.header("idempotency-key", value);
            }
        }
        let mut body_len = 0;
        if let Some(body) = operation.get("requestBody") {
            let media: Vec<String> =
                body["content"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default();
            let chosen = media.choose(&mut fuzz.rng).cloned().unwrap_or_default();
            let schema = body["content"][&chosen]["schema"].clone();
            let (content_type, bytes): (String, Vec<u8>) = match fuzz.rng.gen_range(0..12) {
                0 => ("application/json".into(), (0..fuzz.rng.gen_range(0..300)).map(|_| fuzz.rng.gen()).collect()),
                1 => ("text/plain".into(), b"hello".to_vec()),
                2 => ("application/json".into(), Vec::new()),
                _ => {
                    let value = fuzz.value(&schema, 0);
                    let bytes = if chosen.contains("yaml") {
                        serde_yaml::to_string(&value).unwrap_or_default().into_bytes()
                    } else {
                        value.to_string().into_bytes()
                    };
                    (chosen.clone(), bytes)
                }
            };
            body_len = bytes.len();
            request = request.header("content-type", content_type).body(bytes);
        }
        sent += 1;
        let streaming = path.ends_with("/connect");
        let shown: String = target.chars().take(160).collect();
        let label = format!("{method} {shown}{} via node {node}", if target.len() > 160 { "..." } else { "" });
        match request.send() {
            Err(e) if e.is_timeout() && streaming => {}
            Err(e) if e.is_builder() => failures.push(format!("{label}: the fuzzer built a bad request: {e}")),
            Err(e) => failures.push(format!("{label}: no answer ({body_len} body bytes): {e:?}")),
            Ok(response) => {
                let status = response.status().as_u16();
                *statuses.entry(status).or_default() += 1;
                let has_id = response.headers().contains_key("x-request-id");
                let json_answer = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"));
                if !has_id {
                    failures.push(format!("{label}: {status} without X-Request-Id"));
                }
                if status >= 500 {
                    let text = response.text().unwrap_or_default();
                    failures.push(format!("{label}: {status} {}", text.chars().take(300).collect::<String>()));
                    continue;
                }
                if streaming && status == 200 {
                    // A worker connected: its stream is dropped here, which disconnects it.
                    continue;
                }
                let text = response.text().unwrap_or_default();
                if status >= 400 {
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let shaped = json_answer
                        && body["error"]["code"].is_string()
                        && body["error"]["message"].is_string()
                        && body["error"].get("details").is_some();
                    if !shaped {
                        failures.push(format!("{label}: {status} not in the error shape: {text:.200}"));
                    }
                } else if json_answer {
                    if let Ok(body) = serde_json::from_str::<Value>(&text) {
                        fuzz.learn(&body);
                    }
                }
            }
        }
    }
    println!("{sent} requests; statuses {statuses:?}");

    // No node crashed, the cluster still works, and every node holds the same state.
    let alive: Vec<(u64, bool)> = cluster.ids().into_iter().map(|id| (id, cluster.is_running(id))).collect();
    assert!(alive.iter().all(|(_, up)| *up), "a node died: {alive:?}\n{}", cluster.logs_tail(60));
    cluster.wait_ready(Duration::from_secs(30)).expect("still ready");
    // The fuzzer may have tightened the limits, deleted or paused the seeds: restore the limits,
    // store the seeds again and stop the schedule, so the state can settle.
    let defaults = json!({"max_tasks_per_workflow": 500, "max_params_bytes": 65536,
        "max_output_bytes": 262144, "max_log_bytes_per_attempt": 1048576});
    let restored = http
        .put(format!("{}/api/v1/cluster/limits", cluster.url(1)))
        .bearer_auth(ADMIN)
        .json(&defaults)
        .send()
        .expect("restore limits");
    assert_eq!(restored.status().as_u16(), 200);
    for spec in SPECS {
        cluster.put_workflow(1, spec).expect("still accepts writes");
    }
    let (status, _) = cluster.post(1, "/api/v1/workflows/fz-cron/pause", "application/json", "").expect("pause");
    assert_eq!(status, 200);
    let marker = cluster.trigger(1, "fz-shell", json!({})).expect("still accepts writes");
    let snapshot = |c: &Cluster, id: u64| -> Option<Value> {
        let workflows = c.get_json(id, "/api/v1/workflows?consistency=stale&limit=500").ok()?.1;
        let executions = c.get_json(id, "/api/v1/executions?consistency=stale&limit=500").ok()?.1;
        let ids = |v: &Value| -> Vec<Value> {
            v["items"]
                .as_array()
                .map(|i| i.iter().map(|x| json!([x["id"], x["version"], x["status"]])).collect())
                .unwrap_or_default()
        };
        Some(json!([ids(&workflows), ids(&executions)]))
    };
    cluster
        .wait_for("every node to hold the same workflows and executions", Duration::from_secs(30), |c| {
            let views: Vec<Option<Value>> = c.ids().into_iter().map(|id| snapshot(c, id)).collect();
            views[0].as_ref().is_some_and(|v| v.to_string().contains(&marker)) && views.windows(2).all(|w| w[0] == w[1])
        })
        .expect("nodes agree");
    assert!(failures.is_empty(), "seed {seed}: {} failures:\n{}", failures.len(), failures.join("\n"));
}
