//! Engine benchmarks on a fresh 3-node cluster (release `loom-node`) with the scripted backend on
//! 127.0.0.1 answering every HTTP task at once.
//!
//! ```text
//! loom-bench-engine trigger-latency [--count 300]    trigger -> first task request at the backend
//! loom-bench-engine chain [--count 30]               task answered -> next task requested (10-task chains)
//! loom-bench-engine throughput [--seconds 60]        single-task executions finished per second
//! loom-bench-engine cron [--workflows 1000] [--seconds 300]   tick lateness on */5 s schedules
//! ```
//!
//! Triggers go through followers; latencies are measured on this machine's monotonic clock from
//! the moment the trigger request is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use linkloom_harness::backend::Backend;
use linkloom_harness::{print_percentiles, Cluster, ClusterOptions};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// The loom-node binary (default: next to this one).
    #[arg(long, global = true)]
    loom_node: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Scenario {
    TriggerLatency {
        #[arg(long, default_value_t = 300)]
        count: usize,
    },
    Chain {
        #[arg(long, default_value_t = 30)]
        count: usize,
    },
    Throughput {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    Cron {
        #[arg(long, default_value_t = 1000)]
        workflows: usize,
        #[arg(long, default_value_t = 300)]
        seconds: u64,
    },
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = linkloom_harness::loom_node_binary(args.loom_node)?;
    let backend = Backend::start()?;
    let mut cluster = Cluster::start(&binary, ClusterOptions::new(3).env("LOOM_LOG", "warn"))?;
    let leader = cluster.wait_ready(Duration::from_secs(30))?;
    let followers: Vec<u64> = cluster.ids().into_iter().filter(|id| *id != leader).collect();
    let via = followers[0];
    // Executions wait for owners until the nodes' liveness leases are in; every scenario warms up
    // (or measures from the first tick) past that.

    match args.scenario {
        Scenario::TriggerLatency { count } => {
            cluster.put_workflow(
                via,
                &format!("id: one\ntasks:\n  - {{id: t, type: http, url: {}/echo}}\n", backend.url),
            )?;
            let mut samples = Vec::new();
            for i in 0..count + 20 {
                let sent = Instant::now();
                let id = cluster.trigger(followers[i % followers.len()], "one", Value::Null)?;
                let deadline = Instant::now() + Duration::from_secs(10);
                let arrived = loop {
                    if let Some(r) = backend.received().iter().rev().find(|r| r.body["execution_id"] == id.as_str()) {
                        break r.at;
                    }
                    if Instant::now() > deadline {
                        bail!("execution {id} never reached the backend");
                    }
                    std::thread::sleep(Duration::from_micros(200));
                };
                if i >= 20 {
                    samples.push(arrived.duration_since(sent).as_secs_f64() * 1000.0);
                }
                cluster.wait_execution(via, &id, Duration::from_secs(10))?;
            }
            print_percentiles("trigger_to_first_request", samples);
        }
        Scenario::Chain { count } => {
            let mut yaml = String::from("id: chain\ntasks:\n");
            for i in 0..10 {
                let deps = if i == 0 { String::new() } else { format!(", depends_on: [t{}]", i - 1) };
                yaml.push_str(&format!("  - {{id: t{i}, type: http, url: {}/echo{deps}}}\n", backend.url));
            }
            cluster.put_workflow(via, &yaml)?;
            let mut gaps = Vec::new();
            for _ in 0..count {
                let id = cluster.trigger(via, "chain", Value::Null)?;
                cluster.wait_execution(via, &id, Duration::from_secs(30))?;
                let mut at: BTreeMap<String, Instant> = BTreeMap::new();
                for r in backend.received().into_iter().filter(|r| r.body["execution_id"] == id.as_str()) {
                    at.insert(r.body["task_id"].as_str().unwrap_or_default().to_string(), r.at);
                }
                for i in 1..10 {
                    if let (Some(a), Some(b)) = (at.get(&format!("t{}", i - 1)), at.get(&format!("t{i}"))) {
                        gaps.push(b.duration_since(*a).as_secs_f64() * 1000.0);
                    }
                }
            }
            print_percentiles("task_request_to_next_task_request", gaps);
        }
        Scenario::Throughput { seconds, concurrency } => {
            cluster.put_workflow(
                via,
                &format!("id: many\ntasks:\n  - {{id: t, type: http, url: {}/echo}}\n", backend.url),
            )?;
            let triggered = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let stop_at = Instant::now() + Duration::from_secs(seconds);
            let started = Instant::now();
            let base = backend.received().len();
            std::thread::scope(|scope| {
                for c in 0..concurrency {
                    let (cluster, triggered, errors) = (&cluster, triggered.clone(), errors.clone());
                    let node = cluster.ids()[c % 3];
                    scope.spawn(move || {
                        while Instant::now() < stop_at {
                            match cluster.trigger(node, "many", Value::Null) {
                                Ok(_) => triggered.fetch_add(1, Ordering::Relaxed),
                                Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                    });
                }
            });
            let trigger_elapsed = started.elapsed();
            let n = triggered.load(Ordering::Relaxed);
            // Wait (bounded) for every triggered execution to reach the backend and finish.
            let _ = cluster.wait_for("every execution to run", Duration::from_secs(120), |_| {
                backend.received().len() - base >= n as usize
            });
            let ran = backend.received().len() - base;
            let elapsed = started.elapsed();
            println!(
                "throughput: triggered={n} trigger_errors={} ran={ran} seconds={:.1} triggered_per_s={:.0} ran_per_s={:.0}",
                errors.load(Ordering::Relaxed),
                trigger_elapsed.as_secs_f64(),
                n as f64 / trigger_elapsed.as_secs_f64(),
                ran as f64 / elapsed.as_secs_f64()
            );
            for id in cluster.ids() {
                println!("node {id} rss_mib={:.0}", cluster.node(id).pid().map(rss_mib).unwrap_or(0.0));
            }
        }
        Scenario::Cron { workflows, seconds } => {
            for i in 0..workflows {
                let yaml = format!(
                    "id: cron-{i}\nschedule: '*/5 * * * * *'\ncatchup: none\ntasks:\n  - {{id: t, type: http, url: {}/echo}}\n",
                    backend.url
                );
                cluster.put_workflow(followers[i % followers.len()], &yaml).context("registering")?;
            }
            let started = Instant::now();
            let mut peak_rss = BTreeMap::new();
            while started.elapsed() < Duration::from_secs(seconds) {
                std::thread::sleep(Duration::from_secs(5));
                for id in cluster.ids() {
                    let rss = cluster.node(id).pid().map(rss_mib).unwrap_or(0.0);
                    let peak = peak_rss.entry(id).or_insert(0.0f64);
                    *peak = peak.max(rss);
                }
            }
            for i in 0..workflows {
                let _ = cluster.post(via, &format!("/api/v1/workflows/cron-{i}/pause"), "application/json", "");
            }
            // Lateness: when the execution was created (leader clock) minus its tick.
            let mut lateness = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/v1/executions?limit=500&trigger=schedule&cursor={c}"),
                    None => "/api/v1/executions?limit=500&trigger=schedule".to_string(),
                };
                let (_, page) = cluster.get_json(via, &path)?;
                for e in page["items"].as_array().into_iter().flatten() {
                    let (Some(created), Some(tick)) = (e["created_at"].as_str(), e["scheduled_at"].as_str()) else {
                        continue;
                    };
                    let ms = |t: &str| chrono_ms(t);
                    lateness.push((ms(created) - ms(tick)) as f64);
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            print_percentiles("tick_lateness (created_at - scheduled_at)", lateness);
            println!("backend requests: {}", backend.received().len());
            for (id, rss) in peak_rss {
                println!("node {id} peak_rss_mib={rss:.0}");
            }
        }
    }
    Ok(())
}

/// Milliseconds since the epoch of an RFC 3339 UTC time with milliseconds (`...T12:00:00.123Z`).
fn chrono_ms(text: &str) -> i64 {
    let Some((date, time)) = text.trim_end_matches('Z').split_once('T') else { return 0 };
    let d: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let t: Vec<f64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    if d.len() != 3 || t.len() != 3 {
        return 0;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86_400_000 + ((t[0] * 3600.0 + t[1] * 60.0 + t[2]) * 1000.0).round() as i64
}
