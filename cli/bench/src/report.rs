//! What a run measured, in one shape for every scenario and both programs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::Scenario;

/// The figures of one run. Latencies in milliseconds, nearest-rank percentiles (absent, `null`
/// in JSON, for a scenario that measures only a rate); `rate_per_s` is measured operations over
/// the measured window. `extra` holds what only some scenarios have
/// (e.g. worker-chain's trigger -> first task, worker-throughput's tasks per second).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub measures: String,
    pub count: usize,
    pub errors: u64,
    /// The first error, when there were any: what to look at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub concurrency: usize,
    pub elapsed_s: f64,
    pub rate_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, f64>,
}

/// Latency samples of one run, how long the measured window was, and what failed in it.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    pub samples_ms: Vec<f64>,
    pub elapsed: Duration,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Report {
    pub(crate) fn new(scenario: Scenario, concurrency: usize, measured: Measured) -> Report {
        let mut samples = measured.samples_ms;
        samples.sort_by(|a, b| a.total_cmp(b));
        let elapsed = measured.elapsed.as_secs_f64();
        let pick = |q: f64| (!samples.is_empty()).then(|| round(percentile(&samples, q)));
        Report {
            scenario: scenario.name().into(),
            measures: scenario.measures().into(),
            count: samples.len(),
            errors: measured.errors,
            first_error: measured.first_error,
            concurrency,
            elapsed_s: round(elapsed),
            rate_per_s: round(samples.len() as f64 / elapsed.max(1e-9)),
            p50_ms: pick(0.5),
            p90_ms: pick(0.9),
            p99_ms: pick(0.99),
            p999_ms: pick(0.999),
            max_ms: pick(1.0),
            extra: BTreeMap::new(),
        }
    }

    /// A report of a rate alone: `count` operations in `elapsed`, no latency samples.
    pub(crate) fn rate_only(scenario: Scenario, concurrency: usize, count: usize, elapsed: Duration) -> Report {
        let mut report = Report::new(scenario, concurrency, Measured { elapsed, ..Measured::default() });
        report.count = count;
        report.rate_per_s = round(count as f64 / elapsed.as_secs_f64().max(1e-9));
        report
    }

    /// Adds a figure beyond the common ones (rounded like them).
    pub fn with(mut self, key: &str, value: f64) -> Report {
        self.extra.insert(key.to_string(), round(value));
        self
    }

    /// One line of `key=value` figures, for logs and the harness's output.
    pub fn line(&self) -> String {
        let mut line =
            format!("{}: count={} errors={} rate_per_s={:.1}", self.scenario, self.count, self.errors, self.rate_per_s);
        let latencies = [
            ("p50", self.p50_ms),
            ("p90", self.p90_ms),
            ("p99", self.p99_ms),
            ("p999", self.p999_ms),
            ("max", self.max_ms),
        ];
        for (name, value) in latencies {
            if let Some(v) = value {
                line.push_str(&format!(" {name}_ms={v:.2}"));
            }
        }
        for (k, v) in &self.extra {
            line.push_str(&format!(" {k}={v}"));
        }
        line
    }
}

/// The nearest-rank percentile `q` (0..=1) of ascending `sorted` samples; 0 for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let samples: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), 500.0);
        assert_eq!(percentile(&samples, 0.99), 990.0);
        assert_eq!(percentile(&samples, 0.999), 999.0);
        assert_eq!(percentile(&samples, 1.0), 1000.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn reports_sort_their_samples_and_count_the_window() {
        let measured = Measured {
            samples_ms: vec![3.0, 1.0, 2.0, 4.0],
            elapsed: Duration::from_secs(2),
            errors: 1,
            first_error: Some("refused".into()),
        };
        let report = Report::new(Scenario::Writes, 4, measured).with("rss_mib", 12.3456);
        assert_eq!((report.count, report.rate_per_s, report.p50_ms, report.max_ms), (4, 2.0, Some(2.0), Some(4.0)));
        assert_eq!(report.extra["rss_mib"], 12.346);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rss_mib"], 12.346, "extra figures sit beside the common ones: {json}");
        assert!(report.line().starts_with("writes: count=4 errors=1"), "{}", report.line());
    }

    #[test]
    fn a_rate_alone_has_no_latencies() {
        let report = Report::rate_only(Scenario::WorkerThroughput, 8, 500, Duration::from_secs(10));
        assert_eq!((report.count, report.rate_per_s, report.p99_ms), (500, 50.0, None));
        assert_eq!(serde_json::to_value(&report).unwrap()["p99_ms"], serde_json::Value::Null);
        assert!(!report.line().contains("p99"), "{}", report.line());
    }
}
