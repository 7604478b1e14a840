//! `writes`: workflow puts acknowledged (committed and applied) at `--concurrency`, each about
//! `--value-bytes` long, over 1,000 workflow ids in turn (each put a new version). The same
//! driver loads a baseline system through [`Writer`] (the harness's etcd), so both figures come
//! from one load generator in one run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use linkloom::Client;

use crate::drive::drive;
use crate::report::Report;
use crate::{ms, BenchError, Options, Plan, Scenario};

/// Workflow ids (and baseline keys) written in turn.
pub const KEYS: usize = 1_000;

/// One write of the `writes` scenario, numbered `i`.
pub trait Writer: Send + Sync + 'static {
    fn write(&self, i: usize) -> Pin<Box<dyn Future<Output = Result<(), BenchError>> + Send + 'static>>;
}

/// A Link Loom write: a workflow put through the SDK (with its idempotency key, as every SDK
/// call carries).
struct LoomWriter {
    client: Client,
    name: String,
    value_bytes: usize,
}

impl Writer for LoomWriter {
    fn write(&self, i: usize) -> Pin<Box<dyn Future<Output = Result<(), BenchError>> + Send + 'static>> {
        let head = format!(
            "id: {}-{}\ntasks:\n  - {{id: t, type: worker, queue: bench-never}}\ndescription: \"",
            self.name,
            i % KEYS
        );
        let pad = self.value_bytes.saturating_sub(head.len() + 2);
        let yaml = format!("{head}{}\"\n", "x".repeat(pad));
        let client = self.client.clone();
        Box::pin(async move {
            client.put_workflow_yaml(&yaml).await?;
            Ok(())
        })
    }
}

pub(crate) async fn run(client: &Client, name: &str, plan: &Plan) -> Result<Report, BenchError> {
    let writer = LoomWriter { client: client.clone(), name: name.to_string(), value_bytes: plan.options.value_bytes };
    measure(Arc::new(writer), plan).await
}

/// Runs the `writes` scenario's load against another system's `writer`: the baseline.
pub async fn writes_with(writer: Arc<dyn Writer>, options: &Options) -> Result<Report, BenchError> {
    measure(writer, &Plan::new(Scenario::Writes, options)?).await
}

async fn measure(writer: Arc<dyn Writer>, plan: &Plan) -> Result<Report, BenchError> {
    let measured = drive(plan, plan.concurrency, move |i| {
        let write = writer.write(i);
        async move {
            let started = Instant::now();
            write.await?;
            Ok(ms(started.elapsed()))
        }
    })
    .await?;
    Ok(Report::new(Scenario::Writes, plan.concurrency, measured))
}
