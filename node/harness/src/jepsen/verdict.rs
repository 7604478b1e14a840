//! After the run: the final reads, the checks, and the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use linkloom_history::exactly_once::{self, Told};
use linkloom_history::linearizability::DEFAULT_STEP_BUDGET;
use linkloom_history::register::{describe, Input, Output, Register};
use linkloom_history::{check_by_key, Op, Verdict};

use super::client::History;
use super::{Clock, FaultLog, Options, Tally, TRIGGER_WORKFLOW};
use crate::Cluster;

/// What the healed cluster holds.
pub(crate) struct FinalState {
    /// One linearizable read of every register through every node, after the faults.
    reads: Vec<(String, Op<Input, Output>)>,
    /// Executions of the trigger workflow per op id in their params.
    executions_by_op: BTreeMap<String, usize>,
    /// `cancelled` entries in each execution's audit trail.
    cancels_by_execution: BTreeMap<String, usize>,
}

/// Reads every register through every node, and every execution the triggers made.
pub(crate) fn read_final(cluster: &Cluster, history: &History, clock: Clock) -> anyhow::Result<FinalState> {
    let keys: BTreeSet<&String> = history.registers.iter().map(|(k, _)| k).collect();
    let mut reads = Vec::new();
    for key in keys {
        for id in cluster.ids() {
            let call = clock.now();
            let seen = match cluster.get_json(id, &format!("/api/v1/workflows/{key}"))? {
                (200, v) => v["version"].as_u64().zip(v["spec"]["description"].as_str().map(str::to_string)),
                (404, _) => None,
                (status, body) => anyhow::bail!("final read of {key} through node {id} answered {status}: {body}"),
            };
            let ret = clock.now();
            reads.push((
                key.clone(),
                Op { client: 1_000 + id as u32, input: Input::Read, output: Some(Output::Read(seen)), call, ret },
            ));
        }
    }
    let mut executions_by_op: BTreeMap<String, usize> = BTreeMap::new();
    let mut cancels_by_execution: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/executions?workflow={TRIGGER_WORKFLOW}&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", crate::url_escape(c)));
        }
        let (status, page) = cluster.get_json(1, &path)?;
        anyhow::ensure!(status == 200, "listing executions answered {status}: {page}");
        for e in page["items"].as_array().into_iter().flatten() {
            let op = e["params"]["op"].as_str().unwrap_or("(none)").to_string();
            *executions_by_op.entry(op).or_default() += 1;
            let cancels = e["audit"].as_array().into_iter().flatten().filter(|a| a["action"] == "cancelled").count();
            if let Some(id) = e["id"].as_str() {
                cancels_by_execution.insert(id.to_string(), cancels);
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    Ok(FinalState { reads, executions_by_op, cancels_by_execution })
}

/// A register whose history no order explains.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub key: String,
    pub culprit: Op<Input, Output>,
    pub window: Vec<Op<Input, Output>>,
}

/// What the test found.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub elapsed: Duration,
    pub tally: Tally,
    pub faults: FaultLog,
    pub keys: usize,
    pub register_ops: usize,
    pub search_steps: u64,
    pub anomalies: Vec<Anomaly>,
    /// Keys the search could not decide within its budget.
    pub undecided: Vec<String>,
    pub trigger_violations: Vec<exactly_once::Violation>,
    pub cancel_violations: Vec<exactly_once::Violation>,
    pub triggers: usize,
    pub cancels: usize,
    /// Where node logs and the history were kept, when the test failed.
    pub kept: Option<PathBuf>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.anomalies.is_empty()
            && self.undecided.is_empty()
            && self.trigger_violations.is_empty()
            && self.cancel_violations.is_empty()
    }

    /// Operations the clients made (every kind, every outcome).
    pub fn operations(&self) -> u64 {
        self.tally.iter().filter(|(k, _)| !k.starts_with("refused")).map(|(_, v)| v).sum()
    }

    /// Copies the nodes' logs out of the cluster's temporary directory, which goes with it.
    pub(crate) fn keep_logs(&self, cluster: &Cluster) -> Option<PathBuf> {
        let dir = std::env::temp_dir().join(format!("loom-jepsen-{}-{}", self.seed, std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        for id in cluster.ids() {
            std::fs::write(dir.join(format!("node{id}.log")), cluster.log_text(id)).ok()?;
        }
        std::fs::write(dir.join("report.txt"), self.to_string()).ok()?;
        Some(dir)
    }
}

pub(crate) fn judge(
    options: &Options,
    history: History,
    final_state: FinalState,
    faults: FaultLog,
    elapsed: Duration,
) -> Report {
    let History { registers, triggers, cancels, tally } = history;
    let mut ops = registers;
    ops.extend(final_state.reads);
    let keys = ops.iter().map(|(k, _)| k.clone()).collect::<BTreeSet<_>>().len();
    let register_ops = ops.len();
    let outcomes = check_by_key(ops, |_| Register, DEFAULT_STEP_BUDGET);
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    let mut search_steps = 0;
    for (key, outcome) in outcomes {
        search_steps += outcome.steps;
        match outcome.verdict {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable { culprit, window } => anomalies.push(Anomaly { key, culprit, window }),
            Verdict::Unknown { .. } => undecided.push(key),
        }
    }

    let told: BTreeMap<String, Told> = triggers.iter().map(|t| (t.op_id.clone(), t.told)).collect();
    let trigger_violations = exactly_once::check(&told, &final_state.executions_by_op);
    let told: BTreeMap<String, Told> = cancels.iter().map(|c| (c.execution_id.clone(), c.told)).collect();
    // Only executions a cancel was sent for: the others must have no cancel at all.
    let effects = final_state.cancels_by_execution;
    let cancel_violations = exactly_once::check(&told, &effects);

    Report {
        seed: options.seed,
        elapsed,
        tally,
        faults,
        keys,
        register_ops,
        search_steps,
        anomalies,
        undecided,
        trigger_violations,
        cancel_violations,
        triggers: triggers.len(),
        cancels: cancels.len(),
        kept: None,
    }
}

fn secs(ns: u64) -> String {
    if ns == u64::MAX {
        "never".into()
    } else {
        format!("{:.4}s", ns as f64 / 1e9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults: BTreeMap<&str, usize> = self.faults.iter().fold(BTreeMap::new(), |mut m, (_, what)| {
            if let Some((kind, _)) = what.split_once(':') {
                *m.entry(kind).or_default() += 1;
            }
            m
        });
        writeln!(
            f,
            "jepsen: seed={} elapsed={:.1}s operations={} faults={} {:?}",
            self.seed,
            self.elapsed.as_secs_f64(),
            self.operations(),
            faults.values().sum::<usize>(),
            faults
        )?;
        writeln!(f, "  outcomes: {:?}", self.tally)?;
        writeln!(
            f,
            "  linearizability: keys={} ops={} search_steps={} anomalies={} undecided={}",
            self.keys,
            self.register_ops,
            self.search_steps,
            self.anomalies.len(),
            self.undecided.len()
        )?;
        writeln!(
            f,
            "  exactly-once: triggers={} violations={}; cancels={} violations={}",
            self.triggers,
            self.trigger_violations.len(),
            self.cancels,
            self.cancel_violations.len()
        )?;
        for anomaly in self.anomalies.iter().take(3) {
            writeln!(f, "  NOT LINEARIZABLE: workflow {}: no order explains", anomaly.key)?;
            writeln!(f, "    {}", describe(&anomaly.culprit))?;
            writeln!(f, "    operations around it:")?;
            for op in &anomaly.window {
                let mark = if op == &anomaly.culprit { "=>" } else { "  " };
                writeln!(f, "    {mark} {}", describe(op))?;
            }
            let near: Vec<&(u64, String)> =
                self.faults.iter().filter(|(t, _)| t.abs_diff(anomaly.culprit.call) < 10_000_000_000).collect();
            for (t, what) in near {
                writeln!(f, "       fault at {}: {what}", secs(*t))?;
            }
        }
        for key in self.undecided.iter().take(5) {
            writeln!(f, "  UNDECIDED: workflow {key}: the search ran out of budget")?;
        }
        for (kind, violations) in [("trigger", &self.trigger_violations), ("cancel", &self.cancel_violations)] {
            for v in violations.iter().take(10) {
                writeln!(f, "  NOT EXACTLY ONCE: {kind} {}: told {:?}, {} effects", v.id, v.told, v.effects)?;
            }
        }
        if let Some(dir) = &self.kept {
            writeln!(f, "  node logs kept in {}", dir.display())?;
        }
        write!(f, "  verdict: {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}
