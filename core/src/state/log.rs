//! Attempt logs: appended in chunks, bounded per attempt. When an attempt's log would pass
//! the cluster's `max_log_bytes_per_attempt` ([`crate::limits::Tunable`]), the oldest chunks are
//! dropped and counted, so a reader can show a marker where they were.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// Offset of the chunk's first byte in the attempt's whole log (dropped bytes included).
    pub offset: u64,
    pub at_ms: i64,
    pub text: String,
}

/// The kept tail of an attempt's log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttemptLog {
    pub chunks: VecDeque<LogChunk>,
    pub kept_bytes: u64,
    pub dropped_bytes: u64,
}

impl AttemptLog {
    /// Appends `text`, keeping at most `max_bytes` (whole chunks, the newest always); returns the
    /// bytes dropped to make room.
    pub(crate) fn append(&mut self, text: String, at_ms: i64, max_bytes: u32) -> u64 {
        let offset = self.dropped_bytes + self.kept_bytes;
        self.kept_bytes += text.len() as u64;
        self.chunks.push_back(LogChunk { offset, at_ms, text });
        let mut dropped = 0;
        while self.kept_bytes > u64::from(max_bytes) && self.chunks.len() > 1 {
            if let Some(old) = self.chunks.pop_front() {
                self.kept_bytes -= old.text.len() as u64;
                dropped += old.text.len() as u64;
            }
        }
        self.dropped_bytes += dropped;
        dropped
    }

    /// The kept text, preceded by a marker if anything was dropped.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.kept_bytes as usize + 64);
        if self.dropped_bytes > 0 {
            out.push_str(&format!("[... {} earlier bytes dropped ...]\n", self.dropped_bytes));
        }
        for chunk in &self.chunks {
            out.push_str(&chunk.text);
        }
        out
    }

    /// Total bytes ever appended: a follower's read position.
    pub fn end_offset(&self) -> u64 {
        self.dropped_bytes + self.kept_bytes
    }
}
