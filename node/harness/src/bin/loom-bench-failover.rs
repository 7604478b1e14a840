//! Failover benchmark: how long after the leader of a fresh 3-node cluster is SIGKILLed does a
//! write through a survivor succeed again?
//!
//! ```text
//! cargo run --release -p linkloom-harness --bin loom-bench-failover -- --kills 20
//! # kill 1: leader 2 killed; write through node 1 accepted after 812 ms (new leader 3)
//! # ...
//! # failover: count=20 p50_ms=... p90_ms=... p99_ms=... max_ms=...
//! ```
//!
//! Each round: find the leader, SIGKILL it, and from that instant send one small write after
//! another through a survivor (each with a short timeout, so a write stuck on the dead leader
//! does not hide the moment the new one takes writes); the figure is the time from the kill to the
//! first acknowledged write. Then the killed node restarts and the cluster settles (bounded)
//! before the next round. Writes carry an idempotency key, as every client's should.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use linkloom_harness::{print_percentiles, Cluster, ClusterOptions};

#[derive(Parser)]
#[command(about = "Time from SIGKILL of the leader to a write accepted through a survivor")]
struct Args {
    /// Leader kills to measure.
    #[arg(long, default_value_t = 20)]
    kills: u32,
    /// Give up on one round after this many seconds.
    #[arg(long, default_value_t = 30)]
    round_timeout: u64,
    /// The loom-node binary (default: next to this one).
    #[arg(long)]
    loom_node: Option<PathBuf>,
    /// A `LOOM_*` setting for every node, as KEY=VALUE (repeatable), e.g. election timeouts.
    #[arg(long = "node-env")]
    node_env: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    linkloom_harness::install_crypto_provider();
    let loom_node = linkloom_harness::loom_node_binary(args.loom_node)?;
    let mut options = ClusterOptions::new(3);
    for pair in &args.node_env {
        let (k, v) = pair.split_once('=').with_context(|| format!("--node-env takes KEY=VALUE, not `{pair}`"))?;
        options = options.env(k, v);
    }
    let mut cluster = Cluster::start(&loom_node, options)?;
    let writer = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(200))
        .build()?;
    let mut samples = Vec::new();
    for round in 1..=args.kills {
        let leader = cluster.wait_ready(Duration::from_secs(60)).context("the cluster did not settle")?;
        let survivor = cluster.ids().into_iter().find(|id| *id != leader).unwrap_or(1);
        let url = format!("{}/api/v1/workflows", cluster.url(survivor));
        cluster.kill(leader)?;
        let killed = Instant::now();
        let deadline = killed + Duration::from_secs(args.round_timeout);
        let mut n = 0u64;
        let accepted = loop {
            if Instant::now() > deadline {
                break None;
            }
            n += 1;
            let body = format!("id: failover\ndescription: round {round} write {n}\ntasks:\n  - {{id: t, type: worker, queue: nobody}}\n");
            let answer = writer
                .post(&url)
                .header("content-type", "application/yaml")
                .header("idempotency-key", format!("failover-{round}-{n}"))
                .body(body)
                .send();
            match answer {
                Ok(r) if r.status().as_u16() == 201 => break Some(killed.elapsed()),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let new_leader = cluster.leader_seen_by(survivor);
        match accepted {
            Some(after) => {
                println!(
                    "kill {round}: leader {leader} killed; write through node {survivor} accepted after {} ms (new leader {})",
                    after.as_millis(),
                    new_leader.map_or("?".into(), |l| l.to_string())
                );
                samples.push(after.as_secs_f64() * 1000.0);
            }
            None => println!("kill {round}: no write accepted within {}s", args.round_timeout),
        }
        cluster.restart(leader)?;
    }
    print_percentiles("failover", samples);
    Ok(())
}
