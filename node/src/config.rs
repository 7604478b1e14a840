//! Configuration: defaults, then a TOML file (`--config`), then `LOOM_*` environment variables,
//! then flags. `--dev` fills in a single-node cluster on 127.0.0.1:8080 with data in ./loom-data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use linkloom_raft::RaftSettings;
use serde::Deserialize;

/// Command line of `loom-node`. Every flag also reads a `LOOM_*` environment variable.
#[derive(Debug, Parser)]
#[command(name = "loom-node", version, about = "A Link Loom cluster node: API, UI, scheduler and Raft member")]
pub struct Cli {
    /// Offline maintenance instead of serving (backups are restored, quorums forced, here).
    #[command(subcommand)]
    pub maintenance: Option<crate::maintenance::Maintenance>,
    /// Single-node cluster on 127.0.0.1:8080 with data in ./loom-data; no other set-up needed.
    #[arg(long)]
    pub dev: bool,
    /// TOML configuration file (keys as the long flags, with underscores).
    #[arg(long, env = "LOOM_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long, env = "LOOM_NODE_ID")]
    pub node_id: Option<u64>,
    /// Take the node id from the host name's trailing ordinal plus one (`linkloom-0` is node 1):
    /// how a Kubernetes StatefulSet's pods get stable ids. Conflicts with --node-id.
    #[arg(long, env = "LOOM_NODE_ID_FROM_HOSTNAME", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub node_id_from_hostname: bool,
    /// Address to listen on for the API, the UI and node-to-node traffic.
    #[arg(long, env = "LOOM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address other nodes use to reach this one (host:port); defaults to --listen.
    #[arg(long, env = "LOOM_ADVERTISE")]
    pub advertise: Option<String>,
    /// Directory for this node's data.
    #[arg(long, env = "LOOM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where shell attempts get their working directories (default `<data-dir>/work`, or a
    /// private directory under the system's temporary one if the task user cannot reach that).
    #[arg(long, env = "LOOM_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Founding members, `1=127.0.0.1:8081,2=127.0.0.1:8082,...` (the same on every founder).
    #[arg(long, env = "LOOM_PEERS")]
    pub peers: Option<String>,
    /// Start without founding a cluster and wait to be added as a learner.
    #[arg(long, env = "LOOM_JOIN")]
    pub join: bool,
    /// The leader's heartbeat, in ms; also openraft's timeout for one replication call.
    #[arg(long, env = "LOOM_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// A follower that hears no leader for the leader lease (the max below) plus its own
    /// election timeout (drawn once per process between min and max) starts an election.
    #[arg(long, env = "LOOM_ELECTION_TIMEOUT_MIN_MS")]
    pub election_timeout_min_ms: Option<u64>,
    #[arg(long, env = "LOOM_ELECTION_TIMEOUT_MAX_MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Take a snapshot (and purge the log behind it) after this many entries (nodes 1 and 2,
    /// modulo 3, wait an eighth and a quarter longer, so the three do not snapshot at once).
    #[arg(long, env = "LOOM_SNAPSHOT_LOGS")]
    pub snapshot_logs: Option<u64>,
    /// Entries kept behind a snapshot for slightly lagging followers.
    #[arg(long, env = "LOOM_LOGS_KEPT_AFTER_SNAPSHOT")]
    pub logs_kept_after_snapshot: Option<u64>,
    /// Also take a snapshot once this many finished executions are held in memory (it moves
    /// them to the history on disk); 0: by `--snapshot-logs` alone. Staggered like it.
    #[arg(long, env = "LOOM_SNAPSHOT_FINISHED")]
    pub snapshot_finished: Option<u64>,
    /// How long a request waits for a leader during an election before answering 503.
    #[arg(long, env = "LOOM_FORWARD_WAIT_MS")]
    pub forward_wait_ms: Option<u64>,
    /// Largest accepted request body on the public API, in bytes.
    #[arg(long, env = "LOOM_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// `text` or `json`.
    #[arg(long, env = "LOOM_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Gone: retention is a cluster limit (`max_kept_executions_per_workflow`); refused if set.
    #[arg(long, env = "LOOM_KEEP_EXECUTIONS", hide = true)]
    pub keep_executions: Option<u32>,
    /// Chaos testing only: every Nth poke of an execution actor panics (supervision restarts it).
    #[arg(long, env = "LOOM_CHAOS_ACTOR_PANIC_EVERY")]
    pub chaos_actor_panic_every: Option<u64>,
    /// Chaos testing only: apply retried proposals and client requests again instead of once
    /// (ignores `Idempotency-Key`), so the Jepsen-style test can prove it sees duplicates.
    #[arg(long, env = "LOOM_CHAOS_NO_DEDUP", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub chaos_no_dedup: bool,
    /// Chaos testing only: a leader restored at start-up answers reads from its possibly stale
    /// commit index (the bug the read-index guard fixes), so a test can prove it sees it.
    #[arg(long, env = "LOOM_CHAOS_STALE_READS", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub chaos_stale_reads: bool,
    /// How long a task handed to a worker stays leased without a heartbeat, in ms.
    #[arg(long, env = "LOOM_WORKER_LEASE_MS")]
    pub worker_lease_ms: Option<u64>,
    /// How often workers heartbeat and worker connections are pinged, in ms.
    #[arg(long, env = "LOOM_WORKER_HEARTBEAT_MS")]
    pub worker_heartbeat_ms: Option<u64>,
    /// On SIGTERM, how long the HTTP and shell attempts running on this node get to finish, in
    /// ms (default 10000); those still running then are handed back and run again elsewhere.
    /// Keep it below the supervisor's stop timeout (systemd TimeoutStopSec, Kubernetes
    /// terminationGracePeriodSeconds).
    #[arg(long, env = "LOOM_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Signs every HTTP task request with this secret (`X-Loom-Signature`); see docs/signatures.md.
    #[arg(long, env = "LOOM_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<Secret>,
    /// A file holding the signing secret (instead of --signing-secret).
    #[arg(long, env = "LOOM_SIGNING_SECRET_FILE")]
    pub signing_secret_file: Option<PathBuf>,
    /// Named signing secrets, `name=secret,name2=secret2`: a workflow with `signing_key: name`
    /// is signed with that secret instead of the cluster-wide one.
    #[arg(long, env = "LOOM_SIGNING_KEYS", hide_env_values = true)]
    pub signing_keys: Option<Secret>,
    /// A file holding the named signing secrets (instead of --signing-keys).
    #[arg(long, env = "LOOM_SIGNING_KEYS_FILE")]
    pub signing_keys_file: Option<PathBuf>,
    /// Named webhook secrets, `name=secret,name2=secret2`: a `webhook` trigger with
    /// `secret: name` accepts only callers that prove that secret. Give every node the same.
    #[arg(long, env = "LOOM_WEBHOOK_SECRETS", hide_env_values = true)]
    pub webhook_secrets: Option<Secret>,
    /// A file holding the named webhook secrets (instead of --webhook-secrets).
    #[arg(long, env = "LOOM_WEBHOOK_SECRETS_FILE")]
    pub webhook_secrets_file: Option<PathBuf>,
    /// Turns authentication on: this token acts as `admin` (create the other tokens with it).
    /// Unset, the node runs open and says so. See docs/security.md.
    #[arg(long, env = "LOOM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// A file holding the admin token (instead of --admin-token): nothing secret in the
    /// environment or on the command line.
    #[arg(long, env = "LOOM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Node-to-node requests carry and require this secret; derived from the admin token when
    /// unset (so one secret secures a cluster).
    #[arg(long, env = "LOOM_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<Secret>,
    /// A file holding the cluster secret (instead of --cluster-secret).
    #[arg(long, env = "LOOM_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Host names this node answers for besides loopback names and its advertised host,
    /// comma separated (a name a load balancer or a browser uses to reach it). Set on a node
    /// with tokens, it turns the Host check on there too.
    #[arg(long, env = "LOOM_ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Origins (`scheme://host[:port]`) whose pages may write to this node besides its own,
    /// comma separated.
    #[arg(long, env = "LOOM_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Serve without tokens on an address other hosts can reach (anyone who reaches the node
    /// can then run workflows, shell commands included). Without this flag an open node
    /// refuses to listen anywhere but loopback.
    #[arg(long, env = "LOOM_INSECURE_OPEN", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub insecure_open: bool,
    /// Connections this node keeps open at most (clients and peers together; default 4096).
    #[arg(long, env = "LOOM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections one IP address may hold (default 256; the cluster's members are exempt).
    #[arg(long, env = "LOOM_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Of the connections, how many only the cluster's members may take (default 64).
    #[arg(long, env = "LOOM_PEER_CONNECTIONS")]
    pub peer_connections: Option<usize>,
    /// A request head must arrive within this many ms of the server waiting for it (default
    /// 15000): slow or silent clients are closed.
    #[arg(long, env = "LOOM_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// A connection with no traffic either way for this many seconds is closed (default 120).
    #[arg(long, env = "LOOM_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Followed log streams one token may hold open on this node (default 16).
    #[arg(long, env = "LOOM_MAX_LOG_STREAMS")]
    pub max_log_streams: Option<u64>,
    /// Requests per second each token may send to this node (429 beyond); 0 for no limit.
    #[arg(long, env = "LOOM_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Requests a token may send at once above the rate (default: twice the rate).
    #[arg(long, env = "LOOM_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Most items one page of a list holds.
    #[arg(long, env = "LOOM_MAX_PAGE_SIZE")]
    pub max_page_size: Option<usize>,
    /// `on` (default) or `off`: whether this node runs shell tasks at all.
    #[arg(long, env = "LOOM_SHELL_TASKS")]
    pub shell_tasks: Option<String>,
    /// Programs shell tasks may start, comma separated (bare names are looked up on the node's
    /// PATH; paths match exactly). Unset: any.
    #[arg(long, env = "LOOM_SHELL_ALLOW")]
    pub shell_allow: Option<String>,
    /// CPU seconds one shell attempt may use.
    #[arg(long, env = "LOOM_SHELL_CPU_SECS")]
    pub shell_cpu_secs: Option<u64>,
    /// Address space one shell attempt may use, in MiB.
    #[arg(long, env = "LOOM_SHELL_MEMORY_MB")]
    pub shell_memory_mb: Option<u64>,
    /// Open files one shell attempt may hold (default 1024).
    #[arg(long, env = "LOOM_SHELL_OPEN_FILES")]
    pub shell_open_files: Option<u64>,
    /// Output (stdout + stderr) one shell attempt may write, in MiB (default 16).
    #[arg(long, env = "LOOM_SHELL_OUTPUT_MB")]
    pub shell_output_mb: Option<u64>,
    /// Shell task output this node appends to logs, in KiB per second for all its attempts
    /// together (default 256); beyond it lines are dropped and counted.
    #[arg(long, env = "LOOM_SHELL_LOG_KB_PER_SEC")]
    pub shell_log_kb_per_sec: Option<u64>,
    /// Processes the user a shell task runs as may have (`RLIMIT_NPROC`; also `pids.max` of the
    /// attempt's cgroup where the pids controller is delegated). Default 4096; 0: no limit.
    #[arg(long, env = "LOOM_SHELL_PROCESSES")]
    pub shell_processes: Option<u64>,
    /// Run shell tasks as this numeric user id (needs LOOM_SHELL_GID too). A node running as
    /// root runs them as `nobody` unless this is set (0 runs them as root, explicitly).
    #[arg(long, env = "LOOM_SHELL_UID")]
    pub shell_uid: Option<u32>,
    /// Run shell tasks as this numeric group id.
    #[arg(long, env = "LOOM_SHELL_GID")]
    pub shell_gid: Option<u32>,
    /// Variables of the node's environment to pass to shell tasks, comma separated, besides the
    /// fixed safe set (PATH, HOME, LANG, TZ, TMPDIR, LOOM_* task variables).
    #[arg(long, env = "LOOM_SHELL_PASS_ENV")]
    pub shell_pass_env: Option<String>,
    /// `on` (default) or `off`: a cgroup per shell attempt where the node can create one, so
    /// cancel and timeout kill every process it started.
    #[arg(long, env = "LOOM_SHELL_CGROUPS")]
    pub shell_cgroups: Option<String>,
    /// Hosts and networks HTTP tasks may call, comma separated (`api.example.com`,
    /// `host:8443`, `*.example.com`, `10.0.0.0/8`). Unset: any.
    #[arg(long, env = "LOOM_HTTP_ALLOW")]
    pub http_allow: Option<String>,
    /// PEM certificate chain: serve the API and node-to-node traffic over TLS (with --tls-key).
    #[arg(long, env = "LOOM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "LOOM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for peers and, besides the public roots, HTTPS backends.
    #[arg(long, env = "LOOM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Send traces (a span per request, a span per task attempt) to this OTLP/HTTP traces
    /// endpoint, e.g. `http://127.0.0.1:4318/v1/traces` (a URL without a path gets `/v1/traces`).
    /// Unset: no traces are sent.
    #[arg(long, env = "LOOM_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Headers sent with every OTLP request, `name=value,name2=value2` (a collector's
    /// credentials, say). A secret: kept out of logs and of /proc.
    #[arg(long, env = "LOOM_OTLP_HEADERS", hide_env_values = true)]
    pub otlp_headers: Option<Secret>,
    /// A file holding the OTLP headers (instead of --otlp-headers).
    #[arg(long, env = "LOOM_OTLP_HEADERS_FILE")]
    pub otlp_headers_file: Option<PathBuf>,
}

/// A secret from configuration: never shown by `Debug`, so it cannot leak into a log line.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// The same keys as [`Cli`], from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<u64>,
    listen: Option<SocketAddr>,
    advertise: Option<String>,
    data_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    peers: Option<String>,
    join: Option<bool>,
    heartbeat_ms: Option<u64>,
    election_timeout_min_ms: Option<u64>,
    election_timeout_max_ms: Option<u64>,
    snapshot_logs: Option<u64>,
    logs_kept_after_snapshot: Option<u64>,
    snapshot_finished: Option<u64>,
    forward_wait_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    log_format: Option<String>,
    keep_executions: Option<u32>,
    chaos_actor_panic_every: Option<u64>,
    worker_lease_ms: Option<u64>,
    worker_heartbeat_ms: Option<u64>,
    shutdown_grace_ms: Option<u64>,
    signing_secret: Option<Secret>,
    signing_secret_file: Option<PathBuf>,
    signing_keys: Option<Secret>,
    signing_keys_file: Option<PathBuf>,
    webhook_secrets: Option<Secret>,
    webhook_secrets_file: Option<PathBuf>,
    admin_token: Option<Secret>,
    admin_token_file: Option<PathBuf>,
    cluster_secret: Option<Secret>,
    cluster_secret_file: Option<PathBuf>,
    allowed_hosts: Option<String>,
    allowed_origins: Option<String>,
    insecure_open: Option<bool>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    peer_connections: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_log_streams: Option<u64>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
    max_page_size: Option<usize>,
    shell_tasks: Option<String>,
    shell_allow: Option<String>,
    shell_cpu_secs: Option<u64>,
    shell_memory_mb: Option<u64>,
    shell_open_files: Option<u64>,
    shell_output_mb: Option<u64>,
    shell_log_kb_per_sec: Option<u64>,
    shell_processes: Option<u64>,
    shell_uid: Option<u32>,
    shell_gid: Option<u32>,
    shell_pass_env: Option<String>,
    shell_cgroups: Option<String>,
    http_allow: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    otlp_endpoint: Option<String>,
    otlp_headers: Option<Secret>,
    otlp_headers_file: Option<PathBuf>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: u64,
    pub listen: SocketAddr,
    pub advertise: String,
    pub data_dir: PathBuf,
    /// `--work-dir`, if set (else chosen at start-up, see `hardening::work_root`).
    pub work_dir: Option<PathBuf>,
    pub initial_members: BTreeMap<u64, String>,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_logs: u64,
    pub logs_kept_after_snapshot: u64,
    pub snapshot_finished: u64,
    pub forward_wait_ms: u64,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    pub chaos_actor_panic_every: Option<u64>,
    pub chaos_no_dedup: bool,
    pub chaos_stale_reads: bool,
    pub worker_lease_ms: u64,
    pub worker_heartbeat_ms: u64,
    /// How long running attempts get to finish on SIGTERM.
    pub shutdown_grace: std::time::Duration,
    pub signing_secret: Option<Secret>,
    /// Named signing secrets (`LOOM_SIGNING_KEYS`).
    pub signing_keys: BTreeMap<String, Secret>,
    /// Named webhook secrets (`LOOM_WEBHOOK_SECRETS`).
    pub webhook_secrets: BTreeMap<String, Secret>,
    pub admin_token: Option<Secret>,
    /// Always set when `admin_token` is (derived from it unless configured).
    pub cluster_secret: Option<Secret>,
    pub rate_limit: u32,
    pub rate_burst: u32,
    pub max_page_size: usize,
    /// `LOOM_ALLOWED_HOSTS`.
    pub allowed_hosts: Vec<String>,
    /// `LOOM_ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<String>,
    /// Connection caps and timeouts of the server.
    pub serve: crate::serve::ServeOptions,
    /// Followed log streams per token.
    pub max_log_streams: u64,
    pub task_policy: linkloom_actors::TaskPolicy,
    /// Certificate and key files when the node serves TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub tls_ca: Option<PathBuf>,
    /// Where traces go (OTLP/HTTP with protobuf), when they are sent at all.
    pub otlp: Option<Otlp>,
}

/// The OTLP traces exporter's settings (`LOOM_OTLP_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    /// The traces endpoint, an `http` or `https` URL with a path.
    pub endpoint: String,
    /// Sent with every export (their values are secrets).
    pub headers: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn resolve(cli: Cli) -> anyhow::Result<Config> {
        let file = match &cli.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
        };
        let dev_listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let from_hostname = if cli.node_id_from_hostname {
            if cli.node_id.is_some() || file.node_id.is_some() {
                bail!("--node-id-from-hostname and --node-id both set: choose one");
            }
            let host = hostname().context("reading the host name for --node-id-from-hostname")?;
            Some(node_id_from_hostname(&host)?)
        } else {
            None
        };
        let node_id = from_hostname.or(cli.node_id).or(file.node_id).or(cli.dev.then_some(1)).unwrap_or(1);
        if node_id == 0 {
            bail!("node id must be a positive integer");
        }
        let listen = cli.listen.or(file.listen).unwrap_or(dev_listen);
        let advertise = cli.advertise.or(file.advertise).unwrap_or_else(|| listen.to_string());
        let data_dir = cli.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("loom-data"));
        let join = cli.join || file.join.unwrap_or(false);
        let initial_members = match cli.peers.or(file.peers) {
            Some(peers) if !peers.trim().is_empty() => parse_peers(&peers)?,
            // Alone and not joining: found a one-node cluster.
            _ if !join => BTreeMap::from([(node_id, advertise.clone())]),
            _ => BTreeMap::new(),
        };
        if !initial_members.is_empty() && !initial_members.contains_key(&node_id) && !join {
            bail!("--peers does not list this node's id {node_id}; list every founder, or pass --join");
        }
        let admin_token = secret(
            "admin_token",
            cli.admin_token.or(file.admin_token),
            cli.admin_token_file.or(file.admin_token_file),
        )?;
        let signing_secret = secret(
            "signing_secret",
            cli.signing_secret.or(file.signing_secret),
            cli.signing_secret_file.or(file.signing_secret_file),
        )?;
        let signing_keys = secret(
            "signing_keys",
            cli.signing_keys.or(file.signing_keys),
            cli.signing_keys_file.or(file.signing_keys_file),
        )?;
        let webhook_secrets = secret(
            "webhook_secrets",
            cli.webhook_secrets.or(file.webhook_secrets),
            cli.webhook_secrets_file.or(file.webhook_secrets_file),
        )?;
        let cluster_secret = secret(
            "cluster_secret",
            cli.cluster_secret.or(file.cluster_secret),
            cli.cluster_secret_file.or(file.cluster_secret_file),
        )?;
        let otlp_headers = secret(
            "otlp_headers",
            cli.otlp_headers.or(file.otlp_headers),
            cli.otlp_headers_file.or(file.otlp_headers_file),
        )?;
        let otlp = otlp(cli.otlp_endpoint.or(file.otlp_endpoint), otlp_headers)?;
        let rate_limit = cli.rate_limit.or(file.rate_limit).unwrap_or(1_000);
        let task_policy = task_policy(
            cli.shell_tasks.or(file.shell_tasks),
            cli.shell_allow.or(file.shell_allow),
            ShellLimitFlags {
                cpu_secs: cli.shell_cpu_secs.or(file.shell_cpu_secs),
                memory_mb: cli.shell_memory_mb.or(file.shell_memory_mb),
                open_files: cli.shell_open_files.or(file.shell_open_files),
                output_mb: cli.shell_output_mb.or(file.shell_output_mb),
                log_kb_per_sec: cli.shell_log_kb_per_sec.or(file.shell_log_kb_per_sec),
                processes: cli.shell_processes.or(file.shell_processes),
            },
            (cli.shell_uid.or(file.shell_uid), cli.shell_gid.or(file.shell_gid)),
            ShellIsolationFlags {
                pass_env: cli.shell_pass_env.or(file.shell_pass_env),
                cgroups: cli.shell_cgroups.or(file.shell_cgroups),
            },
            cli.http_allow.or(file.http_allow),
        )?;
        let log_format = match cli.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("log format `{other}` is not one of text, json"),
        };
        if cli.keep_executions.or(file.keep_executions).is_some() {
            bail!(
                "keep-executions (LOOM_KEEP_EXECUTIONS) is gone: retention is a cluster limit now, the same on every \
                 node; set it with `loom cluster limits --set max_kept_executions_per_workflow=N` \
                 (PUT /api/v1/cluster/limits)"
            );
        }
        let config = Config {
            node_id,
            listen,
            advertise,
            data_dir,
            work_dir: cli.work_dir.or(file.work_dir),
            initial_members,
            heartbeat_ms: cli.heartbeat_ms.or(file.heartbeat_ms).unwrap_or(100),
            election_timeout_min_ms: cli.election_timeout_min_ms.or(file.election_timeout_min_ms).unwrap_or(250),
            election_timeout_max_ms: cli.election_timeout_max_ms.or(file.election_timeout_max_ms).unwrap_or(500),
            snapshot_logs: cli.snapshot_logs.or(file.snapshot_logs).unwrap_or(10_000),
            logs_kept_after_snapshot: cli.logs_kept_after_snapshot.or(file.logs_kept_after_snapshot).unwrap_or(1_000),
            snapshot_finished: cli.snapshot_finished.or(file.snapshot_finished).unwrap_or(5_000),
            forward_wait_ms: cli.forward_wait_ms.or(file.forward_wait_ms).unwrap_or(10_000),
            max_body_bytes: cli.max_body_bytes.or(file.max_body_bytes).unwrap_or(1024 * 1024),
            log_format,
            chaos_actor_panic_every: cli.chaos_actor_panic_every.or(file.chaos_actor_panic_every),
            chaos_no_dedup: cli.chaos_no_dedup,
            chaos_stale_reads: cli.chaos_stale_reads,
            worker_lease_ms: cli.worker_lease_ms.or(file.worker_lease_ms).unwrap_or(10_000),
            worker_heartbeat_ms: cli.worker_heartbeat_ms.or(file.worker_heartbeat_ms).unwrap_or(1_000),
            shutdown_grace: std::time::Duration::from_millis(
                cli.shutdown_grace_ms.or(file.shutdown_grace_ms).unwrap_or(10_000),
            ),
            signing_secret,
            signing_keys: parse_named_secrets("signing key", signing_keys)?,
            webhook_secrets: parse_named_secrets("webhook secret", webhook_secrets)?,
            admin_token: admin_token.clone(),
            cluster_secret: cluster_secret.or_else(|| admin_token.as_ref().map(derive_cluster_secret)),
            rate_limit,
            rate_burst: cli.rate_burst.or(file.rate_burst).unwrap_or(rate_limit.saturating_mul(2)),
            max_page_size: cli.max_page_size.or(file.max_page_size).unwrap_or(500),
            allowed_hosts: list(cli.allowed_hosts.or(file.allowed_hosts)),
            allowed_origins: list(cli.allowed_origins.or(file.allowed_origins)),
            serve: {
                let d = crate::serve::ServeOptions::default();
                crate::serve::ServeOptions {
                    max_connections: cli.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
                    max_connections_per_address: cli
                        .max_connections_per_address
                        .or(file.max_connections_per_address)
                        .unwrap_or(d.max_connections_per_address),
                    peer_reserve: cli.peer_connections.or(file.peer_connections).unwrap_or(d.peer_reserve),
                    header_read_timeout: cli
                        .header_read_timeout_ms
                        .or(file.header_read_timeout_ms)
                        .map_or(d.header_read_timeout, std::time::Duration::from_millis),
                    idle_timeout: cli
                        .idle_timeout_secs
                        .or(file.idle_timeout_secs)
                        .map_or(d.idle_timeout, std::time::Duration::from_secs),
                    handshake_timeout: d.handshake_timeout,
                    shutdown_grace: d.shutdown_grace,
                }
            },
            max_log_streams: cli.max_log_streams.or(file.max_log_streams).unwrap_or(16),
            task_policy,
            tls: match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => bail!("tls_cert and tls_key go together: set both or neither"),
            },
            tls_ca: cli.tls_ca.or(file.tls_ca),
            otlp,
        };
        if config.max_page_size == 0 {
            bail!("max_page_size must be at least 1");
        }
        let serve = &config.serve;
        if serve.max_connections == 0 || serve.max_connections_per_address == 0 {
            bail!("max_connections and max_connections_per_address must be at least 1");
        }
        if serve.peer_reserve >= serve.max_connections {
            bail!(
                "peer_connections ({}) must be below max_connections ({}): clients need room too",
                serve.peer_reserve,
                serve.max_connections
            );
        }
        if serve.header_read_timeout < std::time::Duration::from_millis(100) || serve.idle_timeout.is_zero() {
            bail!("header_read_timeout_ms must be at least 100 and idle_timeout_secs at least 1");
        }
        let insecure_open = cli.insecure_open || file.insecure_open.unwrap_or(false);
        if config.admin_token.is_none() && !config.listen.ip().is_loopback() && !insecure_open {
            bail!(
                "refusing to listen on {} without LOOM_ADMIN_TOKEN: anyone who can reach it could run shell commands \
                 on this machine. Set LOOM_ADMIN_TOKEN, listen on 127.0.0.1, or pass --insecure-open \
                 (LOOM_INSECURE_OPEN=true) if this network is yours alone",
                config.listen
            );
        }
        for origin in &config.allowed_origins {
            if !origin.contains("://") {
                bail!("allowed origin `{origin}` is not scheme://host[:port]");
            }
        }
        if config.worker_heartbeat_ms < 50 || config.worker_lease_ms < 2 * config.worker_heartbeat_ms {
            bail!(
                "worker_lease_ms ({}) must be at least twice worker_heartbeat_ms ({}), which must be at least 50",
                config.worker_lease_ms,
                config.worker_heartbeat_ms
            );
        }
        if config.heartbeat_ms == 0 || config.election_timeout_min_ms <= config.heartbeat_ms {
            bail!(
                "election timeout ({} ms) must be longer than the heartbeat ({} ms)",
                config.election_timeout_min_ms,
                config.heartbeat_ms
            );
        }
        if config.election_timeout_max_ms <= config.election_timeout_min_ms {
            bail!("election_timeout_max_ms must be above election_timeout_min_ms");
        }
        Ok(config)
    }
}

impl Config {
    /// Every secret value this configuration holds (to scrub them from the process's memory
    /// that others can read).
    pub fn secret_values(&self) -> Vec<&str> {
        let mut values: Vec<&str> = [&self.admin_token, &self.cluster_secret, &self.signing_secret]
            .into_iter()
            .flatten()
            .map(|s| s.0.as_str())
            .collect();
        values.extend(self.signing_keys.values().map(|s| s.0.as_str()));
        values.extend(self.webhook_secrets.values().map(|s| s.0.as_str()));
        values.extend(self.otlp.iter().flat_map(|o| o.headers.values()).map(|s| s.0.as_str()));
        values
    }

    /// What the Raft member needs of this configuration.
    pub fn raft_settings(&self) -> RaftSettings {
        RaftSettings {
            initial_members: self.initial_members.clone(),
            heartbeat_ms: self.heartbeat_ms,
            election_timeout_min_ms: self.election_timeout_min_ms,
            election_timeout_max_ms: self.election_timeout_max_ms,
            snapshot_logs: self.snapshot_logs,
            logs_kept_after_snapshot: self.logs_kept_after_snapshot,
            snapshot_finished: self.snapshot_finished,
            forward_wait_ms: self.forward_wait_ms,
            exactly_once: !self.chaos_no_dedup,
            guard_restored_reads: !self.chaos_stale_reads,
            ..RaftSettings::new(self.node_id, self.advertise.clone(), self.data_dir.clone())
        }
    }
}

/// A comma-separated list, trimmed, without empty entries.
fn list(text: Option<String>) -> Vec<String> {
    text.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|e| !e.is_empty()).map(String::from).collect()
}

/// A secret given directly or in a file (never both); empty counts as unset. The file's content
/// is trimmed of surrounding whitespace (a trailing newline from `echo` or an editor).
fn secret(name: &str, value: Option<Secret>, file: Option<PathBuf>) -> anyhow::Result<Option<Secret>> {
    let value = value.filter(|s| !s.0.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => bail!("{name} and {name}_file are both set: choose one"),
        (Some(value), None) => Ok(Some(value)),
        (None, None) => Ok(None),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("reading {name}_file {}", path.display()))?;
            let text = text.trim();
            if text.is_empty() {
                bail!("{name}_file {} is empty", path.display());
            }
            Ok(Some(Secret(text.to_string())))
        }
    }
}

struct ShellLimitFlags {
    cpu_secs: Option<u64>,
    memory_mb: Option<u64>,
    open_files: Option<u64>,
    output_mb: Option<u64>,
    log_kb_per_sec: Option<u64>,
    processes: Option<u64>,
}

struct ShellIsolationFlags {
    pass_env: Option<String>,
    cgroups: Option<String>,
}

/// The user and group shell tasks run as: as configured, else `nobody` when the node is root
/// (a task must not run with the node's powers by default), else the node's own.
fn shell_user(run_as: (Option<u32>, Option<u32>)) -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: geteuid(2) cannot fail.
    let euid = unsafe { libc::geteuid() };
    match run_as {
        (None, None) if euid == 0 => Ok(Some(nobody())),
        (None, None) => Ok(None),
        (Some(uid), Some(_)) if euid != 0 && uid != euid => {
            bail!("shell_uid {uid} needs the node to run as root (it runs as uid {euid})")
        }
        (Some(uid), Some(gid)) => Ok(Some((uid, gid))),
        _ => bail!("shell_uid and shell_gid go together: set both or neither"),
    }
}

/// The `nobody` user's ids from the user database, or the usual 65534.
fn nobody() -> (u32, u32) {
    let name = c"nobody";
    // SAFETY: getpwnam(3) with a NUL-terminated name; the returned record is read at once, on
    // this one thread, before any other call could reuse its storage.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return (65_534, 65_534);
    }
    // SAFETY: non-null, so it points to a passwd record.
    unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
}

fn task_policy(
    shell_tasks: Option<String>,
    shell_allow: Option<String>,
    limits: ShellLimitFlags,
    run_as: (Option<u32>, Option<u32>),
    isolation: ShellIsolationFlags,
    http_allow: Option<String>,
) -> anyhow::Result<linkloom_actors::TaskPolicy> {
    let defaults = linkloom_actors::ShellLimits::default();
    let shell_enabled = match shell_tasks.as_deref().map(str::trim) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => bail!("shell_tasks `{other}` is not one of on, off"),
    };
    let shell_run_as = shell_user(run_as)?;
    let shell_cgroups = match isolation.cgroups.as_deref().map(str::trim) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => bail!("shell_cgroups `{other}` is not one of on, off"),
    };
    let mut shell_pass_env = Vec::new();
    for name in isolation.pass_env.iter().flat_map(|list| list.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let valid = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            bail!("shell_pass_env: `{name}` is not a variable name");
        }
        if name.to_ascii_uppercase().starts_with("LOOM_") {
            bail!("shell_pass_env: `{name}`: the node's LOOM_* settings (and secrets) never reach tasks");
        }
        shell_pass_env.push(name.to_string());
    }
    let mb = |v: u64| v.saturating_mul(1024 * 1024);
    if limits.output_mb == Some(0) {
        bail!("shell_output_mb must be at least 1");
    }
    if limits.log_kb_per_sec == Some(0) {
        bail!("shell_log_kb_per_sec must be at least 1");
    }
    Ok(linkloom_actors::TaskPolicy {
        shell_enabled,
        shell_allow: shell_allow
            .map(|list| list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect())
            .unwrap_or_default(),
        shell_limits: linkloom_actors::ShellLimits {
            cpu_secs: limits.cpu_secs,
            memory_bytes: limits.memory_mb.map(mb),
            open_files: limits.open_files.or(defaults.open_files),
            processes: match limits.processes {
                Some(0) => None,
                Some(n) => Some(n),
                None => defaults.processes,
            },
            output_bytes: limits.output_mb.map(mb).unwrap_or(defaults.output_bytes),
            log_bytes_per_sec: limits
                .log_kb_per_sec
                .map(|kb| kb.saturating_mul(1024))
                .unwrap_or(defaults.log_bytes_per_sec),
        },
        shell_run_as,
        shell_pass_env,
        shell_cgroups,
        http_allow: match http_allow.filter(|list| !list.trim().is_empty()) {
            None => None,
            Some(list) => Some(linkloom_actors::parse_host_rules(&list).map_err(anyhow::Error::msg)?),
        },
    })
}

/// The cluster secret when only an admin token is configured: HMAC-SHA256 of a fixed label under
/// the admin token, so every node given the same admin token agrees on it, and knowing the
/// cluster secret does not reveal the admin token.
fn derive_cluster_secret(admin_token: &Secret) -> Secret {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(admin_token.0.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"linkloom cluster secret v1");
    Secret(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
}

/// Parses `name=secret,name2=secret2`; errors name the entry but never show a secret.
/// `name=secret,name2=secret2` (signing keys, webhook secrets); errors name the entry, never
/// a secret.
fn parse_named_secrets(what: &str, text: Option<Secret>) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut keys = BTreeMap::new();
    let Some(text) = text else { return Ok(keys) };
    for (i, entry) in text.0.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let Some((name, secret)) = entry.split_once('=') else {
            bail!("{what} {} is not NAME=SECRET", i + 1);
        };
        let name = name.trim();
        if !linkloom_core::ids::is_slug(name) || secret.is_empty() {
            bail!("{what} `{name}` needs a name of letters, digits, `-` and `_`, and a secret");
        }
        if keys.insert(name.to_string(), Secret(secret.to_string())).is_some() {
            bail!("{what} `{name}` is listed twice");
        }
    }
    Ok(keys)
}

/// The OTLP settings: the endpoint checked (an `http`/`https` URL with a host and no credentials;
/// without a path it gets the standard `/v1/traces`), the headers parsed. Errors name the
/// setting and never show a header's value.
fn otlp(endpoint: Option<String>, headers: Option<Secret>) -> anyhow::Result<Option<Otlp>> {
    let endpoint = endpoint.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        if headers.is_some() {
            bail!("otlp_headers is set but otlp_endpoint (LOOM_OTLP_ENDPOINT) is not: set both or neither");
        }
        return Ok(None);
    };
    let bad = |why: &str| {
        anyhow::anyhow!(
            "otlp_endpoint (LOOM_OTLP_ENDPOINT) `{endpoint}` {why} (expected e.g. http://127.0.0.1:4318/v1/traces)"
        )
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("is not an http:// or https:// URL"));
    }
    let Some(authority) = uri.authority() else { return Err(bad("names no host")) };
    if authority.host().is_empty() {
        return Err(bad("names no host"));
    }
    if authority.as_str().contains('@') {
        return Err(anyhow::anyhow!(
            "otlp_endpoint (LOOM_OTLP_ENDPOINT) holds credentials: pass them as otlp_headers (LOOM_OTLP_HEADERS), \
             which are kept secret"
        ));
    }
    let endpoint = match uri.path() {
        "" | "/" if uri.query().is_none() => format!("{}://{authority}/v1/traces", uri.scheme_str().unwrap_or("http")),
        _ => endpoint.clone(),
    };
    let mut parsed = BTreeMap::new();
    for (i, entry) in headers.iter().flat_map(|h| h.0.split(',')).map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let Some((name, value)) = entry.split_once('=') else {
            bail!("otlp_headers: entry {} is not NAME=VALUE", i + 1);
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            bail!("otlp_headers: entry {} does not start with a header name", i + 1);
        }
        if value.is_empty() || http::HeaderValue::from_str(value).is_err() {
            bail!("otlp_headers: the value of `{name}` is empty or not a valid header value");
        }
        if parsed.insert(name.clone(), Secret(value.to_string())).is_some() {
            bail!("otlp_headers: `{name}` is listed twice");
        }
    }
    Ok(Some(Otlp { endpoint, headers: parsed }))
}

/// Parses `1=host:port,2=host:port`.
/// This machine's host name (in a Kubernetes pod, the pod's name).
fn hostname() -> anyhow::Result<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("gethostname");
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    Ok(String::from_utf8_lossy(&buffer[..end]).into_owned())
}

/// `linkloom-2` → 3: the ordinal after the last `-`, plus one (node ids start at 1, ordinals at 0).
fn node_id_from_hostname(host: &str) -> anyhow::Result<u64> {
    let short = host.split('.').next().unwrap_or(host);
    let ordinal = short
        .rsplit_once('-')
        .map(|(_, tail)| tail)
        .filter(|tail| !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()))
        .with_context(|| format!("host name `{host}` does not end in `-N` (a StatefulSet pod's ordinal)"))?;
    let ordinal: u64 = ordinal.parse().with_context(|| format!("the ordinal of host name `{host}` is too large"))?;
    ordinal.checked_add(1).with_context(|| format!("the ordinal of host name `{host}` is too large"))
}

pub(crate) fn parse_peers(text: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, addr)) = part.split_once('=') else {
            bail!("peer `{part}` is not ID=HOST:PORT");
        };
        let id: u64 = id.trim().parse().with_context(|| format!("peer id `{id}` is not a number"))?;
        if id == 0 {
            bail!("peer id 0 is not allowed");
        }
        if !addr.contains(':') {
            bail!("peer address `{addr}` is not HOST:PORT");
        }
        if peers.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} is listed twice");
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut full = vec!["loom-node"];
        full.extend_from_slice(args);
        Cli::parse_from(full)
    }

    #[test]
    fn dev_is_a_single_node_cluster_on_8080() {
        let c = Config::resolve(cli(&["--dev"])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("loom-data"));
        assert_eq!(c.initial_members, BTreeMap::from([(1, "127.0.0.1:8080".to_string())]));
    }

    #[test]
    fn a_statefulset_pod_name_gives_its_ordinal_plus_one() {
        assert_eq!(node_id_from_hostname("linkloom-0").unwrap(), 1);
        assert_eq!(node_id_from_hostname("my-release-linkloom-2").unwrap(), 3);
        assert_eq!(node_id_from_hostname("linkloom-11.linkloom-headless.ns.svc").unwrap(), 12);
        for bad in ["linkloom", "linkloom-", "linkloom-a1", "", "x-99999999999999999999"] {
            let e = node_id_from_hostname(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let e = Config::resolve(cli(&["--node-id-from-hostname", "--node-id", "2"])).unwrap_err().to_string();
        assert!(e.contains("choose one"), "{e}");
    }

    #[test]
    fn the_retired_keep_executions_setting_is_refused_with_the_limit_that_replaced_it() {
        let e = Config::resolve(cli(&["--dev", "--keep-executions", "50"])).unwrap_err().to_string();
        assert!(e.contains("max_kept_executions_per_workflow"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "node_id = 2\nlisten = \"127.0.0.1:9000\"\nsnapshot_logs = 7\n").unwrap();
        let c = Config::resolve(cli(&[
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9100",
            "--peers",
            "1=127.0.0.1:9001,2=127.0.0.1:9100",
        ]))
        .unwrap();
        assert_eq!(c.node_id, 2);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(c.snapshot_logs, 7);
        assert_eq!(c.initial_members.len(), 2);
    }

    #[test]
    fn the_signing_secret_never_shows_in_debug_output() {
        let c = Config::resolve(cli(&["--dev", "--signing-secret", "hunter2-xyz"])).unwrap();
        assert_eq!(c.signing_secret.as_ref().map(|s| s.0.as_str()), Some("hunter2-xyz"));
        assert!(!format!("{c:?}").contains("hunter2-xyz"));
        let none = Config::resolve(cli(&["--dev", "--signing-secret", ""])).unwrap();
        assert!(none.signing_secret.is_none(), "an empty secret means none");
    }

    #[test]
    fn the_admin_token_turns_on_auth_and_derives_the_cluster_secret() {
        let open = Config::resolve(cli(&["--dev"])).unwrap();
        assert!(open.admin_token.is_none() && open.cluster_secret.is_none());
        assert_eq!((open.rate_limit, open.rate_burst), (1_000, 2_000));
        let a = Config::resolve(cli(&["--dev", "--admin-token", "s3cret-s3cret-s3cret"])).unwrap();
        let b = Config::resolve(cli(&["--dev", "--admin-token", "s3cret-s3cret-s3cret"])).unwrap();
        let secret = a.cluster_secret.clone().expect("derived");
        assert_eq!(Some(secret.clone()), b.cluster_secret, "every node derives the same secret");
        assert_eq!(secret.0.len(), 64);
        assert!(!secret.0.contains("s3cret"));
        assert!(!format!("{a:?}").contains("s3cret"), "secrets never show in debug output");
        let own = Config::resolve(cli(&[
            "--dev",
            "--admin-token",
            "s3cret-s3cret-s3cret",
            "--cluster-secret",
            "peer-secret",
        ]))
        .unwrap();
        assert_eq!(own.cluster_secret.map(|s| s.0), Some("peer-secret".to_string()));
    }

    #[test]
    fn task_policy_flags_are_read_and_checked() {
        let open = Config::resolve(cli(&["--dev"])).unwrap().task_policy;
        assert!(open.shell_enabled && open.shell_allow.is_empty() && open.http_allow.is_none());
        let strict = Config::resolve(cli(&[
            "--dev",
            "--shell-tasks",
            "off",
            "--shell-allow",
            "sh, /usr/bin/env",
            "--shell-memory-mb",
            "256",
            "--http-allow",
            "api.example.com,10.0.0.0/8",
        ]))
        .unwrap()
        .task_policy;
        assert!(!strict.shell_enabled);
        assert_eq!(strict.shell_allow, ["sh", "/usr/bin/env"]);
        assert_eq!(strict.shell_limits.memory_bytes, Some(256 * 1024 * 1024));
        assert_eq!(strict.http_allow.map(|r| r.len()), Some(2));
        for (flags, named) in [
            (&["--shell-tasks", "maybe"][..], "maybe"),
            (&["--http-allow", "10.0.0.0/99"][..], "10.0.0.0/99"),
            (&["--shell-uid", "1000"][..], "shell_gid"),
        ] {
            let mut args = vec!["--dev"];
            args.extend_from_slice(flags);
            let e = Config::resolve(cli(&args)).unwrap_err();
            assert!(format!("{e:#}").contains(named), "{e:#}");
        }
    }

    #[test]
    fn signing_keys_are_named_pairs_and_stay_hidden() {
        let c = Config::resolve(cli(&["--dev", "--signing-keys", "billing=b1ll-secret, reports=r3p-secret"])).unwrap();
        assert_eq!(c.signing_keys.keys().collect::<Vec<_>>(), ["billing", "reports"]);
        assert_eq!(c.signing_keys["billing"].0, "b1ll-secret");
        assert!(!format!("{c:?}").contains("b1ll-secret"));
        let e = Config::resolve(cli(&["--dev", "--signing-keys", "nopair"])).unwrap_err();
        assert!(e.to_string().contains("NAME=SECRET") && !e.to_string().contains("nopair"), "{e}");
    }

    #[test]
    fn otlp_export_is_off_by_default_and_its_settings_are_checked() {
        assert_eq!(Config::resolve(cli(&["--dev"])).unwrap().otlp, None, "no endpoint, no export");
        let c = Config::resolve(cli(&[
            "--dev",
            "--otlp-endpoint",
            "https://collector.example:4318/v1/traces",
            "--otlp-headers",
            "Authorization=Bearer s3cr3t-otlp-token, x-tenant=loom",
        ]))
        .unwrap();
        let otlp = c.otlp.clone().expect("configured");
        assert_eq!(otlp.endpoint, "https://collector.example:4318/v1/traces");
        assert_eq!(otlp.headers.keys().collect::<Vec<_>>(), ["authorization", "x-tenant"]);
        assert_eq!(otlp.headers["authorization"].0, "Bearer s3cr3t-otlp-token");
        assert!(!format!("{c:?}").contains("s3cr3t"), "header values never show in debug output");
        assert!(c.secret_values().contains(&"Bearer s3cr3t-otlp-token"), "scrubbed from /proc like other secrets");
        let base = Config::resolve(cli(&["--dev", "--otlp-endpoint", "http://127.0.0.1:4318"])).unwrap();
        assert_eq!(base.otlp.unwrap().endpoint, "http://127.0.0.1:4318/v1/traces", "the standard path");
        for (flags, named) in [
            (&["--otlp-endpoint", "collector:4318"][..], "otlp_endpoint"),
            (&["--otlp-endpoint", "ftp://collector/v1/traces"][..], "otlp_endpoint"),
            (&["--otlp-endpoint", "http://user:pw@collector/v1/traces"][..], "otlp_headers"),
            (&["--otlp-headers", "a=b"][..], "otlp_endpoint"),
            (&["--otlp-endpoint", "http://c/v1/traces", "--otlp-headers", "hunter2-no-value"][..], "NAME=VALUE"),
            (&["--otlp-endpoint", "http://c/v1/traces", "--otlp-headers", "bad name=x"][..], "header name"),
        ] {
            let mut args = vec!["--dev"];
            args.extend_from_slice(flags);
            let e = format!("{:#}", Config::resolve(cli(&args)).unwrap_err());
            assert!(e.contains(named), "{flags:?}: {e}");
            assert!(!e.contains("hunter2") && !e.contains(":pw@"), "no secret in the error: {e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::resolve(cli(&["--peers", "1=a:1,x=b:2"])).unwrap_err();
        assert!(format!("{e:#}").contains("`x`"), "{e:#}");
        let e = Config::resolve(cli(&["--node-id", "3", "--peers", "1=a:1,2=b:2"])).unwrap_err();
        assert!(e.to_string().contains("does not list this node's id 3"), "{e}");
        let e = Config::resolve(cli(&["--log-format", "xml"])).unwrap_err();
        assert!(e.to_string().contains("xml"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "node_idd = 2\n").unwrap();
        let e = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(format!("{e:#}").contains("node_idd"), "{e:#}");
    }
}
