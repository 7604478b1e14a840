//! Read probes: one scripted situation for each way a default (linearizable) read can be served,
//! built so that the node answering it holds stale state at that moment.
//!
//! Random scenarios reach these situations only by chance; a probe reaches each one on purpose,
//! with the real node code under turmoil. In every probe the client first reads with
//! `?consistency=stale` — the control: it must show the old value, or the probe did not set up
//! what it claims to — and then reads with the default consistency, which must show the latest
//! acknowledged write.
//!
//! - [`Probe::Follower`]: a follower whose log lags (slow link from the leader) answers through
//!   the leader's read index and waits until it has applied that far.
//! - [`Probe::RestartedLeader`]: the leader is killed right after acknowledging a write and
//!   restarted before its followers time out, so it resumes leading with a commit index (and a
//!   state) from before that write. Its only reachable peer is the follower that missed the
//!   write, over a narrow link: a heartbeat confirms the leadership in a few ms, but the write
//!   commits again only once the leader's log (sent whole: it does not know what the follower
//!   has) has crossed, and in between a read must not be answered from the leader's state.
//! - [`Probe::PausedLeader`]: the leader is cut off from its followers (a paused process: it
//!   hears nothing and nobody hears it) while the others elect a new leader and take a write; then
//!   the links come back and the old leader is read from at once, still believing it leads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::node::{host_name, run_node, NodeBugs};
use crate::run::{builder, crash, NODES};
use crate::workload::{request, HttpClient};
use crate::world::World;

/// The situations a probe sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Follower,
    RestartedLeader,
    PausedLeader,
}

impl Probe {
    pub const ALL: [Probe; 3] = [Probe::Follower, Probe::RestartedLeader, Probe::PausedLeader];

    pub fn name(self) -> &'static str {
        match self {
            Probe::Follower => "follower",
            Probe::RestartedLeader => "restarted-leader",
            Probe::PausedLeader => "paused-leader",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Probe::Follower => "a follower that has not applied the latest write answers a read",
            Probe::RestartedLeader => "a leader killed after a write and restarted before an election answers a read",
            Probe::PausedLeader => {
                "a leader cut off while others elected and wrote answers a read the moment it is back"
            }
        }
    }
}

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// The latest value a write of the probe's register was acknowledged with.
    pub acknowledged: String,
    /// The control read (`?consistency=stale`) through the probed node.
    pub stale_read: Option<String>,
    /// The default read through the probed node, right after the control.
    pub default_read: Option<String>,
    /// What happened, in order, for failure messages.
    pub events: Vec<String>,
}

/// Where the client and the runner are in the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    /// The first value is written; the leader is known.
    WroteFirst {
        leader: u64,
    },
    /// The runner has slowed or cut what the probe needs.
    Arranged {
        leader: u64,
        probed: u64,
    },
    /// The client wrote what the probed node must see.
    WroteLatest {
        leader: u64,
        probed: u64,
    },
    /// The runner made the probed node stale (restarted, or links back): read it now.
    ReadNow {
        probed: u64,
    },
    Done,
}

#[derive(Debug)]
struct Script {
    phase: Phase,
    outcome: ProbeOutcome,
}

const REGISTER: &str = "probe";
/// Latency between the probed node and the rest while it must stay behind: slow, but a new
/// connection and one call (two round trips) still fit in openraft's RPC timeout (the 100 ms
/// heartbeat), so replication goes on.
const SLOW_LINK: Duration = Duration::from_millis(20);
/// Bandwidth from the restarted leader to the follower that missed the write: a heartbeat (which
/// confirms leadership) crosses in a few ms, the leader's whole log (which it sends first, not
/// knowing what the follower has) in tens of ms, still inside openraft's 100 ms RPC timeout.
/// (Without the read guard, seeds 1–8 all serve the stale read at this rate.)
const NARROW_LINK_BYTES_PER_SECOND: u64 = 48_000;
/// A probe gives up after this much simulated time.
const BOUND: Duration = Duration::from_secs(60);

/// Runs `probe` with `seed`, and `bugs` switched off in every node.
pub fn run_probe(probe: Probe, seed: u64, bugs: NodeBugs) -> Result<ProbeOutcome, String> {
    linkloom_raft::runtime::seed_thread_rng(seed);
    let world = World::new(NODES);
    let mut sim = builder(seed).build();
    for id in 1..=NODES {
        let world = world.clone();
        sim.host(host_name(id), move || run_node(world.clone(), id, NODES, 0, bugs));
    }
    let script = Arc::new(Mutex::new(Script {
        phase: Phase::Starting,
        outcome: ProbeOutcome { acknowledged: String::new(), stale_read: None, default_read: None, events: Vec::new() },
    }));
    sim.client("client", client(script.clone(), probe));
    let lock = || script.lock().unwrap_or_else(|p| p.into_inner());
    let mut held: Vec<(String, String)> = Vec::new();
    loop {
        sim.step().map_err(|e| format!("simulation error: {e}"))?;
        let now = sim.elapsed();
        if now > BOUND {
            return Err(format!("{probe:?}: not done after {BOUND:?}; got {:?}", lock().outcome));
        }
        let phase = lock().phase;
        let next = match (probe, phase) {
            (_, Phase::Done) => break,
            (Probe::Follower, Phase::WroteFirst { leader }) => {
                // The follower hears the leader late, so it applies the next write late.
                let probed = (1..=NODES).find(|id| *id != leader).unwrap_or(1);
                sim.set_link_latency(host_name(leader), host_name(probed), SLOW_LINK);
                Some(Phase::Arranged { leader, probed })
            }
            (Probe::Follower, Phase::WroteLatest { probed, .. }) => Some(Phase::ReadNow { probed }),
            (Probe::RestartedLeader, Phase::WroteFirst { leader }) => {
                // One follower misses the next write; the other takes it with the leader.
                let behind = (1..=NODES).find(|id| *id != leader).unwrap_or(1);
                sim.partition(host_name(leader), host_name(behind));
                Some(Phase::Arranged { leader, probed: leader })
            }
            (Probe::RestartedLeader, Phase::WroteLatest { leader, .. }) => {
                // Killed right after its answer: its last commit index never reached the disk.
                // It comes back leading, with the follower that missed the write as its only
                // peer: confirming its leadership takes one round trip, committing the write
                // again at least two.
                let host = host_name(leader);
                crash(&mut sim, &world, &host);
                sim.bounce(host.as_str());
                let mut followers = (1..=NODES).filter(|id| *id != leader);
                let (behind, ahead) = (followers.next().unwrap_or(1), followers.next().unwrap_or(2));
                sim.repair(host.as_str(), host_name(behind));
                sim.partition(host.as_str(), host_name(ahead));
                world.with(|w| w.bandwidth.insert((leader, behind), NARROW_LINK_BYTES_PER_SECOND));
                Some(Phase::ReadNow { probed: leader })
            }
            (Probe::PausedLeader, Phase::WroteFirst { leader }) => {
                for other in (1..=NODES).filter(|id| *id != leader) {
                    sim.hold(host_name(leader), host_name(other));
                    held.push((host_name(leader), host_name(other)));
                }
                Some(Phase::Arranged { leader, probed: leader })
            }
            (Probe::PausedLeader, Phase::WroteLatest { leader, .. }) => {
                for (a, b) in held.drain(..) {
                    sim.release(a.as_str(), b.as_str());
                }
                Some(Phase::ReadNow { probed: leader })
            }
            _ => None,
        };
        if let Some(next) = next {
            let mut s = lock();
            s.outcome.events.push(format!("{:.3}s runner: {next:?}", now.as_secs_f64()));
            s.phase = next;
        }
    }
    let outcome = lock().outcome.clone();
    Ok(outcome)
}

/// The client's side of the script.
async fn client(script: Arc<Mutex<Script>>, probe: Probe) -> Result<(), Box<dyn std::error::Error>> {
    let http = HttpClient::new(NODES);
    let note = |text: String| {
        let mut s = script.lock().unwrap_or_else(|p| p.into_inner());
        let at = turmoil::sim_elapsed().unwrap_or_default().as_secs_f64();
        s.outcome.events.push(format!("{at:.3}s client: {text}"));
    };
    let phase = || script.lock().unwrap_or_else(|p| p.into_inner()).phase;
    let set = |phase: Phase| script.lock().unwrap_or_else(|p| p.into_inner()).phase = phase;
    let wait_for = |want: fn(Phase) -> bool| async move {
        while !want(phase()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };

    // The first value, through whichever node is the leader once one is.
    let leader = loop {
        if let Some((200, info)) = request(&http, "GET", 1, "/api/v1/cluster", None).await {
            if let Some(leader) = info["leader_id"].as_u64() {
                if write(&http, leader, "first").await {
                    break leader;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    note(format!("wrote `first` through leader n{leader}"));
    script.lock().unwrap_or_else(|p| p.into_inner()).outcome.acknowledged = "first".into();
    set(Phase::WroteFirst { leader });
    wait_for(|p| matches!(p, Phase::Arranged { .. })).await;
    let Phase::Arranged { leader, probed } = phase() else { return Err("lost the script".into()) };

    // The latest value: through the leader, or (the old leader being cut off) through the others.
    let through: Vec<u64> =
        if probe == Probe::PausedLeader { (1..=NODES).filter(|id| *id != leader).collect() } else { vec![leader] };
    let mut turn = 0;
    loop {
        let node = through[turn % through.len()];
        turn += 1;
        if write(&http, node, "latest").await {
            note(format!("wrote `latest` through n{node}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    script.lock().unwrap_or_else(|p| p.into_inner()).outcome.acknowledged = "latest".into();
    set(Phase::WroteLatest { leader, probed });
    wait_for(|p| matches!(p, Phase::ReadNow { .. })).await;

    // The control, as soon as the probed node answers at all, then the default read.
    let path = format!("/api/v1/workflows/{REGISTER}");
    let stale = loop {
        if let Some((status, body)) = request(&http, "GET", probed, &format!("{path}?consistency=stale"), None).await {
            break (status, description(&body));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    note(format!("stale read through n{probed}: {stale:?}"));
    let default = request(&http, "GET", probed, &path, None).await;
    let default = default.map(|(status, body)| (status, description(&body)));
    note(format!("default read through n{probed}: {default:?}"));
    {
        let mut s = script.lock().unwrap_or_else(|p| p.into_inner());
        s.outcome.stale_read = stale.1;
        s.outcome.default_read = default.and_then(|(_, d)| d);
        s.phase = Phase::Done;
    }
    // Stay up until the runner has read the outcome.
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn write(http: &HttpClient, node: u64, value: &str) -> bool {
    let spec =
        json!({"id": REGISTER, "description": value, "tasks": [{"id": "t", "type": "worker", "queue": "nobody"}]});
    matches!(request(http, "POST", node, "/api/v1/workflows", Some(spec)).await, Some((201, _)))
}

fn description(body: &Value) -> Option<String> {
    body["spec"]["description"].as_str().map(str::to_string)
}
