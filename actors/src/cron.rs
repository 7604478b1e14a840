//! Which ticks to fire: a pure function of the schedule, the cursor and the time, so the
//! catch-up rules are testable without a clock; and which of them are already on their way
//! ([`InFlight`]), so a leader whose commits lag does not propose them again.

use std::collections::BTreeMap;

use linkloom_core::schedule::CronSchedule;
use linkloom_core::spec::Catchup;

/// Most ticks walked from a cursor in one plan (a per-second schedule paused for 11 days).
const MAX_WALK: usize = 1_000_000;

/// What the leader should do about one workflow's schedule now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TickPlan {
    /// Ticks to create executions for, oldest first.
    pub(crate) fire: Vec<i64>,
    /// Move the cursor here without firing (ticks dropped by catch-up), if set.
    pub(crate) skip_to: Option<i64>,
}

/// Ticks in `(cursor_ms, now_ms]`, handled per `catchup`. A tick more than `tolerance_ms` old
/// while a newer one is due, or older than the tolerance under `none`, counts as missed.
pub(crate) fn plan(
    schedule: &CronSchedule,
    catchup: Catchup,
    cursor_ms: i64,
    now_ms: i64,
    tolerance_ms: i64,
    max_ticks: usize,
) -> TickPlan {
    let mut due = Vec::new();
    let mut t = cursor_ms;
    // Bounded twice: at most MAX_WALK steps from the cursor, and only the newest `max_ticks`
    // (plus one) are kept while walking forward.
    let mut steps = 0;
    while let Some(next) = schedule.next_after_ms(t) {
        steps += 1;
        if next > now_ms || steps > MAX_WALK {
            break;
        }
        due.push(next);
        if due.len() > max_ticks + 1 {
            due.remove(0);
        }
        t = next;
    }
    let Some(&newest) = due.last() else { return TickPlan::default() };
    match catchup {
        Catchup::All => {
            let start = due.len().saturating_sub(max_ticks);
            let skip_to = (start > 0).then(|| due[start - 1]);
            TickPlan { fire: due[start..].to_vec(), skip_to }
        }
        Catchup::Latest => TickPlan { fire: vec![newest], skip_to: (due.len() > 1).then(|| due[due.len() - 2]) },
        Catchup::None => {
            if now_ms - newest <= tolerance_ms {
                TickPlan { fire: vec![newest], skip_to: (due.len() > 1).then(|| due[due.len() - 2]) }
            } else {
                TickPlan { fire: Vec::new(), skip_to: Some(newest) }
            }
        }
    }
}

/// Workflows whose fired ticks the leader proposed and has no answer for yet.
///
/// The replicated cursor (`last_tick_ms`) moves only when a fired tick's command applies. While
/// commits lag (ten thousand schedules due on the same second), every wake planned the same due
/// ticks again and proposed them again. The duplicates create nothing, since an execution's id
/// is a function of its tick, but each wake queued another full round of proposals, so commits
/// fell further behind and the queue grew until the process ran out of memory (10,000 workflows
/// on a five-second schedule: 21 GB within 15 minutes). So a workflow with commands out is not
/// planned again until they are answered, and the scheduler keeps a bounded number of commands
/// outstanding: ticks beyond the bound wait for a later wake, the oldest cursors first. One batch
/// per workflow at a time also keeps its ticks in order: a newer tick never applies while an
/// older one's proposal is still out (and might fail).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    workflows: BTreeMap<String, usize>,
    commands: usize,
}

/// One dispatch's share of [`InFlight`], handed back to [`InFlight::settle`] once every command
/// in it is answered.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    workflows: Vec<String>,
}

impl InFlight {
    /// Whether `workflow` has commands out (then it is not planned).
    pub(crate) fn is_pending(&self, workflow: &str) -> bool {
        self.workflows.contains_key(workflow)
    }

    /// Whether another workflow's ticks may be proposed under `max` outstanding commands (one
    /// workflow's plan may pass the bound by at most `max_catchup_ticks + 1`).
    pub(crate) fn has_room(&self, max: usize) -> bool {
        self.commands < max
    }

    /// Commands proposed and not answered.
    pub(crate) fn commands(&self) -> usize {
        self.commands
    }

    /// Records `commands` proposed for `workflow` in `batch`.
    pub(crate) fn record(&mut self, batch: &mut Batch, workflow: &str, commands: usize) {
        if commands == 0 {
            return;
        }
        *self.workflows.entry(workflow.to_string()).or_default() += commands;
        self.commands += commands;
        batch.workflows.push(workflow.to_string());
    }

    /// Every command of `batch` was answered (applied, refused or failed): its workflows are
    /// planned again, from their replicated cursors, so a tick whose proposal failed is fired on
    /// the next wake.
    pub(crate) fn settle(&mut self, batch: Batch) {
        for workflow in batch.workflows {
            if let Some(commands) = self.workflows.remove(&workflow) {
                self.commands = self.commands.saturating_sub(commands);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_with_ticks_in_flight_waits_for_their_answers() {
        let mut in_flight = InFlight::default();
        let mut batch = Batch::default();
        in_flight.record(&mut batch, "w", 1);
        assert!(in_flight.is_pending("w"));
        assert!(!in_flight.is_pending("v"));
        // A later batch while the first is out never includes "w" (the planner skips it), so
        // settling the first frees it.
        in_flight.settle(batch);
        assert!(!in_flight.is_pending("w"));
        assert_eq!(in_flight.commands(), 0);
    }

    #[test]
    fn outstanding_commands_are_bounded() {
        let mut in_flight = InFlight::default();
        let mut batch = Batch::default();
        for (i, w) in ["a", "b", "c"].iter().enumerate() {
            assert!(in_flight.has_room(3), "workflow {i}");
            in_flight.record(&mut batch, w, 1);
        }
        assert!(!in_flight.has_room(3));
        // A workflow with nothing proposed takes no room and is not pending.
        in_flight.record(&mut batch, "d", 0);
        assert!(!in_flight.is_pending("d"));
        let mut second = Batch::default();
        in_flight.record(&mut second, "e", 2);
        in_flight.settle(batch);
        assert_eq!(in_flight.commands(), 2);
        assert!(in_flight.has_room(3));
        in_flight.settle(second);
        assert!(in_flight.workflows.is_empty());
    }

    fn every_2s() -> CronSchedule {
        CronSchedule::parse("*/2 * * * * *", "UTC").unwrap()
    }

    #[test]
    fn on_time_fires_the_one_due_tick() {
        let p = plan(&every_2s(), Catchup::None, 10_000, 12_050, 1_000, 100);
        assert_eq!(p, TickPlan { fire: vec![12_000], skip_to: None });
        assert_eq!(plan(&every_2s(), Catchup::All, 12_000, 12_500, 1_000, 100), TickPlan::default());
    }

    #[test]
    fn catchup_rules_after_an_outage() {
        // Cursor at 10 s, now 20.5 s: ticks 12, 14, 16, 18 and 20 are due.
        let s = every_2s();
        assert_eq!(
            plan(&s, Catchup::All, 10_000, 20_500, 1_000, 100).fire,
            vec![12_000, 14_000, 16_000, 18_000, 20_000]
        );
        assert_eq!(
            plan(&s, Catchup::Latest, 10_000, 20_500, 1_000, 100),
            TickPlan { fire: vec![20_000], skip_to: Some(18_000) }
        );
        assert_eq!(
            plan(&s, Catchup::None, 10_000, 20_500, 1_000, 100),
            TickPlan { fire: vec![20_000], skip_to: Some(18_000) }
        );
        // Under `none` even the newest tick is dropped once it is older than the tolerance.
        assert_eq!(
            plan(&s, Catchup::None, 10_000, 21_500, 1_000, 100),
            TickPlan { fire: vec![], skip_to: Some(20_000) }
        );
        // `all` is bounded.
        let p = plan(&s, Catchup::All, 0, 1_000_000, 1_000, 3);
        assert_eq!(p.fire, vec![996_000, 998_000, 1_000_000]);
        assert_eq!(p.skip_to, Some(994_000));
    }
}
