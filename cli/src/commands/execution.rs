//! `loom execution ...`: list, describe, follow logs, cancel and retry executions.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use linkloom::{Client, Execution, ExecutionFilter, ExecutionStatus};

use super::workflow::wait_and_report;
use super::{parse_duration, print_table, Done};
use crate::args;
use crate::output::{ago, between, duration_ms, opt, Out, Table};
use crate::Failure;

/// Most executions one page brings (the nodes' default page limit).
const PAGE: u32 = 500;

pub(super) async fn run(client: &Client, command: args::Execution, out: Out) -> Done {
    use args::Execution as E;
    match command {
        E::List { workflow, status, limit } => {
            if limit == 0 {
                return Err(Failure::usage("--limit must be at least 1"));
            }
            let mut filter = ExecutionFilter::new().newest_first().limit(limit.min(PAGE));
            if let Some(w) = &workflow {
                filter = filter.workflow(w.clone());
            }
            if let Some(s) = &status {
                let status = s.parse::<ExecutionStatus>().map_err(|e| Failure::usage(e.to_string()))?;
                filter = filter.status(status);
            }
            let mut items: Vec<Execution> = Vec::new();
            while items.len() < limit as usize {
                let page = client.list_executions(&filter).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(next) => filter = filter.cursor(next),
                    None => break,
                }
            }
            items.truncate(limit as usize);
            if out.document(&items) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["ID", "WORKFLOW", "STATUS", "TRIGGER", "CREATED", "DURATION"]);
            for e in &items {
                let took = between(e.started_at.as_deref(), e.finished_at.as_deref(), now)
                    .map(duration_ms)
                    .unwrap_or_else(|| "-".into());
                table.row(vec![
                    e.id.clone(),
                    e.workflow_id.clone(),
                    out.status(e.status.as_str()),
                    e.trigger.to_string(),
                    ago(Some(&e.created_at), now),
                    took,
                ]);
            }
            print_table(&table, "no executions");
        }
        E::Describe { id } => {
            let e = client.get_execution(&id).await?;
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
            let answer = client.cancel_execution(&id).await?;
            if !out.document(&answer) {
                println!("execution {id} cancelled");
            }
        }
        E::Retry { id, wait, timeout } => {
            let answer = client.retry_execution(&id).await?;
            if wait {
                let timeout = parse_duration(timeout.as_deref(), Duration::from_secs(3600))?;
                return wait_and_report(client, &id, timeout, out).await;
            }
            if !out.document(&answer) {
                println!("execution {id} reopened: {} tasks run again", answer.tasks_reset);
            }
        }
    }
    Ok(0)
}

/// An execution for people: a header, then each task with status, attempts, duration and a bar
/// on the execution's timeline.
pub(super) fn print_execution(e: &Execution, out: Out) {
    print!("{}", render_execution(e, out, Utc::now()));
}

fn render_execution(e: &Execution, out: Out, now: chrono::DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "Execution:  {}", e.id);
    let _ = writeln!(text, "Workflow:   {} v{}", e.workflow_id, e.workflow_version);
    let _ = writeln!(text, "Status:     {}", out.status(e.status.as_str()));
    let _ = writeln!(text, "Trigger:    {} by {}", e.trigger, opt(e.created_by.as_deref()));
    if let Some(event) = &e.event {
        let _ = writeln!(text, "Event:      {} `{}`", event.name, event.id);
    }
    let _ = writeln!(text, "Created:    {}", ago(Some(&e.created_at), now));
    if let Some(took) = between(e.started_at.as_deref(), e.finished_at.as_deref(), now) {
        let _ = writeln!(text, "Duration:   {}", duration_ms(took));
    }
    for entry in &e.audit {
        let _ = writeln!(
            text,
            "            {} by {} {}",
            entry.action,
            opt(entry.by.as_deref()),
            ago(Some(&entry.at), now)
        );
    }
    text.push('\n');
    let start = e.started_at.as_deref().unwrap_or(&e.created_at);
    let span = between(Some(start), e.finished_at.as_deref(), now).unwrap_or(0).max(1);
    const WIDTH: i64 = 30;
    let mut table = Table::new(&["TASK", "STATUS", "ATTEMPTS", "DURATION", "TIMELINE", "ERROR"]);
    for t in &e.tasks {
        let first = t.attempts.first().map(|a| a.started_at.as_str());
        let last = t.attempts.last().and_then(|a| a.finished_at.as_deref());
        let took = if t.attempts.is_empty() { None } else { between(first, last, now) };
        let bar = match (between(Some(start), first, now), took) {
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
        let error = t.attempts.last().and_then(|a| a.error.as_deref()).unwrap_or("");
        table.row(vec![
            t.id.clone(),
            out.status(t.status.as_str()),
            t.attempts.len().to_string(),
            took.map(duration_ms).unwrap_or_else(|| "-".into()),
            format!("|{bar}|"),
            error.chars().take(60).collect(),
        ]);
    }
    text.push_str(&table.render());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Format;

    #[test]
    fn an_execution_reads_at_a_glance() {
        let e: Execution = serde_json::from_value(serde_json::json!({
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
        }))
        .expect("an execution");
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
