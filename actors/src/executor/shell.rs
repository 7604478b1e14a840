//! Shell tasks: a child process per attempt, in its own process group and working directory.
//!
//! stdout and stderr stream into the attempt's log (flushed every `log_flush`); exit 0 succeeds,
//! and the task's output is the JSON object the process wrote to the file named by `$LOOM_OUTPUT`.
//! On timeout or cancel the whole process group gets SIGTERM, then SIGKILL after a grace period.

use std::collections::BTreeMap;
use std::path::PathBuf;
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

use super::policy::{allowed_program, ShellLimits};
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
    let attempt_dir: PathBuf = ctx.config.work_dir.join(format!("attempt-{}", info.attempt_id));
    if let Err(e) = tokio::fs::create_dir_all(&attempt_dir).await {
        return failed(format!("cannot create {}: {e}", attempt_dir.display()));
    }
    // Absolute, because the process may run in another directory (`workdir`).
    let attempt_dir = match tokio::fs::canonicalize(&attempt_dir).await {
        Ok(dir) => dir,
        Err(e) => return failed(format!("cannot resolve {}: {e}", attempt_dir.display())),
    };
    let output_path = attempt_dir.join("output.json");
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
    let mut command = tokio::process::Command::new(&program_path);
    command
        .args(args)
        .current_dir(call.workdir.as_deref().map(PathBuf::from).unwrap_or_else(|| attempt_dir.clone()))
        .envs(&call.env)
        .env("LOOM_OUTPUT", &output_path)
        .env("LOOM_EXECUTION_ID", &info.execution_id)
        .env("LOOM_WORKFLOW_ID", &info.workflow_id)
        .env("LOOM_TASK_ID", &info.task_id)
        .env("LOOM_ATTEMPT", info.n.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = policy.shell_run_as {
        // The attempt directory is where the process writes its output.
        if let Err(e) = std::os::unix::fs::chown(&attempt_dir, Some(uid), Some(gid)) {
            return failed(format!("cannot hand {} to uid {uid}: {e}", attempt_dir.display()));
        }
        command.uid(uid).gid(gid);
    }
    let limits = policy.shell_limits.clone();
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2),
    // which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || set_rlimits(&limits));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start `{program}`: {e}")),
    };
    let pid = child.id();
    tracing::info!(attempt_id = info.attempt_id, pid, "shell attempt started");

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
        let mut buffer = String::new();
        let mut tick = tokio::time::interval(log_ctx.config.log_flush);
        loop {
            tokio::select! {
                biased;
                line = line_rx.recv() => match line {
                    Some(line) => {
                        buffer.push_str(&line);
                        if buffer.len() >= limits::MAX_LOG_APPEND_BYTES / 2 {
                            flush_log(&log_ctx, attempt_id, &mut buffer).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => flush_log(&log_ctx, attempt_id, &mut buffer).await,
            }
        }
        flush_log(&log_ctx, attempt_id, &mut buffer).await;
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
    let outcome = match ended {
        End::Exited(Ok(status)) if status.success() => match read_output(&output_path, max_output(&ctx)).await {
            Ok(output) => Some(Outcome::Done { result: AttemptResult::Succeeded { output }, logs: None }),
            Err(e) => failed(e),
        },
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
        End::TimedOut => {
            kill_group(pid, &mut child, ctx.config.kill_grace).await;
            Some(Outcome::Done { result: AttemptResult::TimedOut, logs: None })
        }
        End::TooMuchOutput => {
            kill_group(pid, &mut child, ctx.config.kill_grace).await;
            failed(format!("killed: output passed the limit of {} bytes (LOOM_SHELL_OUTPUT_MB)", output.limit))
        }
        End::Cancelled => {
            kill_group(pid, &mut child, ctx.config.kill_grace).await;
            None
        }
    };
    let _ = flusher.await;
    let _ = tokio::fs::remove_dir_all(&attempt_dir).await;
    outcome
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
    Ok(())
}

async fn flush_log(ctx: &EngineCtx, attempt_id: u64, buffer: &mut String) {
    if buffer.is_empty() {
        return;
    }
    let mut text = std::mem::take(buffer);
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

async fn read_output(path: &std::path::Path, max_bytes: usize) -> Result<Json, String> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.len() > max_bytes as u64 => {
            return Err(format!("$LOOM_OUTPUT is {} bytes; the limit is {max_bytes}", meta.len()));
        }
        _ => {}
    }
    match tokio::fs::read(path).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Json::empty_object()),
        Err(e) => Err(format!("reading $LOOM_OUTPUT: {e}")),
        Ok(bytes) if bytes.len() > max_bytes => {
            Err(format!("$LOOM_OUTPUT is {} bytes; the limit is {max_bytes}", bytes.len()))
        }
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value @ serde_json::Value::Object(_)) => Ok(Json(value)),
            Ok(_) => Err("$LOOM_OUTPUT must hold a JSON object".into()),
            Err(e) => Err(format!("$LOOM_OUTPUT is not valid JSON: {e}")),
        },
    }
}
