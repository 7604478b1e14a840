//! How answers are shown: aligned tables with colored statuses, relative times and human
//! durations for people; exactly one JSON or YAML document for scripts.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "yaml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Output settings for one run.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub format: Format,
    pub color: bool,
}

impl Out {
    /// Colors only on a terminal, and never with `--no-color` or `NO_COLOR` set.
    pub fn new(format: Format, no_color: bool) -> Out {
        let color = !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Out { format, color }
    }

    /// Prints `value` as the one document of a JSON or YAML run; false for tables (the caller
    /// draws its own).
    pub fn document<T: serde::Serialize + ?Sized>(&self, value: &T) -> bool {
        match self.format {
            Format::Json => {
                println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
                true
            }
            Format::Yaml => {
                print!("{}", serde_yaml::to_string(value).unwrap_or_default());
                true
            }
            Format::Table => false,
        }
    }

    /// A status word, colored by meaning.
    pub fn status(&self, status: &str) -> String {
        if !self.color {
            return status.to_string();
        }
        let code = match status {
            "succeeded" | "leader" | "ready" | "true" => "32",
            "failed" | "timed_out" | "lost" | "down" => "31",
            "running" | "retrying" | "queued" | "pending" | "candidate" => "33",
            "cancelled" | "skipped" | "released" => "90",
            _ => return status.to_string(),
        };
        format!("\x1b[{code}m{status}\x1b[0m")
    }

    pub fn dim(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// A table: headers and rows of cells, aligned on the visible width (colors excluded).
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| visible_width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(visible_width(cell));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                text.push_str(cell);
                if i + 1 < columns {
                    text.push_str(&" ".repeat(widths[i] - visible_width(cell) + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.headers, &mut out);
        for row in &self.rows {
            line(row, &mut out);
        }
        out
    }
}

/// Characters a terminal shows (ANSI color sequences take none).
fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// `3m ago`, `2h ago`, `in 5s`; `-` when absent or unreadable.
pub fn ago(time: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(then) = time.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return "-".into();
    };
    let seconds = (now - then.with_timezone(&Utc)).num_seconds();
    let (amount, future) = (seconds.unsigned_abs(), seconds < 0);
    let text = if amount < 60 {
        format!("{amount}s")
    } else if amount < 3600 {
        format!("{}m", amount / 60)
    } else if amount < 86_400 {
        format!("{}h", amount / 3600)
    } else {
        format!("{}d", amount / 86_400)
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Milliseconds as `850ms`, `1.2s`, `3m4s`, `2h5m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// The time between two RFC 3339 times (`end` absent: until `now`).
pub fn between(start: Option<&str>, end: Option<&str>, now: DateTime<Utc>) -> Option<i64> {
    let parse = |t: Option<&str>| t.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    let start = parse(start)?;
    let end = parse(end).unwrap_or(now);
    Some((end - start).num_milliseconds())
}

/// A cell for an optional value: `-` when absent.
pub fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A cell for a JSON value: strings bare, null as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_what_is_visible() {
        let out = Out { format: Format::Table, color: true };
        let mut table = Table::new(&["ID", "STATUS", "AGE"]);
        table.row(vec!["nightly:1".into(), out.status("succeeded"), "3m ago".into()]);
        table.row(vec!["a".into(), out.status("failed"), "-".into()]);
        let plain: String = table.render().replace("\x1b[32m", "").replace("\x1b[31m", "").replace("\x1b[0m", "");
        assert_eq!(plain, "ID         STATUS     AGE\nnightly:1  succeeded  3m ago\na          failed     -\n");
    }

    #[test]
    fn times_and_durations_read_like_a_person_would_say_them() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(ago(Some("2026-11-26T11:57:00Z"), now), "3m ago");
        assert_eq!(ago(Some("2026-11-26T09:00:00Z"), now), "3h ago");
        assert_eq!(ago(Some("2026-11-26T12:00:05Z"), now), "in 5s");
        assert_eq!(ago(None, now), "-");
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(1234), "1.2s");
        assert_eq!(duration_ms(184_000), "3m4s");
        assert_eq!(duration_ms(7_500_000), "2h5m");
        assert_eq!(between(Some("2026-11-26T11:59:58.500Z"), Some("2026-11-26T12:00:00Z"), now), Some(1500));
    }
}
