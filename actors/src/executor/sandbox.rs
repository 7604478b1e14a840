//! Finding every process of a shell attempt again, to stop all of them.
//!
//! A process group is not enough: a child that calls `setsid` (a daemon, `nohup setsid ...`)
//! leaves it, and used to outlive cancel and timeout. Where the node may create cgroups (cgroup
//! v2 with `cgroup.kill`, Linux 5.14+; the node running as root, or with a delegated subtree), each
//! attempt gets its own cgroup, which the child joins before `exec`, so it and everything it ever
//! starts are in it and `cgroup.kill` ends them all at once, whatever sessions or groups they
//! moved to. Elsewhere the node falls back to [`Tracked`]: it polls `/proc` while the attempt runs
//! and remembers every descendant it saw (pid and start time, so a reused pid is never killed),
//! and kills those, the process group and the current descendants at the end. The fallback can
//! miss a process that forks away and leaves within one poll interval; docs/security.md says so.
//!
//! Layout: `<the node's own cgroup>/loom-attempts-<node pid>/attempt-<id>`. A node that starts
//! kills and removes what an earlier, dead node process left there.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where this node puts its attempts' cgroups, if it can.
#[derive(Debug)]
pub(crate) struct Cgroups {
    base: PathBuf,
    /// The pids controller is enabled for the attempts' cgroups (`pids.max` is set per attempt).
    pids: bool,
}

const BASE_PREFIX: &str = "loom-attempts-";

impl Cgroups {
    /// Sets up this node's cgroup for attempts, or says why it cannot.
    pub(crate) fn detect() -> Result<Cgroups, String> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("mountinfo: {e}"))?;
        let mount = cgroup2_mount(&mounts).ok_or("no cgroup v2 hierarchy is mounted")?;
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let relative = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("this process is not in a cgroup v2 hierarchy")?
            .trim_start_matches('/');
        let parent = mount.join(relative);
        remove_stale(&parent);
        let base = parent.join(format!("{BASE_PREFIX}{}", std::process::id()));
        match std::fs::create_dir(&base) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", base.display())),
        }
        if !base.join("cgroup.kill").exists() {
            let _ = std::fs::remove_dir(&base);
            return Err("the kernel has no cgroup.kill (Linux 5.14+ is needed)".into());
        }
        let controllers = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        let pids = controllers.split_whitespace().any(|c| c == "pids")
            && std::fs::write(base.join("cgroup.subtree_control"), "+pids").is_ok();
        Ok(Cgroups { base, pids })
    }

    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    pub(crate) fn limits_processes(&self) -> bool {
        self.pids
    }

    /// A fresh cgroup for one attempt, with `pids.max` set when the controller is there.
    pub(crate) fn create(&self, attempt_id: u64, max_processes: Option<u64>) -> std::io::Result<AttemptCgroup> {
        let dir = self.base.join(format!("attempt-{attempt_id}"));
        if dir.exists() {
            // Left by an earlier run of this attempt on this node process: end it first.
            kill_and_remove(&dir);
        }
        std::fs::create_dir(&dir)?;
        if let (true, Some(n)) = (self.pids, max_processes) {
            std::fs::write(dir.join("pids.max"), n.to_string())?;
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the cgroup path"))?;
        Ok(AttemptCgroup { dir, procs })
    }
}

/// The cgroup v2 mount point in a `/proc/self/mountinfo` text.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split_whitespace().next() == Some("cgroup2")).then(|| before.split_whitespace().nth(4))?.map(unescape)
    })
}

/// mountinfo escapes spaces and a few other bytes as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Kills and removes the attempt cgroups of node processes that are gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(BASE_PREFIX)).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let base = entry.path();
        if let Ok(attempts) = std::fs::read_dir(&base) {
            for attempt in attempts.flatten().filter(|a| a.path().is_dir()) {
                tracing::warn!(cgroup = %attempt.path().display(), "killing what a stopped node process left running");
                kill_and_remove(&attempt.path());
            }
        }
        let _ = std::fs::remove_dir(&base);
    }
}

/// `cgroup.kill`, then removes the directory once the kernel has emptied it (bounded wait).
fn kill_and_remove(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            // EBUSY while the killed processes are still being torn down.
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    tracing::warn!(cgroup = %dir.display(), "could not remove an attempt's cgroup");
}

/// In the forked child, before `exec`: moves the calling process into the cgroup whose
/// `cgroup.procs` is `procs`. Async-signal-safe: `open`, `write` and `close` on a path prepared
/// before the fork.
pub(crate) fn join_cgroup(procs: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: open(2) with a NUL-terminated path that outlives the call.
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // "0" names the writing process itself.
    // SAFETY: write(2) of a 1-byte static buffer to the descriptor just opened.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    let error = std::io::Error::last_os_error();
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    if written == 1 {
        Ok(())
    } else {
        Err(error)
    }
}

/// One attempt's cgroup. Dropping it kills whatever is still in it and removes it.
#[derive(Debug)]
pub(crate) struct AttemptCgroup {
    dir: PathBuf,
    procs: CString,
}

impl AttemptCgroup {
    /// The `cgroup.procs` file a child writes itself into ([`join_cgroup`]).
    pub(crate) fn procs_path(&self) -> &std::ffi::CStr {
        &self.procs
    }

    /// Kills every process in the cgroup, at once.
    pub(crate) fn kill(&self) {
        if let Err(e) = std::fs::write(self.dir.join("cgroup.kill"), "1") {
            tracing::warn!(cgroup = %self.dir.display(), "cgroup.kill failed: {e}");
        }
    }
}

impl Drop for AttemptCgroup {
    fn drop(&mut self) {
        kill_and_remove(&self.dir);
    }
}

/// A process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    /// Clock ticks since boot: with the pid, names one process for ever.
    start: u64,
}

fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses `/proc/<pid>/stat` (the command name may hold spaces and parentheses: fields are
/// counted from the last `)`).
fn parse_stat(stat: &str) -> Option<Proc> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) session(6) ... starttime(22).
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn all_processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter_map(read_proc)
        .collect()
}

/// The processes descending from `root` (itself included), by parent links.
fn descendants(processes: &[Proc], root: i32) -> Vec<Proc> {
    let mut found: Vec<Proc> = processes.iter().filter(|p| p.pid == root).copied().collect();
    let mut frontier: Vec<i32> = found.iter().map(|p| p.pid).collect();
    while let Some(parent) = frontier.pop() {
        for child in processes.iter().filter(|p| p.ppid == parent && p.pid != root) {
            if !found.iter().any(|f| f.pid == child.pid) {
                found.push(*child);
                frontier.push(child.pid);
            }
        }
    }
    found
}

/// The fallback: every descendant of an attempt's process seen so far.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    root: i32,
    seen: Arc<Mutex<BTreeSet<(i32, u64)>>>,
}

/// How often the fallback looks for new descendants.
pub(crate) const TRACK_EVERY: Duration = Duration::from_millis(100);

impl Tracked {
    pub(crate) fn new(root: u32) -> Tracked {
        Tracked { root: root as i32, seen: Arc::default() }
    }

    /// Records the current descendants (call every [`TRACK_EVERY`] while the attempt runs).
    pub(crate) fn poll(&self) {
        let found = descendants(&all_processes(), self.root);
        if let Ok(mut seen) = self.seen.lock() {
            seen.extend(found.iter().map(|p| (p.pid, p.start)));
        }
    }

    /// SIGKILLs the process group, every descendant seen (if it is still the same process) and
    /// every current one; repeats while new ones appear, a bounded number of times.
    pub(crate) fn kill_all(&self) {
        // SAFETY: kill(2) with a negative pid signals the process group the attempt's process
        // leads (it was started with process_group(0)).
        unsafe { libc::kill(-self.root, libc::SIGKILL) };
        for _ in 0..20 {
            let processes = all_processes();
            let mut targets: Vec<Proc> = descendants(&processes, self.root);
            if let Ok(seen) = self.seen.lock() {
                targets.extend(processes.iter().filter(|p| seen.contains(&(p.pid, p.start))).copied());
            }
            targets.extend(processes.iter().filter(|p| p.pgrp == self.root).copied());
            targets.retain(|p| p.pid != std::process::id() as i32);
            if targets.is_empty() {
                return;
            }
            for p in &targets {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.insert((p.pid, p.start));
                }
                // SAFETY: kill(2) of a pid that, as of the scan just made, is the process seen
                // earlier (same start time); a zombie ignores it.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
            // Zombies (killed, not yet reaped by their parent) still show in /proc: stop once
            // every target is dead or a zombie.
            if targets.iter().all(|p| is_gone_or_zombie(p.pid)) {
                return;
            }
        }
    }
}

fn is_gone_or_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) == Some("Z"),
    }
}

/// How a shell attempt's processes are kept track of.
#[derive(Debug)]
pub(crate) enum Containment {
    Cgroup(AttemptCgroup),
    Tracked(Tracked),
}

impl Containment {
    /// Remembers the current descendants (the fallback; a cgroup needs nothing).
    pub(crate) fn record(&self) {
        if let Containment::Tracked(tracked) = self {
            tracked.poll();
        }
    }

    pub(crate) fn kill_all(&self) {
        match self {
            Containment::Cgroup(cgroup) => cgroup.kill(),
            Containment::Tracked(tracked) => tracked.kill_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cgroup2_mount_point() {
        let info = "24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(info), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let spaced = "41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mount(spaced), Some(PathBuf::from("/mnt/my cgroups")));
        assert_eq!(cgroup2_mount("24 30 0:22 / /sys rw - sysfs sysfs rw\n"), None);
    }

    #[test]
    fn parses_stat_lines_whatever_the_command_name() {
        let stat = "4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(stat), Some(Proc { pid: 4242, ppid: 17, pgrp: 4242, start: 987654 }));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_follow_parent_links() {
        let p = |pid, ppid| Proc { pid, ppid, pgrp: pid, start: 0 };
        let all = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(13, 10)];
        let mut found: Vec<i32> = descendants(&all, 10).iter().map(|p| p.pid).collect();
        found.sort_unstable();
        assert_eq!(found, [10, 11, 12, 13]);
    }

    #[test]
    fn this_process_reads_itself() {
        let me = read_proc(std::process::id() as i32).expect("own stat");
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.start > 0);
    }
}
