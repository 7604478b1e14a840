//! A local cluster of real `loom-node` processes for tests and benchmarks.
//!
//! Nodes listen on free ports of 127.0.0.1 (or, with [`Netns`], each on its own address inside a
//! network namespace this harness creates), keep their data in a temporary directory, and
//! log to a file there (printed when a wait fails). Every wait is bounded. Dropping a [`Cluster`]
//! kills every node it started.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

pub mod backend;
pub mod etcd;
pub mod jepsen;

/// The `loom-node` a tool should run: `explicit` if given, else the one next to the running
/// binary (where `cargo build` puts both); an error that says how to build it if it is missing.
pub fn loom_node_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("loom-node"),
    };
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p linkloom-node` or pass --loom-node",
            path.display()
        );
    }
    Ok(path)
}

/// Percent-encodes `text` for a URL path segment or query value (unreserved bytes kept).
pub fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Installs `ring` as the process's rustls provider, if none is. The SDK builds reqwest with
/// `rustls-no-provider` (the default provider, aws-lc, needs cmake), and feature unification
/// gives every reqwest in a build that includes the SDK the same feature, so any client built
/// before an SDK client would otherwise panic for want of a provider.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: any provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
pub mod pki;
pub mod worker;
use serde_json::Value;

/// One node process.
pub struct Node {
    pub id: u64,
    /// The address it listens on: 127.0.0.1, or its own inside its namespace.
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Started with `--join` rather than as a founder.
    joins: bool,
    /// `https` when the node serves TLS.
    scheme: &'static str,
    /// The `loom-node` it runs, when not the cluster's (a node upgraded in a rolling upgrade).
    binary: Option<PathBuf>,
}

impl Node {
    /// `host:port`, as `--peers` and the membership name it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// Nodes on separate network hosts: each in its own namespace `{prefix}-N` at `{subnet}.N`, the
/// harness at `{subnet}.254`, made and torn down with `deploy/netns/net.sh`, which can also cut
/// the links between nodes (real partitions). Needs root.
#[derive(Clone, Debug)]
pub struct Netns {
    pub prefix: String,
    /// The first three octets, e.g. `10.78.0`.
    pub subnet: String,
}

impl Netns {
    /// The repository's `deploy/netns/net.sh`.
    pub fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/netns/net.sh")
    }

    fn command(&self, nodes: u64) -> Command {
        let mut command = Command::new(Self::script());
        command
            .env("LOOM_NETNS_PREFIX", &self.prefix)
            .env("LOOM_NETNS_SUBNET", &self.subnet)
            .env("LOOM_NETNS_NODES", nodes.to_string());
        command
    }

    /// Runs `net.sh ARGS...`; an error carries what it printed.
    fn run(&self, nodes: u64, args: &[&str]) -> anyhow::Result<()> {
        let output = self.command(nodes).args(args).output().context("running deploy/netns/net.sh")?;
        if !output.status.success() {
            bail!("net.sh {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }

    /// Why this machine cannot run nodes in namespaces, if it cannot (not root, no netns, no
    /// nftables): tests that need it skip with this message.
    pub fn unavailable(&self) -> Option<String> {
        match self.command(3).arg("check").output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            Err(e) => Some(format!("cannot run {}: {e}", Self::script().display())),
        }
    }
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub nodes: u64,
    /// Separate network hosts instead of 127.0.0.1.
    pub netns: Option<Netns>,
    /// Extra environment for every node (`LOOM_*` settings).
    pub env: Vec<(String, String)>,
    /// PEM of the CA that signed the nodes' certificates, when they serve TLS.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl ClusterOptions {
    pub fn new(nodes: u64) -> Self {
        ClusterOptions { nodes, netns: None, env: Vec::new(), tls_ca_pem: None }
    }

    /// Serve TLS with this certificate and key (PEM files), trusting `ca` (a PEM file) for peers;
    /// the harness's own client trusts the same CA.
    pub fn tls(self, cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let mut options = self
            .env("LOOM_TLS_CERT", cert.display())
            .env("LOOM_TLS_KEY", key.display())
            .env("LOOM_TLS_CA", ca.display());
        options.tls_ca_pem = Some(pem);
        Ok(options)
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs each node on its own network host (see [`Netns`]).
    pub fn netns(mut self, netns: Netns) -> Self {
        self.netns = Some(netns);
        self
    }
}

/// The port every node listens on when each has an address of its own.
const NETNS_PORT: u16 = 8080;

/// A running local cluster.
pub struct Cluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    options: ClusterOptions,
    nodes: BTreeMap<u64, Node>,
    peers: String,
    http: reqwest::blocking::Client,
}

/// Ports that are free right now on 127.0.0.1.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..count).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

impl Cluster {
    /// Starts `options.nodes` founding members using the `loom-node` binary at `binary`.
    pub fn start(binary: impl Into<PathBuf>, options: ClusterOptions) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster::prepare(binary, options)?;
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// Like [`Cluster::start`], but starts nothing: addresses and data directories are chosen,
    /// so a test can seed the directories (`loom-node restore`) before [`Cluster::restart`]ing
    /// each node.
    pub fn prepare(binary: impl Into<PathBuf>, options: ClusterOptions) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("loom-cluster-").tempdir()?;
        let addresses: Vec<(String, u16)> = match &options.netns {
            None => free_ports(options.nodes as usize)?.into_iter().map(|p| ("127.0.0.1".to_string(), p)).collect(),
            Some(netns) => {
                netns.run(options.nodes, &["create"])?;
                (1..=options.nodes).map(|n| (format!("{}.{n}", netns.subnet), NETNS_PORT)).collect()
            }
        };
        let peers = addresses
            .iter()
            .enumerate()
            .map(|(i, (host, port))| format!("{}={host}:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        install_crypto_provider();
        // With tokens on, the harness's own requests act as the bootstrap admin.
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some((_, token)) = options.env.iter().find(|(k, _)| k == "LOOM_ADMIN_TOKEN") {
            headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
        }
        let mut http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(15)).default_headers(headers);
        if let Some(pem) = &options.tls_ca_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
        }
        let http = http.build()?;
        let scheme = if options.tls_ca_pem.is_some() { "https" } else { "http" };
        let mut cluster = Cluster { binary: binary.into(), dir, options, nodes: BTreeMap::new(), peers, http };
        for (i, (host, port)) in addresses.into_iter().enumerate() {
            let id = i as u64 + 1;
            let data_dir = cluster.dir.path().join(format!("node{id}"));
            let log_path = cluster.dir.path().join(format!("node{id}.log"));
            let node = Node { id, host, port, data_dir, log_path, child: None, joins: false, scheme, binary: None };
            cluster.nodes.insert(id, node);
        }
        Ok(cluster)
    }

    /// The founding members, as `--peers` takes them.
    pub fn peers(&self) -> &str {
        &self.peers
    }

    /// Starts node `id` with `--peers` replaced (a node forced to form a new cluster alone is
    /// started with only itself).
    pub fn set_peers(&mut self, peers: impl Into<String>) {
        self.peers = peers.into();
    }

    /// The `loom-node` binary the cluster runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// GETs raw bytes from node `id`.
    pub fn get_bytes(&self, id: u64, path: &str, timeout: Duration) -> anyhow::Result<(u16, Vec<u8>)> {
        let response = self.http.get(format!("{}{path}", self.url(id))).timeout(timeout).send()?;
        let status = response.status().as_u16();
        Ok((status, response.bytes()?.to_vec()))
    }

    fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.nodes.get(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        let log = File::options().create(true).append(true).open(&node.log_path)?;
        let binary = node.binary.as_ref().unwrap_or(&self.binary);
        // In a namespace, `ip netns exec` execs the node in place: its pid is the node's.
        let mut command = match &self.options.netns {
            None => Command::new(binary),
            Some(netns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &format!("{}-{id}", netns.prefix)]).arg(binary);
                c
            }
        };
        command
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(format!("{}:{}", node.host, node.port))
            .arg("--data-dir")
            .arg(&node.data_dir)
            .env("LOOM_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if node.joins {
            command.arg("--join");
        } else {
            command.arg("--peers").arg(&self.peers);
        }
        if self.options.netns.is_some() {
            // The namespaces' network is this test's own: an open node may listen on it.
            command.env("LOOM_INSECURE_OPEN", "true");
        }
        for (k, v) in &self.options.env {
            command.env(k, v);
        }
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        if let Some(node) = self.nodes.get_mut(&id) {
            node.child = Some(child);
        }
        Ok(())
    }

    /// Adds a node that starts with `--join` (it waits to be added as a learner).
    pub fn add_joining_node(&mut self) -> anyhow::Result<u64> {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        if self.options.netns.is_some() {
            bail!("joining nodes run on 127.0.0.1 only");
        }
        let port = free_ports(1)?[0];
        let data_dir = self.dir.path().join(format!("node{id}"));
        let log_path = self.dir.path().join(format!("node{id}.log"));
        let scheme = if self.options.tls_ca_pem.is_some() { "https" } else { "http" };
        let host = "127.0.0.1".to_string();
        let node = Node { id, host, port, data_dir, log_path, child: None, joins: true, scheme, binary: None };
        self.nodes.insert(id, node);
        self.spawn(id)?;
        Ok(id)
    }

    /// Whether node `id`'s process is still running.
    pub fn is_running(&mut self, id: u64) -> bool {
        self.nodes.get_mut(&id).is_some_and(Node::is_running)
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn url(&self, id: u64) -> String {
        self.nodes[&id].url()
    }

    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Kills a node with SIGKILL and reaps it.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Freezes a node with SIGSTOP: it holds its connections and answers nothing until resumed.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, "-STOP")
    }

    /// Lets a node frozen by [`Cluster::pause`] run again (SIGCONT).
    pub fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, "-CONT")
    }

    fn signal(&mut self, id: u64, signal: &str) -> anyhow::Result<()> {
        let pid = self.nodes.get(&id).and_then(Node::pid).ok_or_else(|| anyhow!("node {id} is not running"))?;
        let status = Command::new("kill").arg(signal).arg(pid.to_string()).status()?;
        if !status.success() {
            bail!("kill {signal} {pid} (node {id}) failed");
        }
        Ok(())
    }

    /// Cuts node `id` off from the other nodes, both ways (clients still reach it). Needs
    /// [`Netns`].
    pub fn isolate(&self, id: u64) -> anyhow::Result<()> {
        self.netns()?.run(self.options.nodes, &["isolate", &id.to_string()])
    }

    /// Loses what node `from` sends to node `to` (one direction). Needs [`Netns`].
    pub fn cut(&self, from: u64, to: u64) -> anyhow::Result<()> {
        self.netns()?.run(self.options.nodes, &["cut", &from.to_string(), &to.to_string()])
    }

    /// Loses `percent` of the packets between node `id` and the other nodes, both ways. Needs
    /// [`Netns`].
    pub fn lose(&self, id: u64, percent: u8) -> anyhow::Result<()> {
        self.netns()?.run(self.options.nodes, &["loss", &id.to_string(), &percent.to_string()])
    }

    /// Undoes every isolate, cut and loss.
    pub fn heal(&self) -> anyhow::Result<()> {
        self.netns()?.run(self.options.nodes, &["heal"])
    }

    fn netns(&self) -> anyhow::Result<&Netns> {
        self.options.netns.as_ref().ok_or_else(|| anyhow!("partitions need nodes on separate network hosts (Netns)"))
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the exit status code.
    pub fn terminate(&mut self, id: u64, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let node = self.nodes.get_mut(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        let Some(mut child) = node.child.take() else {
            return Ok(None);
        };
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()?;
        if !status.success() {
            bail!("kill -TERM {} failed", child.id());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                bail!("node {id} did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a stopped node again on the same port and data directory.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.spawn(id)
    }

    /// Starts a stopped node again with another `loom-node` (the next release, in a rolling
    /// upgrade), on the same port and data directory; it keeps that binary from then on.
    pub fn restart_with(&mut self, id: u64, binary: impl Into<PathBuf>) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        node.binary = Some(binary.into());
        self.spawn(id)
    }

    /// GETs a JSON document from node `id`.
    pub fn get_json(&self, id: u64, path: &str) -> anyhow::Result<(u16, Value)> {
        Self::status_and_json(self.http.get(format!("{}{path}", self.url(id))).send()?)
    }

    /// POSTs a body with a content type to node `id`.
    pub fn post(
        &self,
        id: u64,
        path: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> anyhow::Result<(u16, Value)> {
        let request = self.http.post(format!("{}{path}", self.url(id))).header("content-type", content_type);
        Self::status_and_json(request.body(body.into()).send()?)
    }

    /// POSTs a body to node `id` with `Authorization: Bearer <token>` instead of the cluster's
    /// admin token (an attempt's callback token, a worker's own token).
    pub fn post_as(
        &self,
        id: u64,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> anyhow::Result<(u16, Value)> {
        let request =
            self.http.post(format!("{}{path}", self.url(id))).header("content-type", content_type).bearer_auth(token);
        Self::status_and_json(request.body(body.into()).send()?)
    }

    /// PUTs a JSON body to node `id`.
    pub fn put_json(&self, id: u64, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        Self::status_and_json(self.http.put(format!("{}{path}", self.url(id))).json(body).send()?)
    }

    /// The status and the body as JSON (a JSON string if it is not JSON).
    fn status_and_json(response: reqwest::blocking::Response) -> anyhow::Result<(u16, Value)> {
        let status = response.status().as_u16();
        let text = response.text()?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Registers a workflow from YAML through node `via`.
    pub fn put_workflow(&self, via: u64, yaml: &str) -> anyhow::Result<Value> {
        match self.post(via, "/api/v1/workflows", "application/yaml", yaml.to_string())? {
            (201, body) => Ok(body),
            (status, body) => bail!("registering the workflow answered {status}: {body}"),
        }
    }

    /// Triggers `workflow` through node `via`; returns the execution id.
    pub fn trigger(&self, via: u64, workflow: &str, params: Value) -> anyhow::Result<String> {
        let body = serde_json::json!({"params": params}).to_string();
        match self.post(via, &format!("/api/v1/workflows/{workflow}/trigger"), "application/json", body)? {
            (202, body) => {
                body["execution_id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no execution_id in {body}"))
            }
            (status, body) => bail!("trigger answered {status}: {body}"),
        }
    }

    /// The execution as node `via` shows it.
    pub fn execution(&self, via: u64, id: &str) -> anyhow::Result<Value> {
        match self.get_json(via, &format!("/api/v1/executions/{id}"))? {
            (200, body) => Ok(body),
            (status, body) => bail!("GET execution {id} answered {status}: {body}"),
        }
    }

    /// Waits (bounded) until execution `id` has ended; returns it.
    pub fn wait_execution(&self, via: u64, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        let mut last = Value::Null;
        let ended = |v: &Value| matches!(v["status"].as_str(), Some("succeeded" | "failed" | "cancelled"));
        self.wait_for(&format!("execution {id} to end"), timeout, |c| {
            if let Ok(v) = c.execution(via, id) {
                last = v;
            }
            ended(&last)
        })
        .map_err(|e| {
            anyhow!(
                "{e}
last seen: {last:#}"
            )
        })?;
        Ok(last)
    }

    /// Waits until `condition` holds, polling every 50 ms, for at most `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if condition(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("timed out after {timeout:?} waiting for {what}\n{}", self.logs_tail(40))
    }

    /// Waits until every running node answers /readyz with 200 and they agree on a leader.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<u64> {
        let running: Vec<u64> = self.nodes.iter_mut().filter_map(|(id, n)| n.is_running().then_some(*id)).collect();
        let mut leader = None;
        self.wait_for("every running node to be ready with one leader", timeout, |c| {
            let leaders: Vec<Option<u64>> = running
                .iter()
                .map(|id| match c.get_json(*id, "/readyz") {
                    Ok((200, v)) => v["leader_id"].as_u64(),
                    _ => None,
                })
                .collect();
            let first = leaders.first().copied().flatten();
            if first.is_some() && leaders.iter().all(|l| *l == first) {
                leader = first;
                true
            } else {
                false
            }
        })?;
        leader.ok_or_else(|| anyhow!("no leader"))
    }

    /// The leader as node `id` sees it.
    pub fn leader_seen_by(&self, id: u64) -> Option<u64> {
        self.get_json(id, "/api/v1/cluster").ok().and_then(|(_, v)| v["leader_id"].as_u64())
    }

    /// Everything node `id` has logged so far.
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(&self.nodes[&id].log_path).unwrap_or_default()
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for node in self.nodes.values() {
            let text = std::fs::read_to_string(&node.log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- node {} ({}) ---\n", node.id, node.log_path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                // A paused node dies of SIGKILL too; SIGCONT first so nothing lingers stopped.
                let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(netns) = &self.options.netns {
            let _ = netns.run(self.options.nodes, &["destroy"]);
        }
    }
}
