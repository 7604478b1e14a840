//! How much task output a node puts through Raft.
//!
//! Task log lines are replicated like every other change. That is what lets any node serve an
//! attempt's log, keeps it when the node that ran the attempt is lost, and orders it with the
//! attempt's result (docs/architecture.md, "Task logs"). The cost is that log bytes share the
//! log, the fsyncs and the followers' links with every other workflow's commits. Measured
//! before this budget existed, 24 shell attempts printing 15 MB each cut other clients' write
//! throughput by 38 % and raised their p99.9 from 38 to 381 ms.
//!
//! So each node has one budget for the output of all the attempts it runs ([`LogBudget`], a
//! token bucket: `LOOM_SHELL_LOG_KB_PER_SEC`, a burst of four seconds' worth). An attempt whose
//! output finds the budget spent keeps up to [`MAX_PENDING_BYTES`] waiting ([`LogShaper`]).
//! Beyond that, its lines are dropped and counted, and the next append starts with a marker
//! saying how many bytes are missing. The task itself is never slowed or failed for talking.

use std::sync::Mutex;

use linkloom_core::limits;

/// Output an attempt holds while the node's budget is spent; past it lines are dropped.
pub(crate) const MAX_PENDING_BYTES: usize = limits::MAX_LOG_APPEND_BYTES / 2;

/// The node-wide token bucket for task output appended to logs.
pub(crate) struct LogBudget {
    bytes_per_sec: u64,
    burst: i64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Bytes that may be appended now (negative after a final flush that was let through).
    tokens: i64,
    last_ms: Option<i64>,
}

impl LogBudget {
    /// A budget of `bytes_per_sec`, starting full; the burst is four seconds' worth (at least one
    /// pending attempt's worth, so a waiting buffer can always go through once the bucket is full).
    pub(crate) fn new(bytes_per_sec: u64) -> Self {
        let burst = bytes_per_sec.saturating_mul(4).max(MAX_PENDING_BYTES as u64 * 2);
        let burst = i64::try_from(burst).unwrap_or(i64::MAX);
        LogBudget { bytes_per_sec, burst, bucket: Mutex::new(Bucket { tokens: burst, last_ms: None }) }
    }

    /// Takes `bytes` if the bucket holds them (or, with `always`, regardless: the bucket goes
    /// into debt that later appends wait out). Answers whether it took them.
    pub(crate) fn take(&self, bytes: usize, now_ms: i64, always: bool) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = bucket.last_ms.map_or(0, |last| (now_ms - last).max(0));
        let refill = i64::try_from(self.bytes_per_sec.saturating_mul(elapsed as u64) / 1000).unwrap_or(i64::MAX);
        bucket.tokens = bucket.tokens.saturating_add(refill).min(self.burst);
        bucket.last_ms = Some(bucket.last_ms.map_or(now_ms, |last| last.max(now_ms)));
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if always || bucket.tokens >= bytes {
            bucket.tokens = bucket.tokens.saturating_sub(bytes);
            true
        } else {
            false
        }
    }
}

/// One attempt's output on its way to the attempt's log: buffered, held while the node's
/// budget is spent, dropped (and counted) past [`MAX_PENDING_BYTES`].
#[derive(Debug, Default)]
pub(crate) struct LogShaper {
    buffer: String,
    /// Bytes dropped since the last append, told in the next one.
    dropped: u64,
}

impl LogShaper {
    /// Adds one line; answers the bytes dropped (0 if it was kept).
    pub(crate) fn push(&mut self, line: &str) -> u64 {
        let room = MAX_PENDING_BYTES - self.buffer.len().min(MAX_PENDING_BYTES);
        // A line is kept whole, or dropped whole; only a line longer than what an attempt may
        // hold is kept in part (its head), into an empty buffer.
        let mut keep = if line.len() <= room {
            line.len()
        } else if self.buffer.is_empty() {
            room
        } else {
            0
        };
        while !line.is_char_boundary(keep) {
            keep -= 1;
        }
        self.buffer.push_str(&line[..keep]);
        let dropped = (line.len() - keep) as u64;
        self.dropped += dropped;
        dropped
    }

    /// Whether enough is buffered to append without waiting for the next flush interval.
    pub(crate) fn is_full(&self) -> bool {
        self.buffer.len() >= MAX_PENDING_BYTES / 2
    }

    /// The text to append now, if any and the budget allows it; `last` (the attempt ended)
    /// appends whatever is held regardless of the budget, so no output waits past the attempt.
    pub(crate) fn take(&mut self, budget: &LogBudget, now_ms: i64, last: bool) -> Option<String> {
        if self.buffer.is_empty() && self.dropped == 0 {
            return None;
        }
        let marker = match self.dropped {
            0 => String::new(),
            n => format!("[... {n} bytes of output dropped: this node's task log rate was exceeded ...]\n"),
        };
        if !budget.take(marker.len() + self.buffer.len(), now_ms, last) {
            return None;
        }
        self.dropped = 0;
        Some(marker + &std::mem::take(&mut self.buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_at_its_rate_up_to_its_burst() {
        // 64 KiB/s: a burst of 256 KiB.
        let budget = LogBudget::new(64 * 1024);
        assert!(budget.take(200 * 1024, 0, false));
        assert!(!budget.take(100 * 1024, 0, false), "only 56 KiB are left");
        assert!(budget.take(56 * 1024, 0, false));
        assert!(!budget.take(1, 0, false));
        // Half a second later: 32 KiB more.
        assert!(!budget.take(33 * 1024, 500, false));
        assert!(budget.take(32 * 1024, 500, false));
        // An hour later the bucket holds its burst, not an hour's worth.
        assert!(!budget.take(257 * 1024, 3_600_000, false));
        assert!(budget.take(256 * 1024, 3_600_000, false));
        // A last flush goes through in debt, which later appends wait out.
        assert!(budget.take(10 * 1024, 3_600_000, true));
        assert!(!budget.take(1, 3_600_100, false), "6.4 KiB refilled, 10 KiB owed");
        assert!(budget.take(1, 3_600_200, false));
    }

    #[test]
    fn a_chatty_attempt_waits_then_loses_lines_and_says_how_many() {
        let budget = LogBudget::new(1024);
        // Spend the burst.
        assert!(budget.take(64 * 1024, 0, false));
        let mut shaper = LogShaper::default();
        let line = "x".repeat(99) + "\n";
        let mut dropped = 0;
        for _ in 0..400 {
            dropped += shaper.push(&line);
        }
        // 32 KiB is held (327 lines), the rest dropped and counted.
        assert_eq!(dropped, 73 * 100);
        assert!(shaper.is_full());
        assert_eq!(shaper.take(&budget, 1_000, false), None, "the budget is spent");
        // Once the budget allows, the held text goes out behind a marker naming the loss.
        let text = shaper.take(&budget, 40_000, false).expect("40 KiB refilled");
        assert!(text.starts_with("[... 7300 bytes of output dropped"), "{text:.80}");
        assert_eq!(text.matches(&line).count(), 327);
        assert_eq!(shaper.take(&budget, 40_000, false), None, "nothing left");
        // A last flush is never held back.
        shaper.push(&line);
        assert_eq!(shaper.take(&budget, 40_000, true).as_deref(), Some(line.as_str()));
        // One line longer than an attempt may hold keeps its head.
        let long = "é".repeat(MAX_PENDING_BYTES);
        assert_eq!(shaper.push(&long), (long.len() - MAX_PENDING_BYTES) as u64);
        let text = shaper.take(&budget, 40_000, true).expect("a last flush");
        assert!(text.ends_with(&"é".repeat(MAX_PENDING_BYTES / 2)), "cut on a character boundary");
    }
}
