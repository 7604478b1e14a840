//! The nemesis: one fault every interval, each undone before the next (a killed node restarts on
//! its data directory, a paused one resumes). The last fault ends an interval before the clients
//! stop, so the final reads see a healed cluster.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Clock, FaultLog, Options};
use crate::Cluster;

/// A fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL the leader, restart it after `down_for`.
    KillLeader,
    /// SIGSTOP the leader for 2–5 s, then SIGCONT: it wakes up believing it still leads.
    PauseLeader,
    /// SIGKILL a random node, restart it after `down_for`.
    KillNode,
    /// SIGSTOP a random node for 2–5 s.
    PauseNode,
    /// Cut the leader off from the other nodes (both ways; clients still reach every node) for
    /// 2–5 s. Needs nodes on separate network hosts.
    IsolateLeader,
    /// Cut a random node off from the others for 2–5 s.
    IsolateNode,
    /// Lose what one random node sends to another (one direction) for 2–5 s.
    CutOneWay,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::KillLeader,
        Fault::PauseLeader,
        Fault::KillNode,
        Fault::PauseNode,
        Fault::IsolateLeader,
        Fault::IsolateNode,
        Fault::CutOneWay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::PauseLeader => "pause-leader",
            Fault::KillNode => "kill-node",
            Fault::PauseNode => "pause-node",
            Fault::IsolateLeader => "isolate-leader",
            Fault::IsolateNode => "isolate-node",
            Fault::CutOneWay => "cut-one-way",
        }
    }

    /// Whether it needs nodes on separate network hosts (a partition).
    pub fn is_partition(self) -> bool {
        matches!(self, Fault::IsolateLeader | Fault::IsolateNode | Fault::CutOneWay)
    }

    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Runs faults until `stop`, or until one interval before the clients end.
pub(crate) fn run(
    cluster: &Mutex<Cluster>,
    options: &Options,
    clock: Clock,
    stop: &AtomicBool,
) -> anyhow::Result<FaultLog> {
    let mut rng = SmallRng::seed_from_u64(options.seed ^ 0x006e_656d_6573_6973);
    let mut log: FaultLog = Vec::new();
    let probe = reqwest::blocking::Client::builder().timeout(Duration::from_millis(500)).build()?;
    let lock = || cluster.lock().unwrap_or_else(|p| p.into_inner());
    let urls: BTreeMap<u64, String> = {
        let c = lock();
        c.ids().into_iter().map(|id| (id, c.url(id))).collect()
    };
    let last_start = options.duration.saturating_sub(options.fault_every);
    let mut next = options.fault_every;
    loop {
        if !wait_until(clock, next, stop) || next > last_start || options.faults.is_empty() {
            break;
        }
        next += options.fault_every;
        let fault = options.faults[rng.gen_range(0..options.faults.len())];
        let target = match fault {
            Fault::KillLeader | Fault::PauseLeader | Fault::IsolateLeader => match leader(&probe, &urls) {
                Some(id) => id,
                None => {
                    log.push((clock.now(), format!("{}: no leader agreed on, skipped", fault.name())));
                    continue;
                }
            },
            Fault::KillNode | Fault::PauseNode | Fault::IsolateNode | Fault::CutOneWay => {
                rng.gen_range(1..=urls.len() as u64)
            }
        };
        let length = Duration::from_millis(rng.gen_range(2_000..=5_000));
        match fault {
            Fault::KillLeader | Fault::KillNode => {
                lock().kill(target)?;
                log.push((clock.now(), format!("{}: SIGKILL node {target}", fault.name())));
                std::thread::sleep(options.down_for);
                lock().restart(target)?;
                log.push((clock.now(), format!("restarted node {target}")));
            }
            Fault::PauseLeader | Fault::PauseNode => {
                lock().pause(target)?;
                let what = format!("{}: SIGSTOP node {target} for {:.1}s", fault.name(), length.as_secs_f64());
                log.push((clock.now(), what));
                std::thread::sleep(length);
                lock().resume(target)?;
                log.push((clock.now(), format!("SIGCONT node {target}")));
            }
            Fault::IsolateLeader | Fault::IsolateNode => {
                lock().isolate(target)?;
                let what = format!("{}: node {target} cut off for {:.1}s", fault.name(), length.as_secs_f64());
                log.push((clock.now(), what));
                std::thread::sleep(length);
                lock().heal()?;
                log.push((clock.now(), "healed".to_string()));
            }
            Fault::CutOneWay => {
                let to = target % urls.len() as u64 + 1;
                lock().cut(target, to)?;
                let what = format!("{}: node {target} -> {to} lost for {:.1}s", fault.name(), length.as_secs_f64());
                log.push((clock.now(), what));
                std::thread::sleep(length);
                lock().heal()?;
                log.push((clock.now(), "healed".to_string()));
            }
        }
    }
    Ok(log)
}

/// Sleeps until `at` since the test began; false if `stop` was set first.
fn wait_until(clock: Clock, at: Duration, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Duration::from_nanos(clock.now());
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(50)));
    }
}

/// The leader a majority of nodes name right now, if any.
fn leader(probe: &reqwest::blocking::Client, urls: &BTreeMap<u64, String>) -> Option<u64> {
    let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
    for url in urls.values() {
        let seen = probe
            .get(format!("{url}/api/v1/cluster"))
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| v["leader_id"].as_u64());
        if let Some(id) = seen {
            *votes.entry(id).or_default() += 1;
        }
    }
    votes.into_iter().find(|(_, n)| *n * 2 > urls.len()).map(|(id, _)| id)
}
