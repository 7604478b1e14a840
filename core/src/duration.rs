//! Durations as users write them (`500ms`, `30s`, `5m`, `2h`, `1h30m`) and as the state machine
//! stores them (whole milliseconds).
//!
//! In human-readable formats (YAML, JSON) a [`DurationMs`] reads and writes the text form; in the
//! binary codec it is a plain `u64`, so stored entries stay compact and stable.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationMs(pub u64);

/// Longest duration accepted anywhere in a spec: 30 days.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3_600_000;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration `{0}`: expected a number followed by ms, s, m, h or d, e.g. 500ms, 30s, 5m, 1h30m")]
    Syntax(String),
    #[error("duration `{0}` is longer than the 30 day limit")]
    TooLong(String),
}

impl schemars::JsonSchema for DurationMs {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration of at most 30 days: a number and a unit (`ms`, `s`, `m`, `h`, `d`), or milliseconds as an integer. Sums such as `1h30m` are accepted too; the pattern shows the one-unit form.",
            "oneOf": [
                {
                    "type": "string",
                    "pattern": "^([0-9]{1,7}ms|[0-9]{1,6}s|[0-9]{1,4}m|[0-9]{1,2}h|([0-9]|[12][0-9]|30)d)$",
                    "examples": ["30s", "5m"],
                },
                {"type": "integer", "minimum": 0, "maximum": MAX_DURATION_MS},
            ],
        })
    }
}

impl DurationMs {
    pub const fn from_secs(secs: u64) -> Self {
        DurationMs(secs * 1000)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

impl FromStr for DurationMs {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        let syntax = || DurationError::Syntax(text.to_string());
        let bytes = text.as_bytes();
        let mut total_ms: u64 = 0;
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(syntax());
            }
            let number: u64 = text[start..i].parse().map_err(|_| syntax())?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit_ms = match &text[unit_start..i] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(syntax()),
            };
            let part = number.checked_mul(unit_ms).ok_or_else(|| DurationError::TooLong(text.into()))?;
            total_ms = total_ms.checked_add(part).ok_or_else(|| DurationError::TooLong(text.into()))?;
        }
        if total_ms > MAX_DURATION_MS {
            return Err(DurationError::TooLong(text.to_string()));
        }
        Ok(DurationMs(total_ms))
    }
}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut secs = ms / 1000;
        let hours = secs / 3600;
        secs %= 3600;
        let minutes = secs / 60;
        secs %= 60;
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        if secs > 0 {
            write!(f, "{secs}s")?;
        }
        Ok(())
    }
}

impl Serialize for DurationMs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = DurationMs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 30s, 5m or 2h")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationMs, E> {
                v.parse().map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(TextVisitor)
        } else {
            u64::deserialize(deserializer).map(DurationMs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!("500ms".parse(), Ok(DurationMs(500)));
        assert_eq!("30s".parse(), Ok(DurationMs(30_000)));
        assert_eq!("5m".parse(), Ok(DurationMs(300_000)));
        assert_eq!("2h".parse(), Ok(DurationMs(7_200_000)));
        assert_eq!("1h30m".parse(), Ok(DurationMs(5_400_000)));
    }

    #[test]
    fn rejects_bad_text_with_the_text_in_the_message() {
        let err = "5 minutes".parse::<DurationMs>().unwrap_err();
        assert!(err.to_string().contains("5 minutes"), "{err}");
        assert!("".parse::<DurationMs>().is_err());
        assert!("m5".parse::<DurationMs>().is_err());
        assert!("31d".parse::<DurationMs>().is_err());
        assert!("99999999999999999999s".parse::<DurationMs>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["500ms", "30s", "5m", "2h", "1h30m", "1h1m1s", "1500ms"] {
            let d: DurationMs = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
        }
    }
}
