//! `loom-conformance --lang LANG [--kit-tests CMD] -- PROGRAM...`: runs every scenario of the
//! conformance kit against a three-node cluster it starts and stops (sdk/conformance/README.md
//! §4). Prints `PASS name` / `FAIL name: why` per scenario and, last,
//! `conformance LANG: N passed, M failed`; exits 0 only if M is 0 and N is not.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use linkloom_conformance::scenarios::{self, Kit};

#[derive(Parser)]
#[command(about = "Runs an SDK's conformance program against a real Link Loom cluster")]
struct Args {
    /// The SDK's language, for the summary line.
    #[arg(long, required_unless_present = "list")]
    lang: Option<String>,
    /// The SDK's own kit tests (vectors and transcripts), run by `bash -c` as the first check.
    #[arg(long)]
    kit_tests: Option<String>,
    /// The loom-node binary (default: next to this one).
    #[arg(long)]
    loom_node: Option<PathBuf>,
    /// Only these scenarios (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// List the scenarios and what each proves, then exit.
    #[arg(long)]
    list: bool,
    /// Where the programs' and nodes' logs go (default: a new directory under /tmp, kept).
    #[arg(long)]
    logs: Option<PathBuf>,
    /// The conformance program and its leading arguments.
    #[arg(last = true)]
    program: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = scenarios::all();
    if args.list {
        for s in &all {
            println!("{:<36} {}", s.name, s.proves);
        }
        return Ok(());
    }
    for name in &args.only {
        anyhow::ensure!(
            name == "kit-tests" || all.iter().any(|s| s.name == name),
            "no scenario named `{name}` (see --list)"
        );
    }
    anyhow::ensure!(!args.program.is_empty(), "give the conformance program after `--`");
    let lang = args.lang.clone().unwrap_or_default();
    let logs = match &args.logs {
        Some(dir) => dir.clone(),
        None => tempfile::Builder::new().prefix(&format!("loom-conformance-{lang}-")).tempdir()?.keep(),
    };
    std::fs::create_dir_all(&logs)?;
    println!("logs in {}", logs.display());
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|n| n == name);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut report = |name: &str, started: Instant, outcome: scenarios::Outcome| match outcome {
        Ok(()) => {
            passed += 1;
            println!("PASS {name} ({:.1} s)", started.elapsed().as_secs_f64());
        }
        Err(why) => {
            failed += 1;
            println!("FAIL {name}: {why}");
        }
    };
    if let Some(command) = &args.kit_tests {
        if wanted("kit-tests") {
            let started = Instant::now();
            report("kit-tests", started, scenarios::kit_tests(command, &logs.join("kit-tests.log")));
        }
    }
    let selected: Vec<_> = all.iter().filter(|s| wanted(s.name)).collect();
    if !selected.is_empty() {
        let node = linkloom_harness::loom_node_binary(args.loom_node.clone())?;
        match Kit::start(&node, args.program.clone(), logs.clone()) {
            Ok(mut kit) => {
                for scenario in selected {
                    let started = Instant::now();
                    report(scenario.name, started, (scenario.run)(&mut kit));
                }
                if failed > 0 {
                    println!("node logs: {}", kit.cluster.dir().display());
                    // Keep the nodes' logs with the programs' for a look after the run.
                    for id in kit.cluster.ids() {
                        let _ = std::fs::write(logs.join(format!("node{id}.log")), kit.cluster.log_text(id));
                    }
                }
            }
            Err(e) => {
                failed += selected.len();
                println!("FAIL cluster: could not start a 3-node cluster: {e:#}");
            }
        }
    }
    println!("conformance {lang}: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 && passed > 0 { 0 } else { 1 });
}
