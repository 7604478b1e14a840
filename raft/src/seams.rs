//! The seams through which a node meets time and chance: the wall clock and randomness. Raft,
//! the engine and the API take both from here, never from the machine directly, so that the
//! simulation can drive a whole node on virtual time and a seeded generator and replay it.
//!
//! Commands carry the times and random numbers read here (the state machine reads neither).
//! openraft draws its election timeouts from the same per-thread generator (`runtime.rs`), which
//! the simulation seeds per host.

use rand::RngCore;

/// A source of wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// A source of random numbers (ids, jitter, tokens of one attempt). Not for secrets that must
/// resist prediction across restarts: API token secrets come from the operating system.
pub trait Entropy: Send + Sync + 'static {
    fn next_u32(&self) -> u32;
    fn next_u64(&self) -> u64;
    fn fill_bytes(&self, dest: &mut [u8]);
}

/// The generator of the thread that asks: seeded from the operating system in production, and by
/// the simulation per host (see [`crate::runtime::seed_thread_rng`]), so a run replays.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadEntropy;

impl Entropy for ThreadEntropy {
    fn next_u32(&self) -> u32 {
        crate::runtime::ThreadRng.next_u32()
    }
    fn next_u64(&self) -> u64 {
        crate::runtime::ThreadRng.next_u64()
    }
    fn fill_bytes(&self, dest: &mut [u8]) {
        crate::runtime::ThreadRng.fill_bytes(dest)
    }
}

/// An [`Entropy`] as a `rand` generator, for `rand::Rng`'s helpers (ranges, typed values).
pub struct Draw<'a>(pub &'a dyn Entropy);

impl RngCore for Draw<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}
