//! `failover`: how long after the leader is SIGKILLed does a write through a survivor succeed?
//!
//! Each round: the [`Faults`] owner kills the settled cluster's leader; from that instant one
//! small write after another goes to a surviving server, each bounded by a short timeout (so a
//! write stuck on the dead leader does not hide the moment a new one takes writes); the sample is
//! the time from the kill to the first acknowledged write. Then the killed node restarts. Writes
//! carry the SDK's idempotency keys, as every client's should.

use std::time::{Duration, Instant};

use linkloom::Client;

use crate::report::{Measured, Report};
use crate::{ms, BenchError, Plan};

/// One write's bound while the cluster has no leader, and one round's.
const WRITE_TIMEOUT: Duration = Duration::from_millis(300);
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// What only the owner of the cluster's processes can do. Both calls block (they wait for
/// processes), and are called from a multi-threaded runtime.
pub trait Faults: Send + Sync {
    /// Waits (bounded) until the cluster has settled on a leader, SIGKILLs it, and answers the
    /// killed node's server URL as the client knows it.
    fn kill_leader(&self) -> Result<String, String>;
    /// Starts the killed node again on its data.
    fn restart_killed(&self) -> Result<(), String>;
    /// SIGKILLs a follower, starts it again on its data, and answers how long it took from the
    /// start to its `/readyz` answering 200 (caught up with the leader).
    fn restart_follower(&self) -> Result<Duration, String>;
}

pub(crate) async fn run(client: &Client, name: &str, plan: &Plan, faults: &dyn Faults) -> Result<Report, BenchError> {
    let mut measured = Measured::default();
    let started = Instant::now();
    for round in 0..plan.count {
        let killed = tokio::task::block_in_place(|| faults.kill_leader()).map_err(BenchError::Failed)?;
        let kill = Instant::now();
        let survivor = client.servers().iter().position(|s| *s != killed).unwrap_or_default();
        let writer = client.starting_at(survivor);
        let yaml = format!(
            "id: {name}\ntasks:\n  - {{id: t, type: worker, queue: bench-never}}\ndescription: round {round}\n"
        );
        let mut accepted = None;
        while kill.elapsed() < ROUND_TIMEOUT {
            if let Ok(Ok(_)) = tokio::time::timeout(WRITE_TIMEOUT, writer.put_workflow_yaml(&yaml)).await {
                accepted = Some(kill.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match accepted {
            Some(after) => measured.samples_ms.push(ms(after)),
            None => {
                measured.errors += 1;
                measured.first_error.get_or_insert_with(|| {
                    format!("round {round}: no write accepted within {} s of the kill", ROUND_TIMEOUT.as_secs())
                });
            }
        }
        tokio::task::block_in_place(|| faults.restart_killed()).map_err(BenchError::Failed)?;
    }
    measured.elapsed = started.elapsed();
    Ok(Report::new(plan.scenario, 1, measured))
}
