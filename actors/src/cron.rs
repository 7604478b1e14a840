//! Which ticks to fire: a pure function of the schedule, the cursor and the time, so the
//! catch-up rules are testable without a clock.

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

#[cfg(test)]
mod tests {
    use super::*;

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
