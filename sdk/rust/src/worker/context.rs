//! What a handler works with: the task (`TaskContext`), and how it answers (`TaskResult`,
//! `TaskError`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use linkloom_wire::worker::TaskAssignment;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

/// What a handler answers: the task's output, or why it failed.
///
/// ```
/// fn answer(rows: u64) -> linkloom::TaskResult {
///     if rows == 0 {
///         return Err(linkloom::TaskError::fatal("nothing to load"));
///     }
///     Ok(serde_json::json!({"rows": rows}))
/// }
/// assert!(answer(3).is_ok());
/// ```
pub type TaskResult = Result<Value, TaskError>;

pub(super) type Handler = Arc<dyn Fn(TaskContext) -> Pin<Box<dyn Future<Output = TaskResult> + Send>> + Send + Sync>;

/// A task failure. Retryable failures are retried per the task's retry policy; fatal ones fail
/// the task at once.
///
/// ```
/// use linkloom::TaskError;
/// let e = TaskError::fatal("the invoice does not exist");
/// assert!(!e.is_retryable());
/// // Any std error converts (retryable), so `?` works in handlers.
/// let parsed: Result<u32, TaskError> = "x".parse::<u32>().map_err(TaskError::from);
/// assert!(parsed.unwrap_err().is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
    retryable: bool,
}

impl TaskError {
    /// A failure worth retrying (a timeout, an unavailable dependency).
    ///
    /// ```
    /// assert!(linkloom::TaskError::retryable("database busy").is_retryable());
    /// ```
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError { message: message.into(), retryable: true }
    }

    /// A failure no retry will fix (bad input): the task fails now.
    ///
    /// ```
    /// assert!(!linkloom::TaskError::fatal("no such customer").is_retryable());
    /// ```
    pub fn fatal(message: impl Into<String>) -> Self {
        TaskError { message: message.into(), retryable: false }
    }

    /// Whether the task may be retried.
    ///
    /// ```
    /// assert!(linkloom::TaskError::retryable("x").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message recorded as the attempt's error.
    ///
    /// ```
    /// assert_eq!(linkloom::TaskError::fatal("bad").message(), "bad");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::retryable(e.to_string())
    }
}

/// Log text and progress an attempt produced since its last heartbeat.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) logs: String,
    pub(super) progress: Option<Value>,
}

/// What a handler gets: the task, a way to log and report progress, and a cancellation signal.
///
/// ```no_run
/// # async fn demo(task: linkloom::TaskContext) -> linkloom::TaskResult {
/// #[derive(serde::Deserialize)]
/// struct Invoice { id: String }
/// let invoice: Invoice = task.input_as()?;
/// task.log(format!("charging {}", invoice.id));
/// task.progress(serde_json::json!({"step": 1, "of": 2}));
/// if task.is_cancelled() {
///     return Err(linkloom::TaskError::retryable("stopped"));
/// }
/// Ok(serde_json::json!({"charged": invoice.id}))
/// # }
/// ```
#[derive(Clone)]
pub struct TaskContext {
    pub(super) task: Arc<TaskAssignment>,
    pub(super) pending: Arc<Mutex<Pending>>,
    pub(super) cancelled: watch::Receiver<bool>,
}

impl TaskContext {
    /// The task's input, templates rendered.
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// let rows = task.input()["rows"].as_u64();
    /// # }
    /// ```
    pub fn input(&self) -> &Value {
        &self.task.input
    }

    /// The input decoded as `T`; a mismatch is a fatal [`TaskError`] (retrying will not fix it).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) -> Result<(), linkloom::TaskError> {
    /// let input: std::collections::BTreeMap<String, u32> = task.input_as()?;
    /// # Ok(()) }
    /// ```
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_value(self.task.input.clone()).map_err(|e| TaskError::fatal(format!("task input: {e}")))
    }

    /// The execution's params.
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// let region = task.params()["region"].as_str().unwrap_or("eu");
    /// # }
    /// ```
    pub fn params(&self) -> &Value {
        &self.task.params
    }

    /// The whole assignment as the node sent it (ids, queue, lease, deadline).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// println!("{} / {} attempt {}", task.assignment().execution_id, task.assignment().task_id, task.assignment().attempt);
    /// # }
    /// ```
    pub fn assignment(&self) -> &TaskAssignment {
        &self.task
    }

    /// Appends a line to the attempt's log (sent with the next heartbeat or the result).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// task.log("fetched 200 rows");
    /// # }
    /// ```
    pub fn log(&self, line: impl AsRef<str>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.logs.push_str(line.as_ref());
        if !line.as_ref().ends_with('\n') {
            pending.logs.push('\n');
        }
    }

    /// Reports progress (any JSON), shown with the attempt after the next heartbeat.
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// task.progress(serde_json::json!(0.5));
    /// # }
    /// ```
    pub fn progress(&self, progress: Value) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).progress = Some(progress);
    }

    /// Whether the attempt was cancelled (the execution was cancelled, the task timed out, the
    /// lease was lost, or the worker is shutting down past its grace).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// while !task.is_cancelled() { /* one more batch */ break; }
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves when the attempt is cancelled; race it against long work with `tokio::select!`.
    ///
    /// ```no_run
    /// # async fn demo(task: linkloom::TaskContext) -> linkloom::TaskResult {
    /// tokio::select! {
    ///     _ = task.cancelled() => Err(linkloom::TaskError::retryable("cancelled")),
    ///     _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => Ok(serde_json::json!({})),
    /// }
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        let mut cancelled = self.cancelled.clone();
        let _ = cancelled.wait_for(|c| *c).await;
    }

    pub(super) fn take_pending(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
