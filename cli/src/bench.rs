//! `loom bench SCENARIO`: the benchmark suite (`linkloom-bench`) against the cluster the CLI is
//! pointed at, like `nats bench`. The scenarios, what each measures and their options live in
//! that crate, shared with the harness's `loom-bench`, which starts its own cluster first.

use linkloom::Client;
use linkloom_bench::{BenchError, Options, Report, Scenario};

use crate::output::{Out, Table};
use crate::Failure;

pub async fn run(client: &Client, scenario: Scenario, options: &Options, out: Out) -> Result<i32, Failure> {
    let report = linkloom_bench::run(scenario, client, options, None).await.map_err(|e| match e {
        BenchError::Usage(m) => Failure::usage(m),
        BenchError::Api(e) => e.into(),
        BenchError::Failed(m) => Failure::failed(m),
    })?;
    render(&report, out);
    Ok(if report.errors > 0 { 1 } else { 0 })
}

fn render(report: &Report, out: Out) {
    if out.document(report) {
        return;
    }
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let mut table =
        Table::new(&["SCENARIO", "COUNT", "ERRORS", "RATE/S", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS"]);
    table.row(vec![
        report.scenario.clone(),
        report.count.to_string(),
        report.errors.to_string(),
        format!("{:.1}", report.rate_per_s),
        ms(report.p50_ms),
        ms(report.p90_ms),
        ms(report.p99_ms),
        ms(report.p999_ms),
        ms(report.max_ms),
    ]);
    print!("{}", table.render());
    for (key, value) in &report.extra {
        println!("{key}: {value}");
    }
    println!("measured: {}", report.measures);
    if let Some(e) = &report.first_error {
        println!("first error: {e}");
    }
}
