//! `loom cluster ...`, `loom worker list` and `loom status`: the cluster's members and their own
//! views, its limits, its workers, and a summary of health and work.

use std::time::Duration;

use chrono::Utc;
use linkloom::{Client, ClusterView, ExecutionFilter, ExecutionStatus, LimitValues, LimitsChange, Member};
use serde_json::json;

use super::{print_table, Ctx, Done};
use crate::args;
use crate::output::{ago, opt, Out, Table};
use crate::Failure;

pub(super) async fn workers(client: &Client, out: Out) -> Done {
    let items = client.workers().await?;
    if out.document(&items) {
        return Ok(0);
    }
    let now = Utc::now();
    let mut table = Table::new(&["ID", "NODE", "QUEUES", "RUNNING", "CONCURRENCY", "DRAINING", "CONNECTED"]);
    for w in &items {
        table.row(vec![
            w.id.clone(),
            w.node_id.to_string(),
            w.queues.join(","),
            w.running.to_string(),
            w.concurrency.to_string(),
            if w.draining { "yes".into() } else { "no".into() },
            ago(Some(&w.connected_at), now),
        ]);
    }
    print_table(&table, "no workers connected");
    Ok(0)
}

/// Every member's own view (asked of each member directly, without the leader), for
/// `cluster status` and `status`.
async fn member_views(ctx: &Ctx) -> Result<(ClusterView, Vec<(Member, Option<ClusterView>)>), Failure> {
    let client = &ctx.client;
    let info = client.cluster().await?;
    let scheme = if client.current_server().starts_with("https://") { "https" } else { "http" };
    let mut views = Vec::new();
    for m in &info.members {
        let one = Client::builder()
            .server(format!("{scheme}://{}", m.addr))
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3))
            .max_attempts(1)
            .stale_reads(true);
        let one = match &ctx.token {
            Some(t) => one.token(t),
            None => one,
        };
        let view = match one.build() {
            Ok(one) => one.cluster().await.ok(),
            Err(_) => None,
        };
        views.push((m.clone(), view));
    }
    Ok((info, views))
}

pub(super) async fn run(ctx: &Ctx, command: args::Cluster, out: Out) -> Done {
    use args::Cluster as C;
    let client = &ctx.client;
    match command {
        C::Status => {
            let (info, views) = member_views(ctx).await?;
            let doc: Vec<_> =
                views.iter().map(|(m, v)| json!({"id": m.id, "addr": m.addr, "voter": m.voter, "view": v})).collect();
            if out.document(&json!({"leader_id": info.leader_id, "term": info.term, "members": doc})) {
                return Ok(0);
            }
            let mut table = Table::new(&["NODE", "ADDR", "ROLE", "LEADER", "TERM", "APPLIED", "LAG"]);
            let top = views.iter().filter_map(|(_, v)| v.as_ref()?.last_applied).max().unwrap_or(0);
            for (m, v) in &views {
                match v {
                    Some(v) => table.row(vec![
                        m.id.to_string(),
                        m.addr.clone(),
                        out.status(&v.state),
                        opt(v.leader_id),
                        v.term.to_string(),
                        opt(v.last_applied),
                        top.saturating_sub(v.last_applied.unwrap_or(0)).to_string(),
                    ]),
                    None => table.row(vec![
                        m.id.to_string(),
                        m.addr.clone(),
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
            let info = client.cluster().await?;
            if out.document(&info.members) {
                return Ok(0);
            }
            let mut table = Table::new(&["ID", "ADDR", "VOTER", "LEADER"]);
            for m in &info.members {
                let leader = if Some(m.id) == info.leader_id { out.status("leader") } else { String::new() };
                table.row(vec![m.id.to_string(), m.addr.clone(), m.voter.to_string(), leader]);
            }
            print!("{}", table.render());
        }
        C::Snapshot(args::Snapshot::Save { file, force }) => return save_snapshot(client, &file, force, out).await,
        C::Add { id, addr } => {
            let members = client.add_member(id, &addr).await?;
            if !out.document(&json!({"members": members})) {
                println!("node {id} added as a learner at {addr}");
            }
        }
        C::Promote { id } => {
            let members = client.promote_member(id).await?;
            if !out.document(&json!({"members": members})) {
                println!("node {id} is a voter");
            }
        }
        C::Remove { id } => {
            let members = client.remove_member(id).await?;
            if !out.document(&json!({"members": members})) {
                println!("node {id} removed");
            }
        }
        C::Limits { set } => {
            let limits =
                if set.is_empty() { client.limits().await? } else { client.set_limits(&limits_change(&set)?).await? };
            if out.document(&limits) {
                return Ok(0);
            }
            let mut table = Table::new(&["LIMIT", "VALUE", "CEILING"]);
            let (values, ceilings) = (limits.values, limits.ceilings);
            let mut rows: Vec<_> = values.named().into_iter().zip(ceilings.named()).collect();
            rows.sort_by_key(|((name, _), _)| *name);
            for ((name, value), (_, ceiling)) in rows {
                table.row(vec![name.to_string(), value.to_string(), ceiling.to_string()]);
            }
            print!("{}", table.render());
        }
    }
    Ok(0)
}

/// `--set name=value` pairs as a change of limits; a name the cluster does not have is refused
/// here, naming it.
fn limits_change(pairs: &[String]) -> Result<LimitsChange, Failure> {
    let mut change = LimitsChange::default();
    for pair in pairs {
        let (key, value) =
            pair.split_once('=').ok_or_else(|| Failure::usage(format!("--set `{pair}` is not key=value")))?;
        let value: u32 =
            value.parse().map_err(|_| Failure::usage(format!("--set {key}: `{value}` is not a number")))?;
        if !change.set(key, value) {
            let names: Vec<&str> = LimitValues::default().named().iter().map(|(name, _)| *name).collect();
            return Err(Failure::usage(format!("--set {key}: not a limit ({})", names.join(", "))));
        }
    }
    Ok(change)
}

/// Every execution in `status` (pages of the API's largest size).
async fn executions_in(client: &Client, status: ExecutionStatus) -> Result<Vec<linkloom::Execution>, Failure> {
    let mut filter = ExecutionFilter::new().status(status).limit(500);
    let mut items = Vec::new();
    loop {
        let page = client.list_executions(&filter).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => filter = filter.cursor(next),
            None => return Ok(items),
        }
    }
}

pub(super) async fn status(ctx: &Ctx, out: Out) -> Done {
    let client = &ctx.client;
    let (info, views) = member_views(ctx).await?;
    let running = executions_in(client, ExecutionStatus::Running).await?;
    let mut failed = executions_in(client, ExecutionStatus::Failed).await?;
    failed.sort_by(|a, b| b.finished_at.cmp(&a.finished_at));
    let workers = client.workers().await?;
    let up = views.iter().filter(|(_, v)| v.is_some()).count();
    let applied: Vec<u64> = views.iter().filter_map(|(_, v)| v.as_ref()?.last_applied).collect();
    let top = applied.iter().copied().max().unwrap_or(0);
    let lag = applied.iter().map(|a| top.saturating_sub(*a)).max().unwrap_or(0);
    let recent: Vec<_> = failed.iter().take(5).collect();
    let doc = json!({
        "leader_id": info.leader_id, "term": info.term,
        "nodes": views.len(), "nodes_up": up, "max_lag": lag,
        "running": running.len(), "failed": failed.len(), "workers": workers.len(),
        "auth": info.auth, "recent_failures": recent,
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
        opt(info.leader_id),
        info.term
    );
    println!("Lag:         {lag} entries at most behind the furthest node");
    println!("Executions:  {} running, {} failed (kept)", running.len(), failed.len());
    println!("Workers:     {}", workers.len());
    if !info.auth.enabled {
        println!("Auth:        {}", out.dim("open (no token needed): set LOOM_ADMIN_TOKEN on the nodes"));
    }
    if !recent.is_empty() {
        println!("\nRecent failures:");
        let mut table = Table::new(&["ID", "WORKFLOW", "FINISHED", "ERROR"]);
        for e in &recent {
            let error = e.tasks.iter().filter_map(|t| t.attempts.last()?.error.as_deref()).next().unwrap_or("");
            table.row(vec![
                e.id.clone(),
                e.workflow_id.clone(),
                ago(e.finished_at.as_deref(), now),
                error.chars().take(60).collect(),
            ]);
        }
        print!("{}", table.render());
    }
    Ok(0)
}

/// `loom cluster snapshot save FILE`: downloads a backup, checks its checksum, and writes it
/// beside FILE first, renaming it into place only once it is complete and on disk.
async fn save_snapshot(client: &Client, file: &std::path::Path, force: bool, out: Out) -> Done {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if file.exists() && !force {
        return Err(Failure::usage(format!("{} exists: pass --force to replace it", file.display())));
    }
    let started = std::time::Instant::now();
    let bytes = client.snapshot().await?;
    let (_, sha256) = linkloom_core::archive::open(&bytes)
        .map_err(|e| Failure::failed(format!("the node sent a backup that does not check out: {e}")))?;
    let partial = file.with_extension("partial");
    let failed = |what: &str, e: std::io::Error| Failure::failed(format!("{what} {}: {e}", partial.display()));
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| failed("creating", e))?;
    handle.write_all(&bytes).map_err(|e| failed("writing", e))?;
    handle.sync_all().map_err(|e| failed("syncing", e))?;
    std::fs::rename(&partial, file)
        .map_err(|e| Failure::failed(format!("renaming {} to {}: {e}", partial.display(), file.display())))?;
    let doc = json!({
        "file": file.display().to_string(),
        "bytes": bytes.len(),
        "sha256": sha256,
        "ms": started.elapsed().as_millis() as u64,
    });
    if !out.document(&doc) {
        println!(
            "saved {} ({} bytes, sha256 {sha256}) in {} ms",
            file.display(),
            bytes.len(),
            started.elapsed().as_millis()
        );
    }
    Ok(0)
}
