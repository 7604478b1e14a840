//! `history`: how the cluster carries what it has run. Fills it with `--count` finished
//! executions across `--workflows` workflows (one HTTP task each, answered at once by the bench
//! backend, triggered `--concurrency` at a time), then times listing a workflow's newest 100
//! executions (`--samples` times, spread over the workflows): those are the report's latencies.
//! `fill_per_s` is executions triggered per second while filling. With a process owner
//! ([`Faults`]) it also kills a follower and times its restart until it is ready again.
//!
//! Retention would drop what the fill adds, so the run raises `max_kept_executions` and
//! `max_kept_executions_per_workflow` to hold it (and puts the old values back afterwards, which
//! drops the oldest finished executions of the cluster beyond them): run it on a cluster whose
//! history may go, as `loom-bench` does on a fresh one.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use linkloom::{Client, ExecutionFilter, ExecutionStatus, LimitsChange};
use serde_json::json;

use crate::backend::Backend;
use crate::drive::drive;
use crate::report::{Measured, Report};
use crate::{ms, BenchError, Faults, Plan};

/// How long the executions triggered may take to finish once the fill has ended, per 1,000.
const SETTLE_PER_THOUSAND: Duration = Duration::from_secs(2);

pub(crate) async fn run(
    client: &Client,
    name: &str,
    plan: &Plan,
    faults: Option<&dyn Faults>,
) -> Result<Report, BenchError> {
    let (count, workflows) = (plan.count, plan.options.workflows);
    let before = client.limits().await?;
    let need_total = u32::try_from(count).unwrap_or(u32::MAX).saturating_add(1_000);
    let need_each = u32::try_from(count.div_ceil(workflows)).unwrap_or(u32::MAX).saturating_add(1);
    let (values, ceilings) = (before.values, before.ceilings);
    let raised = retention(
        need_total.max(values.max_kept_executions).min(ceilings.max_kept_executions),
        need_each.max(values.max_kept_executions_per_workflow).min(ceilings.max_kept_executions_per_workflow),
    );
    client.set_limits(&raised).await?;
    let result = fill_and_measure(client, name, plan, faults).await;
    let _ = client.set_limits(&retention(values.max_kept_executions, values.max_kept_executions_per_workflow)).await;
    result
}

/// A change of the two retention limits a fill depends on.
fn retention(total: u32, per_workflow: u32) -> LimitsChange {
    LimitsChange {
        max_kept_executions: Some(total),
        max_kept_executions_per_workflow: Some(per_workflow),
        ..LimitsChange::default()
    }
}

async fn fill_and_measure(
    client: &Client,
    name: &str,
    plan: &Plan,
    faults: Option<&dyn Faults>,
) -> Result<Report, BenchError> {
    let (count, workflows) = (plan.count, plan.options.workflows);
    let backend = Backend::start(false).await?;
    for w in 0..workflows {
        let yaml = format!("id: {name}-{w}\ntasks:\n  - {{id: t, type: http, url: \"{}\"}}\n", backend.url);
        client.put_workflow_yaml(&yaml).await?;
    }
    // Fill: triggers only; the cluster runs them meanwhile.
    let fill_plan = Plan { warmup: 0, duration: None, ..plan.clone() };
    let (trigger_client, prefix) = (client.clone(), name.to_string());
    let filled = drive(&fill_plan, plan.concurrency, move |i| {
        let (client, workflow) = (trigger_client.clone(), format!("{prefix}-{}", i % workflows));
        async move {
            let sent = Instant::now();
            client.trigger(&workflow, json!({})).await?;
            Ok(ms(sent.elapsed()))
        }
    })
    .await?;
    let fill_per_s = filled.samples_ms.len() as f64 / filled.elapsed.as_secs_f64().max(1e-9);
    let settle = SETTLE_PER_THOUSAND * (count / 1_000 + 30) as u32;
    wait_until_run(client, &backend, filled.samples_ms.len(), settle).await?;
    // Listing a workflow's newest 100, spread over the workflows.
    let samples = plan.options.samples;
    let mut listed = Measured::default();
    let started = Instant::now();
    for i in 0..samples {
        let filter = ExecutionFilter::new().workflow(format!("{name}-{}", i % workflows)).newest_first().limit(100);
        let sent = Instant::now();
        match client.list_executions(&filter).await {
            Ok(_) => listed.samples_ms.push(ms(sent.elapsed())),
            Err(e) => {
                listed.errors += 1;
                listed.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    listed.elapsed = started.elapsed();
    let mut report = Report::new(plan.scenario, 1, listed)
        .with("filled", filled.samples_ms.len() as f64)
        .with("fill_errors", filled.errors as f64)
        .with("fill_per_s", fill_per_s);
    if let Some(faults) = faults {
        let ready = tokio::task::block_in_place(|| faults.restart_follower()).map_err(BenchError::Failed)?;
        report = report.with("restart_to_ready_ms", ms(ready));
    }
    Ok(report)
}

/// Waits (bounded) until the backend has seen `n` tasks and nothing is left unfinished.
async fn wait_until_run(client: &Client, backend: &Backend, n: usize, bound: Duration) -> Result<(), BenchError> {
    let deadline = Instant::now() + bound;
    loop {
        let arrived = backend.arrived.load(Ordering::Relaxed);
        if arrived >= n as u64 {
            let mut unfinished = 0;
            for status in [ExecutionStatus::Queued, ExecutionStatus::Running] {
                unfinished +=
                    client.list_executions(&ExecutionFilter::new().status(status).limit(1)).await?.items.len();
            }
            if unfinished == 0 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "{arrived} of {n} tasks ran within {} s of the fill's end",
                bound.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
