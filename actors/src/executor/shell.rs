//! Shell tasks: a child process per attempt, in its own process group, cgroup (where the node can
//! make one, see [`super::sandbox`]) and working directory, as the task user.
//!
//! A task is someone else's code, so it starts with nothing of the node's: an empty environment
//! plus a fixed safe set (`PATH`, `HOME` and `TMPDIR` in its own directory, `LANG`, `TZ`), the
//! variables the operator chose to pass (`LOOM_SHELL_PASS_ENV`), the task's own `env` and the
//! `LOOM_*` task variables; resource limits (`setrlimit`, inherited by its children); no new
//! privileges (`PR_SET_NO_NEW_PRIVS`: a setuid program gains nothing); and, when the node runs as
//! root, another user (`nobody` unless configured).
//!
//! stdout and stderr stream into the attempt's log (flushed every `log_flush`); exit 0 succeeds,
//! and the task's output is the JSON object the process wrote to the file named by `$LOOM_OUTPUT`,
//! read as a regular file only (no symbolic link, FIFO, device or extra hard link) and only up to
//! the output limit. On timeout or cancel the process group gets SIGTERM, then after a grace
//! period every process of the attempt is killed, including ones that left the group; when the
//! process exits, whatever it left running is killed too.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use linkloom_core::json::Json;
use linkloom_core::limits;
use linkloom_core::state::AttemptResult;
use linkloom_core::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, watch, Notify};

use super::log_rate::LogShaper;
use super::policy::{allowed_program, ShellLimits, TaskPolicy};
use super::sandbox::{Containment, Tracked, TRACK_EVERY};
use super::{AttemptInfo, Outcome};
use crate::EngineCtx;

/// A rendered shell task.
pub(crate) struct ShellCall {
    /// argv; a script is `["sh", "-c", script]`.
    pub(crate) argv: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) workdir: Option<String>,
}

/// Runs the command until it exits or times out. If `cancel` turns true or its sender goes away
/// (the execution was cancelled or moved, or the actor died), the process group is killed and
/// `None` is returned: the attempt's fate is then decided elsewhere (cancelled, or reported lost
/// by whichever actor owns the execution next), so reporting a result would race that.
pub(crate) async fn run_shell(
    ctx: Arc<EngineCtx>,
    info: &AttemptInfo,
    call: ShellCall,
    mut cancel: watch::Receiver<bool>,
) -> Option<Outcome> {
    let failed =
        |error: String| Some(Outcome::Done { result: AttemptResult::Failed { error, retryable: false }, logs: None });
    let policy = &ctx.config.task_policy;
    if !policy.shell_enabled {
        return failed(format!("shell tasks are disabled on node {} (LOOM_SHELL_TASKS=off)", ctx.cluster.node_id()));
    }
    let Some((program, args)) = call.argv.split_first() else {
        return failed("empty command".into());
    };
    let program_path = match allowed_program(policy, program) {
        Ok(path) => path,
        Err(e) => return failed(e),
    };
    let attempt_dir = match make_attempt_dir(&ctx.config.work_dir, info.attempt_id, policy.shell_run_as).await {
        Ok(dir) => dir,
        Err(e) => return failed(e),
    };
    let output_path = attempt_dir.join("output.json");
    let mut command = tokio::process::Command::new(&program_path);
    command
        .args(args)
        .current_dir(call.workdir.as_deref().map(PathBuf::from).unwrap_or_else(|| attempt_dir.clone()))
        .env_clear()
        .envs(task_environment(policy, &attempt_dir, &output_path, info, call.env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let cgroup = match &ctx.cgroups {
        Some(cgroups) => match cgroups.create(info.attempt_id, policy.shell_limits.processes) {
            Ok(cgroup) => Some(cgroup),
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&attempt_dir).await;
                return failed(format!("cannot create the attempt's cgroup under {}: {e}", cgroups.base().display()));
            }
        },
        None => None,
    };
    let child_setup = ChildSetup {
        cgroup_procs: cgroup.as_ref().map(|c| c.procs_path().to_owned()),
        limits: policy.shell_limits.clone(),
        run_as: policy.shell_run_as,
    };
    // SAFETY: the closure runs in the forked child before exec and makes only async-signal-safe
    // system calls (open, write, close, setrlimit, umask, prctl, setgroups, setgid, setuid) on
    // data prepared before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || child_setup.apply());
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            drop(cgroup);
            let _ = tokio::fs::remove_dir_all(&attempt_dir).await;
            return failed(format!("cannot start `{program}`: {e}"));
        }
    };
    let pid = child.id();
    tracing::info!(attempt_id = info.attempt_id, pid, cgroup = cgroup.is_some(), "shell attempt started");
    let containment = Arc::new(match (cgroup, pid) {
        (Some(cgroup), _) => Containment::Cgroup(cgroup),
        (None, Some(pid)) => Containment::Tracked(Tracked::new(pid)),
        // Exited and reaped already: nothing can be tracked (its group is still killed below).
        (None, None) => Containment::Tracked(Tracked::new(0)),
    });
    let tracker = match &*containment {
        Containment::Tracked(tracked) if pid.is_some() => {
            let tracked = tracked.clone();
            Some(tokio::spawn(async move {
                loop {
                    let poll = tracked.clone();
                    let _ = tokio::task::spawn_blocking(move || poll.poll()).await;
                    tokio::time::sleep(TRACK_EVERY).await;
                }
            }))
        }
        _ => None,
    };

    // Output lines from both pipes go through one channel to a log flusher; past the output
    // limit the pumps stop and `overflow` ends the attempt.
    let (lines, mut line_rx) = mpsc::channel::<String>(1024);
    let output = Arc::new(OutputBudget {
        used: AtomicU64::new(0),
        limit: policy.shell_limits.output_bytes,
        overflow: Notify::new(),
    });
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, lines.clone(), output.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(err, lines.clone(), output.clone()));
    }
    drop(lines);
    let log_ctx = ctx.clone();
    let attempt_id = info.attempt_id;
    let flusher = tokio::spawn(async move {
        let mut shaper = LogShaper::default();
        let mut tick = tokio::time::interval(log_ctx.config.log_flush);
        loop {
            tokio::select! {
                biased;
                line = line_rx.recv() => match line {
                    Some(line) => {
                        let dropped = shaper.push(&line);
                        log_ctx.stats.task_log_bytes_dropped.fetch_add(dropped, Ordering::Relaxed);
                        if shaper.is_full() {
                            flush_log(&log_ctx, attempt_id, &mut shaper, false).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => flush_log(&log_ctx, attempt_id, &mut shaper, false).await,
            }
        }
        flush_log(&log_ctx, attempt_id, &mut shaper, true).await;
    });

    let timeout = info.timeout.unwrap_or(Duration::from_secs(24 * 3600));
    let ended = tokio::select! {
        biased;
        // Ok: cancel asked; Err: the actor that started us is gone. Both mean stop.
        _ = cancel.wait_for(|c| *c) => End::Cancelled,
        _ = output.overflow.notified() => End::TooMuchOutput,
        status = tokio::time::timeout(timeout, child.wait()) => match status {
            Ok(status) => End::Exited(status),
            Err(_) => End::TimedOut,
        },
    };
    // Whatever happened, nothing of the attempt may outlive it: after a SIGTERM grace for the
    // process group on timeout, cancel and overflow, every process still in the attempt's
    // cgroup (or seen descending from it) is killed, including ones that called setsid, and so
    // are background processes a successful script left behind. Only then is the output read:
    // no process of the task can change it any more.
    if let Some(tracker) = tracker {
        tracker.abort();
    }
    // Without a cgroup, look once more before anything dies: a process that is still a
    // descendant now is remembered even though killing its parent would orphan it.
    let look = containment.clone();
    let _ = tokio::task::spawn_blocking(move || look.record()).await;
    if !matches!(ended, End::Exited(_)) {
        kill_group(pid, &mut child, ctx.config.kill_grace).await;
    }
    let finish = containment.clone();
    let _ = tokio::task::spawn_blocking(move || finish.kill_all()).await;
    let _ = child.wait().await;
    let outcome = match ended {
        End::Exited(Ok(status)) if status.success() => {
            let owner = policy.shell_run_as.map(|(uid, _)| uid);
            match read_output(output_path.clone(), max_output(&ctx), owner).await {
                Ok(output) => Some(Outcome::Done { result: AttemptResult::Succeeded { output }, logs: None }),
                Err(e) => failed(e),
            }
        }
        End::Exited(Ok(status)) => Some(Outcome::Done {
            result: AttemptResult::Failed {
                error: match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(libc::SIGXCPU)) => "killed: CPU time limit reached".to_string(),
                    (None, Some(signal)) => format!("killed by signal {signal}"),
                    (None, None) => "killed by a signal".to_string(),
                },
                retryable: true,
            },
            logs: None,
        }),
        End::Exited(Err(e)) => failed(format!("waiting for the process: {e}")),
        End::TimedOut => Some(Outcome::Done { result: AttemptResult::TimedOut, logs: None }),
        End::TooMuchOutput => {
            failed(format!("killed: output passed the limit of {} bytes (LOOM_SHELL_OUTPUT_MB)", output.limit))
        }
        End::Cancelled => None,
    };
    let _ = flusher.await;
    // Removing the cgroup waits (briefly) for the kernel to tear the killed processes down.
    let _ = tokio::task::spawn_blocking(move || drop(containment)).await;
    let _ = tokio::fs::remove_dir_all(&attempt_dir).await;
    outcome
}

/// A fresh working directory for one attempt, `<work_dir>/attempt-<id>`, only its task user's.
/// When tasks run as another user the work root is made traversable (not listable) by others,
/// so that user reaches its own directory and no other attempt's.
async fn make_attempt_dir(work_dir: &Path, attempt_id: u64, run_as: Option<(u32, u32)>) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let cannot = |what: &Path, e: std::io::Error| format!("cannot prepare {}: {e}", what.display());
    tokio::fs::create_dir_all(work_dir).await.map_err(|e| cannot(work_dir, e))?;
    // The work root may sit in a shared temporary directory: it must still be the node's own.
    let meta = tokio::fs::symlink_metadata(work_dir).await.map_err(|e| cannot(work_dir, e))?;
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != me {
        return Err(format!("{} is not a directory of the node's user (uid {me})", work_dir.display()));
    }
    let root_mode = if run_as.is_some() { 0o711 } else { 0o700 };
    tokio::fs::set_permissions(work_dir, std::fs::Permissions::from_mode(root_mode))
        .await
        .map_err(|e| cannot(work_dir, e))?;
    // Absolute, because the process may run in another directory (`workdir`).
    let work_dir = tokio::fs::canonicalize(work_dir).await.map_err(|e| cannot(work_dir, e))?;
    let dir = work_dir.join(format!("attempt-{attempt_id}"));
    if tokio::fs::symlink_metadata(&dir).await.is_ok() {
        // Left by an earlier run of this attempt that the node did not clean up (a crash).
        tokio::fs::remove_dir_all(&dir).await.map_err(|e| cannot(&dir, e))?;
    }
    tokio::fs::create_dir(&dir).await.map_err(|e| cannot(&dir, e))?;
    tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).await.map_err(|e| cannot(&dir, e))?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot hand {} to uid {uid}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// The whole environment of a shell attempt: nothing of the node's but the fixed safe set and
/// what the operator passes by name; then the task's `env`; then the `LOOM_*` task variables.
fn task_environment(
    policy: &TaskPolicy,
    attempt_dir: &Path,
    output_path: &Path,
    info: &AttemptInfo,
    task_env: BTreeMap<String, String>,
) -> BTreeMap<String, std::ffi::OsString> {
    let mut env: BTreeMap<String, std::ffi::OsString> = BTreeMap::new();
    let node = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    env.insert("PATH".into(), node("PATH").unwrap_or_else(|| DEFAULT_PATH.into()));
    env.insert("LANG".into(), node("LANG").unwrap_or_else(|| "C.UTF-8".into()));
    if let Some(tz) = node("TZ") {
        env.insert("TZ".into(), tz);
    }
    env.insert("HOME".into(), attempt_dir.into());
    env.insert("TMPDIR".into(), attempt_dir.into());
    for name in &policy.shell_pass_env {
        if let Some(value) = std::env::var_os(name) {
            env.insert(name.clone(), value);
        }
    }
    env.extend(task_env.into_iter().map(|(k, v)| (k, v.into())));
    env.insert("LOOM_OUTPUT".into(), output_path.into());
    env.insert("LOOM_EXECUTION_ID".into(), info.execution_id.clone().into());
    env.insert("LOOM_WORKFLOW_ID".into(), info.workflow_id.clone().into());
    env.insert("LOOM_TASK_ID".into(), info.task_id.clone().into());
    env.insert("LOOM_ATTEMPT".into(), info.n.to_string().into());
    env
}

/// `PATH` for tasks when the node has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What the forked child does to itself before `exec`, in this order: join the attempt's
/// cgroup (while it still may: as root, or as the node's user with a delegated subtree), set
/// the resource limits, reset the umask, forbid new privileges, and drop to the task user.
struct ChildSetup {
    cgroup_procs: Option<CString>,
    limits: ShellLimits,
    run_as: Option<(u32, u32)>,
}

impl ChildSetup {
    fn apply(&self) -> std::io::Result<()> {
        let check = |result: libc::c_int| if result == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
        if let Some(procs) = &self.cgroup_procs {
            super::sandbox::join_cgroup(procs)?;
        }
        set_rlimits(&self.limits)?;
        // SAFETY: umask(2) and prctl(2) change only this (child) process.
        unsafe {
            libc::umask(0o022);
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        if let Some((uid, gid)) = self.run_as {
            // SAFETY: setgroups(2) with an empty list, then setgid(2) and setuid(2): the
            // supplementary groups go first, then the group, then (last, as it ends the right
            // to change the others) the user.
            unsafe {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
        }
        Ok(())
    }
}

enum End {
    Cancelled,
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    TooMuchOutput,
}

/// Output bytes a shell attempt may still write.
struct OutputBudget {
    used: AtomicU64,
    limit: u64,
    overflow: Notify,
}

async fn pump(stream: impl AsyncRead + Unpin, lines: mpsc::Sender<String>, budget: Arc<OutputBudget>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        // A line is read whole; one without a newline is cut at the remaining budget.
        let remaining = budget.limit.saturating_sub(budget.used.load(Ordering::Relaxed)) + 1;
        match (&mut reader).take(remaining).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if budget.used.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > budget.limit {
                    budget.overflow.notify_one();
                    return;
                }
                if lines.send(line.clone()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// In the child, before exec: applies the configured resource limits.
fn set_rlimits(limits: &ShellLimits) -> std::io::Result<()> {
    // `headroom` lifts the hard limit above the soft one: for CPU time the soft limit sends
    // SIGXCPU (reported as such) and the hard one, a second later, SIGKILL.
    let set = |resource, value: Option<u64>, headroom: u64| -> std::io::Result<()> {
        let Some(value) = value else { return Ok(()) };
        let limit =
            libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value.saturating_add(headroom) as libc::rlim_t };
        // SAFETY: setrlimit reads the struct we pass and changes only this (child) process.
        if unsafe { libc::setrlimit(resource, &limit) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    set(libc::RLIMIT_CPU, limits.cpu_secs, 1)?;
    set(libc::RLIMIT_AS, limits.memory_bytes, 0)?;
    set(libc::RLIMIT_NOFILE, limits.open_files, 0)?;
    set(libc::RLIMIT_NPROC, limits.processes, 0)?;
    Ok(())
}

/// Appends what `shaper` holds to the attempt's log if the node's task log rate allows (`last`:
/// the attempt ended, append regardless).
async fn flush_log(ctx: &EngineCtx, attempt_id: u64, shaper: &mut LogShaper, last: bool) {
    let Some(mut text) = shaper.take(&ctx.log_budget, ctx.clock.now_ms(), last) else { return };
    if text.len() > limits::MAX_LOG_APPEND_BYTES {
        let mut cut = limits::MAX_LOG_APPEND_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let command = Command::AppendLog { attempt_id, text, at_ms: ctx.clock.now_ms() };
    if let Err(e) = ctx.cluster.propose(command).await {
        tracing::warn!(attempt_id, "log append failed: {e}");
    }
}

/// SIGTERM to the process group, then SIGKILL after `grace`.
async fn kill_group(pid: Option<u32>, child: &mut tokio::process::Child, grace: Duration) {
    let Some(pid) = pid else { return };
    let group = -(pid as i32);
    // SAFETY: kill(2) with a negative pid signals the process group we created for this child.
    unsafe {
        libc::kill(group, libc::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        // SAFETY: as above.
        unsafe {
            libc::kill(group, libc::SIGKILL);
        }
        let _ = child.wait().await;
    }
}

/// The cluster's output limit (`max_output_bytes`).
fn max_output(ctx: &EngineCtx) -> usize {
    ctx.cluster.state().read(|s| s.limits().max_output_bytes as usize)
}

/// Reads `$LOOM_OUTPUT` as the task left it, refusing what would make the node read something
/// else: a symbolic link (to a secret file, or `/dev/zero`), a FIFO (which would block), a
/// device, a directory, a file with other hard links, or (when tasks run as another user) a
/// file that user does not own. At most `max_bytes` are read.
async fn read_output(path: PathBuf, max_bytes: usize, owner: Option<u32>) -> Result<Json, String> {
    tokio::task::spawn_blocking(move || read_output_file(&path, max_bytes, owner))
        .await
        .map_err(|e| format!("reading $LOOM_OUTPUT: {e}"))?
}

fn read_output_file(path: &Path, max_bytes: usize, owner: Option<u32>) -> Result<Json, String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Json::empty_object()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("$LOOM_OUTPUT is a symbolic link; write the output into the file itself".into())
        }
        Err(e) => return Err(format!("reading $LOOM_OUTPUT: {e}")),
    };
    let meta = file.metadata().map_err(|e| format!("reading $LOOM_OUTPUT: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("$LOOM_OUTPUT is not a regular file (a FIFO, device or directory)".into());
    }
    if meta.nlink() != 1 {
        return Err("$LOOM_OUTPUT has other hard links; write a new file".into());
    }
    if let Some(uid) = owner.filter(|uid| meta.uid() != *uid) {
        return Err(format!("$LOOM_OUTPUT belongs to uid {}, not the task's user {uid}", meta.uid()));
    }
    if meta.len() > max_bytes as u64 {
        return Err(format!("$LOOM_OUTPUT is {} bytes; the limit is {max_bytes}", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("reading $LOOM_OUTPUT: {e}"))?;
    if bytes.len() > max_bytes {
        return Err(format!("$LOOM_OUTPUT is more than {max_bytes} bytes; the limit is {max_bytes}"));
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Json(value)),
        Ok(_) => Err("$LOOM_OUTPUT must hold a JSON object".into()),
        Err(e) => Err(format!("$LOOM_OUTPUT is not valid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn read(path: &Path) -> Result<Json, String> {
        read_output_file(path, 1024, None)
    }

    #[test]
    fn the_output_file_is_read_as_a_regular_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("output.json");
        assert_eq!(read(&out), Ok(Json::empty_object()), "no file: an empty output");
        std::fs::write(&out, r#"{"rows": 3}"#).unwrap();
        assert_eq!(read(&out).unwrap().0["rows"], 3);

        let secret = dir.path().join("secret");
        std::fs::write(&secret, r#"{"token": "s3cret"}"#).unwrap();
        std::fs::remove_file(&out).unwrap();
        symlink(&secret, &out).unwrap();
        assert!(read(&out).unwrap_err().contains("symbolic link"));
        std::fs::remove_file(&out).unwrap();
        symlink("/dev/zero", &out).unwrap();
        assert!(read(&out).unwrap_err().contains("symbolic link"), "/dev/zero is never read");

        std::fs::remove_file(&out).unwrap();
        std::fs::hard_link(&secret, &out).unwrap();
        assert!(read(&out).unwrap_err().contains("hard links"));

        std::fs::remove_file(&out).unwrap();
        let fifo = CString::new(out.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(read(&out).unwrap_err().contains("not a regular file"), "a FIFO does not block the node");

        std::fs::remove_file(&out).unwrap();
        std::fs::write(&out, format!(r#"{{"pad": "{}"}}"#, "x".repeat(2000))).unwrap();
        assert!(read(&out).unwrap_err().contains("limit is 1024"));
        std::fs::write(&out, "[1]").unwrap();
        assert!(read(&out).unwrap_err().contains("JSON object"));
        let me = std::fs::metadata(&out).unwrap();
        assert!(read_output_file(&out, 1024, Some(std::os::unix::fs::MetadataExt::uid(&me) + 1))
            .unwrap_err()
            .contains("not the task's user"));
    }
}
