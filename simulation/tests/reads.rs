//! Every path that serves a default read, set up so that the serving node holds stale state, must
//! still answer with the latest acknowledged write (see `linkloom_simulation::probe`).
//!
//! Each probe's control read (`?consistency=stale`) must not show the latest value: that proves
//! the node really was behind when the default read arrived, so a pass is not luck of timing.

use linkloom_simulation::{run_probe, NodeBugs, Probe};

/// Seeds each probe runs with (each seed changes message timing and election timeouts).
const SEEDS: [u64; 3] = [1, 2, 3];

#[test]
fn a_default_read_never_serves_state_older_than_an_acknowledged_write() {
    for probe in Probe::ALL {
        for seed in SEEDS {
            let outcome = run_probe(probe, seed, NodeBugs::default()).unwrap_or_else(|e| panic!("{e}"));
            let story = outcome.events.join("\n  ");
            assert_eq!(outcome.acknowledged, "latest", "{probe:?} seed {seed}:\n  {story}");
            assert_ne!(
                outcome.stale_read.as_deref(),
                Some("latest"),
                "{probe:?} seed {seed}: the control read should show the node behind\n  {story}"
            );
            assert_eq!(
                outcome.default_read.as_deref(),
                Some("latest"),
                "{probe:?} seed {seed}: a default read served stale state\n  {story}"
            );
        }
    }
}

#[test]
fn without_its_guard_a_restarted_leader_serves_the_stale_read() {
    // The probe must fail when the fix is switched off, or it proves nothing.
    let bugs = NodeBugs { stale_restored_reads: true, ..NodeBugs::default() };
    for seed in SEEDS {
        let outcome = run_probe(Probe::RestartedLeader, seed, bugs).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            outcome.default_read.as_deref(),
            Some("latest"),
            "seed {seed}: expected the stale read without the guard\n  {}",
            outcome.events.join("\n  ")
        );
    }
}
