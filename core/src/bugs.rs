//! Deliberate bugs, for proving that the simulation's invariant checkers catch what they claim
//! to. Compiled in only with the `bug-injection` feature (which only the simulator enables);
//! without it [`active`] is a constant `false` and every hook disappears.
//!
//! This is the one place `apply` reads anything but the state and the command: a process-wide
//! switch that a simulation sets before it starts and never changes while it runs.

/// A guarantee the simulator can break on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// A scheduled tick fired twice creates a second execution instead of being a no-op.
    CronDuplicate,
    /// A completion for an attempt whose lease was lost is accepted.
    LateCompletion,
    /// Retryable failures are retried regardless of `max_attempts`.
    IgnoreRetryLimit,
    /// An event sent again starts its workflows again instead of answering the first outcome.
    EventDuplicate,
}

impl Bug {
    const fn bit(self) -> u32 {
        match self {
            Bug::CronDuplicate => 1,
            Bug::LateCompletion => 2,
            Bug::IgnoreRetryLimit => 4,
            Bug::EventDuplicate => 8,
        }
    }
}

#[cfg(feature = "bug-injection")]
static ACTIVE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Whether `bug` is switched on.
#[inline]
pub fn active(bug: Bug) -> bool {
    #[cfg(feature = "bug-injection")]
    {
        ACTIVE.load(std::sync::atomic::Ordering::Relaxed) & bug.bit() != 0
    }
    #[cfg(not(feature = "bug-injection"))]
    {
        let _ = bug.bit();
        false
    }
}

/// Switches exactly `bugs` on (the simulator, before a run).
#[cfg(feature = "bug-injection")]
pub fn set_active(bugs: &[Bug]) {
    let bits = bugs.iter().fold(0, |acc, b| acc | b.bit());
    ACTIVE.store(bits, std::sync::atomic::Ordering::Relaxed);
}
