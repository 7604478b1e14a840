//! One simulated run: build the world from a seed, warm up, inject the scenario's faults, heal,
//! let the cluster settle, and check the invariants.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use linkloom_core::bugs::Bug;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::backend::{run_backend, Backend, Profile, BACKEND_HOST};
use crate::checker::{Checker, Violation};
use crate::node::{host_name, run_node, NodeBugs};
use crate::scenario::{Fault, Planned, Scenario, Target, FAULT_PHASE, WARM_UP};
use crate::workload::{run_client, run_worker};
use crate::world::World;

/// The cluster size of every run.
pub const NODES: u64 = 3;
pub const WORKERS: u64 = 2;
/// After healing, everything must settle within this.
pub const SETTLE_BOUND: Duration = Duration::from_secs(60);

/// A bug the simulator can inject, by name.
pub const BUGS: [(&str, &str); 7] = [
    ("cron-duplicate", "a tick fired twice creates a second execution (caught by one-execution-per-tick)"),
    ("late-completion", "a completion after the lease expired is accepted (caught by finished-never-changes)"),
    ("ignore-retry-limit", "failures are retried past max_attempts (caught by retry-policy)"),
    ("event-duplicate", "an event sent again starts its workflows again (caught by events-exactly-once)"),
    ("lying-fsync", "the disk acknowledges flushes it never made (caught by acked-writes-durable)"),
    ("no-dedup", "retried proposals and client requests apply again (caught by exactly-once, linearizable)"),
    ("stale-restored-reads", "a leader restarted before an election serves stale reads (caught by linearizable)"),
];

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    pub seed: u64,
    pub bug: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub trace_hash: String,
    pub violations: Vec<Violation>,
    pub sim_time: Duration,
    pub wall_time: Duration,
    pub trace: String,
    pub acks: usize,
}

/// Undoing a fault when its time is up.
#[derive(Debug, Clone)]
enum Undo {
    Bounce(String),
    Repair(String, String),
    RepairOneWay(String, String),
    Latency,
    Lossless(String, String),
    Backend,
    FastDisk(u64),
}

/// The host names of the nodes.
fn node_hosts() -> Vec<String> {
    (1..=NODES).map(host_name).collect()
}

/// The simulated world every run and probe uses: 1 ms ticks, 1–3 ms messages, the seed's RNG.
pub(crate) fn builder(seed: u64) -> turmoil::Builder {
    let mut builder = turmoil::Builder::new();
    builder
        .simulation_duration(Duration::from_secs(3_600))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(3))
        // A link cut at random (LossyLink faults) comes back after a few messages.
        .repair_rate(0.3)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_798_761_600))
        .rng_seed(seed)
        // turmoil keeps the port of a connect that was abandoned before the peer answered (e.g.
        // across a partition) for the rest of the run, so give every host all the ports there are.
        .ephemeral_ports(1024..=65535);
    builder
}

pub fn run(config: &RunConfig) -> Result<Outcome, String> {
    let started = Instant::now();
    let seed = config.seed;
    let lying = config.bug.as_deref() == Some("lying-fsync");
    let node_bugs = NodeBugs {
        stale_restored_reads: config.bug.as_deref() == Some("stale-restored-reads"),
        no_dedup: config.bug.as_deref() == Some("no-dedup"),
    };
    let bugs: Vec<Bug> = match config.bug.as_deref() {
        None | Some("lying-fsync" | "no-dedup" | "stale-restored-reads") => vec![],
        Some("cron-duplicate") => vec![Bug::CronDuplicate],
        Some("late-completion") => vec![Bug::LateCompletion],
        Some("ignore-retry-limit") => vec![Bug::IgnoreRetryLimit],
        Some("event-duplicate") => vec![Bug::EventDuplicate],
        Some(other) => return Err(format!("unknown bug `{other}`; --list-bugs lists them")),
    };
    linkloom_core::bugs::set_active(&bugs);
    linkloom_raft::runtime::seed_thread_rng(seed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let skews = config.scenario.skews(&mut rng, NODES);
    let plan = config.scenario.plan(&mut rng, NODES);

    let world = World::new(NODES);
    for disk in world.disks.values() {
        disk.set_flush_lies(lying);
    }
    let backend = Backend::new(seed);
    let stop = Arc::new(Mutex::new(false));
    let mut sim = builder(seed).build();
    for id in 1..=NODES {
        let (world, skew) = (world.clone(), skews[(id - 1) as usize]);
        sim.host(host_name(id), move || run_node(world.clone(), id, NODES, skew, node_bugs));
    }
    {
        let backend = backend.clone();
        sim.host(BACKEND_HOST, move || run_backend(backend.clone()));
    }
    for w in 1..=WORKERS {
        let world = world.clone();
        sim.host(format!("w{w}"), move || run_worker(world.clone(), format!("w{w}"), NODES, seed));
    }
    {
        let (world, stop) = (world.clone(), stop.clone());
        sim.client("client", run_client(world, NODES, seed, stop));
    }
    world.event(
        Duration::ZERO,
        format!("run scenario={} seed={seed} skews={skews:?} bug={:?}", config.scenario.name(), config.bug),
    );

    let mut checker = Checker::default();
    let mut pending: Vec<(Duration, Undo)> = Vec::new();
    let mut plan = plan.into_iter().peekable();
    let heal_at = WARM_UP + FAULT_PHASE;
    let mut next_sample = Duration::from_millis(100);
    let mut last_leader: Option<(u64, u64)> = None;
    let step = |sim: &mut turmoil::Sim| sim.step().map_err(|e| format!("simulation error: {e}"));

    // Faults, then heal.
    loop {
        step(&mut sim)?;
        let now = sim.elapsed();
        while plan.peek().is_some_and(|p| p.at <= now) {
            if let Some(Planned { fault, .. }) = plan.next() {
                inject(&mut sim, &world, &backend, &fault, now, &mut pending);
            }
        }
        let due: Vec<Undo> = pending.iter().filter(|(at, _)| *at <= now).map(|(_, u)| u.clone()).collect();
        pending.retain(|(at, _)| *at > now);
        for undo in due {
            apply_undo(&mut sim, &world, &backend, &undo, now);
        }
        if now >= next_sample {
            next_sample = now + Duration::from_millis(100);
            checker.sample(&world);
            note_leader(&world, now, &mut last_leader);
        }
        if now >= heal_at {
            for (_, undo) in std::mem::take(&mut pending) {
                apply_undo(&mut sim, &world, &backend, &undo, now);
            }
            world.event(now, "heal: every fault undone, the workload stops");
            *stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
            break;
        }
    }

    // Settle: every execution created before the heal ends, and all replicas agree.
    let settle_deadline = heal_at + SETTLE_BOUND;
    let mut liveness = None;
    let mut next_check = heal_at;
    loop {
        step(&mut sim)?;
        let now = sim.elapsed();
        if now >= next_sample {
            next_sample = now + Duration::from_millis(100);
            checker.sample(&world);
            note_leader(&world, now, &mut last_leader);
        }
        if now < next_check {
            continue;
        }
        next_check = now + Duration::from_millis(250);
        let nodes = world.running_nodes();
        let unfinished: Vec<String> = nodes
            .first()
            .map(|(_, n)| n.state().read(|s| s.unfinished_executions().map(|e| e.id.clone()).collect()))
            .unwrap_or_default();
        let applied: BTreeSet<Option<u64>> = nodes.iter().map(|(_, n)| n.cluster_info().last_applied).collect();
        let paused = world.with(|w| w.events.iter().any(|e| e.contains("tick paused")));
        if nodes.len() as u64 == NODES && unfinished.is_empty() && applied.len() == 1 && paused {
            let digests: BTreeSet<[u8; 32]> = nodes.iter().map(|(_, n)| n.state().read(|s| s.digest())).collect();
            if digests.len() == 1 {
                break;
            }
        }
        if now >= settle_deadline {
            // Unequal states at one applied index are `replicas-equal`'s to report.
            let bound = SETTLE_BOUND.as_secs();
            liveness = if !unfinished.is_empty() {
                let first: Vec<_> = unfinished.iter().take(5).collect();
                Some(format!("{} executions still unfinished {bound}s after healing: {first:?}", unfinished.len()))
            } else if nodes.len() as u64 != NODES || applied.len() != 1 {
                Some(format!("{} nodes running, applied indexes {applied:?}, {bound}s after healing", nodes.len()))
            } else if !paused {
                Some(format!("the client could not pause the schedule within {bound}s of healing"))
            } else {
                None
            };
            break;
        }
    }
    let now = sim.elapsed();
    let (first_tick, pause_ms) = tick_window(&world);
    // Ticks are fired by the leader's clock and the pause is stamped in replicated time (the
    // fastest clock): leave the skew between them, and a tick's worth, out of the check.
    let spread = skews.iter().max().copied().unwrap_or(0) - skews.iter().min().copied().unwrap_or(0);
    checker.finish(&world, liveness, first_tick, pause_ms.saturating_sub(4_000 + spread), now);
    if let Some((_, node)) = world.running_nodes().first() {
        let digest: String = node.state().read(|s| s.digest()).iter().map(|b| format!("{b:02x}")).collect();
        world.event(now, format!("end digest={digest} applied={:?}", node.cluster_info().last_applied));
        if let Ok(path) = std::env::var("LOOM_SIM_DUMP") {
            let _ = std::fs::write(path, node.state().read(|s| format!("{s:#?}")));
        }
    }
    for v in &checker.violations {
        world.event(now, format!("VIOLATED {}: {}", v.invariant, v.detail));
    }
    let acks = world.with(|w| w.acks.len());
    Ok(Outcome {
        trace_hash: world.trace_hash(),
        violations: checker.violations,
        sim_time: now,
        wall_time: started.elapsed(),
        trace: world.trace_text(),
        acks,
    })
}

/// The first tick of the `tick` workflow and when it was paused (Unix ms).
fn tick_window(world: &World) -> (Option<i64>, i64) {
    let Some((_, node)) = world.running_nodes().into_iter().next() else { return (None, 0) };
    node.state().read(|s| {
        let Some(wf) = s.workflow("tick") else { return (None, 0) };
        let created = wf.versions.values().next().map_or(0, |v| v.created_at_ms);
        let first = (created / 2_000 + 1) * 2_000;
        let paused = if wf.paused { wf.updated_at_ms } else { s.clock_ms() };
        (Some(first), paused)
    })
}

fn note_leader(world: &World, now: Duration, last: &mut Option<(u64, u64)>) {
    let leader = world
        .running_nodes()
        .into_iter()
        .map(|(id, n)| (id, n.cluster_info()))
        .filter(|(_, info)| info.state == "leader")
        .map(|(id, info)| (info.term, id))
        .max();
    if leader.is_some() && leader != *last {
        if let Some((term, id)) = leader {
            world.event(now, format!("leader n{id} term {term}"));
        }
        *last = leader;
    }
}

fn leader(world: &World) -> u64 {
    world
        .running_nodes()
        .into_iter()
        .map(|(id, n)| (n.cluster_info(), id))
        .filter(|(info, _)| info.state == "leader")
        .max_by_key(|(info, _)| info.term)
        .map_or(1, |(_, id)| id)
}

fn resolve(world: &World, target: &Target) -> String {
    match target {
        Target::Node(id) => host_name(*id),
        Target::Leader => host_name(leader(world)),
        Target::Worker(name) => name.clone(),
    }
}

pub(crate) fn crash(sim: &mut turmoil::Sim, world: &World, host: &str) {
    sim.crash(host);
    if let Some(id) = host.strip_prefix('n').and_then(|n| n.parse::<u64>().ok()) {
        world.with(|w| w.nodes.remove(&id));
        if let Some(disk) = world.disks.get(&id) {
            disk.crash();
        }
    }
}

fn inject(
    sim: &mut turmoil::Sim,
    world: &World,
    backend: &Backend,
    fault: &Fault,
    now: Duration,
    pending: &mut Vec<(Duration, Undo)>,
) {
    let others = |host: &str| node_hosts().into_iter().filter(|h| h != host).collect::<Vec<_>>();
    match fault {
        Fault::Crash { target, down } => {
            let host = resolve(world, target);
            if !sim.is_host_running(host.as_str()) {
                return;
            }
            world.event(now, format!("crash {host} for {:.1}s", down.as_secs_f64()));
            crash(sim, world, &host);
            pending.push((now + *down, Undo::Bounce(host)));
        }
        Fault::PowerLoss { down } => {
            world.event(now, format!("power loss: every node down for {:.1}s", down.as_secs_f64()));
            for host in node_hosts() {
                if sim.is_host_running(host.as_str()) {
                    crash(sim, world, &host);
                }
                pending.push((now + *down, Undo::Bounce(host)));
            }
        }
        Fault::Isolate { target, length } => {
            let host = resolve(world, target);
            world.event(now, format!("isolate {host} for {:.1}s", length.as_secs_f64()));
            for other in others(&host) {
                sim.partition(host.as_str(), other.as_str());
                pending.push((now + *length, Undo::Repair(host.clone(), other)));
            }
        }
        Fault::IsolateOneWay { target, length } => {
            let host = resolve(world, target);
            world.event(now, format!("messages from {host} lost for {:.1}s", length.as_secs_f64()));
            for other in others(&host) {
                sim.partition_oneway(host.as_str(), other.as_str());
                pending.push((now + *length, Undo::RepairOneWay(host.clone(), other)));
            }
        }
        Fault::Split { alone, length } => {
            let host = host_name(*alone);
            world.event(now, format!("split {host} | rest for {:.1}s", length.as_secs_f64()));
            for other in others(&host) {
                sim.partition(host.as_str(), other.as_str());
                pending.push((now + *length, Undo::Repair(host.clone(), other)));
            }
            // Its clients and workers are cut off with it.
            for peer in ["client", "w1", "w2", BACKEND_HOST] {
                sim.partition(host.as_str(), peer);
                pending.push((now + *length, Undo::Repair(host.clone(), peer.to_string())));
            }
        }
        Fault::Latency { max, length } => {
            world.event(now, format!("latency up to {}ms for {:.1}s", max.as_millis(), length.as_secs_f64()));
            sim.set_max_message_latency(*max);
            pending.push((now + *length, Undo::Latency));
        }
        Fault::LossyLink { a, b, rate, length } => {
            let (a, b) = (host_name(*a), host_name(*b));
            world.event(now, format!("link {a}-{b} drops messages ({rate:.2}) for {:.1}s", length.as_secs_f64()));
            sim.set_link_fail_rate(a.as_str(), b.as_str(), *rate);
            pending.push((now + *length, Undo::Lossless(a, b)));
        }
        Fault::Backend { profile, length } => {
            world.event(now, format!("backend {profile:?} for {:.1}s", length.as_secs_f64()));
            backend.set_profile(*profile);
            pending.push((now + *length, Undo::Backend));
        }
        Fault::SlowDisk { target, delay, length } => {
            let host = resolve(world, target);
            let Some(id) = host.strip_prefix('n').and_then(|n| n.parse::<u64>().ok()) else { return };
            let Some(disk) = world.disks.get(&id) else { return };
            world.event(now, format!("{host}'s fsyncs take {}ms for {:.1}s", delay.as_millis(), length.as_secs_f64()));
            disk.set_flush_delay(*delay);
            pending.push((now + *length, Undo::FastDisk(id)));
        }
    }
}

fn apply_undo(sim: &mut turmoil::Sim, world: &World, backend: &Backend, undo: &Undo, now: Duration) {
    match undo {
        Undo::Bounce(host) => {
            if !sim.is_host_running(host.as_str()) {
                world.event(now, format!("restart {host}"));
                sim.bounce(host.as_str());
            }
        }
        Undo::Repair(a, b) => sim.repair(a.as_str(), b.as_str()),
        Undo::RepairOneWay(a, b) => sim.repair_oneway(a.as_str(), b.as_str()),
        Undo::Latency => sim.set_max_message_latency(Duration::from_millis(3)),
        Undo::Lossless(a, b) => {
            sim.set_link_fail_rate(a.as_str(), b.as_str(), 0.0);
            // A link cut by the failure rate stays cut until repaired.
            sim.repair(a.as_str(), b.as_str());
        }
        Undo::Backend => backend.set_profile(Profile::default()),
        Undo::FastDisk(id) => {
            if let Some(disk) = world.disks.get(id) {
                world.event(now, format!("{}'s disk is fast again", host_name(*id)));
                disk.set_flush_delay(Duration::ZERO);
            }
        }
    }
}
