//! The linearizability search.
//!
//! Operations are laid out as call and return events in time order (a call sorts before a return
//! at the same instant, so touching operations count as concurrent: the checker never blames an
//! order the clocks cannot tell apart). The search walks the events: at a call it tries to take
//! that operation next (the model must accept its answer); at a return it has failed to take the
//! operation that returns there before anything later, so it backtracks. A configuration already
//! seen — the same set of operations taken and the same model state — is not explored twice.
//!
//! An operation with no known outcome returns "at infinity": it may be taken at any point after
//! its call, or never (it did not take effect). The search succeeds once only such operations
//! remain.
//!
//! When a history is not linearizable, [`check`] also finds the first answer that cannot be
//! explained: the shortest prefix of the history (everything called up to some instant, with
//! operations still running then treated as unknown) that is already not linearizable, and
//! reports the operations around the one whose answer ends it.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of the object under test.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state` if the object could have answered `output` (`None`: the answer
    /// is unknown, any answer will do). `None` means it could not.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;
}

/// One operation as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op<I, O> {
    /// Which client called it (for reports only).
    pub client: u32,
    pub input: I,
    /// The answer; `None` if the client never learned it (a timeout, a lost connection, a 5xx
    /// after the request was sent): the operation may still take effect, at any later time.
    pub output: Option<O>,
    /// When it was called.
    pub call: u64,
    /// When its answer arrived (ignored when `output` is `None`).
    pub ret: u64,
}

impl<I, O> Op<I, O> {
    /// The instant the operation is known to have ended; unknown outcomes never end.
    fn end(&self) -> u64 {
        if self.output.is_some() {
            self.ret
        } else {
            u64::MAX
        }
    }
}

/// The verdict on one key's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<I, O> {
    Linearizable,
    /// No order explains the answers. `culprit` is the operation whose answer first cannot be
    /// explained; `window` holds the operations around it (the last ones to complete before it
    /// was called, and every one concurrent with it), in call order.
    NotLinearizable {
        culprit: Op<I, O>,
        window: Vec<Op<I, O>>,
    },
    /// The search gave up after its budget of steps: neither proven nor refuted.
    Unknown {
        steps: u64,
    },
}

/// What checking a history found, and how hard it worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<I, O> {
    pub verdict: Verdict<I, O>,
    /// Operations checked (unknown reads and the like are the caller's to drop).
    pub ops: usize,
    /// Search steps taken, over every pass.
    pub steps: u64,
}

/// One key's operations, as a model sees them.
pub type Ops<M> = Vec<Op<<M as Model>::Input, <M as Model>::Output>>;

/// Steps one search may take before it answers [`Verdict::Unknown`].
pub const DEFAULT_STEP_BUDGET: u64 = 50_000_000;

/// Checks one key's history against `model`.
pub fn check<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>], budget: u64) -> Outcome<M::Input, M::Output> {
    let mut steps = 0;
    match search(model, ops, budget) {
        Search::Linearizable(s) => Outcome { verdict: Verdict::Linearizable, ops: ops.len(), steps: s },
        Search::OutOfBudget(s) => Outcome { verdict: Verdict::Unknown { steps: s }, ops: ops.len(), steps: s },
        Search::NotLinearizable(s) => {
            steps += s;
            let (verdict, more) = first_failure(model, ops, budget);
            Outcome { verdict, ops: ops.len(), steps: steps + more }
        }
    }
}

/// Checks a history of several independent keys, each against its own model, in key order. The
/// result lists every key that is not (or not provably) linearizable.
pub fn check_by_key<K, M, F>(
    ops: impl IntoIterator<Item = (K, Op<M::Input, M::Output>)>,
    model_for: F,
    budget: u64,
) -> BTreeMap<K, Outcome<M::Input, M::Output>>
where
    K: Ord,
    M: Model,
    F: Fn(&K) -> M,
{
    let mut by_key: BTreeMap<K, Ops<M>> = BTreeMap::new();
    for (key, op) in ops {
        by_key.entry(key).or_default().push(op);
    }
    by_key
        .into_iter()
        .map(|(key, ops)| {
            let outcome = check(&model_for(&key), &ops, budget);
            (key, outcome)
        })
        .collect()
}

enum Search {
    Linearizable(u64),
    NotLinearizable(u64),
    OutOfBudget(u64),
}

/// A call or return event in the time-ordered list.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    time: u64,
}

/// Operations taken so far, as a bit set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Taken(Vec<u64>);

impl Taken {
    fn new(n: usize) -> Self {
        Taken(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

fn search<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>], budget: u64) -> Search {
    if ops.is_empty() {
        return Search::Linearizable(0);
    }
    let mut events: Vec<Event> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push(Event { op: i, is_call: true, time: op.call });
        events.push(Event { op: i, is_call: false, time: op.end().max(op.call) });
    }
    // Calls before returns at one instant: operations that touch are concurrent.
    events.sort_by_key(|e| (e.time, !e.is_call, e.op));

    // A doubly linked list over the events, with a head sentinel (index n) and an end (n + 1),
    // so an operation can be lifted out and put back in O(1) (put back in reverse order).
    let n = events.len();
    let (head, end) = (n, n + 1);
    let mut next = vec![end; n + 2];
    let mut prev = vec![head; n + 2];
    next[head] = 0;
    for i in 0..n {
        next[i] = if i + 1 < n { i + 1 } else { end };
        prev[i] = if i == 0 { head } else { i - 1 };
    }
    prev[end] = n - 1;
    let mut call_at = vec![0; ops.len()];
    let mut ret_at = vec![0; ops.len()];
    for (i, e) in events.iter().enumerate() {
        if e.is_call {
            call_at[e.op] = i;
        } else {
            ret_at[e.op] = i;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, q) = (prev[x], next[x]);
        next[p] = q;
        prev[q] = p;
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, q) = (prev[x], next[x]);
        next[p] = x;
        prev[q] = x;
    };

    let mut state = model.init();
    let mut taken = Taken::new(ops.len());
    let mut seen: HashSet<(Taken, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut steps = 0u64;
    let mut cur = next[head];
    loop {
        steps += 1;
        if steps > budget {
            return Search::OutOfBudget(steps);
        }
        if cur == end {
            return Search::Linearizable(steps);
        }
        let event = events[cur];
        if event.is_call {
            let op = &ops[event.op];
            if let Some(after) = model.step(&state, &op.input, op.output.as_ref()) {
                taken.set(event.op);
                if seen.insert((taken.clone(), after.clone())) {
                    stack.push((event.op, std::mem::replace(&mut state, after)));
                    unlink(&mut next, &mut prev, call_at[event.op]);
                    unlink(&mut next, &mut prev, ret_at[event.op]);
                    cur = next[head];
                    continue;
                }
                taken.clear(event.op);
            }
            cur = next[cur];
        } else if event.time == u64::MAX {
            // Only operations with unknown outcomes are left: they need not have taken effect.
            return Search::Linearizable(steps);
        } else {
            // This operation had to be taken before anything after its return: undo the last choice.
            let Some((op, before)) = stack.pop() else { return Search::NotLinearizable(steps) };
            relink(&mut next, &mut prev, ret_at[op]);
            relink(&mut next, &mut prev, call_at[op]);
            taken.clear(op);
            state = before;
            cur = next[call_at[op]];
        }
    }
}

/// The shortest failing prefix: everything called by instant `t`, with operations that had not
/// returned by `t` treated as unknown. Prefixes of a linearizable history are linearizable, so
/// the first failing `t` is found by bisection over return times.
fn first_failure<M: Model>(
    model: &M,
    ops: &[Op<M::Input, M::Output>],
    budget: u64,
) -> (Verdict<M::Input, M::Output>, u64) {
    let mut returns: Vec<u64> = ops.iter().filter(|o| o.output.is_some()).map(|o| o.ret).collect();
    returns.sort_unstable();
    returns.dedup();
    let prefix = |t: u64| -> Vec<Op<M::Input, M::Output>> {
        ops.iter()
            .filter(|o| o.call <= t)
            .map(|o| {
                let mut o = o.clone();
                if o.output.is_some() && o.ret > t {
                    o.output = None;
                }
                o
            })
            .collect()
    };
    let mut steps = 0;
    let (mut lo, mut hi) = (0usize, returns.len().saturating_sub(1));
    // Invariant: the prefix at returns[hi] fails (the whole history failed).
    while lo < hi {
        let mid = (lo + hi) / 2;
        match search(model, &prefix(returns[mid]), budget) {
            Search::NotLinearizable(s) => {
                steps += s;
                hi = mid;
            }
            Search::Linearizable(s) => {
                steps += s;
                lo = mid + 1;
            }
            Search::OutOfBudget(s) => return (Verdict::Unknown { steps: steps + s }, steps + s),
        }
    }
    let t = returns.get(hi).copied().unwrap_or(0);
    // The culprit returned at `t`; several may: take the one called last (the newest answer).
    let Some(culprit) = ops.iter().filter(|o| o.output.is_some() && o.ret == t).max_by_key(|o| o.call).cloned() else {
        return (Verdict::Unknown { steps }, steps);
    };
    (Verdict::NotLinearizable { window: window(ops, &culprit), culprit }, steps)
}

/// Operations shown with a culprit: the eight that completed last before it was called, and all
/// that overlap it in time.
fn window<I: Clone, O: Clone>(ops: &[Op<I, O>], culprit: &Op<I, O>) -> Vec<Op<I, O>> {
    const BEFORE: usize = 8;
    let mut before: Vec<&Op<I, O>> = ops.iter().filter(|o| o.output.is_some() && o.ret < culprit.call).collect();
    before.sort_by_key(|o| o.ret);
    let earlier = before.len().saturating_sub(BEFORE);
    let mut shown: Vec<Op<I, O>> = before[earlier..].iter().map(|o| (*o).clone()).collect();
    shown.extend(ops.iter().filter(|o| o.call <= culprit.ret && o.end() >= culprit.call).cloned());
    shown.sort_by_key(|o| (o.call, o.ret));
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::{Input, Output, Register};

    fn write(client: u32, value: &str, version: Option<u64>, call: u64, ret: u64) -> Op<Input, Output> {
        Op {
            client,
            input: Input::Write(value.into()),
            output: version.map(|version| Output::Written { version }),
            call,
            ret,
        }
    }

    fn read(client: u32, seen: Option<(u64, &str)>, call: u64, ret: u64) -> Op<Input, Output> {
        Op { client, input: Input::Read, output: Some(Output::Read(seen.map(|(v, s)| (v, s.into())))), call, ret }
    }

    fn verdict(ops: &[Op<Input, Output>]) -> Verdict<Input, Output> {
        check(&Register, ops, DEFAULT_STEP_BUDGET).verdict
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert_eq!(verdict(&[]), Verdict::Linearizable);
    }

    #[test]
    fn sequential_writes_and_reads_are_linearizable() {
        let ops = [
            read(1, None, 0, 1),
            write(1, "a", Some(1), 2, 3),
            read(2, Some((1, "a")), 4, 5),
            write(2, "b", Some(2), 6, 7),
            read(1, Some((2, "b")), 8, 9),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // Both writes overlap the read: it may see either, and b may land first.
        let ops = [write(1, "a", Some(2), 0, 10), write(2, "b", Some(1), 1, 9), read(3, Some((1, "b")), 2, 8)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn operations_that_touch_count_as_concurrent() {
        // The read is called at the instant the write returns: it may still precede it.
        let ops = [write(1, "a", Some(1), 0, 5), read(2, None, 5, 6)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_caught() {
        // The first counterexample: A acknowledged, then B, then a read begun after B's
        // acknowledgement returns A.
        let ops = [
            write(1, "A", Some(1), 5_007_400, 5_012_800),
            write(2, "B", Some(2), 5_018_800, 5_024_000),
            read(3, Some((1, "A")), 5_027_300, 6_586_400),
        ];
        match verdict(&ops) {
            Verdict::NotLinearizable { culprit, window } => {
                assert_eq!(culprit.input, Input::Read);
                assert_eq!(culprit.call, 5_027_300);
                assert_eq!(window.len(), 3, "{window:?}");
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn a_value_going_back_is_caught() {
        // The second counterexample: B read, then a later read returns A again.
        let ops = [
            write(1, "A", Some(1), 0, 10),
            write(2, "B", Some(2), 20, 1_000),
            read(3, Some((2, "B")), 30, 900),
            read(4, Some((1, "A")), 950, 960),
        ];
        assert!(matches!(verdict(&ops), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn a_write_applied_twice_shows_as_a_skipped_version() {
        // "a" was acknowledged as version 1, but applied twice: the next write got version 3.
        let ops = [write(1, "a", Some(1), 0, 10), write(1, "b", Some(3), 20, 30)];
        match verdict(&ops) {
            Verdict::NotLinearizable { culprit, .. } => assert_eq!(culprit.input, Input::Write("b".into())),
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        // The first write's client gave up; it took effect long after (a read shows it), which is
        // allowed: it never returned.
        let late = [write(1, "a", None, 0, 5), read(2, None, 10, 11), read(2, Some((1, "a")), 100, 101)];
        assert_eq!(verdict(&late), Verdict::Linearizable);
        let never = [write(1, "a", None, 0, 5), write(2, "b", Some(1), 10, 11), read(2, Some((1, "b")), 12, 13)];
        assert_eq!(verdict(&never), Verdict::Linearizable);
        // But not before it was called.
        let early = [read(2, Some((1, "a")), 0, 1), write(1, "a", None, 2, 5)];
        assert!(matches!(verdict(&early), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn an_unknown_write_cannot_take_effect_twice() {
        let ops = [
            write(1, "a", None, 0, 5),
            read(2, Some((1, "a")), 10, 11),
            write(3, "b", Some(2), 12, 13),
            read(2, Some((3, "a")), 20, 21),
        ];
        assert!(matches!(verdict(&ops), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn the_culprit_is_the_first_answer_that_cannot_be_explained() {
        let mut ops = vec![write(1, "a", Some(1), 0, 10), write(1, "b", Some(2), 20, 30)];
        ops.push(read(2, Some((1, "a")), 40, 50)); // stale: the first failure
        for i in 0..20u64 {
            ops.push(read(3, Some((2, "b")), 60 + i * 10, 65 + i * 10));
        }
        match verdict(&ops) {
            Verdict::NotLinearizable { culprit, .. } => assert_eq!(culprit.call, 40),
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn a_search_past_its_budget_is_unknown_not_a_pass() {
        // Many concurrent unknown writes and an impossible read: a tiny budget cannot finish.
        let mut ops: Vec<Op<Input, Output>> =
            (0..12).map(|i| write(i, &format!("w{i}"), None, i as u64, 100)).collect();
        ops.push(read(99, Some((40, "nope")), 200, 201));
        assert!(matches!(check(&Register, &ops, 50).verdict, Verdict::Unknown { .. }));
        assert!(matches!(check(&Register, &ops, DEFAULT_STEP_BUDGET).verdict, Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn keys_are_judged_apart() {
        let ops = vec![
            ("x", write(1, "a", Some(1), 0, 10)),
            ("y", read(2, None, 20, 30)),
            ("y", write(2, "b", Some(1), 31, 32)),
            ("x", read(1, Some((1, "a")), 40, 50)),
        ];
        let outcomes = check_by_key(ops, |_| Register, DEFAULT_STEP_BUDGET);
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes.values().all(|o| o.verdict == Verdict::Linearizable));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A history produced by a real register with random overlaps: each operation takes
        /// effect at an instant inside its interval.
        fn history(plan: &[(bool, u64, u64)]) -> Vec<Op<Input, Output>> {
            // (is_write, lead, lag): the op takes effect at 10*i, called `lead` before, returns `lag` after.
            let mut state: Option<(u64, String)> = None;
            let mut ops = Vec::new();
            for (i, (is_write, lead, lag)) in plan.iter().enumerate() {
                let at = 10 * i as u64 + 100;
                let (call, ret) = (at - lead, at + lag);
                if *is_write {
                    let version = state.as_ref().map_or(1, |(v, _)| v + 1);
                    let value = format!("v{i}");
                    state = Some((version, value.clone()));
                    ops.push(Op {
                        client: i as u32,
                        input: Input::Write(value),
                        output: Some(Output::Written { version }),
                        call,
                        ret,
                    });
                } else {
                    ops.push(Op {
                        client: i as u32,
                        input: Input::Read,
                        output: Some(Output::Read(state.clone())),
                        call,
                        ret,
                    });
                }
            }
            ops
        }

        proptest! {
            #[test]
            fn histories_of_a_real_register_pass(plan in prop::collection::vec((any::<bool>(), 0u64..40, 0u64..40), 1..60)) {
                let ops = history(&plan);
                prop_assert_eq!(verdict(&ops), Verdict::Linearizable);
            }

            #[test]
            fn a_read_of_a_superseded_value_after_the_fact_fails(
                plan in prop::collection::vec((any::<bool>(), 0u64..5, 0u64..5), 4..40),
            ) {
                // Make the history end with: write x, write y (sequential, far apart), then a
                // read long after both that returns x.
                let mut ops = history(&plan);
                let version = ops.iter().filter(|o| matches!(o.input, Input::Write(_))).count() as u64;
                let base = 10_000;
                ops.push(Op { client: 90, input: Input::Write("x".into()), output: Some(Output::Written { version: version + 1 }), call: base, ret: base + 1 });
                ops.push(Op { client: 91, input: Input::Write("y".into()), output: Some(Output::Written { version: version + 2 }), call: base + 10, ret: base + 11 });
                ops.push(Op { client: 92, input: Input::Read, output: Some(Output::Read(Some((version + 1, "x".into())))), call: base + 20, ret: base + 21 });
                let culprit_call = base + 20;
                match verdict(&ops) {
                    Verdict::NotLinearizable { culprit, .. } => prop_assert_eq!(culprit.call, culprit_call),
                    other => prop_assert!(false, "expected a violation, got {:?}", other),
                }
            }
        }
    }
}
