//! The invariants, checked on every node's replicated state while the run goes (sampled) and at
//! the end. A checker reads states the way an auditor would: from outside the hosts, never
//! trusting what a node says about itself.

use std::collections::BTreeMap;

use linkloom_core::ids::scheduled_execution_id;
use linkloom_core::state::{AttemptStatus, ExecutionStatus, State, TaskStatus, Trigger};
use linkloom_history::exactly_once::{self, Told};
use linkloom_history::linearizability::DEFAULT_STEP_BUDGET;
use linkloom_history::register::{describe, Input, Output, Register};
use linkloom_history::{check_by_key, Op, Verdict};

use crate::world::{Ack, World};

/// One broken guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's short name (what `invariants=VIOLATED: <name>` prints).
    pub invariant: &'static str,
    pub detail: String,
}

/// Invariant names, for `--list-invariants` and docs.
pub const INVARIANTS: [(&str, &str); 13] = [
    ("one-leader-per-term", "at most one node leads in any term"),
    ("acked-writes-durable", "every acknowledged write is on every node after the faults heal"),
    ("one-execution-per-tick", "no two executions for the same (workflow, scheduled tick)"),
    ("ticks-fired", "every tick of a catch-up-all schedule is fired once the cluster is healthy"),
    ("finished-never-changes", "a finished attempt or execution never changes (retry aside)"),
    ("one-success-per-task", "a task succeeds at most once, and only through its current attempt"),
    ("retry-policy", "a task makes at most max_attempts attempts, each after its backoff"),
    ("liveness", "after the faults stop, every execution ends within the bound"),
    ("replicas-equal", "after healing every node applied the same log to the same state"),
    ("linearizable", "one order of every register write and read, consistent with real time, explains every answer"),
    ("exactly-once", "each trigger took effect once, however often its client retried it"),
    (
        "events-exactly-once",
        "each (workflow, event id) started at most one execution, every acknowledged matching event exactly one, and no event its filter refuses any",
    ),
    ("chained-once", "each end of an upstream execution started its chained workflow exactly once"),
];

/// Checks that accumulate observations across samples.
#[derive(Default)]
pub struct Checker {
    leaders: BTreeMap<u64, u64>,
    finished_attempts: BTreeMap<u64, AttemptStatus>,
    finished_executions: BTreeMap<String, ExecutionStatus>,
    pub violations: Vec<Violation>,
}

impl Checker {
    fn violate(&mut self, invariant: &'static str, detail: String) {
        if !self.violations.iter().any(|v| v.invariant == invariant) {
            self.violations.push(Violation { invariant, detail });
        }
    }

    /// Looks at every running node once.
    pub fn sample(&mut self, world: &World) {
        for (id, node) in world.running_nodes() {
            let info = node.cluster_info();
            if info.state == "leader" {
                match self.leaders.get(&info.term) {
                    Some(other) if *other != id => {
                        let detail = format!("nodes {other} and {id} both led term {}", info.term);
                        self.violate("one-leader-per-term", detail)
                    }
                    _ => {
                        self.leaders.insert(info.term, id);
                    }
                }
            }
            let retried = world.with(|w| w.retried.clone());
            node.state().read(|s| self.check_state(id, s, &retried));
        }
    }

    fn check_state(&mut self, node: u64, s: &State, retried: &[String]) {
        let mut ticks: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
        for e in s.executions_after(None) {
            if matches!(e.trigger, Trigger::Schedule | Trigger::Backfill) {
                if let Some(tick) = e.scheduled_at_ms {
                    ticks.entry((e.workflow_id.clone(), tick)).or_default().push(e.id.clone());
                    if e.id != scheduled_execution_id(&e.workflow_id, tick) {
                        self.violate(
                            "one-execution-per-tick",
                            format!("node {node}: {} is not the id of its tick", e.id),
                        );
                    }
                }
            }
            if e.status.is_terminal() && !retried.contains(&e.id) {
                match self.finished_executions.get(&e.id) {
                    Some(old) if *old != e.status => {
                        let detail = format!("node {node}: execution {} went from {old} to {}", e.id, e.status);
                        self.violate("finished-never-changes", detail);
                    }
                    Some(_) => {}
                    None => {
                        self.finished_executions.insert(e.id.clone(), e.status);
                    }
                }
            }
            let spec = s.execution_spec(&e);
            for t in &e.tasks {
                let successes = t.attempts.iter().filter(|a| a.status == AttemptStatus::Succeeded).count();
                let last_is_success = t.attempts.last().is_some_and(|a| a.status == AttemptStatus::Succeeded);
                if successes > 1 || (successes == 1 && !last_is_success) {
                    let detail = format!("node {node}: {}/{} has {successes} successful attempts", e.id, t.id);
                    self.violate("one-success-per-task", detail);
                }
                if t.status == TaskStatus::Succeeded && !last_is_success {
                    let detail = format!("node {node}: {}/{} succeeded without a successful last attempt", e.id, t.id);
                    self.violate("one-success-per-task", detail);
                }
                for a in &t.attempts {
                    if a.status == AttemptStatus::Running {
                        continue;
                    }
                    match self.finished_attempts.get(&a.id) {
                        Some(old) if *old != a.status => {
                            let detail = format!(
                                "node {node}: attempt {} of {}/{} went from {old} to {}",
                                a.id, e.id, t.id, a.status
                            );
                            self.violate("finished-never-changes", detail);
                        }
                        Some(_) => {}
                        None => {
                            self.finished_attempts.insert(a.id, a.status);
                        }
                    }
                }
                let Some(policy) = spec.and_then(|sp| sp.task(&t.id).map(|ts| sp.retry_policy(ts))) else { continue };
                let counted: Vec<_> = t
                    .attempts
                    .iter()
                    .skip(t.attempts_before_reopen as usize)
                    .filter(|a| a.status != AttemptStatus::Released)
                    .collect();
                if counted.len() as u32 > policy.max_attempts {
                    let detail = format!(
                        "node {node}: {}/{} made {} attempts; its policy allows {}",
                        e.id,
                        t.id,
                        counted.len(),
                        policy.max_attempts
                    );
                    self.violate("retry-policy", detail);
                }
                for pair in counted.windows(2) {
                    let (before, after) = (pair[0], pair[1]);
                    let Some(ended) = before.finished_at_ms else { continue };
                    let min = policy.delay_before(after.n, 0).0 as i64;
                    if after.started_at_ms - ended < min {
                        let detail = format!(
                            "node {node}: {}/{} attempt {} started {} ms after the previous ended; backoff is at least {min} ms",
                            e.id,
                            t.id,
                            after.n,
                            after.started_at_ms - ended
                        );
                        self.violate("retry-policy", detail);
                    }
                }
            }
        }
        for ((workflow, tick), ids) in ticks {
            if ids.len() > 1 {
                self.violate("one-execution-per-tick", format!("node {node}: {workflow} tick {tick} has {ids:?}"));
            }
        }
    }

    /// The end-of-run checks, once faults healed and the cluster settled.
    pub fn finish(
        &mut self,
        world: &World,
        liveness_detail: Option<String>,
        first_tick_ms: Option<i64>,
        last_tick_ms: i64,
        end: std::time::Duration,
    ) {
        self.sample(world);
        if let Some(detail) = liveness_detail {
            self.violate("liveness", detail);
        }
        let nodes = world.running_nodes();
        let digests: Vec<(u64, String, Option<u64>)> = nodes
            .iter()
            .map(|(id, n)| {
                let digest = n.state().read(|s| s.digest()).iter().map(|b| format!("{b:02x}")).collect::<String>();
                (*id, digest, n.cluster_info().last_applied)
            })
            .collect();
        if digests.windows(2).any(|w| w[0].1 != w[1].1 && w[0].2 == w[1].2) {
            self.violate("replicas-equal", format!("node states differ after healing: {digests:?}"));
        }
        let acks = world.with(|w| w.acks.clone());
        for (id, node) in &nodes {
            node.state().read(|s| {
                for (at, ack) in &acks {
                    let present = match ack {
                        Ack::WorkflowVersion { workflow_id, version } => {
                            s.workflow(workflow_id).is_some_and(|w| w.latest >= *version)
                        }
                        Ack::ExecutionCreated { execution_id } => s.execution(execution_id).is_some(),
                        Ack::ExecutionCancelled { execution_id } => {
                            s.execution(execution_id).is_none_or(|e| e.status == ExecutionStatus::Cancelled)
                        }
                        Ack::Completion { attempt_id } => {
                            s.attempt(*attempt_id).is_none_or(|at| at.attempt().status != AttemptStatus::Running)
                        }
                    };
                    if !present {
                        let detail = format!("node {id} lacks {ack:?}, acknowledged at {:.3}s", at.as_secs_f64());
                        self.violations.push(Violation { invariant: "acked-writes-durable", detail });
                        return;
                    }
                }
            });
        }
        // Ticks of the catch-up-all schedule (every 2 s) from its first until shortly before the end.
        if let (Some(first), Some((_, node))) = (first_tick_ms, nodes.first()) {
            let missing: Vec<i64> = node.state().read(|s| {
                (0..)
                    .map(|k| first + 2_000 * k)
                    .take_while(|t| *t <= last_tick_ms)
                    .filter(|t| s.execution(&scheduled_execution_id("tick", *t)).is_none())
                    .collect()
            });
            if !missing.is_empty() {
                self.violate("ticks-fired", format!("ticks never fired: {missing:?}"));
            }
        }
        if let Some((_, node)) = nodes.first() {
            self.check_history(world, node, end.as_nanos() as u64);
        }
        self.violations.dedup_by(|a, b| a.invariant == b.invariant);
    }

    /// `linearizable` and `exactly-once`: the clients' history against the healed state.
    fn check_history(&mut self, world: &World, node: &crate::world::SimNode, end: u64) {
        let (mut registers, triggers) = world.with(|w| (w.registers.clone(), w.triggers.clone()));
        // The healed state, read as a client that comes last would see it.
        let keys: std::collections::BTreeSet<String> = registers.iter().map(|(k, _)| k.clone()).collect();
        let finals: Vec<(String, Op<Input, Output>)> = node.state().read(|s| {
            keys.iter()
                .map(|key| {
                    let seen = s.workflow(key).and_then(|w| {
                        let active = w.active()?;
                        Some((u64::from(active.version), active.spec.description.clone().unwrap_or_default()))
                    });
                    let read = Op {
                        client: u32::MAX,
                        input: Input::Read,
                        output: Some(Output::Read(seen)),
                        call: end,
                        ret: end,
                    };
                    (key.clone(), read)
                })
                .collect()
        });
        registers.extend(finals);
        for (key, outcome) in check_by_key(registers, |_| Register, DEFAULT_STEP_BUDGET) {
            match outcome.verdict {
                Verdict::Linearizable => {}
                Verdict::NotLinearizable { culprit, window } => {
                    let shown: Vec<String> = window.iter().map(describe).collect();
                    let detail = format!(
                        "register {key}: {} cannot be explained; around it: {}",
                        describe(&culprit),
                        shown.join("; ")
                    );
                    self.violate("linearizable", detail);
                }
                Verdict::Unknown { steps } => {
                    self.violate("linearizable", format!("register {key}: undecided after {steps} search steps"));
                }
            }
        }
        let told: BTreeMap<String, Told> = triggers.into_iter().collect();
        let effects: BTreeMap<String, usize> = node.state().read(|s| {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for e in s.executions_after(None) {
                if let Some(op) = e.params.0.get("op").and_then(|v| v.as_str()) {
                    *counts.entry(op.to_string()).or_default() += 1;
                }
            }
            counts
        });
        if let Some(v) = exactly_once::check(&told, &effects).first() {
            let detail =
                format!("trigger {}: the client was told {:?}; it made {} executions", v.id, v.told, v.effects);
            self.violate("exactly-once", detail);
        }
        self.check_events(world, node);
    }

    /// `events-exactly-once` and `chained-once`, on the healed state.
    fn check_events(&mut self, world: &World, node: &crate::world::SimNode) {
        let sent = world.with(|w| w.sent_events.clone());
        // Per id: succeeded if any send was acknowledged, unknown if none was but some may have
        // landed; a refusal of every send means none did.
        let mut told: BTreeMap<String, (bool, Told)> = BTreeMap::new();
        for (id, matches, t) in sent {
            let entry = told.entry(id).or_insert((matches, Told::Failed));
            entry.1 = match (entry.1, t) {
                (Told::Succeeded, _) | (_, Told::Succeeded) => Told::Succeeded,
                (Told::Unknown, _) | (_, Told::Unknown) => Told::Unknown,
                _ => Told::Failed,
            };
        }
        let (by_event, chains) = node.state().read(|s| {
            let mut by_event: BTreeMap<String, usize> = BTreeMap::new();
            let mut chained: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut ends: BTreeMap<String, (bool, u32)> = BTreeMap::new();
            for e in s.executions_after(None) {
                match (e.workflow_id.as_str(), e.event.as_ref()) {
                    ("on-event", Some(ev)) => *by_event.entry(ev.id.clone()).or_default() += 1,
                    ("after-chain", Some(ev)) => chained.entry(ev.id.clone()).or_default().push(e.id.clone()),
                    ("chain", _) => {
                        ends.insert(e.id.clone(), (e.status.is_terminal(), *e.chained_ends));
                    }
                    _ => {}
                }
            }
            (by_event, (chained, ends))
        });
        let matching: BTreeMap<String, Told> =
            told.iter().filter(|(_, (m, _))| *m).map(|(id, (_, t))| (id.clone(), *t)).collect();
        if let Some(v) = exactly_once::check(&matching, &by_event).first() {
            let detail =
                format!("event {}: its sender was told {:?}; it started {} executions", v.id, v.told, v.effects);
            self.violate("events-exactly-once", detail);
        }
        for (id, (matches, _)) in &told {
            if !matches && by_event.contains_key(id) {
                self.violate("events-exactly-once", format!("event {id} does not match the filter, yet started a run"));
            }
        }
        let (chained, ends) = chains;
        for (upstream, (ended, count)) in &ends {
            let started = chained.get(upstream).map_or(0, Vec::len);
            if started != *count as usize || (*ended && *count == 0) {
                let detail = format!(
                    "chain execution {upstream} (ended: {ended}) counts {count} ends; {started} chained runs started"
                );
                self.violate("chained-once", detail);
            }
        }
        for upstream in chained.keys() {
            if !ends.contains_key(upstream) {
                self.violate("chained-once", format!("chained runs for {upstream}, which is not a chain execution"));
            }
        }
    }
}
