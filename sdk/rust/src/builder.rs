//! Typed workflows: [`WorkflowBuilder`] and [`TaskBuilder`] build a [`WorkflowSpec`] and check it
//! with the server's own parser and validation (the same code, from `linkloom-core`), so a
//! mistake shows up before anything is sent, with every problem and its path in one error.
//!
//! The builders write the same document a user would write in YAML and parse it at the end,
//! rather than filling core's structs field by field: fields core adds later keep their
//! defaults, and what the builder accepts is exactly what the server accepts.

use std::time::Duration;

use linkloom_core::duration::{DurationMs, MAX_DURATION_MS};
use linkloom_core::spec::{self, Catchup, Concurrency, Problem, When, WorkflowSpec};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Error;

/// Parses a workflow from YAML (or JSON) text and validates it as the server will.
///
/// ```
/// let spec = linkloom::parse_workflow("id: hello\ntasks:\n  - {id: say, type: shell, command: [echo, hi]}\n")?;
/// assert_eq!(spec.tasks[0].id, "say");
/// let err = linkloom::parse_workflow("id: hello\ntasks: []\n").unwrap_err();
/// assert!(err.to_string().contains("at least one task"));
/// # Ok::<(), linkloom::Error>(())
/// ```
pub fn parse_workflow(text: &str) -> Result<WorkflowSpec, Error> {
    spec::parse_and_validate_yaml(text).map_err(|e| Error::Invalid(e.to_string()))
}

/// `d` as spec text (`30s`, `1500ms`, whole milliseconds), or why it cannot be a spec duration.
fn duration_text(d: Duration) -> Result<Value, String> {
    match u64::try_from(d.as_millis()) {
        Ok(ms) if ms <= MAX_DURATION_MS => Ok(Value::String(DurationMs(ms).to_string())),
        _ => Err(format!("{d:?} is longer than the 30 day limit")),
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { path: path.into(), message: message.into() }
}

/// A spec enum as its document form (`forbid`, `all_done`, ...).
fn enum_text(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A document being written, and the problems found on the way (paths relative to it).
#[derive(Debug, Clone, Default)]
struct Doc {
    fields: Map<String, Value>,
    problems: Vec<Problem>,
}

impl Doc {
    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.insert(key.to_string(), value.into());
    }

    fn set_duration(&mut self, key: &str, d: Duration) {
        match duration_text(d) {
            Ok(text) => self.set(key, text),
            Err(e) => self.problems.push(problem(key, e)),
        }
    }

    /// Sets `name` inside the object at `key`, creating it if needed.
    fn set_in(&mut self, key: &str, name: String, value: Value) {
        let entry = self.fields.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(name, value);
        }
    }

    /// Appends `items` to the list at `key`, creating it if needed.
    fn extend_list(&mut self, key: &str, items: impl IntoIterator<Item = Value>) {
        let entry = self.fields.entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.extend(items);
        }
    }

    /// Nests `other` at `key`, its problems prefixed with the key.
    fn nest(&mut self, key: &str, other: Doc) {
        self.problems.extend(other.problems.into_iter().map(|p| problem(format!("{key}.{}", p.path), p.message)));
        self.set(key, Value::Object(other.fields));
    }
}

/// A retry policy for a task or for a workflow's defaults. Unset fields fall back to the
/// workflow defaults, then to 1 attempt, 1 s backoff, 1 m maximum, multiplier 2.
///
/// ```
/// use std::time::Duration;
/// let retry = linkloom::Retry::attempts(5).backoff(Duration::from_secs(2)).max_backoff(Duration::from_secs(60));
/// let task = linkloom::TaskBuilder::worker("load", "loaders").retry(retry);
/// # let _ = task;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Retry {
    doc: Doc,
}

impl Retry {
    /// At most `max_attempts` attempts in all, the first included.
    ///
    /// ```
    /// let retry = linkloom::Retry::attempts(3);
    /// # let _ = retry;
    /// ```
    pub fn attempts(max_attempts: u32) -> Retry {
        let mut doc = Doc::default();
        doc.set("max_attempts", max_attempts);
        Retry { doc }
    }

    /// The pause before the first retry.
    ///
    /// ```
    /// let retry = linkloom::Retry::attempts(3).backoff(std::time::Duration::from_millis(500));
    /// # let _ = retry;
    /// ```
    pub fn backoff(mut self, backoff: Duration) -> Retry {
        self.doc.set_duration("backoff", backoff);
        self
    }

    /// The longest pause between attempts.
    ///
    /// ```
    /// let retry = linkloom::Retry::attempts(10).max_backoff(std::time::Duration::from_secs(300));
    /// # let _ = retry;
    /// ```
    pub fn max_backoff(mut self, max_backoff: Duration) -> Retry {
        self.doc.set_duration("max_backoff", max_backoff);
        self
    }

    /// How much each pause grows over the one before (1.0 to 10.0).
    ///
    /// ```
    /// let retry = linkloom::Retry::attempts(4).multiplier(3.0);
    /// # let _ = retry;
    /// ```
    pub fn multiplier(mut self, multiplier: f64) -> Retry {
        match serde_json::Number::from_f64(multiplier) {
            Some(number) => self.doc.set("multiplier", number),
            None => self.doc.problems.push(problem("multiplier", format!("{multiplier} is not a number"))),
        }
        self
    }
}

/// One task of a workflow, for [`WorkflowBuilder::task`]. Start with the constructor of its
/// kind; setting a field that belongs to another kind is reported by
/// [`WorkflowBuilder::build`].
///
/// ```
/// use linkloom::{TaskBuilder, When};
/// use serde_json::json;
///
/// let fetch = TaskBuilder::http("fetch", "http://reports.internal:9000/extract")
///     .input(json!({"region": "{{ params.region }}"}))
///     .header("x-team", "reports");
/// let transform = TaskBuilder::shell("transform", ["python3", "transform.py", "{{ tasks.fetch.output.rows }}"])
///     .depends_on(["fetch"]);
/// let notify = TaskBuilder::worker("notify", "mailers").depends_on(["transform"]).when(When::AllDone);
/// # let _ = (fetch, transform, notify);
/// ```
#[derive(Debug, Clone)]
pub struct TaskBuilder {
    doc: Doc,
}

impl TaskBuilder {
    fn of_kind(id: impl Into<String>, kind: &str) -> TaskBuilder {
        let mut doc = Doc::default();
        doc.set("id", id.into());
        doc.set("type", kind);
        TaskBuilder { doc }
    }

    /// An `http` task: the node POSTs to `url` (templated) and the backend answers (see
    /// [`TaskRequest`](crate::TaskRequest)).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::http("fetch", "http://127.0.0.1:9000/fetch").method("PUT");
    /// # let _ = task;
    /// ```
    pub fn http(id: impl Into<String>, url: impl Into<String>) -> TaskBuilder {
        let mut task = Self::of_kind(id, "http");
        task.doc.set("url", url.into());
        task
    }

    /// A `shell` task running an argv list (each element templated), without a shell.
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::shell("report", ["python3", "report.py", "--day", "{{ execution.scheduled_at }}"]);
    /// # let _ = task;
    /// ```
    pub fn shell(id: impl Into<String>, argv: impl IntoIterator<Item = impl Into<String>>) -> TaskBuilder {
        let mut task = Self::of_kind(id, "shell");
        let argv: Vec<Value> = argv.into_iter().map(|arg| Value::String(arg.into())).collect();
        task.doc.set("command", argv);
        task
    }

    /// A `shell` task running `script` with `sh -c`.
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::script("count", "wc -l < data.csv > count.txt");
    /// # let _ = task;
    /// ```
    pub fn script(id: impl Into<String>, script: impl Into<String>) -> TaskBuilder {
        let mut task = Self::of_kind(id, "shell");
        task.doc.set("command", script.into());
        task
    }

    /// A `worker` task, run by a worker that takes tasks from `queue`.
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::worker("resize", "images").input(serde_json::json!({"width": 640}));
    /// # let _ = task;
    /// ```
    pub fn worker(id: impl Into<String>, queue: impl Into<String>) -> TaskBuilder {
        let mut task = Self::of_kind(id, "worker");
        task.doc.set("queue", queue.into());
        task
    }

    /// A description for people.
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::worker("load", "loaders").description("loads the warehouse");
    /// # let _ = task;
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> TaskBuilder {
        self.doc.set("description", description.into());
        self
    }

    /// Tasks that must end before this one starts (added to any given before).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::worker("load", "loaders").depends_on(["extract", "transform"]);
    /// # let _ = task;
    /// ```
    pub fn depends_on(mut self, tasks: impl IntoIterator<Item = impl Into<String>>) -> TaskBuilder {
        self.doc.extend_list("depends_on", tasks.into_iter().map(|t| Value::String(t.into())));
        self
    }

    /// When the task may run, given how its dependencies ended (default: all succeeded).
    ///
    /// ```
    /// let cleanup = linkloom::TaskBuilder::script("cleanup", "rm -rf /tmp/run")
    ///     .depends_on(["load"])
    ///     .when(linkloom::When::AllDone);
    /// # let _ = cleanup;
    /// ```
    pub fn when(mut self, when: When) -> TaskBuilder {
        self.doc.set("when", enum_text(when));
        self
    }

    /// The longest one attempt may run (whole milliseconds, at most 30 days).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::worker("load", "loaders").timeout(std::time::Duration::from_secs(30));
    /// # let _ = task;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> TaskBuilder {
        self.doc.set_duration("timeout", timeout);
        self
    }

    /// The task's retry policy.
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::worker("load", "loaders").retry(linkloom::Retry::attempts(3));
    /// # let _ = task;
    /// ```
    pub fn retry(mut self, retry: Retry) -> TaskBuilder {
        self.doc.nest("retry", retry.doc);
        self
    }

    /// The task's input (JSON; strings may hold templates such as `{{ params.region }}`).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::worker("load", "loaders")
    ///     .input(serde_json::json!({"rows": "{{ tasks.extract.output.rows }}"}))
    ///     .depends_on(["extract"]);
    /// # let _ = task;
    /// ```
    pub fn input(mut self, input: Value) -> TaskBuilder {
        self.doc.set("input", input);
        self
    }

    /// `http` tasks: the method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`; POST when unset).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::http("fetch", "http://127.0.0.1:9000/").method("PUT");
    /// # let _ = task;
    /// ```
    pub fn method(mut self, method: impl Into<String>) -> TaskBuilder {
        self.doc.set("method", method.into());
        self
    }

    /// `http` tasks: a request header (the value is templated).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::http("fetch", "http://127.0.0.1:9000/").header("x-run", "{{ execution.id }}");
    /// # let _ = task;
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> TaskBuilder {
        self.doc.set_in("headers", name.into(), Value::String(value.into()));
        self
    }

    /// `shell` tasks: an environment variable (the value is templated).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::script("hello", "echo $NAME").env("NAME", "{{ params.name }}");
    /// # let _ = task;
    /// ```
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> TaskBuilder {
        self.doc.set_in("env", name.into(), Value::String(value.into()));
        self
    }

    /// `shell` tasks: the working directory (a fresh directory when unset).
    ///
    /// ```
    /// let task = linkloom::TaskBuilder::script("list", "ls").workdir("/srv/data");
    /// # let _ = task;
    /// ```
    pub fn workdir(mut self, workdir: impl Into<String>) -> TaskBuilder {
        self.doc.set("workdir", workdir.into());
        self
    }
}

/// A workflow: an id, optional schedule, parameters and defaults, and its tasks.
/// [`WorkflowBuilder::build`] validates it as the server will.
///
/// ```
/// use linkloom::{Concurrency, Retry, TaskBuilder, WorkflowBuilder};
/// use serde_json::json;
/// use std::time::Duration;
///
/// let spec = WorkflowBuilder::new("daily-report")
///     .description("Extracts, transforms and loads yesterday's numbers")
///     .schedule("0 6 * * *")
///     .timezone("Europe/Paris")
///     .concurrency(Concurrency::Forbid)
///     .param("region", "eu")
///     .default_retry(Retry::attempts(3).backoff(Duration::from_secs(2)))
///     .task(TaskBuilder::http("extract", "http://reports.internal:9000/extract")
///         .input(json!({"region": "{{ params.region }}"})))
///     .task(TaskBuilder::shell("transform", ["python3", "transform.py", "{{ tasks.extract.output.rows }}"])
///         .depends_on(["extract"])
///         .timeout(Duration::from_secs(30)))
///     .task(TaskBuilder::worker("load", "loaders").depends_on(["transform"]))
///     .build()?;
/// assert_eq!(spec.tasks.len(), 3);
/// # Ok::<(), linkloom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WorkflowBuilder {
    doc: Doc,
    tasks: Vec<TaskBuilder>,
}

impl WorkflowBuilder {
    /// A workflow with id `id` (lowercase letters, digits, `-` and `_`) and nothing else yet.
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello");
    /// # let _ = builder;
    /// ```
    pub fn new(id: impl Into<String>) -> WorkflowBuilder {
        let mut doc = Doc::default();
        doc.set("id", id.into());
        WorkflowBuilder { doc, tasks: Vec::new() }
    }

    /// A description for people.
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").description("says hello");
    /// # let _ = builder;
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> WorkflowBuilder {
        self.doc.set("description", description.into());
        self
    }

    /// A cron schedule: standard five fields (`*/5 * * * *`), six with seconds, or `@daily` and
    /// friends.
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").schedule("*/5 * * * *");
    /// # let _ = builder;
    /// ```
    pub fn schedule(mut self, schedule: impl Into<String>) -> WorkflowBuilder {
        self.doc.set("schedule", schedule.into());
        self
    }

    /// The IANA time zone of the schedule (UTC when unset).
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").schedule("0 9 * * 1-5").timezone("America/New_York");
    /// # let _ = builder;
    /// ```
    pub fn timezone(mut self, timezone: impl Into<String>) -> WorkflowBuilder {
        self.doc.set("timezone", timezone.into());
        self
    }

    /// What a tick does while an earlier execution still runs (default: run alongside).
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").concurrency(linkloom::Concurrency::BufferOne);
    /// # let _ = builder;
    /// ```
    pub fn concurrency(mut self, concurrency: Concurrency) -> WorkflowBuilder {
        self.doc.set("concurrency", enum_text(concurrency));
        self
    }

    /// Which ticks missed while the cluster was down or the workflow paused are fired (default:
    /// the latest).
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").catchup(linkloom::Catchup::All);
    /// # let _ = builder;
    /// ```
    pub fn catchup(mut self, catchup: Catchup) -> WorkflowBuilder {
        self.doc.set("catchup", enum_text(catchup));
        self
    }

    /// A default parameter (a trigger may override it).
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").param("name", "world").param("times", 3);
    /// # let _ = builder;
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> WorkflowBuilder {
        self.doc.set_in("params", name.into(), value.into());
        self
    }

    /// All default parameters at once (a JSON object), replacing any set before.
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").params(serde_json::json!({"name": "world"}));
    /// # let _ = builder;
    /// ```
    pub fn params(mut self, params: Value) -> WorkflowBuilder {
        self.doc.set("params", params);
        self
    }

    /// The timeout of every task that sets none.
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").default_timeout(std::time::Duration::from_secs(600));
    /// # let _ = builder;
    /// ```
    pub fn default_timeout(mut self, timeout: Duration) -> WorkflowBuilder {
        match duration_text(timeout) {
            Ok(text) => self.doc.set_in("defaults", "timeout".into(), text),
            Err(e) => self.doc.problems.push(problem("defaults.timeout", e)),
        }
        self
    }

    /// The retry policy of every task that sets none (field by field).
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").default_retry(linkloom::Retry::attempts(2));
    /// # let _ = builder;
    /// ```
    pub fn default_retry(mut self, retry: Retry) -> WorkflowBuilder {
        let Retry { doc } = retry;
        self.doc
            .problems
            .extend(doc.problems.into_iter().map(|p| problem(format!("defaults.retry.{}", p.path), p.message)));
        self.doc.set_in("defaults", "retry".into(), Value::Object(doc.fields));
        self
    }

    /// The longest a whole execution may run, from its creation.
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").execution_timeout(std::time::Duration::from_secs(3600));
    /// # let _ = builder;
    /// ```
    pub fn execution_timeout(mut self, timeout: Duration) -> WorkflowBuilder {
        self.doc.set_duration("execution_timeout", timeout);
        self
    }

    /// Adds a task (tasks keep the order they are added in).
    ///
    /// ```
    /// let builder = linkloom::WorkflowBuilder::new("hello").task(linkloom::TaskBuilder::script("say", "echo hi"));
    /// # let _ = builder;
    /// ```
    pub fn task(mut self, task: TaskBuilder) -> WorkflowBuilder {
        self.tasks.push(task);
        self
    }

    /// The spec, validated as the server will validate it. [`Error::Invalid`] lists every
    /// problem, each with its path (`tasks[1].depends_on[0]: unknown task `x``).
    ///
    /// ```
    /// use linkloom::{TaskBuilder, WorkflowBuilder};
    /// let err = WorkflowBuilder::new("hello")
    ///     .task(TaskBuilder::http("fetch", "ftp://example"))
    ///     .task(TaskBuilder::worker("load", "loaders").depends_on(["fetch", "nope"]))
    ///     .build()
    ///     .unwrap_err();
    /// let text = err.to_string();
    /// assert!(text.contains("tasks[0].url") && text.contains("tasks[1].depends_on[1]: unknown task `nope`"));
    /// ```
    pub fn build(self) -> Result<WorkflowSpec, Error> {
        let WorkflowBuilder { mut doc, tasks } = self;
        let mut list = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.into_iter().enumerate() {
            let path = format!("tasks[{i}]");
            doc.problems
                .extend(task.doc.problems.into_iter().map(|p| problem(format!("{path}.{}", p.path), p.message)));
            list.push(Value::Object(task.doc.fields));
        }
        doc.set("tasks", list);
        let Doc { fields, mut problems } = doc;
        match spec::parse_json(&Value::Object(fields).to_string()) {
            Ok(spec) => match spec::validate(&spec) {
                Ok(()) if problems.is_empty() => return Ok(spec),
                Ok(()) => {}
                Err(e) => problems.extend(e.problems),
            },
            Err(e) => problems.extend(e.problems),
        }
        let texts: Vec<String> = problems.iter().map(Problem::to_string).collect();
        Err(Error::Invalid(texts.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invalid(result: Result<WorkflowSpec, Error>) -> String {
        match result {
            Err(Error::Invalid(text)) => text,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_built_spec_matches_the_same_workflow_written_in_yaml() {
        let built = WorkflowBuilder::new("daily-report")
            .schedule("0 6 * * *")
            .timezone("Europe/Paris")
            .concurrency(Concurrency::Forbid)
            .param("region", "us")
            .default_retry(Retry::attempts(3).backoff(Duration::from_secs(2)).max_backoff(Duration::from_secs(60)))
            .task(TaskBuilder::http("extract", "http://reports.internal:9000/api/tasks/extract").input(json!({
                "region": "{{ params.region }}", "day": "{{ execution.scheduled_at }}"
            })))
            .task(
                TaskBuilder::shell(
                    "transform",
                    ["python3", "transform.py", "--rows", "{{ tasks.extract.output.rows }}"],
                )
                .depends_on(["extract"])
                .timeout(Duration::from_secs(30)),
            )
            .task(TaskBuilder::worker("load", "loaders").depends_on(["transform"]).retry(Retry::attempts(5)))
            .build()
            .unwrap();
        let yaml = r#"
id: daily-report
schedule: "0 6 * * *"
timezone: Europe/Paris
concurrency: forbid
params: {region: us}
defaults:
  retry: {max_attempts: 3, backoff: 2s, max_backoff: 1m}
tasks:
  - id: extract
    type: http
    url: http://reports.internal:9000/api/tasks/extract
    input: {region: "{{ params.region }}", day: "{{ execution.scheduled_at }}"}
  - id: transform
    type: shell
    command: ["python3", "transform.py", "--rows", "{{ tasks.extract.output.rows }}"]
    depends_on: [extract]
    timeout: 30s
  - id: load
    type: worker
    queue: loaders
    depends_on: [transform]
    retry: {max_attempts: 5}
"#;
        assert_eq!(built, parse_workflow(yaml).unwrap());
        // What the client sends is what the server parses.
        let json = serde_json::to_string(&built).unwrap();
        assert_eq!(spec::parse_json(&json).unwrap(), built);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let text = invalid(
            WorkflowBuilder::new("Bad Id")
                .schedule("61 * * * *")
                .execution_timeout(Duration::from_secs(31 * 24 * 3600))
                .task(TaskBuilder::http("fetch", "ftp://x").env("A", "b"))
                .task(TaskBuilder::worker("load", "loaders").depends_on(["nope"]).retry(Retry::attempts(0)))
                .task(TaskBuilder::script("load", "true").timeout(Duration::from_secs(40 * 24 * 3600)))
                .build(),
        );
        for expected in [
            "execution_timeout: ",
            "tasks[2].timeout: ",
            "id: `Bad Id` is not a valid workflow id",
            "schedule: ",
            "tasks[0].env: not allowed for a task of type http",
            "tasks[0].url: `ftp://x` must start with http:// or https://",
            "tasks[1].depends_on[0]: unknown task `nope`",
            "tasks[1].retry.max_attempts: 0 is out of range",
            "tasks[2].id: duplicate task id `load`",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
        assert_eq!(text.matches("; ").count(), 8, "{text}");
    }

    #[test]
    fn cycles_and_bad_templates_are_caught() {
        let text = invalid(
            WorkflowBuilder::new("loop")
                .task(TaskBuilder::worker("a", "q").depends_on(["b"]))
                .task(TaskBuilder::worker("b", "q").depends_on(["a"]))
                .build(),
        );
        assert!(text.contains("dependency cycle: a -> b -> a"), "{text}");
        let text = invalid(
            WorkflowBuilder::new("refs")
                .task(TaskBuilder::worker("a", "q").input(json!({"x": "{{ tasks.b.output.y }}"})))
                .task(TaskBuilder::worker("b", "q"))
                .build(),
        );
        assert!(text.contains("not upstream"), "{text}");
        assert!(invalid(WorkflowBuilder::new("empty").build()).contains("at least one task"));
        let text = invalid(WorkflowBuilder::new("p").params(json!([1])).task(TaskBuilder::worker("a", "q")).build());
        assert!(text.contains("params: must be a mapping"), "{text}");
    }
}
