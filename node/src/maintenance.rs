//! `loom-node restore` and `loom-node force-new-cluster`: the offline commands that rebuild a
//! cluster from one node's data, run while no node uses the data directory. The work is in
//! `linkloom_raft::backup`; this is the command line around it, and the checks that keep an
//! operator from pointing them at the wrong directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use linkloom_raft::backup::{self, Backup};
use linkloom_raft::storage::Disk;

/// What `loom-node` does instead of serving.
#[derive(Debug, Subcommand)]
pub enum Maintenance {
    /// Seed an empty data directory from a backup (`loom cluster snapshot save`), as one member
    /// of a new cluster. Run it for every member, with the same file and the same --peers, then
    /// start the nodes as usual with those --peers. The new cluster has a new identity: members
    /// of the old one are refused.
    Restore(RestoreArgs),
    /// DANGEROUS. Make this node the only member of a new cluster from what its data directory
    /// holds, after a majority is lost for good. Keeps every entry in its log, including ones
    /// that may never have been committed; loses acknowledged writes this node had not
    /// received. Start it afterwards as usual (without --peers), then add fresh members.
    ForceNewCluster(ForceArgs),
    /// Ask this node's `/healthz` (or `/readyz` with --ready) and exit 0 if it answers 200, 1 if
    /// not: the container image's health check, which has no shell or curl and needs no token.
    Healthcheck(HealthArgs),
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Ask `/readyz` (a leader known, caught up) instead of `/healthz` (the process serves).
    #[arg(long)]
    pub ready: bool,
    /// Where the node listens (its LOOM_LISTEN); an unspecified address means this host.
    #[arg(long, env = "LOOM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// How long to wait for the answer, in ms.
    #[arg(long, default_value_t = 3_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// The data directory to create; refused unless it is missing or empty.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// This member's id in the new cluster.
    #[arg(long)]
    pub node_id: u64,
    /// The new cluster's members, `1=host:8080,2=host:8080,...` (the same for every member).
    #[arg(long)]
    pub peers: String,
}

#[derive(Debug, Args)]
pub struct ForceArgs {
    /// The surviving node's data directory (stop the node first).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The node's id (as it was).
    #[arg(long)]
    pub node_id: u64,
    /// The address the node advertises (host:port), recorded as the new cluster's only member.
    #[arg(long)]
    pub advertise: String,
}

/// Runs a maintenance command to its end, printing what it did.
pub fn run(command: Maintenance) -> anyhow::Result<()> {
    // Files created here hold the cluster's state: owner only, as the node makes them.
    // SAFETY: umask(2) cannot fail; it affects files this process creates from now on.
    unsafe { libc::umask(0o077) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    match command {
        Maintenance::Restore(args) => runtime.block_on(restore(args)),
        Maintenance::ForceNewCluster(args) => runtime.block_on(force(args)),
        Maintenance::Healthcheck(args) => healthcheck(&args),
    }
}

/// One plain HTTP/1.1 GET of the probe path on the node's own port.
fn healthcheck(args: &HealthArgs) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut addr = args.listen;
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr =
            if addr.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        addr.set_ip(loopback);
    }
    if std::env::var_os("LOOM_TLS_CERT").is_some() {
        bail!("this node serves HTTPS (LOOM_TLS_CERT) and the health check speaks plain HTTP: use the orchestrator's HTTPS probe of /healthz");
    }
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let timeout = std::time::Duration::from_millis(args.timeout_ms.max(1));
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).with_context(|| format!("reading the answer to GET {path}"))?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status == "200" {
        println!("{path}: 200");
        Ok(())
    } else {
        bail!("{path} answered {status}")
    }
}

async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let members = crate::config::parse_peers(&args.peers)?;
    if !members.contains_key(&args.node_id) {
        bail!("--peers does not list this node's id {}: list every member of the new cluster", args.node_id);
    }
    refuse_non_empty(&args.data_dir)?;
    let started = std::time::Instant::now();
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let backup = Backup::decode(&bytes).with_context(|| format!("checking {}", args.file.display()))?;
    drop(bytes);
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let disk = Disk::open_sled(&args.data_dir).with_context(|| format!("opening {}", args.data_dir.display()))?;
    let restored = backup::restore(&disk, backup, args.node_id, members.clone()).await?;
    let b = &restored.backup;
    println!(
        "restored {} into {} as node {} of a new cluster {}",
        args.file.display(),
        args.data_dir.display(),
        args.node_id,
        restored.cluster_id
    );
    println!(
        "  state at log index {} (term {}), taken by node {} at {} ms, sha256 {}",
        b.last_index, b.term, b.taken_by, b.taken_at_ms, b.sha256
    );
    println!("  members: {}", peers_line(&members));
    println!(
        "  took {} ms; start the node with --data-dir {} --peers '{}'",
        started.elapsed().as_millis(),
        args.data_dir.display(),
        peers_line(&members)
    );
    Ok(())
}

async fn force(args: ForceArgs) -> anyhow::Result<()> {
    if !args.advertise.contains(':') {
        bail!("--advertise `{}` must be host:port", args.advertise);
    }
    if !args.data_dir.join("sled").exists() {
        bail!(
            "{} holds no node data (no sled directory): point --data-dir at the survivor's data",
            args.data_dir.display()
        );
    }
    let disk = Disk::open_sled(&args.data_dir)
        .with_context(|| format!("opening {} (is loom-node still running on it?)", args.data_dir.display()))?;
    let forced = backup::force_new_cluster(&disk, args.node_id, &args.advertise).await?;
    println!(
        "node {} is now the only member of a new cluster {} (was: {})",
        args.node_id,
        forced.cluster_id,
        peers_line(&forced.previous_members)
    );
    println!("  state at log index {}; {} log entries applied to get there", forced.last_index, forced.replayed);
    match forced.known_committed {
        Some(c) if c < forced.last_index => println!(
            "  WARNING: entries {}..={} were after the last commit this node knew of: they may never have been acknowledged, and are kept",
            c + 1,
            forced.last_index
        ),
        _ => {}
    }
    println!("  start it without --peers, then add members: loom cluster add ID ADDR, loom cluster promote ID");
    Ok(())
}

fn refuse_non_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty: restore into a new, empty data directory", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

fn peers_line(members: &BTreeMap<u64, String>) -> String {
    members.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(",")
}
