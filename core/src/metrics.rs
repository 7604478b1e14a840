//! Counters and histograms, and their Prometheus text form.
//!
//! Why here and not a metrics crate: every crate that measures something (raft, actors, api)
//! depends on core, and the simulation runs several nodes in one process, so measurements must
//! belong to a node rather than to a process-wide registry. These are plain values a node owns and
//! renders at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds in seconds for latencies from sub-millisecond to a minute.
pub const LATENCY_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// A histogram of durations with fixed buckets ([`LATENCY_BUCKETS`]).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    pub fn observe_ms(&self, ms: i64) {
        self.observe(Duration::from_millis(ms.max(0) as u64));
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// A consistent-enough copy for rendering: cumulative bucket counts, count, sum in seconds.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0u64; LATENCY_BUCKETS.len()];
        let mut running = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            running += bucket.load(Ordering::Relaxed);
            cumulative[i] = running;
        }
        let count = self.count.load(Ordering::Relaxed).max(running);
        HistogramSnapshot { cumulative, count, sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub cumulative: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

/// Builds a Prometheus text exposition (format 0.0.4): one `# HELP`/`# TYPE` per family, then
/// its samples. Label values are escaped.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    families: std::collections::BTreeSet<String>,
}

pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        if self.families.insert(name.to_string()) {
            let _ = writeln!(self.text, "# HELP {name} {help}");
            let _ = writeln!(self.text, "# TYPE {name} {kind}");
        }
    }

    fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: Labels<'_>, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, labels, value as f64);
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: Labels<'_>, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, labels, value);
    }

    /// A histogram family member (`name` without the `_seconds` suffix rules: pass the full name).
    pub fn histogram(&mut self, name: &str, help: &str, labels: Labels<'_>, h: &HistogramSnapshot) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(h.cumulative) {
            let le = format_value(*bound);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count as f64);
        }
        let mut with_inf: Vec<(&str, &str)> = labels.to_vec();
        with_inf.push(("le", "+Inf"));
        self.sample(&bucket, &with_inf, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(120));
        let mut out = Exposition::new();
        out.histogram("loom_x_seconds", "X.", &[("route", "/a\"b")], &h.snapshot());
        out.counter("loom_y_total", "Y.", &[], 7);
        let text = out.finish();
        assert!(text.starts_with("# HELP loom_x_seconds X.\n# TYPE loom_x_seconds histogram\n"), "{text}");
        assert!(text.contains("loom_x_seconds_bucket{route=\"/a\\\"b\",le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("loom_x_seconds_bucket{route=\"/a\\\"b\",le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("loom_x_seconds_bucket{route=\"/a\\\"b\",le=\"60\"} 2\n"), "{text}");
        assert!(text.contains("loom_x_seconds_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("loom_x_seconds_count{route=\"/a\\\"b\"} 3\n"), "{text}");
        assert!(text.contains("loom_x_seconds_sum{route=\"/a\\\"b\"} 120.0033\n"), "{text}");
        assert!(text.ends_with("# TYPE loom_y_total counter\nloom_y_total 7\n"), "{text}");
    }
}
