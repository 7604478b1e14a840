//! `loom watch`: a full-screen view of the cluster that redraws in place — the leader and each
//! member, executions running and recent, workers and queues — until `q` (or Esc, or Ctrl-C).
//!
//! The screen is drawn with ratatui on crossterm. The terminal is restored however the view
//! ends (a panic included), so a failure never leaves the shell in raw mode.

use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::ExecutableCommand;
use linkloom::{Client, ClusterView, Execution, ExecutionFilter, ExecutionStatus, Queue, WorkerInfo};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Terminal;

use crate::output::{ago, between, duration_ms, opt};
use crate::Failure;

/// One refresh's worth of data (or why it could not be fetched).
#[derive(Default)]
struct Snapshot {
    cluster: ClusterView,
    executions: Vec<Execution>,
    workers: Vec<WorkerInfo>,
    queues: Vec<Queue>,
    error: Option<String>,
    fetched: Option<Instant>,
}

/// The newest executions the view lists.
const SHOWN_EXECUTIONS: u32 = 50;

/// The cluster view from the leader; the lists from the node asked (stale reads), so the view
/// keeps drawing while the cluster elects a leader.
async fn fetch(client: &Client) -> Snapshot {
    let stale = client.with_stale_reads(true);
    let result = async {
        let cluster = client.cluster().await?;
        let newest = ExecutionFilter::new().newest_first().limit(SHOWN_EXECUTIONS);
        let executions = stale.list_executions(&newest).await?.items;
        let workers = stale.workers().await?;
        let queues = stale.queues().await?;
        Ok::<_, linkloom::Error>(Snapshot {
            cluster,
            executions,
            workers,
            queues,
            error: None,
            fetched: Some(Instant::now()),
        })
    }
    .await;
    result.unwrap_or_else(|e| Snapshot { error: Some(e.to_string()), ..Snapshot::default() })
}

fn status_style(status: &str) -> Style {
    match status {
        "succeeded" | "leader" => Style::default().fg(Color::Green),
        "failed" | "timed_out" | "lost" => Style::default().fg(Color::Red),
        "running" | "queued" | "retrying" => Style::default().fg(Color::Yellow),
        _ => Style::default().fg(Color::DarkGray),
    }
}

fn draw(frame: &mut ratatui::Frame, snapshot: &Snapshot, server: &str) {
    let now = Utc::now();
    let areas =
        Layout::vertical([Constraint::Length(4), Constraint::Min(6), Constraint::Length(6), Constraint::Length(1)])
            .split(frame.area());

    let c = &snapshot.cluster;
    let header = match &snapshot.error {
        Some(e) => {
            vec![Line::from(Span::styled(format!("cannot reach {server}: {e}"), Style::default().fg(Color::Red)))]
        }
        None => {
            let members: Vec<Span> = c
                .members
                .iter()
                .map(|m| {
                    let leader = Some(m.id) == c.leader_id;
                    let text = format!(" {}{} ", m.id, if leader { "*" } else { "" });
                    if leader {
                        Span::styled(text, Style::default().fg(Color::Green).add_modifier(Modifier::BOLD))
                    } else {
                        Span::raw(text)
                    }
                })
                .collect();
            let running = snapshot.executions.iter().filter(|e| e.status == ExecutionStatus::Running).count();
            let failed = snapshot.executions.iter().filter(|e| e.status == ExecutionStatus::Failed).count();
            let mut first = vec![
                Span::styled("Link Loom ", Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(format!(
                    "leader {}  term {}  applied {}  members",
                    opt(c.leader_id),
                    c.term,
                    opt(c.last_applied)
                )),
            ];
            first.extend(members);
            vec![
                Line::from(first),
                Line::from(format!(
                    "running {running}  failed {failed} (of the latest {})  workers {}  via {server}",
                    snapshot.executions.len(),
                    snapshot.workers.len()
                )),
            ]
        }
    };
    frame.render_widget(
        Paragraph::new(header).block(Block::default().borders(Borders::ALL).title(" cluster ")),
        areas[0],
    );

    let rows: Vec<Row> = snapshot
        .executions
        .iter()
        .map(|e| {
            let status = e.status.as_str();
            let took = between(e.started_at.as_deref(), e.finished_at.as_deref(), now)
                .map(duration_ms)
                .unwrap_or_else(|| "-".into());
            Row::new(vec![
                Cell::from(e.id.clone()),
                Cell::from(e.workflow_id.clone()),
                Cell::from(status).style(status_style(status)),
                Cell::from(e.trigger.as_str()),
                Cell::from(ago(Some(&e.created_at), now)),
                Cell::from(took),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(30),
            Constraint::Length(16),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(["EXECUTION", "WORKFLOW", "STATUS", "TRIGGER", "CREATED", "DURATION"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(" executions "));
    frame.render_widget(table, areas[1]);

    let queue_rows: Vec<Row> = snapshot
        .queues
        .iter()
        .map(|q| {
            Row::new(vec![
                q.queue.clone(),
                q.waiting.to_string(),
                q.workers.to_string(),
                format!("{}/{}", q.running, q.capacity),
            ])
        })
        .collect();
    let queues = Table::new(
        queue_rows,
        [Constraint::Min(20), Constraint::Length(9), Constraint::Length(9), Constraint::Length(12)],
    )
    .header(Row::new(["QUEUE", "WAITING", "WORKERS", "RUNNING"]).style(Style::default().add_modifier(Modifier::BOLD)))
    .block(Block::default().borders(Borders::ALL).title(" queues "));
    frame.render_widget(queues, areas[2]);

    let age = snapshot.fetched.map(|t| format!("updated {:.1}s ago", t.elapsed().as_secs_f64())).unwrap_or_default();
    frame.render_widget(
        Paragraph::new(format!(" q quit   {age}")).style(Style::default().fg(Color::DarkGray)),
        areas[3],
    );
}

/// Puts the terminal back: leaves raw mode and the alternate screen.
fn restore() {
    let _ = disable_raw_mode();
    let _ = std::io::stdout().execute(LeaveAlternateScreen);
}

/// Runs the view until the person quits; refreshes every `interval`.
pub fn run(runtime: &tokio::runtime::Runtime, client: &Client, interval: Duration) -> Result<i32, Failure> {
    let fail = |e: std::io::Error| Failure::failed(format!("the terminal: {e}"));
    enable_raw_mode().map_err(fail)?;
    if let Err(e) = std::io::stdout().execute(EnterAlternateScreen) {
        restore();
        return Err(fail(e));
    }
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous_hook(info);
    }));
    let result = (|| {
        let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(fail)?;
        let server = client.current_server();
        loop {
            let snapshot = runtime.block_on(fetch(client));
            terminal.draw(|frame| draw(frame, &snapshot, &server)).map_err(fail)?;
            let next = Instant::now() + interval;
            while let Some(left) = next.checked_duration_since(Instant::now()) {
                if !event::poll(left).map_err(fail)? {
                    break;
                }
                if let Event::Key(key) = event::read().map_err(fail)? {
                    let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                    if key.kind == KeyEventKind::Press
                        && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c)
                    {
                        return Ok(0);
                    }
                }
            }
        }
    })();
    restore();
    result
}
