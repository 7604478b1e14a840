//! Write benchmark: workflow puts through a follower of a fresh 3-node Link Loom cluster, and the
//! same load against a 3-member etcd cluster (Debian's `etcd-server`) as the baseline, both on
//! 127.0.0.1 with fsync on, measured by this one load generator in one run.
//!
//! ```text
//! cargo run --release -p linkloom-harness --bin loom-bench-writes -- --count 20000
//! ```
//!
//! Each phase: a warm-up, then `count` writes from `concurrency` clients, each client one
//! keep-alive connection sending its next request when the previous answer arrives. Printed:
//! writes/s, p50, p99 and max latency.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use linkloom_harness::{Cluster, ClusterOptions};

#[derive(Parser)]
#[command(about = "Workflow puts through a follower vs etcd puts through a follower")]
struct Args {
    /// Writes in the concurrent phase.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Clients (connections) in the concurrent phase.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Writes in the single-client phase.
    #[arg(long, default_value_t = 2_000)]
    single_count: u64,
    /// Writes before measuring, per phase.
    #[arg(long, default_value_t = 500)]
    warmup: u64,
    /// The loom-node binary (default: next to this one).
    #[arg(long)]
    loom_node: Option<PathBuf>,
    /// Load an already running node (e.g. a follower of `deploy/local/cluster.sh up`) instead
    /// of starting a fresh cluster.
    #[arg(long)]
    loom_url: Option<String>,
    /// Skip the etcd baseline.
    #[arg(long)]
    no_etcd: bool,
    /// The etcd binary; the baseline is skipped if it does not exist.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Value size in bytes for both systems (the workflow YAML is padded to it).
    #[arg(long, default_value_t = 300)]
    value_bytes: usize,
    /// Send every Link Loom write with its own Idempotency-Key, as the SDKs do (each is then
    /// remembered for the cluster's request window).
    #[arg(long)]
    idempotency_keys: bool,
}

/// One measured phase.
struct Figures {
    system: &'static str,
    clients: u64,
    count: u64,
    errors: u64,
    rate_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Something to send request `i` to.
trait Target: Send + Sync + 'static {
    fn request(&self, client: &reqwest::Client, i: u64) -> reqwest::RequestBuilder;
}

struct LoomTarget {
    url: String,
    value_bytes: usize,
    idempotency_keys: bool,
}

impl Target for LoomTarget {
    fn request(&self, client: &reqwest::Client, i: u64) -> reqwest::RequestBuilder {
        let head =
            format!("id: bench-{}\ntasks:\n  - {{id: t, type: worker, queue: bench}}\ndescription: \"", i % 1000);
        let pad = self.value_bytes.saturating_sub(head.len() + 2);
        let body = format!("{head}{}\"\n", "x".repeat(pad));
        let request =
            client.post(format!("{}/api/v1/workflows", self.url)).header("content-type", "application/yaml").body(body);
        if self.idempotency_keys {
            // Unique over every phase (each phase counts `i` from 0 again).
            static SENT: AtomicU64 = AtomicU64::new(0);
            let n = SENT.fetch_add(1, Ordering::Relaxed);
            request.header("idempotency-key", format!("bench-{}-{n}", std::process::id()))
        } else {
            request
        }
    }
}

struct EtcdTarget {
    url: String,
    value_b64: String,
}

impl Target for EtcdTarget {
    fn request(&self, client: &reqwest::Client, i: u64) -> reqwest::RequestBuilder {
        let key = base64(format!("bench/{}", i % 1000).as_bytes());
        let body = format!("{{\"key\":\"{key}\",\"value\":\"{}\"}}", self.value_b64);
        client.post(format!("{}/v3/kv/put", self.url)).header("content-type", "application/json").body(body)
    }
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn run_phase(target: Arc<dyn Target>, clients: u64, count: u64) -> (Vec<Duration>, u64, Duration) {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (target, next, errors) = (target.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each.
            let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let sent = Instant::now();
                match target.request(&client, i).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    (all, errors.load(Ordering::Relaxed), elapsed)
}

async fn measure(system: &'static str, target: Arc<dyn Target>, clients: u64, count: u64, warmup: u64) -> Figures {
    run_phase(target.clone(), clients, warmup).await;
    let (mut latencies, errors, elapsed) = run_phase(target, clients, count).await;
    latencies.sort();
    let pick = |q: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    Figures {
        system,
        clients,
        count,
        errors,
        rate_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
    }
}

/// A 3-member etcd cluster on loopback, killed on drop.
struct Etcd {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    client_ports: Vec<u16>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_etcd(binary: &Path) -> anyhow::Result<Etcd> {
    let dir = tempfile::Builder::new().prefix("etcd-bench-").tempdir()?;
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
    let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
    let initial: Vec<String> =
        peer_ports.iter().enumerate().map(|(i, p)| format!("e{i}=http://127.0.0.1:{p}")).collect();
    let mut children = Vec::new();
    for i in 0..3 {
        let log = std::fs::File::create(dir.path().join(format!("e{i}.log")))?;
        children.push(
            Command::new(binary)
                .args(["--name", &format!("e{i}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("e{i}")))
                .args(["--listen-client-urls", &format!("http://127.0.0.1:{}", client_ports[i])])
                .args(["--advertise-client-urls", &format!("http://127.0.0.1:{}", client_ports[i])])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{}", peer_ports[i])])
                .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{}", peer_ports[i])])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new", "--log-level", "error"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting etcd")?,
        );
    }
    Ok(Etcd { children, _dir: dir, client_ports })
}

/// The client URL of an etcd member that is not the leader, once there is a leader.
async fn etcd_follower(etcd: &Etcd) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for port in &etcd.client_ports {
            let url = format!("http://127.0.0.1:{port}");
            let Ok(r) = client.post(format!("{url}/v3/maintenance/status")).body("{}").send().await else { continue };
            let Ok(v) = r.json::<serde_json::Value>().await else { continue };
            let (leader, me) = (v["leader"].as_str(), v["header"]["member_id"].as_str());
            if leader.is_some() && leader != Some("0") && leader != me {
                return Ok(url);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("etcd elected no leader within 30 s")
}

fn print(figures: &[Figures]) {
    println!(
        "{:<8} {:>7} {:>7} {:>6} {:>10} {:>8} {:>8} {:>8}",
        "system", "clients", "count", "errors", "writes/s", "p50_ms", "p99_ms", "max_ms"
    );
    for f in figures {
        println!(
            "{:<8} {:>7} {:>7} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>8.2}",
            f.system, f.clients, f.count, f.errors, f.rate_per_s, f.p50_ms, f.p99_ms, f.max_ms
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    linkloom_harness::install_crypto_provider();
    let loom_node = linkloom_harness::loom_node_binary(args.loom_node)?;
    let mut figures = Vec::new();

    if let Some(url) = &args.loom_url {
        eprintln!("loom: writing through {url}");
        let target: Arc<dyn Target> = Arc::new(LoomTarget {
            url: url.clone(),
            value_bytes: args.value_bytes,
            idempotency_keys: args.idempotency_keys,
        });
        figures.push(measure("loom", target.clone(), args.concurrency, args.count, args.warmup).await);
        figures.push(measure("loom", target, 1, args.single_count, args.warmup / 10).await);
    } else {
        let mut cluster = Cluster::start(&loom_node, ClusterOptions::new(3))?;
        let leader = tokio::task::block_in_place(|| cluster.wait_ready(Duration::from_secs(30)))?;
        let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap_or(leader);
        eprintln!("loom: leader {leader}, writing through follower {follower}");
        let target: Arc<dyn Target> = Arc::new(LoomTarget {
            url: cluster.url(follower),
            value_bytes: args.value_bytes,
            idempotency_keys: args.idempotency_keys,
        });
        figures.push(measure("loom", target.clone(), args.concurrency, args.count, args.warmup).await);
        figures.push(measure("loom", target, 1, args.single_count, args.warmup / 10).await);
        let disk: u64 = walk_size(cluster.dir());
        eprintln!("loom: data on disk after the run: {:.1} MiB (3 nodes)", disk as f64 / 1048576.0);
        for id in cluster.ids() {
            let rss_kib = cluster.node(id).pid().and_then(rss_kib).unwrap_or(0);
            eprintln!("loom: node {id} RSS after the run: {:.1} MiB", rss_kib as f64 / 1024.0);
        }
    }

    if args.no_etcd {
        eprintln!("etcd: skipped (--no-etcd)");
    } else if args.etcd.exists() {
        let etcd = start_etcd(&args.etcd)?;
        let url = etcd_follower(&etcd).await?;
        eprintln!("etcd: writing through follower {url}");
        let value_b64 = base64(&vec![b'x'; args.value_bytes]);
        let target: Arc<dyn Target> = Arc::new(EtcdTarget { url, value_b64 });
        figures.push(measure("etcd", target.clone(), args.concurrency, args.count, args.warmup).await);
        figures.push(measure("etcd", target, 1, args.single_count, args.warmup / 10).await);
    } else {
        eprintln!("etcd: {} not found, baseline skipped (apt-get install etcd-server)", args.etcd.display());
    }
    print(&figures);
    Ok(())
}

/// Resident set size of a process, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn walk_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
