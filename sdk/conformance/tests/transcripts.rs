//! The Rust SDK against every transcript, as README §2 says each SDK runs them: a fake node per
//! script, a worker with the conformance handler, a graceful stop, and the node's verdict.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkloom::{Client, Worker};
use linkloom_conformance::fake::{FakeNode, Script};
use linkloom_conformance::program::{handler, Events};
use serde_json::Value;

async fn run_script(script: Script) -> Result<(), String> {
    let node = FakeNode::start(script.clone()).await.map_err(|e| e.to_string())?;
    let client = Client::builder().server(&node.url).build().map_err(|e| e.to_string())?;
    let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = lines.clone();
    let events: Events = Arc::new(move |line| sink.lock().unwrap_or_else(|p| p.into_inner()).push(line));
    let mut builder = Worker::builder(client)
        .id(script.worker.id.clone())
        .concurrency(script.worker.concurrency)
        .shutdown_grace(Duration::from_millis(script.worker.grace_ms));
    for queue in &script.worker.queues {
        builder = builder.handle(queue.clone(), handler(events.clone()));
    }
    let worker = builder.build().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    let start = Instant::now();
    let deadline = start + Duration::from_millis(script.timeout_ms);
    let shutdown_at = script.shutdown_after_ms.map(|ms| start + Duration::from_millis(ms));
    let mut stop = Some(stop);
    loop {
        if shutdown_at.is_some_and(|at| Instant::now() >= at) {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
        }
        if node.verdict()["satisfied"] == true || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(stop) = stop.take() {
        let _ = stop.send(());
    }
    let grace = Duration::from_millis(script.worker.grace_ms) + Duration::from_secs(5);
    match tokio::time::timeout(grace, run).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(format!("the worker ended with an error: {e}")),
        Ok(Err(e)) => return Err(format!("the worker panicked: {e}")),
        Err(_) => return Err(format!("the worker did not stop within {grace:?} of the shutdown")),
    }
    let verdict = node.verdict();
    node.stop();
    if verdict["passed"] == true {
        Ok(())
    } else {
        Err(format!(
            "{}\n  handler events: {:?}",
            serde_json::to_string_pretty(&verdict["problems"]).unwrap_or_default(),
            lines.lock().unwrap_or_else(|p| p.into_inner())
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_passes_every_transcript() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("transcripts");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("transcripts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "expected the transcripts in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("readable");
        let script: Script = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = script.name.clone();
        let started = Instant::now();
        match run_script(script).await {
            Ok(()) => eprintln!("PASS {name} ({:?})", started.elapsed()),
            Err(why) => {
                eprintln!("FAIL {name}: {why}");
                failures.push(name);
            }
        }
    }
    assert!(failures.is_empty(), "transcripts failed: {failures:?}");
}
