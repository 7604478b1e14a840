//! The simulator's own guarantees, checked through `loom-sim` as a user runs it (one process per
//! run: a run must depend on its seed alone): the same seed replays the same trace, a fixed set
//! of seeds passes every scenario, and every injected bug is caught within a few seeds (a checker
//! that cannot fail proves nothing).

use std::process::Command;

use linkloom_simulation::Scenario;

/// (exit code, trace hash, violated invariants) of one `loom-sim` run.
fn loom_sim(scenario: &str, seed: u64, bug: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loom-sim"));
    command.args(["--scenario", scenario, "--seed", &seed.to_string()]);
    if let Some(bug) = bug {
        command.args(["--inject-bug", bug]);
    }
    let output = command.output().expect("loom-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let hash = last.split_whitespace().find_map(|w| w.strip_prefix("trace_hash=")).unwrap_or_default().to_string();
    let violated = last.split_once("invariants=VIOLATED: ").map(|(_, v)| v.to_string()).unwrap_or_default();
    assert!(
        last.contains("invariants=ok") || last.contains("invariants=VIOLATED"),
        "unexpected end of output:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), hash, violated)
}

#[test]
fn the_same_seed_gives_the_same_trace_in_every_scenario() {
    for (_, name, _) in Scenario::ALL {
        let (_, a, _) = loom_sim(name, 11, None);
        let (_, b, _) = loom_sim(name, 11, None);
        assert_eq!(a, b, "{name}: two runs of seed 11 differ");
        assert_eq!(a.len(), 64, "{name}: a SHA-256 in hex");
        let (_, other, _) = loom_sim(name, 12, None);
        assert_ne!(a, other, "{name}: seeds 11 and 12 gave the same trace");
    }
}

/// Seeds every scenario must pass (CI runs these; `loom-sim --seeds` runs more).
const SEEDS: &str = "1..5";

#[test]
fn a_fixed_set_of_seeds_passes_every_scenario_and_replays_exactly() {
    // The short determinism soak: every scenario, each seed twice, each run in its own
    // process; a seed whose two runs end with different trace hashes fails like a violation.
    let output = Command::new(env!("CARGO_BIN_EXE_loom-sim"))
        .args(["--scenario", "all", "--seeds", SEEDS, "--repeat", "2"])
        .output()
        .expect("loom-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summaries: Vec<&str> = stdout.lines().filter(|l| l.starts_with("summary:")).collect();
    assert_eq!(summaries.len(), Scenario::ALL.len(), "one summary per scenario:\n{stdout}");
    assert!(
        summaries.iter().all(|l| l.contains("failed=0") && l.contains("nondeterministic=0")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

/// Each bug, the scenario that exposes it, the invariant that must catch it, and within how many
/// seeds (documented in docs/simulation.md).
const CAUGHT: [(&str, &str, &str, u64); 6] = [
    ("cron-duplicate", "random", "one-execution-per-tick", 10),
    ("late-completion", "worker-crash", "finished-never-changes", 10),
    ("ignore-retry-limit", "flaky-backend", "retry-policy", 5),
    ("lying-fsync", "leader-crash", "acked-writes-durable", 5),
    ("no-dedup", "random", "linearizable", 10),
    ("event-duplicate", "random", "events-exactly-once", 5),
];

#[test]
fn every_injected_bug_is_caught_by_its_invariant() {
    for (bug, scenario, invariant, within) in CAUGHT {
        let caught = (1..=within).find(|seed| {
            let (code, _, violated) = loom_sim(scenario, *seed, Some(bug));
            code == 1 && violated.split(", ").any(|v| v == invariant)
        });
        assert!(caught.is_some(), "{bug} was not caught by {invariant} within {within} seeds");
    }
}
