//! The "disk full" runbook on real processes: one node's data directory is a small tmpfs that
//! fills up. That node must stop (exit non-zero, saying why, without flooding its log), the
//! other two must keep acknowledging writes, and once space is freed the node restarts and
//! catches up with everything it missed.
//!
//! It needs root (to mount the tmpfs); elsewhere it prints SKIPPED and passes (the README's test
//! command runs it as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use linkloom_harness::{Cluster, ClusterOptions};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const WAIT: Duration = Duration::from_secs(60);

/// A tmpfs mounted for the test, unmounted whatever happens.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, megabytes: u32) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0700"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Bytes free on it.
    fn available(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(&self.0).output().expect("df");
        String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Whether process `pid` runs (a process that exited but was not yet reaped does not).
fn alive(pid: Option<u32>) -> bool {
    let Some(pid) = pid else { return false };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && stat.split_whitespace().nth(2) != Some("Z")
}

fn put(cluster: &Cluster, via: u64, id: &str) -> bool {
    let yaml = format!("id: {id}\ndescription: {}\ntasks:\n  - {{id: t, type: worker, queue: q}}\n", "x".repeat(2_000));
    matches!(cluster.post(via, "/api/v1/workflows", "application/yaml", yaml), Ok((201, _)))
}

fn has_workflow(cluster: &Cluster, id: u64, workflow: &str) -> bool {
    matches!(cluster.get_json(id, &format!("/api/v1/workflows/{workflow}?consistency=stale")), Ok((200, _)))
}

#[test]
fn a_node_whose_disk_fills_stops_cleanly_and_catches_up_once_freed() {
    let mut cluster = Cluster::prepare(BIN, ClusterOptions::new(3)).expect("prepare");
    let full = 3;
    let data = cluster.node(full).data_dir.clone();
    let tmpfs = match Tmpfs::mount(&data, 32) {
        Ok(t) => t,
        Err(why) => {
            println!("SKIPPED: cannot mount a tmpfs for the data directory here (needs root): {why}");
            return;
        }
    };
    for id in cluster.ids() {
        cluster.restart(id).expect("start");
    }
    let leader = cluster.wait_ready(WAIT).expect("ready");
    let via = if leader == full { cluster.ids()[0] } else { leader };
    for i in 0..20 {
        assert!(put(&cluster, via, &format!("before-{i}")), "write before the disk fills");
    }
    cluster
        .wait_for("node 3 to hold the first writes", WAIT, |c| has_workflow(c, full, "before-19"))
        .expect("replicated");

    // Leave it 64 KiB.
    let filler = data.join("filler");
    let size = tmpfs.available().saturating_sub(64 * 1024);
    let out = Command::new("fallocate").args(["-l", &size.to_string()]).arg(&filler).output().expect("fallocate");
    assert!(out.status.success(), "fallocate: {}", String::from_utf8_lossy(&out.stderr));

    // The cluster goes on writing through the other two; the full node stops.
    let mut written = 0;
    cluster
        .wait_for("the node with the full disk to stop", WAIT, |c| {
            let via = c.ids().into_iter().find(|id| *id != full && c.leader_seen_by(*id).is_some()).unwrap_or(via);
            if put(c, via, &format!("during-{written}")) {
                written += 1;
            }
            !alive(c.node(full).pid())
        })
        .expect("it stops");
    let log = cluster.log_text(full);
    assert!(log.contains("No space left on device"), "its log does not say why:\n{}", cluster.logs_tail(20));
    assert!(log.len() < 2 * 1024 * 1024, "its log grew to {} bytes: a loop is logging", log.len());
    let survivor = cluster.ids().into_iter().find(|id| *id != full).expect("another node");
    let mut cluster = cluster;
    cluster.wait_ready(WAIT).expect("the other two have a leader");
    for i in 0..10 {
        assert!(put(&cluster, survivor, &format!("after-{i}")), "the two others keep acknowledging writes");
    }

    // Free the space and start it again: it catches up.
    std::fs::remove_file(&filler).expect("remove the filler");
    cluster.restart(full).expect("restart");
    cluster.wait_for("the restarted node to catch up", WAIT, |c| has_workflow(c, full, "after-9")).expect("caught up");
    for i in 0..written {
        assert!(has_workflow(&cluster, full, &format!("during-{i}")), "during-{i} missing on the restarted node");
    }
    println!("{written} writes acknowledged while node {full}'s disk was full; it stopped, restarted and caught up");
    drop(cluster);
    drop(tmpfs);
}
