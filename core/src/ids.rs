//! Identifiers: the slug rule for user-chosen ids, and the ids the system derives.
//!
//! A scheduled execution's id is a pure function of its workflow and its tick, which is what
//! makes a tick fired twice (say, across a leader change) create one execution.

use chrono::{TimeZone, Utc};

/// Raft node id.
pub type NodeId = u64;

/// The slug rule, for error messages.
pub const SLUG_RULE: &str =
    "lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters";

/// True if `s` matches `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn is_slug(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// The id of the execution of `workflow_id` scheduled for `scheduled_at_ms`:
/// `daily-report:20260101T060000Z` (milliseconds appended when not zero).
pub fn scheduled_execution_id(workflow_id: &str, scheduled_at_ms: i64) -> String {
    format!("{workflow_id}:{}", compact_time(scheduled_at_ms))
}

/// The id of a manually triggered execution: time plus a random suffix chosen by the proposer.
pub fn manual_execution_id(workflow_id: &str, created_at_ms: i64, random: u32) -> String {
    format!("{workflow_id}:{}-{random:08x}", compact_time(created_at_ms))
}

fn compact_time(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) if ms % 1000 == 0 => t.format("%Y%m%dT%H%M%SZ").to_string(),
        Some(t) => t.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        None => format!("t{ms}"),
    }
}

/// Formats Unix milliseconds as RFC 3339 (UTC), for APIs and templates.
pub fn rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rule() {
        for ok in ["a", "daily-report", "0x", "a_b-c", &"a".repeat(63)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a.b", "a b", &"a".repeat(64), "é"] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn scheduled_ids_are_deterministic_and_readable() {
        let t = 1_767_247_200_000; // 2026-01-01T06:00:00Z
        assert_eq!(scheduled_execution_id("daily", t), "daily:20260101T060000Z");
        assert_eq!(scheduled_execution_id("daily", t), scheduled_execution_id("daily", t));
        assert_eq!(scheduled_execution_id("daily", t + 5), "daily:20260101T060000.005Z");
    }
}
