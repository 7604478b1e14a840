//! HTTP-task scenarios against the bench's own backend:
//! - `trigger-latency`: one execution at a time, trigger -> the task's request received;
//! - `throughput`: the same with `--concurrency` executions in flight: latency and sustained rate;
//! - `events`: `--concurrency` events in flight, each matched by the workflow's `event` trigger:
//!   event sent -> the task's request received, and events accepted and started per second;
//! - `chain`: chains of `--tasks` sequential tasks, one at a time; a sample is the gap between a
//!   task's answer leaving the backend and the next task's request arriving (the completion's
//!   commit, the next attempt's commit, and the call), measured on the backend's clock.

use linkloom::Client;

use crate::backend::{Backend, Start};
use crate::report::{Measured, Report};
use crate::{BenchError, Plan, Scenario};

pub(crate) async fn run(client: &Client, name: &str, plan: &Plan) -> Result<Report, BenchError> {
    let chain = plan.scenario == Scenario::Chain;
    let backend = Backend::start(chain).await?;
    let tasks = if chain { plan.options.tasks } else { 1 };
    let events = plan.scenario == Scenario::Events;
    let event_name = format!("{name}.happened");
    let mut yaml = format!("id: {name}\n");
    if events {
        yaml.push_str(&format!("triggers: [{{event: {event_name}}}]\n"));
    }
    yaml.push_str("tasks:\n");
    for i in 0..tasks {
        yaml.push_str(&format!("  - {{id: t{i}, type: http, url: \"{}\"", backend.url));
        if i > 0 {
            yaml.push_str(&format!(", depends_on: [t{}]", i - 1));
        }
        if events {
            yaml.push_str(", input: {bench_key: \"{{ event.payload.bench_key }}\"}");
        }
        yaml.push_str("}\n");
    }
    client.put_workflow_yaml(&yaml).await?;
    let concurrency = if plan.scenario == Scenario::TriggerLatency { 1 } else { plan.concurrency };
    let start = if events { Start::Event(event_name) } else { Start::Trigger };
    let (measured, kept) = backend.arrivals.trigger_load(client, name, start, plan, concurrency, chain).await?;
    if !chain {
        return Ok(Report::new(plan.scenario, concurrency, measured));
    }
    let gaps = backend.seen().gaps_ms.iter().filter(|(e, _)| kept.contains(e)).map(|(_, gap)| *gap).collect();
    let measured = Measured { samples_ms: gaps, ..measured };
    Ok(Report::new(plan.scenario, concurrency, measured))
}
