//! `loom-sim`: run Link Loom under deterministic simulation.
//!
//! ```text
//! loom-sim --scenario leader-crash --seed 7            one run; ends `trace_hash=<hex> invariants=ok`
//! loom-sim --scenario random --seeds 1..500            a range, one line per seed and a summary
//! loom-sim --scenario all --seeds 1..200 --repeat 5     determinism soak: each run 5 times, hashes compared
//! loom-sim --scenario worker-crash --seed 3 --inject-bug late-completion --trace run.txt
//! loom-sim --probe restarted-leader --seed 2           one read probe: what each read returned
//! loom-sim --list-scenarios | --list-bugs | --list-invariants | --list-probes
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use linkloom_simulation::{run, run_probe, NodeBugs, Probe, RunConfig, Scenario, BUGS, INVARIANTS};

#[derive(Parser)]
#[command(about = "Run a Link Loom cluster under deterministic simulation and check its invariants")]
struct Args {
    /// Scenario name (see --list-scenarios), or `all` for every one in turn (with --seeds).
    #[arg(long, default_value = "random")]
    scenario: String,
    /// With --seeds: run each seed this many times, each in its own process, and fail if any
    /// two runs of a seed end with different trace hashes (the determinism soak).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// One seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, `A..B` (B excluded) or `A..=B`.
    #[arg(long)]
    seeds: Option<String>,
    /// Break one guarantee on purpose (see --list-bugs).
    #[arg(long)]
    inject_bug: Option<String>,
    /// Write the readable event trace of the run (the last run, with --seeds) to FILE.
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
    #[arg(long)]
    list_scenarios: bool,
    #[arg(long)]
    list_bugs: bool,
    #[arg(long)]
    list_invariants: bool,
    /// Run a read probe instead of a scenario (see --list-probes); with --inject-bug
    /// stale-restored-reads to see the bug it guards against.
    #[arg(long)]
    probe: Option<String>,
    #[arg(long)]
    list_probes: bool,
    /// Internal: print the one-line report even for a single seed (how --seeds reads its runs).
    #[arg(long, hide = true)]
    report_line: bool,
}

fn parse_range(text: &str) -> Option<(u64, u64)> {
    if let Some((a, b)) = text.split_once("..=") {
        return Some((a.trim().parse().ok()?, b.trim().parse::<u64>().ok()?.checked_add(1)?));
    }
    let (a, b) = text.split_once("..")?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_scenarios {
        for (_, name, about) in Scenario::ALL {
            println!("{name:<18} {about}");
        }
        return ExitCode::SUCCESS;
    }
    if args.list_bugs {
        for (name, about) in BUGS {
            println!("{name:<20} {about}");
        }
        return ExitCode::SUCCESS;
    }
    if args.list_invariants {
        for (name, about) in INVARIANTS {
            println!("{name:<24} {about}");
        }
        return ExitCode::SUCCESS;
    }
    if args.list_probes {
        for probe in Probe::ALL {
            println!("{:<18} {}", probe.name(), probe.about());
        }
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOOM_LOG").unwrap_or_else(|_| "off".into()))
        .with_writer(std::io::stderr)
        .with_timer(SimTime)
        .init();
    if let Some(name) = &args.probe {
        return probe(name, args.seed.unwrap_or(1), args.inject_bug.as_deref());
    }
    #[cfg(not(tokio_unstable))]
    eprintln!(
        "warning: loom-sim was built without --cfg tokio_unstable (an explicit RUSTFLAGS replaces \
         .cargo/config.toml): tokio's select! randomness is not seeded, so runs may not replay"
    );
    let scenarios: Vec<Scenario> = if args.scenario == "all" {
        Scenario::ALL.iter().map(|(s, _, _)| *s).collect()
    } else {
        match Scenario::parse(&args.scenario) {
            Some(s) => vec![s],
            None => {
                eprintln!("unknown scenario `{}`; --list-scenarios lists them", args.scenario);
                return ExitCode::from(2);
            }
        }
    };
    if let Some(bug) = &args.inject_bug {
        if !BUGS.iter().any(|(name, _)| name == bug) {
            eprintln!("unknown bug `{bug}`; --list-bugs lists them");
            return ExitCode::from(2);
        }
    }
    let (from, to) = match (&args.seed, &args.seeds) {
        (Some(seed), _) => (*seed, seed + 1),
        (None, Some(range)) => match parse_range(range) {
            Some(r) if r.0 < r.1 => r,
            _ => {
                eprintln!("--seeds `{range}` is not a range like 1..500");
                return ExitCode::from(2);
            }
        },
        (None, None) => (1, 2),
    };
    let started = Instant::now();
    if to - from > 1 || scenarios.len() > 1 || args.repeat > 1 {
        let mut code = ExitCode::SUCCESS;
        for scenario in scenarios {
            if run_range(&args, scenario, from, to, Instant::now()) != ExitCode::SUCCESS {
                code = ExitCode::from(1);
            }
        }
        if started.elapsed() > Duration::from_secs(1) && args.scenario == "all" {
            println!("all scenarios: wall={:.1}s", started.elapsed().as_secs_f64());
        }
        return code;
    }
    let scenario = scenarios[0];
    let seed = from;
    let config = RunConfig { scenario, seed, bug: args.inject_bug.clone() };
    let outcome = match run(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("seed {seed}: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = verdict(&outcome.violations);
    if args.report_line || !outcome.violations.is_empty() {
        println!(
            "seed={seed} scenario={} sim={:.1}s wall={:.1}s acks={} trace_hash={} {verdict}",
            scenario.name(),
            outcome.sim_time.as_secs_f64(),
            outcome.wall_time.as_secs_f64(),
            outcome.acks,
            outcome.trace_hash
        );
    }
    if !outcome.violations.is_empty() {
        for v in &outcome.violations {
            println!("  {}: {}", v.invariant, v.detail);
        }
        let bug = args.inject_bug.as_ref().map(|b| format!(" --inject-bug {b}")).unwrap_or_default();
        println!(
            "  replay: cargo run --release -p linkloom-simulation --bin loom-sim -- --scenario {} --seed {seed}{bug} --trace trace.txt",
            scenario.name()
        );
    }
    if let Some(path) = &args.trace {
        if let Err(e) = std::fs::write(path, &outcome.trace) {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }
    println!("trace_hash={} {}", outcome.trace_hash, verdict);
    if outcome.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `--probe NAME`: runs one read probe and says whether the default read was fresh.
fn probe(name: &str, seed: u64, bug: Option<&str>) -> ExitCode {
    let Some(probe) = Probe::ALL.into_iter().find(|p| p.name() == name) else {
        eprintln!("unknown probe `{name}`; --list-probes lists them");
        return ExitCode::from(2);
    };
    let bugs = match bug {
        None => NodeBugs::default(),
        Some("stale-restored-reads") => NodeBugs { stale_restored_reads: true, ..NodeBugs::default() },
        Some("no-dedup") => NodeBugs { no_dedup: true, ..NodeBugs::default() },
        Some(other) => {
            eprintln!("bug `{other}` does not apply to probes (stale-restored-reads, no-dedup do)");
            return ExitCode::from(2);
        }
    };
    match run_probe(probe, seed, bugs) {
        Err(e) => {
            eprintln!("probe {name} seed {seed}: {e}");
            ExitCode::from(2)
        }
        Ok(outcome) => {
            for event in &outcome.events {
                println!("{event}");
            }
            let fresh = outcome.default_read.as_deref() == Some(outcome.acknowledged.as_str());
            println!(
                "probe={name} seed={seed} acknowledged={:?} stale_read={:?} default_read={:?} {}",
                outcome.acknowledged,
                outcome.stale_read,
                outcome.default_read,
                if fresh { "fresh" } else { "STALE" }
            );
            if fresh {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn verdict(violations: &[linkloom_simulation::Violation]) -> String {
    if violations.is_empty() {
        "invariants=ok".to_string()
    } else {
        let names: Vec<&str> = violations.iter().map(|v| v.invariant).collect();
        format!("invariants=VIOLATED: {}", names.join(", "))
    }
}

/// Runs each seed of a range in a fresh process of this binary: process-wide counters (tokio's
/// task ids, ractor's actor ids) differ after a run, and a run must depend on its seed alone, so
/// that the single-seed replay a failure prints gives the same trace.
fn run_range(args: &Args, scenario: Scenario, from: u64, to: u64, started: Instant) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find this program to run each seed: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut failed, mut sim_total) = (Vec::new(), Duration::ZERO);
    let mut last_hash = String::new();
    let mut unstable: Vec<(u64, Vec<String>)> = Vec::new();
    for seed in from..to {
        let run_once = || {
            let mut command = std::process::Command::new(&exe);
            command.args(["--scenario", scenario.name(), "--seed", &seed.to_string(), "--report-line"]);
            if let Some(bug) = &args.inject_bug {
                command.args(["--inject-bug", bug]);
            }
            if let (Some(trace), true) = (&args.trace, seed + 1 == to) {
                command.arg("--trace").arg(trace);
            }
            command.output()
        };
        let output = match run_once() {
            Ok(output) => output,
            Err(e) => {
                eprintln!("seed {seed}: cannot run: {e}");
                return ExitCode::from(2);
            }
        };
        let hash_of = |stdout: &[u8]| {
            String::from_utf8_lossy(stdout)
                .split_whitespace()
                .find_map(|w| w.strip_prefix("trace_hash=").map(str::to_string))
                .unwrap_or_default()
        };
        // The determinism soak: the same seed again, each time in a fresh process.
        let mut hashes = vec![hash_of(&output.stdout)];
        for _ in 1..args.repeat.max(1) {
            match run_once() {
                Ok(again) => hashes.push(hash_of(&again.stdout)),
                Err(e) => {
                    eprintln!("seed {seed}: cannot run again: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        if hashes.iter().any(|h| h != &hashes[0]) {
            println!("seed={seed} scenario={} NOT DETERMINISTIC: trace hashes {hashes:?}", scenario.name());
            unstable.push((seed, hashes));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines().filter(|l| !l.starts_with("trace_hash="));
        let report = lines.next().unwrap_or_default().to_string();
        println!("{report}");
        if output.status.code() != Some(0) {
            for line in lines {
                println!("{line}");
            }
            if output.status.code() != Some(1) {
                eprint!("{}", String::from_utf8_lossy(&output.stderr));
            }
            failed.push(seed);
        }
        let field =
            |name: &str| report.split_whitespace().find_map(|w| w.strip_prefix(name)).unwrap_or_default().to_string();
        sim_total += Duration::from_secs_f64(field("sim=").trim_end_matches('s').parse().unwrap_or(0.0));
        last_hash = field("trace_hash=");
    }
    let repeats = if args.repeat > 1 {
        let seeds: Vec<u64> = unstable.iter().map(|(s, _)| *s).collect();
        format!(
            " repeat={} nondeterministic={}{}",
            args.repeat,
            seeds.len(),
            if seeds.is_empty() { String::new() } else { format!(" seeds={seeds:?}") }
        )
    } else {
        String::new()
    };
    println!(
        "summary: scenario={} seeds={from}..{to} runs={} failed={} sim_total={:.0}s wall={:.1}s{repeats}{}",
        scenario.name(),
        to - from,
        failed.len(),
        sim_total.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() { String::new() } else { format!(" failing_seeds={failed:?}") }
    );
    if !unstable.is_empty() {
        println!(
            "invariants=VIOLATED: determinism (seeds {:?} replayed differently)",
            unstable.iter().map(|(s, _)| s).collect::<Vec<_>>()
        );
        return ExitCode::from(1);
    }
    if failed.is_empty() {
        println!("trace_hash={last_hash} invariants=ok");
        ExitCode::SUCCESS
    } else {
        println!("invariants=VIOLATED: in seeds {failed:?} (see above)");
        ExitCode::from(1)
    }
}

/// Stamps log lines with simulated time (the same in every replay), not the wall clock.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>10.3}s", t.as_secs_f64()),
            None => write!(w, "{:>11}", "runner"),
        }
    }
}
