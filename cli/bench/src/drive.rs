//! The closed-loop load driver every counted scenario uses: `concurrency` lanes, each starting
//! its next operation when the previous one ends, until the count is reached or the time is up.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::report::Measured;
use crate::{BenchError, Plan};

/// Warm-up operations get indexes counted down from the top, so a scenario can tell them apart.
pub(crate) fn is_warmup(i: usize) -> bool {
    i > usize::MAX / 2
}

/// Runs `one(i)` `plan.warmup` times unmeasured, then for i in 0.. on `concurrency` lanes until
/// `plan.count` are done or `plan.duration` has passed; collects the latencies they return.
///
/// A failed operation is counted and the lane goes on (a benchmark under load or faults must
/// say how much failed, not stop at the first refusal); a run in which everything failed is an
/// error that carries the first failure.
pub(crate) async fn drive<F, Fut>(plan: &Plan, concurrency: usize, one: F) -> Result<Measured, BenchError>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<f64, BenchError>> + Send + 'static,
{
    let one = Arc::new(one);
    for i in 0..plan.warmup {
        one(usize::MAX - i).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = plan.duration.map(|d| Instant::now() + d);
    let total = plan.count;
    let started = Instant::now();
    let mut lanes = Vec::new();
    for _ in 0..concurrency {
        let (one, next) = (one.clone(), next.clone());
        lanes.push(tokio::spawn(async move {
            let mut lane = Measured::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if deadline.map_or(i >= total, |d| Instant::now() >= d) {
                    return lane;
                }
                match one(i).await {
                    Ok(sample) => lane.samples_ms.push(sample),
                    Err(e) => {
                        lane.errors += 1;
                        lane.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }));
    }
    let mut measured = Measured::default();
    for lane in lanes {
        let lane = lane.await.map_err(|e| BenchError::Failed(format!("a load lane died: {e}")))?;
        measured.samples_ms.extend(lane.samples_ms);
        measured.errors += lane.errors;
        if measured.first_error.is_none() {
            measured.first_error = lane.first_error;
        }
    }
    measured.elapsed = started.elapsed();
    if measured.samples_ms.is_empty() && measured.errors > 0 {
        return Err(BenchError::Failed(format!(
            "every operation failed ({}); the first: {}",
            measured.errors,
            measured.first_error.unwrap_or_default()
        )));
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, Scenario};

    fn plan(count: usize, warmup: usize) -> Plan {
        let options = Options { count: Some(count), warmup, ..Options::default() };
        Plan::new(Scenario::Writes, &options).unwrap()
    }

    #[tokio::test]
    async fn drives_exactly_the_count_after_unmeasured_warmups() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let measured = drive(&plan(10, 2), 3, move |i| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(i);
                Ok(1.0)
            }
        })
        .await
        .unwrap();
        assert_eq!(measured.samples_ms.len(), 10);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().filter(|i| is_warmup(**i)).count(), 2);
        let mut measured_ids: Vec<usize> = seen.iter().copied().filter(|i| !is_warmup(*i)).collect();
        measured_ids.sort();
        assert_eq!(measured_ids, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn failures_are_counted_and_all_failing_is_an_error() {
        let measured = drive(&plan(6, 0), 2, |i| async move {
            if i % 3 == 0 {
                Err(BenchError::Failed(format!("op {i} refused")))
            } else {
                Ok(2.0)
            }
        })
        .await
        .unwrap();
        assert_eq!((measured.samples_ms.len(), measured.errors), (4, 2));
        assert!(measured.first_error.unwrap().contains("refused"));
        let all_bad = drive(&plan(3, 0), 1, |_| async { Err::<f64, _>(BenchError::Failed("no".into())) }).await;
        assert!(all_bad.unwrap_err().to_string().contains("every operation failed (3)"));
    }
}
