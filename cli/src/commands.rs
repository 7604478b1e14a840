//! One function per verb. Each asks the API through the SDK's client, then prints either the
//! API's own JSON (`-o json|yaml`, one document) or a table for people.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use linkloom::{Client, Method};
use serde_json::{json, Value};

use crate::args::{self, Command};
use crate::output::{ago, between, cell, duration_ms, Out, Table};
use crate::{config, Failure};

type Done = Result<i32, Failure>;

/// Percent-encodes one path segment.
fn seg(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get(client: &Client, path: &str) -> Result<Value, Failure> {
    Ok(client.request_json(Method::GET, path, None).await?)
}

async fn post(client: &Client, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
    Ok(client.request_json(Method::POST, path, body).await?)
}

/// Every item of a paged list.
async fn all(client: &Client, path: &str) -> Result<Vec<Value>, Failure> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let page_path = match &cursor {
            None => format!("{path}{separator}limit=500"),
            Some(c) => format!("{path}{separator}limit=500&cursor={}", seg(c)),
        };
        let page = get(client, &page_path).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(items),
        }
    }
}

/// The client, and what it was built with that one-off clients (one per member) need too.
pub struct Ctx {
    pub client: Client,
    pub token: Option<String>,
}

pub async fn dispatch(ctx: &Ctx, command: Command, out: Out) -> Done {
    let client = &ctx.client;
    match command {
        Command::Workflow(w) => workflow(client, w, out).await,
        Command::Execution(e) => execution(client, e, out).await,
        Command::Worker(args::Worker::List) => workers(client, out).await,
        Command::Cluster(c) => cluster(ctx, c, out).await,
        Command::Token(t) => token(client, t, out).await,
        Command::Status => status(ctx, out).await,
        Command::Bench { scenario, concurrency, count, duration, warmup, tasks, workflows } => {
            let default_concurrency =
                if matches!(scenario.as_str(), "writes" | "throughput" | "workers") { 16 } else { 1 };
            let duration = match duration {
                None => None,
                Some(d) => Some(parse_duration(Some(&d), Duration::ZERO)?),
            };
            let options = crate::bench::Options {
                scenario,
                concurrency: concurrency.unwrap_or(default_concurrency),
                count,
                duration,
                warmup,
                tasks,
                workflows,
            };
            crate::bench::run(client, options, out).await
        }
        Command::Config(_) | Command::Completion { .. } | Command::Watch { .. } => {
            unreachable!("handled before dispatch")
        }
    }
}

// ----- workflows -----

/// A workflow file, parsed and validated with the server's own rules.
fn read_spec(file: &str) -> Result<linkloom_core::WorkflowSpec, Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Failure::usage(format!("reading stdin: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("reading {file}: {e}")))?
    };
    let parsed = if file.ends_with(".json") {
        linkloom_core::spec::parse_json(&text)
    } else {
        linkloom_core::spec::parse_yaml(&text)
    };
    let spec = parsed.map_err(|e| problems(file, &e))?;
    linkloom_core::spec::validate(&spec).map_err(|e| problems(file, &e))?;
    Ok(spec)
}

fn problems(file: &str, e: &linkloom_core::spec::SpecError) -> Failure {
    let mut text = format!("{file} is not a valid workflow ({} problems):", e.problems.len());
    for p in &e.problems {
        text.push_str(&format!("\n  {}: {}", p.path, p.message));
    }
    Failure::usage(text)
}

pub fn validate(file: &str, out: Out) -> Done {
    let spec = read_spec(file)?;
    let summary = json!({"valid": true, "id": spec.id, "tasks": spec.tasks.len()});
    if !out.document(&summary) {
        println!("{file}: valid workflow `{}` with {} tasks", spec.id, spec.tasks.len());
    }
    Ok(0)
}

fn parse_duration(text: Option<&str>, default: Duration) -> Result<Duration, Failure> {
    match text {
        None => Ok(default),
        Some(t) => t
            .parse::<linkloom_core::DurationMs>()
            .map(|d| Duration::from_millis(d.as_millis()))
            .map_err(|e| Failure::usage(format!("duration `{t}`: {e}"))),
    }
}

async fn workflow(client: &Client, command: args::Workflow, out: Out) -> Done {
    use args::Workflow as W;
    match command {
        W::List => {
            let items = all(client, "/api/v1/workflows").await?;
            if out.document(&Value::Array(items.clone())) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["ID", "VERSION", "SCHEDULE", "NEXT", "PAUSED", "TASKS", "UPDATED"]);
            for wf in &items {
                table.row(vec![
                    cell(&wf["id"]),
                    cell(&wf["version"]),
                    cell(&wf["spec"]["schedule"]),
                    ago(&wf["next_fire_at"], now),
                    if wf["paused"] == true { out.status("yes") } else { "no".into() },
                    wf["spec"]["tasks"].as_array().map_or(0, Vec::len).to_string(),
                    ago(&wf["updated_at"], now),
                ]);
            }
            print_table(&table, "no workflows");
        }
        W::Describe { id } => {
            let wf = get(client, &format!("/api/v1/workflows/{}", seg(&id))).await?;
            if out.document(&wf) {
                return Ok(0);
            }
            let spec = &wf["spec"];
            let now = Utc::now();
            println!("Workflow:    {}", cell(&wf["id"]));
            println!("Version:     {} (of {})", cell(&wf["version"]), cell(&wf["versions"]));
            let schedule = format!("{} {}", cell(&spec["schedule"]), spec["timezone"].as_str().unwrap_or(""));
            println!("Schedule:    {}", schedule.trim_end());
            println!("Paused:      {}", if wf["paused"] == true { "yes" } else { "no" });
            if !wf["next_fire_at"].is_null() {
                println!("Next fire:   {} ({})", cell(&wf["next_fire_at"]), ago(&wf["next_fire_at"], now));
            }
            println!("Created:     {} by {}", ago(&wf["created_at"], now), cell(&wf["created_by"]));
            println!("Updated:     {} by {}", ago(&wf["updated_at"], now), cell(&wf["updated_by"]));
            if let Some(d) = spec["description"].as_str() {
                println!("Description: {d}");
            }
            println!();
            let mut table = Table::new(&["TASK", "TYPE", "DEPENDS ON", "TARGET"]);
            for t in spec["tasks"].as_array().into_iter().flatten() {
                let target = match t["type"].as_str() {
                    Some("http") => cell(&t["url"]),
                    Some("shell") => match &t["command"] {
                        Value::Array(argv) => argv.iter().map(cell).collect::<Vec<_>>().join(" "),
                        other => cell(other),
                    },
                    Some("worker") => format!("queue {}", cell(&t["queue"])),
                    _ => "-".into(),
                };
                table.row(vec![cell(&t["id"]), cell(&t["type"]), cell(&t["depends_on"]), target]);
            }
            print!("{}", table.render());
        }
        W::Create { file } => {
            let spec = read_spec(&file)?;
            let exists = client.request_json(Method::GET, &format!("/api/v1/workflows/{}", seg(&spec.id)), None).await;
            match exists {
                Ok(_) => {
                    return Err(Failure::failed(format!(
                        "workflow `{}` exists; `loom workflow apply {file}` stores a new version",
                        spec.id
                    )))
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            store(client, &spec, out).await?;
        }
        W::Apply { file } => {
            let spec = read_spec(&file)?;
            store(client, &spec, out).await?;
        }
        W::Delete { id } => {
            client.request_json(Method::DELETE, &format!("/api/v1/workflows/{}", seg(&id)), None).await?;
            if !out.document(&json!({"id": id, "deleted": true})) {
                println!("workflow {id} deleted");
            }
        }
        W::Validate { file } => return validate(&file, out),
        W::Trigger { id, params, wait, timeout } => {
            let mut overrides = serde_json::Map::new();
            for p in &params {
                let (key, value) =
                    p.split_once('=').ok_or_else(|| Failure::usage(format!("--param `{p}` is not key=value")))?;
                let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
                overrides.insert(key.to_string(), value);
            }
            let timeout = parse_duration(timeout.as_deref(), Duration::from_secs(3600))?;
            let body = json!({"params": Value::Object(overrides)});
            let answer = post(client, &format!("/api/v1/workflows/{}/trigger", seg(&id)), Some(&body)).await?;
            let execution_id = cell(&answer["execution_id"]);
            if !wait {
                if !out.document(&answer) {
                    println!("{execution_id}");
                }
                return Ok(0);
            }
            return wait_and_report(client, &execution_id, timeout, out).await;
        }
        W::Pause { id } => {
            let answer = post(client, &format!("/api/v1/workflows/{}/pause", seg(&id)), None).await?;
            if !out.document(&answer) {
                println!("workflow {id} paused");
            }
        }
        W::Resume { id } => {
            let answer = post(client, &format!("/api/v1/workflows/{}/resume", seg(&id)), None).await?;
            if !out.document(&answer) {
                println!("workflow {id} resumed");
            }
        }
        W::Backfill { id, from, to } => {
            let body = json!({"from": from, "to": to});
            let answer = post(client, &format!("/api/v1/workflows/{}/backfill", seg(&id)), Some(&body)).await?;
            if !out.document(&answer) {
                println!(
                    "{} executions created, {} existed already",
                    cell(&answer["created"]),
                    cell(&answer["existing"])
                );
            }
        }
        W::Versions { id } => {
            let answer = get(client, &format!("/api/v1/workflows/{}/versions", seg(&id))).await?;
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            if out.document(&Value::Array(items.clone())) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["VERSION", "ACTIVE", "CREATED", "BY", "TASKS"]);
            for v in &items {
                table.row(vec![
                    cell(&v["version"]),
                    if v["active"] == true { "yes".into() } else { "".into() },
                    ago(&v["created_at"], now),
                    cell(&v["created_by"]),
                    v["spec"]["tasks"].as_array().map_or(0, Vec::len).to_string(),
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(0)
}

async fn store(client: &Client, spec: &linkloom_core::WorkflowSpec, out: Out) -> Result<(), Failure> {
    let body = serde_json::to_value(spec).map_err(|e| Failure::failed(e.to_string()))?;
    let answer = post(client, "/api/v1/workflows", Some(&body)).await?;
    if !out.document(&answer) {
        println!("workflow {} stored as version {}", cell(&answer["id"]), cell(&answer["version"]));
    }
    Ok(())
}

/// Polls an execution until it ends (progress on a terminal), prints it, and exits 0 only if it
/// succeeded.
async fn wait_and_report(client: &Client, id: &str, timeout: Duration, out: Out) -> Done {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let progress = std::io::stderr().is_terminal();
    let path = format!("/api/v1/executions/{}", seg(id));
    let execution = loop {
        match client.request_json(Method::GET, &path, None).await {
            Ok(e) if matches!(e["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) => break e,
            Ok(e) => {
                if progress {
                    let tasks = e["tasks"].as_array().cloned().unwrap_or_default();
                    let done = tasks
                        .iter()
                        .filter(|t| {
                            matches!(t["status"].as_str(), Some("succeeded" | "failed" | "skipped" | "cancelled"))
                        })
                        .count();
                    eprint!("\r{id}: {} ({done}/{} tasks done)   ", cell(&e["status"]), tasks.len());
                    let _ = std::io::stderr().flush();
                }
            }
            // A node going away mid-wait: the client already tried the others; keep waiting.
            Err(e) if e.is_connect() || e.is_unavailable() => {}
            Err(e) => return Err(e.into()),
        }
        if tokio::time::Instant::now() + pause > deadline {
            if progress {
                eprintln!();
            }
            return Err(Failure::failed(format!("execution {id} did not end within {timeout:?}")));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    };
    if progress {
        eprint!("\r\x1b[2K");
    }
    if !out.document(&execution) {
        print_execution(&execution, out);
    }
    Ok(if execution["status"] == "succeeded" { 0 } else { 1 })
}

// ----- executions -----

async fn execution(client: &Client, command: args::Execution, out: Out) -> Done {
    use args::Execution as E;
    match command {
        E::List { workflow, status, limit } => {
            if limit == 0 {
                return Err(Failure::usage("--limit must be at least 1"));
            }
            // Pages of at most 500, like every listing here (the nodes' default page limit).
            let mut query = vec!["order=newest".to_string(), format!("limit={}", limit.min(500))];
            if let Some(w) = &workflow {
                query.push(format!("workflow={}", seg(w)));
            }
            if let Some(s) = &status {
                query.push(format!("status={}", seg(s)));
            }
            let mut items: Vec<Value> = Vec::new();
            let mut cursor: Option<String> = None;
            while items.len() < limit as usize {
                let page_path = match &cursor {
                    None => format!("/api/v1/executions?{}", query.join("&")),
                    Some(c) => format!("/api/v1/executions?{}&cursor={}", query.join("&"), seg(c)),
                };
                let page = get(client, &page_path).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_string()),
                    None => break,
                }
            }
            items.truncate(limit as usize);
            if out.document(&Value::Array(items.clone())) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["ID", "WORKFLOW", "STATUS", "TRIGGER", "CREATED", "DURATION"]);
            for e in &items {
                let took =
                    between(&e["started_at"], &e["finished_at"], now).map(duration_ms).unwrap_or_else(|| "-".into());
                table.row(vec![
                    cell(&e["id"]),
                    cell(&e["workflow_id"]),
                    out.status(e["status"].as_str().unwrap_or("-")),
                    cell(&e["trigger"]),
                    ago(&e["created_at"], now),
                    took,
                ]);
            }
            print_table(&table, "no executions");
        }
        E::Describe { id } => {
            let e = get(client, &format!("/api/v1/executions/{}", seg(&id))).await?;
            if !out.document(&e) {
                print_execution(&e, out);
            }
        }
        E::Logs { id, task, follow } => {
            if !follow {
                print!("{}", client.logs(&id, task.as_deref()).await?);
                return Ok(0);
            }
            let mut stream = Box::pin(client.follow_logs(&id, task.as_deref()));
            while let Some(chunk) = stream.next().await {
                print!("{}", chunk?);
                let _ = std::io::stdout().flush();
            }
        }
        E::Cancel { id } => {
            let answer = post(client, &format!("/api/v1/executions/{}/cancel", seg(&id)), None).await?;
            if !out.document(&answer) {
                println!("execution {id} cancelled");
            }
        }
        E::Retry { id, wait, timeout } => {
            let answer = post(client, &format!("/api/v1/executions/{}/retry", seg(&id)), None).await?;
            if wait {
                let timeout = parse_duration(timeout.as_deref(), Duration::from_secs(3600))?;
                return wait_and_report(client, &id, timeout, out).await;
            }
            if !out.document(&answer) {
                println!("execution {id} reopened: {} tasks run again", cell(&answer["tasks_reset"]));
            }
        }
    }
    Ok(0)
}

/// An execution for people: a header, then each task with status, attempts, duration and a bar
/// on the execution's timeline.
fn print_execution(e: &Value, out: Out) {
    print!("{}", render_execution(e, out, Utc::now()));
}

fn render_execution(e: &Value, out: Out, now: chrono::DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "Execution:  {}", cell(&e["id"]));
    let _ = writeln!(text, "Workflow:   {} v{}", cell(&e["workflow_id"]), cell(&e["workflow_version"]));
    let _ = writeln!(text, "Status:     {}", out.status(e["status"].as_str().unwrap_or("-")));
    let _ = writeln!(text, "Trigger:    {} by {}", cell(&e["trigger"]), cell(&e["created_by"]));
    let _ = writeln!(text, "Created:    {}", ago(&e["created_at"], now));
    if let Some(took) = between(&e["started_at"], &e["finished_at"], now) {
        let _ = writeln!(text, "Duration:   {}", duration_ms(took));
    }
    for entry in e["audit"].as_array().into_iter().flatten() {
        let _ = writeln!(
            text,
            "            {} by {} {}",
            cell(&entry["action"]),
            cell(&entry["by"]),
            ago(&entry["at"], now)
        );
    }
    text.push('\n');
    let start = e["started_at"].as_str().or(e["created_at"].as_str()).map(|s| json!(s)).unwrap_or(Value::Null);
    let span = between(&start, &e["finished_at"], now).unwrap_or(0).max(1);
    const WIDTH: i64 = 30;
    let mut table = Table::new(&["TASK", "STATUS", "ATTEMPTS", "DURATION", "TIMELINE", "ERROR"]);
    for t in e["tasks"].as_array().into_iter().flatten() {
        let attempts = t["attempts"].as_array().cloned().unwrap_or_default();
        let first = attempts.first().map(|a| a["started_at"].clone()).unwrap_or(Value::Null);
        let last = attempts.last().map(|a| a["finished_at"].clone()).unwrap_or(Value::Null);
        let took = if attempts.is_empty() { None } else { between(&first, &last, now) };
        let bar = match (between(&start, &first, now), took) {
            (Some(offset), Some(took)) => {
                let from = (offset * WIDTH / span).clamp(0, WIDTH - 1);
                let len = ((took * WIDTH + span - 1) / span).clamp(1, WIDTH - from);
                format!(
                    "{}{}{}",
                    " ".repeat(from as usize),
                    "█".repeat(len as usize),
                    " ".repeat((WIDTH - from - len) as usize)
                )
            }
            _ => " ".repeat(WIDTH as usize),
        };
        let error = attempts.last().and_then(|a| a["error"].as_str()).unwrap_or("");
        table.row(vec![
            cell(&t["id"]),
            out.status(t["status"].as_str().unwrap_or("-")),
            attempts.len().to_string(),
            took.map(duration_ms).unwrap_or_else(|| "-".into()),
            format!("|{bar}|"),
            error.chars().take(60).collect(),
        ]);
    }
    text.push_str(&table.render());
    text
}

// ----- workers, cluster, tokens -----

async fn workers(client: &Client, out: Out) -> Done {
    let items = all(client, "/api/v1/workers").await?;
    if out.document(&Value::Array(items.clone())) {
        return Ok(0);
    }
    let now = Utc::now();
    let mut table = Table::new(&["ID", "NODE", "QUEUES", "RUNNING", "CONCURRENCY", "DRAINING", "CONNECTED"]);
    for w in &items {
        table.row(vec![
            cell(&w["id"]),
            cell(&w["node_id"]),
            cell(&w["queues"]),
            cell(&w["running"]),
            cell(&w["concurrency"]),
            if w["draining"] == true { "yes".into() } else { "no".into() },
            ago(&w["connected_at"], now),
        ]);
    }
    print_table(&table, "no workers connected");
    Ok(0)
}

/// Every member's own view (asked of each member directly), for `cluster status` and `status`.
async fn member_views(ctx: &Ctx) -> Result<(Value, Vec<(Value, Option<Value>)>), Failure> {
    let client = &ctx.client;
    let info = get(client, "/api/v1/cluster").await?;
    let mut views = Vec::new();
    for m in info["members"].as_array().cloned().unwrap_or_default() {
        let view = match m["addr"].as_str() {
            Some(addr) => {
                let scheme = if client.current_server().starts_with("https://") { "https" } else { "http" };
                let one = Client::builder()
                    .server(format!("{scheme}://{addr}"))
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(Duration::from_secs(3))
                    .max_attempts(1);
                let one = match &ctx.token {
                    Some(t) => one.token(t),
                    None => one,
                };
                match one.build() {
                    Ok(one) => one.request_json(Method::GET, "/api/v1/cluster?consistency=stale", None).await.ok(),
                    Err(_) => None,
                }
            }
            None => None,
        };
        views.push((m, view));
    }
    Ok((info, views))
}

async fn cluster(ctx: &Ctx, command: args::Cluster, out: Out) -> Done {
    use args::Cluster as C;
    let client = &ctx.client;
    match command {
        C::Status => {
            let (info, views) = member_views(ctx).await?;
            let doc: Vec<Value> = views
                .iter()
                .map(|(m, v)| json!({"id": m["id"], "addr": m["addr"], "voter": m["voter"], "view": v}))
                .collect();
            if out.document(&json!({"leader_id": info["leader_id"], "term": info["term"], "members": doc})) {
                return Ok(0);
            }
            let mut table = Table::new(&["NODE", "ADDR", "ROLE", "LEADER", "TERM", "APPLIED", "LAG"]);
            let top = views.iter().filter_map(|(_, v)| v.as_ref()?["last_applied"].as_u64()).max().unwrap_or(0);
            for (m, v) in &views {
                match v {
                    Some(v) => table.row(vec![
                        cell(&m["id"]),
                        cell(&m["addr"]),
                        out.status(v["state"].as_str().unwrap_or("-")),
                        cell(&v["leader_id"]),
                        cell(&v["term"]),
                        cell(&v["last_applied"]),
                        top.saturating_sub(v["last_applied"].as_u64().unwrap_or(0)).to_string(),
                    ]),
                    None => table.row(vec![
                        cell(&m["id"]),
                        cell(&m["addr"]),
                        out.status("down"),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]),
                }
            }
            print!("{}", table.render());
        }
        C::Members => {
            let info = get(client, "/api/v1/cluster").await?;
            let members = info["members"].clone();
            if out.document(&members) {
                return Ok(0);
            }
            let mut table = Table::new(&["ID", "ADDR", "VOTER", "LEADER"]);
            for m in members.as_array().into_iter().flatten() {
                let leader = if m["id"] == info["leader_id"] { out.status("leader") } else { String::new() };
                table.row(vec![cell(&m["id"]), cell(&m["addr"]), cell(&m["voter"]), leader]);
            }
            print!("{}", table.render());
        }
        C::Add { id, addr } => {
            let answer = post(client, "/api/v1/cluster/members", Some(&json!({"id": id, "addr": addr}))).await?;
            if !out.document(&answer) {
                println!("node {id} added as a learner at {addr}");
            }
        }
        C::Promote { id } => {
            let answer = post(client, &format!("/api/v1/cluster/members/{id}/promote"), None).await?;
            if !out.document(&answer) {
                println!("node {id} is a voter");
            }
        }
        C::Remove { id } => {
            let answer = client.request_json(Method::DELETE, &format!("/api/v1/cluster/members/{id}"), None).await?;
            if !out.document(&answer) {
                println!("node {id} removed");
            }
        }
        C::Limits { set } => {
            let answer = if set.is_empty() {
                get(client, "/api/v1/cluster/limits").await?
            } else {
                let mut change = serde_json::Map::new();
                for pair in &set {
                    let (key, value) = pair
                        .split_once('=')
                        .ok_or_else(|| Failure::usage(format!("--set `{pair}` is not key=value")))?;
                    let value: u64 =
                        value.parse().map_err(|_| Failure::usage(format!("--set {key}: `{value}` is not a number")))?;
                    change.insert(key.to_string(), json!(value));
                }
                client.request_json(Method::PUT, "/api/v1/cluster/limits", Some(&Value::Object(change))).await?
            };
            if out.document(&answer) {
                return Ok(0);
            }
            let mut table = Table::new(&["LIMIT", "VALUE", "CEILING"]);
            for (key, value) in answer.as_object().into_iter().flatten().filter(|(k, _)| *k != "ceilings") {
                table.row(vec![key.clone(), cell(value), cell(&answer["ceilings"][key])]);
            }
            print!("{}", table.render());
        }
    }
    Ok(0)
}

async fn token(client: &Client, command: args::Token, out: Out) -> Done {
    use args::Token as T;
    match command {
        T::Create { name, role, queues } => {
            let mut body = json!({"name": name, "role": role});
            if let Some(queues) = &queues {
                body["queues"] = json!(queues);
            }
            let answer = post(client, "/api/v1/tokens", Some(&body)).await?;
            if !out.document(&answer) {
                println!("{}", cell(&answer["token"]));
                let limited = queues.map(|q| format!(", queues {}", q.join(","))).unwrap_or_default();
                eprintln!("token `{name}` ({role}{limited}) created; this is the only time its secret is shown");
            }
        }
        T::List => {
            let items = all(client, "/api/v1/tokens").await?;
            if out.document(&Value::Array(items.clone())) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["NAME", "ROLE", "QUEUES", "CREATED", "BY"]);
            for t in &items {
                let queues = match t["queues"].as_array() {
                    Some(q) => q.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                    None => "*".to_string(),
                };
                table.row(vec![
                    cell(&t["name"]),
                    cell(&t["role"]),
                    queues,
                    ago(&t["created_at"], now),
                    cell(&t["created_by"]),
                ]);
            }
            print_table(&table, "no tokens");
        }
        T::Revoke { name } => {
            client.request_json(Method::DELETE, &format!("/api/v1/tokens/{}", seg(&name)), None).await?;
            if !out.document(&json!({"name": name, "revoked": true})) {
                println!("token {name} revoked");
            }
        }
    }
    Ok(0)
}

// ----- status -----

async fn status(ctx: &Ctx, out: Out) -> Done {
    let client = &ctx.client;
    let (info, views) = member_views(ctx).await?;
    let running = all(client, "/api/v1/executions?status=running").await?;
    let mut failed = all(client, "/api/v1/executions?status=failed").await?;
    failed.sort_by(|a, b| b["finished_at"].as_str().cmp(&a["finished_at"].as_str()));
    let workers = all(client, "/api/v1/workers").await?;
    let up = views.iter().filter(|(_, v)| v.is_some()).count();
    let top = views.iter().filter_map(|(_, v)| v.as_ref()?["last_applied"].as_u64()).max().unwrap_or(0);
    let lag = views
        .iter()
        .filter_map(|(_, v)| v.as_ref()?["last_applied"].as_u64())
        .map(|a| top.saturating_sub(a))
        .max()
        .unwrap_or(0);
    let recent: Vec<Value> = failed.iter().take(5).cloned().collect();
    let doc = json!({
        "leader_id": info["leader_id"], "term": info["term"],
        "nodes": views.len(), "nodes_up": up, "max_lag": lag,
        "running": running.len(), "failed": failed.len(), "workers": workers.len(),
        "auth": info["auth"], "recent_failures": recent,
    });
    if out.document(&doc) {
        return Ok(0);
    }
    let now = Utc::now();
    let health = if up == views.len() {
        out.status("succeeded").replace("succeeded", "healthy")
    } else {
        out.status("failed").replace("failed", "degraded")
    };
    println!(
        "Cluster:     {health}, {up}/{} nodes up, leader {}, term {}",
        views.len(),
        cell(&info["leader_id"]),
        cell(&info["term"])
    );
    println!("Lag:         {lag} entries at most behind the furthest node");
    println!("Executions:  {} running, {} failed (kept)", running.len(), failed.len());
    println!("Workers:     {}", workers.len());
    if info["auth"]["enabled"] == false {
        println!("Auth:        {}", out.dim("open (no token needed): set LOOM_ADMIN_TOKEN on the nodes"));
    }
    if !recent.is_empty() {
        println!("\nRecent failures:");
        let mut table = Table::new(&["ID", "WORKFLOW", "FINISHED", "ERROR"]);
        for e in &recent {
            let error = e["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["attempts"].as_array()?.last()?["error"].as_str())
                .next()
                .unwrap_or("");
            table.row(vec![
                cell(&e["id"]),
                cell(&e["workflow_id"]),
                ago(&e["finished_at"], now),
                error.chars().take(60).collect(),
            ]);
        }
        print!("{}", table.render());
    }
    Ok(0)
}

// ----- local commands -----

pub fn config(command: &args::Config, out: Out) -> Done {
    match command {
        args::Config::Set { key, value } => {
            config::set(key, value)?;
            if !out.document(&json!({key.as_str(): value})) {
                println!("{key} set in {}", config::path()?.display());
            }
        }
        args::Config::Get { key } => {
            config::check_key(key)?;
            let settings = config::load()?;
            match settings.get(key.as_str()) {
                Some(v) => {
                    if !out.document(&json!(v)) {
                        println!("{v}");
                    }
                }
                None => return Err(Failure { code: 5, message: format!("{key} is not set") }),
            }
        }
        args::Config::List => {
            let settings = config::load()?;
            let shown: serde_json::Map<String, Value> = settings
                .iter()
                .map(|(k, v)| (k.clone(), json!(if k == "token" { "***".to_string() } else { v.clone() })))
                .collect();
            if !out.document(&Value::Object(shown.clone())) {
                for (k, v) in &shown {
                    println!("{k} = {}", cell(v));
                }
            }
        }
    }
    Ok(0)
}

pub fn completion(shell: &str) -> Done {
    use clap::CommandFactory;
    let shell = match shell {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        _ => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut crate::args::Cli::command(), "loom", &mut std::io::stdout());
    Ok(0)
}

fn print_table(table: &Table, empty: &str) {
    if table.is_empty() {
        eprintln!("{empty}");
    } else {
        print!("{}", table.render());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Format;

    #[test]
    fn an_execution_reads_at_a_glance() {
        let e = json!({
            "id": "etl:20261126T120000.000Z-1", "workflow_id": "etl", "workflow_version": 3,
            "status": "failed", "trigger": "manual", "created_by": "ci",
            "created_at": "2026-11-26T12:00:00Z", "started_at": "2026-11-26T12:00:00Z",
            "finished_at": "2026-11-26T12:00:10Z",
            "audit": [{"action": "retried", "by": "alice", "at": "2026-11-26T12:00:05Z"}],
            "tasks": [
                {"id": "extract", "status": "succeeded", "attempts": [
                    {"started_at": "2026-11-26T12:00:00Z", "finished_at": "2026-11-26T12:00:02Z", "error": null}]},
                {"id": "load", "status": "failed", "attempts": [
                    {"started_at": "2026-11-26T12:00:02Z", "finished_at": "2026-11-26T12:00:04Z", "error": "exited with code 3"},
                    {"started_at": "2026-11-26T12:00:05Z", "finished_at": "2026-11-26T12:00:10Z", "error": "exited with code 3"}]},
                {"id": "report", "status": "skipped", "attempts": []}
            ]
        });
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T12:01:00Z").unwrap().with_timezone(&Utc);
        let text = render_execution(&e, Out { format: Format::Table, color: false }, now);
        let expected = "\
Execution:  etl:20261126T120000.000Z-1
Workflow:   etl v3
Status:     failed
Trigger:    manual by ci
Created:    1m ago
Duration:   10.0s
            retried by alice 55s ago

TASK     STATUS     ATTEMPTS  DURATION  TIMELINE                          ERROR
extract  succeeded  1         2.0s      |██████                        |
load     failed     2         8.0s      |      ████████████████████████|  exited with code 3
report   skipped    0         -         |                              |
";
        assert_eq!(text, expected, "\n{text}");
    }
}
