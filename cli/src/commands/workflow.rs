//! `loom workflow ...`: store, show, trigger, pause, backfill and version workflows.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use chrono::Utc;
use linkloom::{Client, Execution, TaskKind, WorkflowSpec};
use serde_json::{json, Value};

use super::execution::print_execution;
use super::local::read_spec;
use super::{parse_duration, print_table, Done};
use crate::args;
use crate::output::{ago, opt, Out, Table};
use crate::Failure;

pub(super) async fn run(client: &Client, command: args::Workflow, out: Out) -> Done {
    use args::Workflow as W;
    match command {
        W::List => {
            let items = client.list_workflows().await?;
            if out.document(&items) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["ID", "VERSION", "SCHEDULE", "NEXT", "PAUSED", "TASKS", "UPDATED"]);
            for wf in &items {
                let spec = linkloom::parse_spec(wf).ok();
                table.row(vec![
                    wf.id.clone(),
                    wf.version.to_string(),
                    opt(spec.as_ref().and_then(|s| s.schedule.as_deref())),
                    ago(wf.next_fire_at.as_deref(), now),
                    if wf.paused { out.status("yes") } else { "no".into() },
                    spec.map_or_else(|| "-".into(), |s| s.tasks.len().to_string()),
                    ago(Some(&wf.updated_at), now),
                ]);
            }
            print_table(&table, "no workflows");
        }
        W::Describe { id } => {
            let wf = client.get_workflow(&id).await?;
            if out.document(&wf) {
                return Ok(0);
            }
            let spec = linkloom::parse_spec(&wf)?;
            let now = Utc::now();
            let versions = wf.versions.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            println!("Workflow:    {}", wf.id);
            println!("Version:     {} (of {versions})", wf.version);
            let schedule = format!("{} {}", opt(spec.schedule.as_deref()), spec.timezone.as_deref().unwrap_or(""));
            println!("Schedule:    {}", schedule.trim_end());
            println!("Paused:      {}", if wf.paused { "yes" } else { "no" });
            if let Some(next) = &wf.next_fire_at {
                println!("Next fire:   {next} ({})", ago(Some(next), now));
            }
            println!("Created:     {} by {}", ago(Some(&wf.created_at), now), opt(wf.created_by.as_deref()));
            println!("Updated:     {} by {}", ago(Some(&wf.updated_at), now), opt(wf.updated_by.as_deref()));
            if let Some(d) = &spec.description {
                println!("Description: {d}");
            }
            println!();
            print!("{}", task_table(&spec).render());
        }
        W::Create { file } => {
            let spec = read_spec(&file)?;
            match client.get_workflow(&spec.id).await {
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
            client.delete_workflow(&id).await?;
            if !out.document(&json!({"id": id, "deleted": true})) {
                println!("workflow {id} deleted");
            }
        }
        W::Validate { file } => return super::validate(&file, out),
        W::Trigger { id, params, wait, timeout } => {
            let mut overrides = serde_json::Map::new();
            for p in &params {
                let (key, value) =
                    p.split_once('=').ok_or_else(|| Failure::usage(format!("--param `{p}` is not key=value")))?;
                let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
                overrides.insert(key.to_string(), value);
            }
            let timeout = parse_duration(timeout.as_deref(), Duration::from_secs(3600))?;
            let execution_id = client.trigger(&id, Value::Object(overrides)).await?;
            if !wait {
                if !out.document(&json!({"execution_id": execution_id})) {
                    println!("{execution_id}");
                }
                return Ok(0);
            }
            return wait_and_report(client, &execution_id, timeout, out).await;
        }
        W::Pause { id } => {
            let answer = client.pause(&id).await?;
            if !out.document(&answer) {
                println!("workflow {id} paused");
            }
        }
        W::Resume { id } => {
            let answer = client.resume(&id).await?;
            if !out.document(&answer) {
                println!("workflow {id} resumed");
            }
        }
        W::Backfill { id, from, to } => {
            let answer = client.backfill(&id, &from, &to).await?;
            if !out.document(&answer) {
                println!("{} executions created, {} existed already", answer.created, answer.existing);
            }
        }
        W::Versions { id } => {
            let items = client.workflow_versions(&id).await?;
            if out.document(&items) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["VERSION", "ACTIVE", "CREATED", "BY", "TASKS"]);
            for v in &items {
                let tasks = v.spec.get("tasks").and_then(Value::as_array).map_or(0, Vec::len);
                table.row(vec![
                    v.version.to_string(),
                    if v.active { "yes".into() } else { "".into() },
                    ago(Some(&v.created_at), now),
                    opt(v.created_by.as_deref()),
                    tasks.to_string(),
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(0)
}

/// The tasks of a spec: id, type, dependencies and what each runs.
fn task_table(spec: &WorkflowSpec) -> Table {
    let mut table = Table::new(&["TASK", "TYPE", "DEPENDS ON", "TARGET"]);
    for t in &spec.tasks {
        let target = match t.kind {
            TaskKind::Http => opt(t.url.as_deref()),
            TaskKind::Shell => match &t.command {
                Some(linkloom_core::spec::ShellCommand::Argv(argv)) => argv.join(" "),
                Some(linkloom_core::spec::ShellCommand::Script(script)) => script.clone(),
                None => "-".into(),
            },
            TaskKind::Worker => format!("queue {}", opt(t.queue.as_deref())),
        };
        let depends = if t.depends_on.is_empty() { "-".into() } else { t.depends_on.join(",") };
        table.row(vec![t.id.clone(), t.kind.to_string(), depends, target]);
    }
    table
}

async fn store(client: &Client, spec: &WorkflowSpec, out: Out) -> Result<(), Failure> {
    let answer = client.put_workflow(spec).await?;
    if !out.document(&answer) {
        println!("workflow {} stored as version {}", answer.id, answer.version);
    }
    Ok(())
}

/// Polls an execution until it ends (progress on a terminal), prints it, and exits 0 only if it
/// succeeded.
pub(super) async fn wait_and_report(client: &Client, id: &str, timeout: Duration, out: Out) -> Done {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let progress = std::io::stderr().is_terminal();
    let execution: Execution = loop {
        match client.get_execution(id).await {
            Ok(e) if e.status.is_terminal() => break e,
            Ok(e) => {
                if progress {
                    let done = e.tasks.iter().filter(|t| is_done(t.status)).count();
                    eprint!("\r{id}: {} ({done}/{} tasks done)   ", e.status, e.tasks.len());
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
    Ok(if execution.status == linkloom::ExecutionStatus::Succeeded { 0 } else { 1 })
}

fn is_done(status: linkloom::TaskStatus) -> bool {
    use linkloom::TaskStatus::*;
    matches!(status, Succeeded | Failed | Skipped | Cancelled)
}
