//! Scenarios: which faults happen when. A scenario is a function from the run's random source to
//! a list of timed faults; faults that name "the leader" are resolved when they happen, so they
//! hit whoever leads at that moment.
//!
//! To write a new scenario, add a variant to [`Scenario`], its name to [`Scenario::ALL`], and a
//! plan in [`Scenario::plan`] (see docs/simulation.md).

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;

use crate::backend::Profile;

/// Who a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Node(u64),
    /// Whichever node leads when the fault fires.
    Leader,
    Worker(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Kill the host (its unflushed writes are lost) and restart it after `down`.
    Crash { target: Target, down: Duration },
    /// Every node loses power at once; all restart after `down`.
    PowerLoss { down: Duration },
    /// Cut `target` off from every node (both ways) for `length`.
    Isolate { target: Target, length: Duration },
    /// Messages from `target` to the other nodes are lost (it still hears them) for `length`.
    IsolateOneWay { target: Target, length: Duration },
    /// Split the nodes into {a} and the rest... for `length` (a 2/1 split with three nodes).
    Split { alone: u64, length: Duration },
    /// Slower, more variable network for `length` (messages on different connections overtake
    /// each other).
    Latency { max: Duration, length: Duration },
    /// The link between two nodes drops messages at random (turmoil cuts and restores it with
    /// probability `rate` per message) for `length`.
    LossyLink { a: u64, b: u64, rate: f64, length: Duration },
    /// The backend misbehaves for `length`.
    Backend { profile: Profile, length: Duration },
    /// Every flush of `target`'s disk takes `delay` for `length` (a slow or saturated disk).
    SlowDisk { target: Target, delay: Duration, length: Duration },
}

/// A fault at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Duration,
    pub fault: Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    LeaderCrash,
    PartitionLeader,
    FlakyBackend,
    WorkerCrash,
    RollingRestart,
    ClockSkew,
    SlowDisk,
    Random,
}

/// The fault phase lasts this long (after a warm-up with no faults).
pub const FAULT_PHASE: Duration = Duration::from_secs(30);
pub const WARM_UP: Duration = Duration::from_secs(3);

fn secs(rng: &mut SmallRng, from: f64, to: f64) -> Duration {
    Duration::from_secs_f64(rng.gen_range(from..to))
}

impl Scenario {
    pub const ALL: [(Scenario, &'static str, &'static str); 8] = [
        (Scenario::LeaderCrash, "leader-crash", "the leader is killed again and again; once, every node loses power"),
        (Scenario::PartitionLeader, "partition-leader", "the leader is cut off, one-way links fail, 2/1 splits"),
        (
            Scenario::FlakyBackend,
            "flaky-backend",
            "the backend fails, hangs and answers slowly; latency spikes, lossy links",
        ),
        (Scenario::WorkerCrash, "worker-crash", "workers are killed and cut off for longer than their lease"),
        (Scenario::RollingRestart, "rolling-restart", "each node restarts in turn, as in an upgrade"),
        (Scenario::ClockSkew, "clock-skew", "node clocks disagree by seconds; the leader crashes once"),
        (
            Scenario::SlowDisk,
            "slow-disk",
            "one disk at a time (the leader's or a follower's) takes 50-400 ms per fsync; a crash while slow",
        ),
        (Scenario::Random, "random", "a random mix of all of the above"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(s, ..)| *s == self).map_or("?", |(_, n, _)| n)
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Self::ALL.iter().find(|(_, n, _)| *n == name).map(|(s, ..)| *s)
    }

    /// Clock skew per node in ms (index = node id - 1).
    pub fn skews(self, rng: &mut SmallRng, nodes: u64) -> Vec<i64> {
        match self {
            Scenario::ClockSkew => (0..nodes).map(|_| rng.gen_range(-3_000..=3_000)).collect(),
            Scenario::Random if rng.gen_bool(0.5) => (0..nodes).map(|_| rng.gen_range(-1_500..=1_500)).collect(),
            _ => vec![0; nodes as usize],
        }
    }

    /// The faults of one run.
    pub fn plan(self, rng: &mut SmallRng, nodes: u64) -> Vec<Planned> {
        let mut plan = Vec::new();
        let mut at = WARM_UP;
        let end = WARM_UP + FAULT_PHASE;
        let mut push = |at: Duration, fault: Fault| plan.push(Planned { at, fault });
        match self {
            Scenario::LeaderCrash => {
                let power_loss_at = WARM_UP + secs(rng, 10.0, 20.0);
                push(power_loss_at, Fault::PowerLoss { down: secs(rng, 1.0, 3.0) });
                while at < end {
                    at += secs(rng, 4.0, 8.0);
                    push(at, Fault::Crash { target: Target::Leader, down: secs(rng, 1.0, 4.0) });
                }
            }
            Scenario::PartitionLeader => {
                while at < end {
                    at += secs(rng, 3.0, 6.0);
                    let length = secs(rng, 1.0, 5.0);
                    let fault = match rng.gen_range(0..3) {
                        0 => Fault::Isolate { target: Target::Leader, length },
                        1 => Fault::IsolateOneWay { target: Target::Leader, length },
                        _ => Fault::Split { alone: rng.gen_range(1..=nodes), length },
                    };
                    push(at, fault);
                    at += length;
                }
            }
            Scenario::FlakyBackend => {
                let profile = Profile { fail_permille: 350, hang_permille: 80, max_delay_ms: 1_500 };
                push(at, Fault::Backend { profile, length: FAULT_PHASE });
                while at < end {
                    at += secs(rng, 6.0, 10.0);
                    push(
                        at,
                        Fault::Latency {
                            max: Duration::from_millis(rng.gen_range(20..200)),
                            length: secs(rng, 1.0, 4.0),
                        },
                    );
                }
            }
            Scenario::WorkerCrash => {
                while at < end {
                    at += secs(rng, 2.0, 5.0);
                    let worker = format!("w{}", rng.gen_range(1..=2));
                    let fault = if rng.gen_bool(0.5) {
                        Fault::Crash { target: Target::Worker(worker), down: secs(rng, 1.0, 5.0) }
                    } else {
                        // Longer than the 3 s lease: its tasks are lost and its late answers refused.
                        Fault::Isolate { target: Target::Worker(worker), length: secs(rng, 4.0, 7.0) }
                    };
                    push(at, fault);
                }
            }
            Scenario::RollingRestart => {
                for node in 1..=nodes {
                    at += secs(rng, 4.0, 7.0);
                    push(at, Fault::Crash { target: Target::Node(node), down: secs(rng, 1.0, 3.0) });
                    at += Duration::from_secs(3);
                }
            }
            Scenario::ClockSkew => {
                push(
                    WARM_UP + secs(rng, 5.0, 20.0),
                    Fault::Crash { target: Target::Leader, down: secs(rng, 1.0, 3.0) },
                );
            }
            Scenario::SlowDisk => {
                let mut leader = true;
                while at < end {
                    at += secs(rng, 2.0, 4.0);
                    let length = secs(rng, 3.0, 8.0);
                    let target = if leader { Target::Leader } else { Target::Node(rng.gen_range(1..=nodes)) };
                    leader = !leader;
                    let delay = Duration::from_millis(rng.gen_range(50..400));
                    push(at, Fault::SlowDisk { target: target.clone(), delay, length });
                    if rng.gen_bool(0.3) {
                        // Killed while fsyncs lag: what it acknowledged must still be there. (With
                        // the leader as target this is whoever leads half way, often the slow one.)
                        push(at + length / 2, Fault::Crash { target, down: secs(rng, 1.0, 2.0) });
                    }
                    at += length;
                }
            }
            Scenario::Random => {
                while at < end {
                    at += secs(rng, 1.5, 5.0);
                    let length = secs(rng, 1.0, 5.0);
                    let fault = match rng.gen_range(0..10) {
                        9 => Fault::LossyLink {
                            a: 1 + (at.as_millis() as u64 % nodes),
                            b: 1 + ((at.as_millis() as u64 + 1) % nodes),
                            rate: rng.gen_range(0.01..0.2),
                            length,
                        },
                        0 => Fault::Crash { target: Target::Leader, down: length },
                        1 => Fault::Crash { target: Target::Node(rng.gen_range(1..=nodes)), down: length },
                        2 => Fault::Isolate { target: Target::Leader, length },
                        3 => Fault::IsolateOneWay { target: Target::Node(rng.gen_range(1..=nodes)), length },
                        4 => Fault::Split { alone: rng.gen_range(1..=nodes), length },
                        5 => Fault::Latency { max: Duration::from_millis(rng.gen_range(20..150)), length },
                        6 => Fault::Backend {
                            profile: Profile {
                                fail_permille: rng.gen_range(0..500),
                                hang_permille: rng.gen_range(0..100),
                                max_delay_ms: rng.gen_range(0..1_500),
                            },
                            length,
                        },
                        7 => {
                            Fault::Crash { target: Target::Worker(format!("w{}", rng.gen_range(1..=2))), down: length }
                        }
                        _ if rng.gen_bool(0.2) => Fault::PowerLoss { down: Duration::from_secs(1) },
                        _ => Fault::Isolate {
                            target: Target::Worker(format!("w{}", rng.gen_range(1..=2))),
                            length: length + Duration::from_secs(3),
                        },
                    };
                    push(at, fault);
                }
            }
        }
        plan.sort_by_key(|p| p.at);
        plan
    }
}
