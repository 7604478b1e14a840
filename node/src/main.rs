//! `loom-node`: reads configuration, guards the process, assembles the node (the library's
//! `assemble`, which the simulation calls too) and serves it. Logic lives in the libraries.

// `ui_assets()`: the web UI, compiled in by build.rs (empty when built without one).
include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use hyper_util::client::legacy::connect::Connect;
use linkloom_api::{ApiLimits, AuthConfig};
use linkloom_node::config::{Cli, Config, LogFormat};
use linkloom_node::{hardening, otlp, serve, tls, Parts, Seams};
use linkloom_raft::storage::Disk;
use linkloom_raft::{HttpTransport, SystemClock, ThreadEntropy};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

// jemalloc, not the system allocator: with glibc's malloc a node kept about twice its live heap
// as resident memory (per-thread arenas holding freed pages); jemalloc's background thread
// returns freed pages to the system (docs/benchmarks.md, "The allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if let Some(command) = cli.maintenance.take() {
        return linkloom_node::maintenance::run(command);
    }
    let config = Config::resolve(cli)?;
    // Before any thread starts: secrets out of the environment block and the command line.
    let secrets = config.secret_values();
    let tasks_as_other_user = config.task_policy.shell_run_as.is_some();
    let protection = hardening::protect(&secrets, &config.data_dir, tasks_as_other_user)?;
    drop(secrets);
    // Only with an endpoint: otherwise no exporter, no thread, no layer.
    let traces = match &config.otlp {
        None => None,
        Some(settings) => {
            let ca = config.tls_ca.as_deref().map(tls::load_certs).transpose()?.unwrap_or_default();
            Some(otlp::Traces::start(settings, config.node_id, &ca)?)
        }
    };
    init_tracing(config.log_format, traces.as_ref());
    tracing::info!(
        scrubbed_variables = protection.scrubbed_variables,
        scrubbed_arguments = protection.scrubbed_arguments,
        not_dumpable = protection.not_dumpable,
        "secrets kept out of /proc/self/environ and /proc/self/cmdline"
    );
    for place in &protection.leaks {
        tracing::error!("a secret is still readable in {place}: pass secrets in files (LOOM_*_FILE)");
    }
    if let Some(settings) = &config.otlp {
        tracing::info!(
            endpoint = %settings.endpoint,
            headers = ?settings.headers.keys().collect::<Vec<_>>(),
            max_queued_spans = otlp::MAX_QUEUED_SPANS,
            "traces are sent over OTLP/HTTP"
        );
    }
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(start(config));
    // The node and its runtime have stopped: send the spans still queued.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    served
}

async fn start(config: Config) -> anyhow::Result<()> {
    // Bind first: a port conflict should fail before any data is touched.
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let ca = config.tls_ca.as_deref().map(tls::load_certs).transpose()?.unwrap_or_default();
    match &config.tls {
        None => run(&config, listener, HttpTransport::tcp(), None, &ca).await,
        Some((cert, key)) => {
            let server = tls::server_config(cert, key)?;
            let transport = HttpTransport::tcp_tls(tls::peer_client_config(&ca)?);
            run(&config, listener, transport, Some(server), &ca).await
        }
    }
}

/// Assembles the node from the configuration, serves it until SIGTERM, then stops cleanly.
async fn run<C: Connect + Clone + Send + Sync + 'static>(
    config: &Config,
    listener: tokio::net::TcpListener,
    transport: HttpTransport<C>,
    tls: Option<Arc<rustls::ServerConfig>>,
    ca: &[rustls::pki_types::CertificateDer<'static>],
) -> anyhow::Result<()> {
    let mut transport = transport;
    if let Some(secret) = &config.cluster_secret {
        transport = transport.with_cluster_secret(secret.0.clone());
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let disk = Disk::open_sled(&config.data_dir)
        .with_context(|| format!("opening the data in {}", config.data_dir.display()))?;
    let clock: Arc<dyn linkloom_raft::Clock> = Arc::new(SystemClock);
    let (work_dir, why) = hardening::work_root(
        config.work_dir.as_deref(),
        &config.data_dir,
        config.node_id,
        config.task_policy.shell_run_as,
    )?;
    tracing::info!(work_dir = %work_dir.display(), "shell attempts work here: {why}");
    let mut engine_config = linkloom_actors::EngineConfig::new(work_dir);
    engine_config.chaos_panic_every = config.chaos_actor_panic_every;
    engine_config.worker_lease_ms = config.worker_lease_ms;
    engine_config.worker_heartbeat_ms = config.worker_heartbeat_ms;
    engine_config.signing_secret = config.signing_secret.as_ref().map(|s| Arc::from(s.0.as_str()));
    engine_config.signing_keys =
        config.signing_keys.iter().map(|(name, secret)| (name.clone(), Arc::from(secret.0.as_str()))).collect();
    engine_config.task_policy = config.task_policy.clone();
    engine_config.api_scheme = if tls.is_some() { "https" } else { "http" };
    let policy = &config.task_policy;
    tracing::info!(
        shell_tasks = policy.shell_enabled,
        shell_allow = ?policy.shell_allow,
        shell_run_as = ?policy.shell_run_as,
        http_allow = ?policy.http_allow,
        "task policy"
    );
    if engine_config.signing_secret.is_some() || !engine_config.signing_keys.is_empty() {
        tracing::info!(keys = ?config.signing_keys.keys().collect::<Vec<_>>(), "HTTP task requests are signed (X-Loom-Signature)");
    }
    if let Some(n) = config.chaos_actor_panic_every {
        tracing::warn!(n, "chaos testing: every {n}th execution actor poke panics");
    }
    if config.chaos_no_dedup {
        tracing::warn!("chaos testing: retried writes may apply twice (LOOM_CHAOS_NO_DEDUP); never in production");
    }
    if config.chaos_stale_reads {
        tracing::warn!(
            "chaos testing: a restarted leader may serve stale reads (LOOM_CHAOS_STALE_READS); never in production"
        );
    }
    let targets = linkloom_actors::TargetRules::new(config.task_policy.http_allow.clone());
    let task_http = linkloom_actors::HyperTaskHttp::tcp(ca, targets).context("loading the CA for HTTPS task calls")?;
    let limits = ApiLimits {
        max_body_bytes: config.max_body_bytes,
        max_page_size: config.max_page_size,
        ..ApiLimits::default()
    };
    let auth = AuthConfig::new(
        config.admin_token.as_ref().map(|t| t.0.clone()),
        config.cluster_secret.as_ref().map(|s| s.0.clone()),
        config.rate_limit,
        config.rate_burst,
    );
    match &config.admin_token {
        None => tracing::warn!("{}", linkloom_api::OPEN_WARNING),
        Some(token) => {
            tracing::info!(
                rate_limit = config.rate_limit,
                "requests need a token; node-to-node requests the cluster secret"
            );
            if token.0.len() < 16 {
                tracing::warn!("the admin token is shorter than 16 characters; use a long random one outside tests");
            }
        }
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ui = ui_assets();
    if ui.has_app() {
        tracing::info!(files = ui.len(), "web UI at {scheme}://{}/", config.advertise);
    } else {
        tracing::info!("built without the web UI: / answers 404");
    }
    let seams = Seams { transport, disk, clock, entropy: Arc::new(ThreadEntropy), task_http: Arc::new(task_http) };
    let parts = Parts {
        raft: config.raft_settings(),
        engine: engine_config,
        limits,
        auth,
        browser: linkloom_api::BrowserGuard::new(
            &[config.advertise.as_str(), &config.listen.to_string()],
            &config.allowed_hosts,
            &config.allowed_origins,
            config.admin_token.is_none(),
        ),
        ui,
        max_log_streams: config.max_log_streams,
        idempotency_keys: !config.chaos_no_dedup,
        webhooks: linkloom_api::webhook::WebhookSecrets::new(
            config.webhook_secrets.iter().map(|(name, secret)| (name.clone(), secret.0.clone())).collect(),
        ),
    };
    let linkloom_node::Assembled { node, engine, router: app, http_metrics } = linkloom_node::assemble(seams, parts)
        .await
        .with_context(|| format!("starting node {} with data in {}", config.node_id, config.data_dir.display()))?;
    tracing::info!(
        node_id = config.node_id,
        listen = %config.listen,
        advertise = %config.advertise,
        data_dir = %config.data_dir.display(),
        members = ?config.initial_members,
        "loom-node serving on {scheme}://{}",
        config.listen
    );
    // On SIGTERM: drain the engine (no new attempts; running ones finish within the grace or
    // are handed back), then stop it, which closes worker streams (their workers move to another
    // node), then let in-flight requests finish, but not for ever: a client following a log
    // stream would otherwise hold the node up. If Raft stops for good (a storage error: a full
    // or failing disk), the node exits non-zero instead: it can no longer take part, and its
    // supervisor restarts it once the cause is fixed (docs/operations.md, "Disk full").
    let engine_to_stop = engine.clone();
    let grace = config.shutdown_grace;
    let raft_stopped = Arc::new(std::sync::Mutex::new(None));
    let (watched, stop_reason) = (node.clone(), raft_stopped.clone());
    let stopping = async move {
        tokio::select! {
            () = shutdown_signal() => {
                tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: draining running attempts");
                let drained = engine_to_stop.drain(grace).await;
                tracing::info!(
                    running = drained.running_at_start,
                    released = drained.released,
                    waited_ms = drained.waited.as_millis() as u64,
                    "drained"
                );
            }
            why = watched.stopped() => {
                tracing::error!("Raft stopped ({why}); exiting so this node can be restarted once the cause is fixed");
                *stop_reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            }
        }
        engine_to_stop.stop();
    };
    // The membership's addresses get the connections kept for peers; refreshed as it changes.
    let peers = serve::PeerAddresses::default();
    let (watched, refreshed) = (node.clone(), peers.clone());
    tokio::spawn(async move {
        loop {
            let members = watched.cluster_info().members.into_iter().map(|m| m.addr);
            refreshed.refresh(members).await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    serve::serve(listener, acceptor, app, config.serve.clone(), peers, http_metrics, stopping).await;
    if let Some(why) = raft_stopped.lock().unwrap_or_else(|p| p.into_inner()).take() {
        anyhow::bail!("Raft stopped: {why}");
    }
    node.shutdown().await.context("stopping raft")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Logs to stderr, filtered by `LOOM_LOG`; with `traces`, also the exported spans, which have a
/// filter of their own (so `LOOM_LOG=warn` quiets the log without stopping traces).
fn init_tracing(format: LogFormat, traces: Option<&otlp::Traces>) {
    let filter = EnvFilter::try_from_env("LOOM_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn,sled=warn,tower_http=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let log = match format {
        LogFormat::Json => log.json().with_filter(filter).boxed(),
        LogFormat::Text => log.with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(log).with(traces.map(|t| t.layer())).init();
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
