//! How long a backup of a large history takes to restore: fills a state machine on a real sled
//! disk with N finished executions (created and cancelled, spread over workflows so retention
//! keeps them all), checkpoints it, writes a backup archive as `GET /api/v1/cluster/snapshot`
//! does, then times what `loom-node restore` does with it (read, check, decode, install into a
//! fresh sled directory, flush) and what a node's start does with the result (open the state).
//!
//!   cargo run --release -p linkloom-raft --example restore_bench -- [EXECUTIONS] [--keep FILE]
//!
//! `--keep FILE` leaves the archive there, to time the real `loom-node restore` on it too.

use std::collections::BTreeMap;
use std::time::Instant;

use linkloom_core::state::Trigger;
use linkloom_core::{json::Json, Command};
use linkloom_raft::backup::{self, Backup};
use linkloom_raft::storage::{Disk, StateMachineStore};
use linkloom_raft::TypeConfig;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};

const PER_WORKFLOW: u64 = 1_000;

fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
    Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(command) }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut executions: u64 = 100_000;
    let mut keep = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keep" => keep = args.next(),
            n => executions = n.parse().map_err(|e| anyhow::anyhow!("EXECUTIONS `{n}`: {e}"))?,
        }
    }
    let workflows = executions.div_ceil(PER_WORKFLOW);
    let dir = tempfile::tempdir()?;

    let filling = Instant::now();
    let source_disk = Disk::open_sled(&dir.path().join("source"))?;
    let mut source = StateMachineStore::open(&source_disk)?;
    let mut index = 0;
    let mut next = |command| {
        index += 1;
        entry(index, command)
    };
    let mut batch = Vec::new();
    for w in 0..workflows {
        let yaml = format!("id: wf{w}\ntasks: [{{id: t, type: worker, queue: q}}]\n");
        let spec = linkloom_core::spec::parse_yaml(&yaml)?;
        batch.push(next(Command::PutWorkflow { spec, actor: None, at_ms: 1 }));
    }
    source.apply(std::mem::take(&mut batch)).await?;
    for i in 0..executions {
        let execution_id = format!("wf{}:e{i:07}", i % workflows);
        let at_ms = 1_000 + i as i64;
        batch.push(next(Command::CreateExecution {
            execution_id: execution_id.clone(),
            workflow_id: format!("wf{}", i % workflows),
            trigger: Trigger::Manual,
            scheduled_at_ms: None,
            params: Json::null(),
            actor: None,
            at_ms,
        }));
        batch.push(next(Command::CancelExecution { execution_id, actor: None, at_ms }));
        if batch.len() >= 2_000 {
            source.apply(std::mem::take(&mut batch)).await?;
        }
    }
    source.apply(batch).await?;
    let kept = source.state().read(|s| s.kept());
    source.build_snapshot().await?;
    println!(
        "filled {} finished executions over {workflows} workflows ({} log entries) in {} ms",
        kept.finished_executions,
        index,
        filling.elapsed().as_millis()
    );

    let taking = Instant::now();
    let (file, summary) = backup::take_from(&source, 1, 0).await?;
    let path = dir.path().join("backup.snap");
    std::fs::write(&path, &file)?;
    println!(
        "backup: {} bytes ({:.1} MiB, state {} bytes), taken in {} ms",
        file.len(),
        file.len() as f64 / 1_048_576.0,
        summary.state_bytes,
        taking.elapsed().as_millis()
    );
    drop(file);
    if let Some(keep) = &keep {
        std::fs::copy(&path, keep)?;
        println!("archive kept at {keep}");
    }

    let restoring = Instant::now();
    let bytes = std::fs::read(&path)?;
    let read_ms = restoring.elapsed().as_millis();
    let checked = Backup::decode(&bytes)?;
    drop(bytes);
    let decode_ms = restoring.elapsed().as_millis() - read_ms;
    let target_dir = dir.path().join("restored");
    // In a runtime of its own, as `loom-node restore` runs: dropping it stops the log's flusher,
    // which holds the database (and sled's lock on it) until then.
    let restoring_dir = target_dir.clone();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let target = Disk::open_sled(&restoring_dir)?;
            let members: BTreeMap<u64, String> = (1..=3).map(|id| (id, format!("127.0.0.1:{}", 8080 + id))).collect();
            backup::restore(&target, checked, 1, members).await?;
            anyhow::Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the restore thread panicked"))??;
    let restore_ms = restoring.elapsed().as_millis();
    println!("restore: {restore_ms} ms in all (read {read_ms} ms, checksum and decode {decode_ms} ms, install and flush the rest)");

    let opening = Instant::now();
    let target = Disk::open_sled(&target_dir)?;
    let reopened = StateMachineStore::open(&target)?;
    let restored_kept = reopened.state().read(|s| s.kept());
    println!(
        "open restored state: {} ms ({} finished executions)",
        opening.elapsed().as_millis(),
        restored_kept.finished_executions
    );
    anyhow::ensure!(
        restored_kept.finished_executions == kept.finished_executions,
        "restored {} executions of {}",
        restored_kept.finished_executions,
        kept.finished_executions
    );
    anyhow::ensure!(reopened.state().read(|s| s.digest()) == source.state().read(|s| s.digest()), "digests differ");
    println!("digest equal to the source's");
    Ok(())
}
