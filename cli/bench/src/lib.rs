//! Link Loom's benchmark suite: one set of scenarios, each a load generated and measured through
//! the Rust SDK against any cluster.
//!
//! Two programs run these scenarios and differ only in where the cluster comes from:
//! - `loom bench SCENARIO` loads the cluster the CLI is pointed at (an operator's own);
//! - `loom-bench SCENARIO` (in `node/harness`) first starts a fresh 3-node cluster of release
//!   `loom-node` processes on 127.0.0.1, then runs the same scenario and adds what only a
//!   process owner can see (each node's RSS, data on disk), the etcd baseline for `writes`, and
//!   the faults `failover` needs ([`Faults`]).
//!
//! Latencies are taken on this process's monotonic clock; every report has p50, p90, p99, p99.9
//! and max (nearest rank) and the rate over the measured window. Warm-up operations are not
//! measured. Bench workflows are named `bench-<scenario>-<random>` and deleted afterwards.
//!
//! Scenarios that need a task to land somewhere run their own HTTP backend on 127.0.0.1 (so the
//! cluster must reach this machine's loopback: run the bench on one of its machines) or SDK
//! workers in this process.

mod backend;
mod cron;
mod drive;
mod failover;
mod history;
mod http;
mod report;
mod workers;
mod writes;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use linkloom::Client;

pub use failover::Faults;
pub use report::{percentile, Report};
pub use writes::{writes_with, Writer, KEYS};

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options do not make a run (names the option).
    #[error("{0}")]
    Usage(String),
    /// The cluster refused or failed a call the scenario cannot do without.
    #[error(transparent)]
    Api(#[from] linkloom::Error),
    /// The scenario could not measure what it measures (a task never arrived, ...).
    #[error("{0}")]
    Failed(String),
}

/// One benchmark scenario. Each says what its latency samples are in [`Scenario::measures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Writes,
    TriggerLatency,
    Chain,
    Throughput,
    Events,
    Workers,
    WorkerChain,
    WorkerThroughput,
    Cron,
    Failover,
    History,
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
        Scenario::Writes,
        Scenario::TriggerLatency,
        Scenario::Chain,
        Scenario::Throughput,
        Scenario::Events,
        Scenario::Workers,
        Scenario::WorkerChain,
        Scenario::WorkerThroughput,
        Scenario::Cron,
        Scenario::Failover,
        Scenario::History,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Writes => "writes",
            Scenario::TriggerLatency => "trigger-latency",
            Scenario::Chain => "chain",
            Scenario::Throughput => "throughput",
            Scenario::Events => "events",
            Scenario::Workers => "workers",
            Scenario::WorkerChain => "worker-chain",
            Scenario::WorkerThroughput => "worker-throughput",
            Scenario::Cron => "cron",
            Scenario::Failover => "failover",
            Scenario::History => "history",
        }
    }

    /// What one latency sample of this scenario is.
    pub fn measures(self) -> &'static str {
        match self {
            Scenario::Writes => "workflow put sent -> acknowledged (committed and applied)",
            Scenario::TriggerLatency => "trigger sent -> the task's HTTP request received by the backend",
            Scenario::Chain => "HTTP task answered -> the next task's request received (completion -> dispatch)",
            Scenario::Throughput => "trigger sent -> task received, single-task executions in flight at once",
            Scenario::Events => "event sent -> the task of the workflow it matched received, events in flight at once",
            Scenario::Workers => "trigger sent -> an SDK worker's handler started",
            Scenario::WorkerChain => "worker handler returned -> the next worker task's handler started",
            Scenario::WorkerThroughput => "worker tasks finished per second (rate only; no latency samples)",
            Scenario::Cron => "schedule tick -> the task's HTTP request received (tick lateness plus dispatch)",
            Scenario::Failover => "leader SIGKILLed -> the first write acknowledged through a survivor",
            Scenario::History => "after filling --count executions: a workflow's newest 100 listed",
        }
    }

    /// Operations in flight when `--concurrency` is not given.
    fn default_concurrency(self) -> usize {
        match self {
            Scenario::Writes | Scenario::Throughput | Scenario::Events | Scenario::Workers => 16,
            Scenario::History => 32,
            _ => 1,
        }
    }

    /// Measured operations when neither `--count` nor `--duration` is given.
    fn default_count(self) -> usize {
        match self {
            Scenario::Writes | Scenario::Throughput | Scenario::Events => 2_000,
            Scenario::TriggerLatency | Scenario::Workers => 300,
            Scenario::Chain | Scenario::WorkerChain => 30,
            Scenario::Failover => 10,
            Scenario::History => 10_000,
            Scenario::WorkerThroughput | Scenario::Cron => 0,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = BenchError;

    fn from_str(text: &str) -> Result<Scenario, BenchError> {
        Scenario::ALL.into_iter().find(|s| s.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            BenchError::Usage(format!("scenario `{text}` is not one of {}", names.join(", ")))
        })
    }
}

/// The options every scenario takes, the same flags in `loom bench` and `loom-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Operations in flight (default: 16 for writes, throughput and workers, else 1).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Measured operations after the warm-up (default per scenario), unless --duration is given.
    #[arg(long)]
    pub count: Option<usize>,
    /// Measure for this long instead of --count (`30s`, `2m`); cron and worker-throughput
    /// default to 10s.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured operations first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Tasks per execution: the chain's length (chain, worker-chain) or the fan's width
    /// (worker-throughput).
    #[arg(long, default_value_t = 10)]
    pub tasks: usize,
    /// cron: workflows on the schedule; history: workflows the executions are spread over.
    #[arg(long, default_value_t = 10)]
    pub workflows: usize,
    /// cron: their schedule (six-field cron, seconds first).
    #[arg(long, default_value = "* * * * * *")]
    pub schedule: String,
    /// Worker scenarios: SDK workers in this process, spread over the servers.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Worker scenarios: tasks each worker runs at once.
    #[arg(long, default_value_t = 8)]
    pub slots: u32,
    /// writes: bytes per write (the workflow YAML is padded to it).
    #[arg(long, default_value_t = 300)]
    pub value_bytes: usize,
    /// history: list calls timed after the fill.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: None,
            count: None,
            duration: None,
            warmup: 5,
            tasks: 10,
            workflows: 10,
            schedule: "* * * * * *".into(),
            workers: 4,
            slots: 8,
            value_bytes: 300,
            samples: 200,
        }
    }
}

/// A duration in the grammar workflow specs use (`30s`, `2m`, `1m30s`, `500ms`), above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d: linkloom_core::DurationMs = text.parse().map_err(|e| format!("`{text}`: {e}"))?;
    if d.as_millis() == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(Duration::from_millis(d.as_millis()))
}

/// The settled options of one run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub scenario: Scenario,
    pub concurrency: usize,
    pub count: usize,
    pub duration: Option<Duration>,
    pub warmup: usize,
    pub options: Options,
}

impl Plan {
    fn new(scenario: Scenario, options: &Options) -> Result<Plan, BenchError> {
        let concurrency = options.concurrency.unwrap_or(scenario.default_concurrency());
        let count = options.count.unwrap_or(scenario.default_count());
        let duration = match scenario {
            Scenario::Cron | Scenario::WorkerThroughput => Some(options.duration.unwrap_or(Duration::from_secs(10))),
            _ if options.count.is_some() => None,
            _ => options.duration,
        };
        let plan = Plan { scenario, concurrency, count, duration, warmup: options.warmup, options: options.clone() };
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<(), BenchError> {
        let o = &self.options;
        let problem = if self.concurrency == 0 {
            Some("--concurrency must be at least 1")
        } else if self.duration.is_none() && self.count == 0 {
            Some("--count must be at least 1")
        } else if o.tasks < 2 && matches!(self.scenario, Scenario::Chain | Scenario::WorkerChain) {
            Some("--tasks must be at least 2 for a chain")
        } else if o.tasks == 0 || o.tasks > 500 {
            Some("--tasks must be between 1 and 500")
        } else if o.workflows == 0 || o.workflows > 10_000 {
            Some("--workflows must be between 1 and 10000")
        } else if o.workers == 0 || o.workers > 256 || o.slots == 0 || o.slots > 1024 {
            Some("--workers must be between 1 and 256 and --slots between 1 and 1024")
        } else if o.samples == 0 || o.samples > 100_000 {
            Some("--samples must be between 1 and 100000")
        } else if self.scenario == Scenario::History && self.count > 10_000_000 {
            Some("--count must be at most 10000000 for history (the most the cluster keeps)")
        } else if o.value_bytes > 1 << 20 {
            Some("--value-bytes must be at most 1 MiB")
        } else {
            None
        };
        match problem {
            Some(p) => Err(BenchError::Usage(p.into())),
            None => Ok(()),
        }
    }
}

/// Runs `scenario` against the cluster `client` reaches (writes and triggers go through its
/// current server; workers start at each server in turn). `faults` is needed by `failover`
/// only: without it that scenario is refused, since killing a leader takes the process owner.
pub async fn run(
    scenario: Scenario,
    client: &Client,
    options: &Options,
    faults: Option<&dyn Faults>,
) -> Result<Report, BenchError> {
    let plan = Plan::new(scenario, options)?;
    let name = format!("bench-{}-{:08x}", scenario.name(), random_suffix());
    let result = match scenario {
        Scenario::Writes => writes::run(client, &name, &plan).await,
        Scenario::TriggerLatency | Scenario::Throughput | Scenario::Chain | Scenario::Events => {
            http::run(client, &name, &plan).await
        }
        Scenario::Workers | Scenario::WorkerChain | Scenario::WorkerThroughput => {
            workers::run(client, &name, &plan).await
        }
        Scenario::Cron => cron::run(client, &name, &plan).await,
        Scenario::History => history::run(client, &name, &plan, faults).await,
        Scenario::Failover => match faults {
            Some(faults) => failover::run(client, &name, &plan, faults).await,
            None => Err(BenchError::Usage(
                "failover kills the leader's process: run it with `loom-bench failover`, which starts its own cluster"
                    .into(),
            )),
        },
    };
    cleanup(client, &name).await;
    result
}

fn random_suffix() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

/// Deletes what the run registered: `name` and `name-*` (best effort: a failed cleanup must not
/// hide the figures).
async fn cleanup(client: &Client, name: &str) {
    let prefix = format!("{name}-");
    let ids: Vec<String> = match client.list_workflows().await {
        Ok(list) => list.into_iter().map(|w| w.id).filter(|id| id == name || id.starts_with(&prefix)).collect(),
        Err(_) => vec![name.to_string()],
    };
    for id in ids {
        let _ = client.delete_workflow(&id).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip_and_unknown_ones_are_named() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>().ok(), Some(s));
        }
        let e = "write".parse::<Scenario>().unwrap_err().to_string();
        assert!(e.contains("`write`") && e.contains("trigger-latency"), "{e}");
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn plans_apply_defaults_and_name_bad_options() {
        let plan = Plan::new(Scenario::Writes, &Options::default()).unwrap();
        assert_eq!((plan.concurrency, plan.count, plan.duration), (16, 2_000, None));
        let plan = Plan::new(Scenario::Cron, &Options::default()).unwrap();
        assert_eq!(plan.duration, Some(Duration::from_secs(10)));
        let counted = Options { count: Some(7), duration: Some(Duration::from_secs(1)), ..Options::default() };
        assert_eq!(Plan::new(Scenario::Chain, &counted).unwrap().duration, None, "--count wins");
        let short = Options { tasks: 1, ..Options::default() };
        let e = Plan::new(Scenario::Chain, &short).unwrap_err().to_string();
        assert!(e.contains("--tasks"), "{e}");
        let idle = Options { concurrency: Some(0), ..Options::default() };
        assert!(Plan::new(Scenario::Writes, &idle).unwrap_err().to_string().contains("--concurrency"));
    }
}
