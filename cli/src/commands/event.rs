//! `loom event ...`: send an event, list the ones the cluster remembers.

use std::io::Read;

use chrono::Utc;
use linkloom::{Client, Event};
use serde_json::Value;

use super::{print_table, Done};
use crate::args;
use crate::output::{ago, Out, Table};
use crate::Failure;

/// Most events one page brings (the nodes' default page limit).
const PAGE: u32 = 500;

pub(super) async fn run(client: &Client, command: args::Event, out: Out) -> Done {
    match command {
        args::Event::Send { name, id, payload } => {
            let payload = match payload {
                None => Value::Null,
                Some(text) => read_payload(&text)?,
            };
            let event = client.send_event(&name, id.as_deref(), payload).await?;
            if !out.document(&event) {
                print!("{}", render_sent(&event));
            }
        }
        args::Event::List { name, limit } => {
            if limit == 0 {
                return Err(Failure::usage("--limit must be at least 1"));
            }
            let mut items: Vec<Event> = Vec::new();
            let mut cursor: Option<String> = None;
            while items.len() < limit as usize {
                let page = client.list_events(name.as_deref(), Some(limit.min(PAGE)), cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            items.truncate(limit as usize);
            if out.document(&items) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["RECEIVED", "NAME", "ID", "SOURCE", "STARTED"]);
            for e in &items {
                table.row(vec![
                    ago(Some(&e.received_at), now),
                    e.name.clone(),
                    e.id.clone(),
                    e.source.to_string(),
                    started(e),
                ]);
            }
            print_table(&table, "no events");
        }
    }
    Ok(0)
}

/// `--payload`: JSON text, `@FILE`, or `@-` for standard input.
fn read_payload(text: &str) -> Result<Value, Failure> {
    let (source, json) = match text.strip_prefix('@') {
        Some("-") => {
            let mut buffer = String::new();
            std::io::stdin()
                .read_to_string(&mut buffer)
                .map_err(|e| Failure::usage(format!("reading the payload from standard input: {e}")))?;
            ("standard input".to_string(), buffer)
        }
        Some(path) => {
            let body = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("reading the payload file {path}: {e}")))?;
            (path.to_string(), body)
        }
        None => ("--payload".to_string(), text.to_string()),
    };
    serde_json::from_str(&json).map_err(|e| Failure::usage(format!("{source} is not JSON: {e}")))
}

/// The executions an event started, or why each workflow skipped it.
fn started(e: &Event) -> String {
    let mut parts: Vec<String> = e
        .outcomes
        .iter()
        .map(|o| match (&o.execution_id, &o.skipped) {
            (Some(id), _) => id.clone(),
            (None, Some(why)) => format!("{} skipped ({why})", o.workflow_id),
            (None, None) => format!("{} skipped", o.workflow_id),
        })
        .collect();
    if e.more_outcomes > 0 {
        parts.push(format!("and {} more", e.more_outcomes));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn render_sent(e: &Event) -> String {
    let mut text =
        format!("Event {} `{}`{}\n", e.name, e.id, if e.repeated { " (seen before: nothing new started)" } else { "" });
    if e.outcomes.is_empty() {
        text.push_str("No workflow's trigger matched it.\n");
    }
    for o in &e.outcomes {
        match (&o.execution_id, &o.skipped) {
            (Some(id), _) => text.push_str(&format!("  {}: {id}\n", o.workflow_id)),
            (None, why) => {
                text.push_str(&format!("  {}: skipped ({})\n", o.workflow_id, why.as_deref().unwrap_or("no reason")))
            }
        }
    }
    if e.more_outcomes > 0 {
        text.push_str(&format!("  and {} more workflows\n", e.more_outcomes));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkloom::EventOutcome;

    #[test]
    fn payloads_come_from_text_or_a_file() {
        assert_eq!(read_payload(r#"{"a": 1}"#).unwrap(), serde_json::json!({"a": 1}));
        let dir = std::env::temp_dir().join(format!("loom-event-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.json");
        std::fs::write(&file, r#"{"order_id": 7}"#).unwrap();
        assert_eq!(read_payload(&format!("@{}", file.display())).unwrap(), serde_json::json!({"order_id": 7}));
        assert!(read_payload("{not json").is_err());
        assert!(read_payload("@/nonexistent/p.json").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_sent_event_says_what_it_started() {
        let event = Event {
            name: "order.created".into(),
            id: "ev-1".into(),
            outcomes: vec![
                EventOutcome { workflow_id: "audit".into(), execution_id: Some("audit:ev-ev-1".into()), skipped: None },
                EventOutcome {
                    workflow_id: "ship".into(),
                    execution_id: None,
                    skipped: Some("the workflow is paused".into()),
                },
            ],
            ..Event::default()
        };
        let text = render_sent(&event);
        assert!(text.contains("audit: audit:ev-ev-1"), "{text}");
        assert!(text.contains("ship: skipped (the workflow is paused)"), "{text}");
        assert_eq!(started(&event), "audit:ev-ev-1, ship skipped (the workflow is paused)");
    }
}
