//! The simulator's own guarantees: runs replay exactly from their seed, a fixed set of seeds
//! passes every scenario, and every injected bug is caught within a few seeds (a checker that
//! cannot fail proves nothing).

use std::sync::Mutex;

use linkloom_simulation::{run, RunConfig, Scenario};

/// Runs are serialized: the injected-bug switch is process-wide, so runs in parallel test
/// threads would leak bugs into each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn outcome(scenario: Scenario, seed: u64, bug: Option<&str>) -> linkloom_simulation::Outcome {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    run(&RunConfig { scenario, seed, bug: bug.map(str::to_string) }).expect("the run starts")
}

#[test]
fn the_same_seed_gives_the_same_trace_in_every_scenario() {
    for (scenario, name, _) in Scenario::ALL {
        let a = outcome(scenario, 11, None);
        let b = outcome(scenario, 11, None);
        assert_eq!(a.trace_hash, b.trace_hash, "{name}: two runs of seed 11 differ");
        assert_eq!(a.trace, b.trace);
        let other = outcome(scenario, 12, None);
        assert_ne!(a.trace_hash, other.trace_hash, "{name}: seeds 11 and 12 gave the same trace");
    }
}

/// Seeds every scenario must pass (CI runs these; `loom-sim --seeds` runs more).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=4;

#[test]
fn a_fixed_set_of_seeds_passes_every_scenario() {
    let mut failures = Vec::new();
    for (scenario, name, _) in Scenario::ALL {
        for seed in SEEDS {
            let o = outcome(scenario, seed, None);
            if !o.violations.is_empty() {
                failures.push(format!("{name} seed {seed}: {:?}", o.violations));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Each bug, the scenario that exposes it, the invariant that must catch it, and within how many
/// seeds (documented in docs/simulation.md).
const CAUGHT: [(&str, &str, &str, u64); 4] = [
    ("cron-duplicate", "random", "one-execution-per-tick", 10),
    ("late-completion", "worker-crash", "finished-never-changes", 10),
    ("ignore-retry-limit", "flaky-backend", "retry-policy", 5),
    ("lying-fsync", "leader-crash", "acked-writes-durable", 5),
];

#[test]
fn every_injected_bug_is_caught_by_its_invariant() {
    for (bug, scenario, invariant, within) in CAUGHT {
        let scenario = Scenario::parse(scenario).expect("scenario exists");
        let caught = (1..=within)
            .find(|seed| outcome(scenario, *seed, Some(bug)).violations.iter().any(|v| v.invariant == invariant));
        assert!(caught.is_some(), "{bug} was not caught by {invariant} within {within} seeds");
    }
    // And the same seeds pass without the bug: the checkers do not cry wolf.
    assert!(outcome(Scenario::FlakyBackend, 1, None).violations.is_empty());
}
