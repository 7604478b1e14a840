//! `loom-sim`: run Link Loom under deterministic simulation.
//!
//! ```text
//! loom-sim --scenario leader-crash --seed 7            one run; ends `trace_hash=<hex> invariants=ok`
//! loom-sim --scenario random --seeds 1..500            a range, one line per seed and a summary
//! loom-sim --scenario worker-crash --seed 3 --inject-bug late-completion --trace run.txt
//! loom-sim --list-scenarios | --list-bugs | --list-invariants
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use linkloom_simulation::{run, RunConfig, Scenario, BUGS, INVARIANTS};

#[derive(Parser)]
#[command(about = "Run a Link Loom cluster under deterministic simulation and check its invariants")]
struct Args {
    /// Scenario name (see --list-scenarios).
    #[arg(long, default_value = "random")]
    scenario: String,
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOOM_LOG").unwrap_or_else(|_| "off".into()))
        .with_writer(std::io::stderr)
        .init();
    #[cfg(not(tokio_unstable))]
    eprintln!(
        "warning: loom-sim was built without --cfg tokio_unstable (an explicit RUSTFLAGS replaces \
         .cargo/config.toml): tokio's select! randomness is not seeded, so runs may not replay"
    );
    let Some(scenario) = Scenario::parse(&args.scenario) else {
        eprintln!("unknown scenario `{}`; --list-scenarios lists them", args.scenario);
        return ExitCode::from(2);
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
    if to - from > 1 {
        return run_range(&args, scenario, from, to, started);
    }
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
    for seed in from..to {
        let mut command = std::process::Command::new(&exe);
        command.args(["--scenario", scenario.name(), "--seed", &seed.to_string(), "--report-line"]);
        if let Some(bug) = &args.inject_bug {
            command.args(["--inject-bug", bug]);
        }
        if let (Some(trace), true) = (&args.trace, seed + 1 == to) {
            command.arg("--trace").arg(trace);
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(e) => {
                eprintln!("seed {seed}: cannot run: {e}");
                return ExitCode::from(2);
            }
        };
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
    println!(
        "summary: scenario={} seeds={from}..{to} runs={} failed={} sim_total={:.0}s wall={:.1}s{}",
        scenario.name(),
        to - from,
        failed.len(),
        sim_total.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() { String::new() } else { format!(" failing_seeds={failed:?}") }
    );
    if failed.is_empty() {
        println!("trace_hash={last_hash} invariants=ok");
        ExitCode::SUCCESS
    } else {
        println!("invariants=VIOLATED: in seeds {failed:?} (see above)");
        ExitCode::from(1)
    }
}
