//! Semantic validation of a parsed [`WorkflowSpec`]. Reports every problem, each with its path.

use std::collections::BTreeSet;

use super::{find_template_refs, Dag, Problem, SpecError, TaskKind, TaskSpec, TemplateRef, WorkflowSpec};
use crate::ids::{is_slug, SLUG_RULE};
use crate::json::Json;
use crate::limits;
use crate::schedule::{parse_timezone, CronSchedule};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Environment variables that change how a program loads or starts (loader, shell and
/// interpreter hooks): set by a workflow, they would run code of its choosing inside whatever the
/// node's allow-list lets it start. Also refused: every name with a prefix in [`HOOK_PREFIXES`].
pub const HOOK_VARIABLES: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PYTHONINSPECT",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "NLSPATH",
    "LOCPATH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
];

/// Name prefixes refused in a task's `env`: the dynamic loaders' (`LD_`, `DYLD_`), glibc's
/// allocator hooks, bash's exported functions, git's config injection, and the node's own
/// `LOOM_` variables (which it sets for the task).
pub const HOOK_PREFIXES: &[&str] = &["LD_", "DYLD_", "MALLOC_", "BASH_FUNC_", "GIT_CONFIG_", "LOOM_"];

/// Request headers a task may not set: the node sets them (`Idempotency-Key`, the signature), or
/// they belong to the connection.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "idempotency-key",
    "x-loom-signature",
];

/// Why a task's `env` may not hold `name`, if it may not.
fn env_problem(name: &str) -> Option<String> {
    let valid = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Some(format!("`{name}` is not a variable name (letters, digits and _, not starting with a digit)"));
    }
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("LOOM_") {
        return Some(format!("`{name}`: LOOM_* variables are set by the node for the task"));
    }
    if HOOK_VARIABLES.contains(&upper.as_str()) || HOOK_PREFIXES.iter().any(|p| upper.starts_with(p)) {
        return Some(format!(
            "`{name}` changes how programs load or start (a loader, shell or interpreter hook); a workflow may not set it"
        ));
    }
    None
}

/// Checks everything about `spec` that its shape does not. `Ok` means the state machine will
/// accept it.
pub fn validate(spec: &WorkflowSpec) -> Result<(), SpecError> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem { path, message });

    if !is_slug(&spec.id) {
        report("id".into(), format!("`{}` is not a valid workflow id: {SLUG_RULE}", spec.id));
    }
    if let Some(description) = &spec.description {
        if description.len() > limits::MAX_DESCRIPTION_BYTES {
            report("description".into(), format!("longer than {} bytes", limits::MAX_DESCRIPTION_BYTES));
        }
    }
    let timezone = spec.timezone.as_deref().unwrap_or("UTC");
    if let Err(e) = parse_timezone(timezone) {
        report("timezone".into(), e.to_string());
    } else if let Some(schedule) = &spec.schedule {
        if let Err(e) = CronSchedule::parse(schedule, timezone) {
            report("schedule".into(), e.to_string());
        }
    } else if spec.timezone.is_some() {
        report("timezone".into(), "set without a schedule".into());
    }
    if let Some(key) = &spec.signing_key {
        if !is_slug(key) {
            report("signing_key".into(), format!("`{key}` is not a valid key name: {SLUG_RULE}"));
        }
    }
    if !matches!(spec.params.0, serde_json::Value::Object(_)) {
        report("params".into(), "must be a mapping of names to values".into());
    } else if spec.params.encoded_len() > limits::CEILINGS.max_params_bytes as usize {
        report("params".into(), format!("larger than {} bytes as JSON", limits::CEILINGS.max_params_bytes));
    }
    if let Some(retry) = &spec.defaults.retry {
        check_retry(retry, "defaults.retry", &mut report);
    }

    if spec.tasks.is_empty() {
        report("tasks".into(), "a workflow needs at least one task".into());
    }
    // The cluster's own limit (see `limits::Tunable`) is checked when the workflow is stored.
    if spec.tasks.len() > limits::CEILINGS.max_tasks_per_workflow as usize {
        report(
            "tasks".into(),
            format!("{} tasks; at most {} are allowed", spec.tasks.len(), limits::CEILINGS.max_tasks_per_workflow),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, task) in spec.tasks.iter().enumerate() {
        if !seen.insert(task.id.as_str()) {
            report(format!("tasks[{i}].id"), format!("duplicate task id `{}`", task.id));
        }
    }
    for (i, task) in spec.tasks.iter().enumerate() {
        check_task(i, task, &seen, &mut report);
    }

    // The graph: cycles, then template references against each task's upstream set.
    match Dag::build(&spec.tasks) {
        Err(cycle) => report("tasks".into(), format!("dependency cycle: {}", cycle.join(" -> "))),
        Ok(dag) => {
            for (i, task) in spec.tasks.iter().enumerate() {
                let upstream = dag.upstream(&task.id).cloned().unwrap_or_default();
                for (path, text) in templated_fields(task) {
                    match find_template_refs(&text) {
                        Err(e) => report(format!("tasks[{i}].{path}"), e),
                        Ok(refs) => {
                            for r in refs {
                                if let TemplateRef::TaskOutput { task: other, .. } = r {
                                    if !upstream.contains(&other) {
                                        let why = if seen.contains(other.as_str()) {
                                            "is not upstream of this task (add it to depends_on)"
                                        } else {
                                            "does not exist"
                                        };
                                        report(
                                            format!("tasks[{i}].{path}"),
                                            format!("template refers to task `{other}`, which {why}"),
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    super::trigger::check_triggers(spec, &mut report);

    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError { problems })
    }
}

fn check_task(i: usize, task: &TaskSpec, ids: &BTreeSet<&str>, report: &mut impl FnMut(String, String)) {
    let at = |field: &str| format!("tasks[{i}].{field}");
    if !is_slug(&task.id) {
        report(at("id"), format!("`{}` is not a valid task id: {SLUG_RULE}", task.id));
    }
    let mut deps = BTreeSet::new();
    for (j, dep) in task.depends_on.iter().enumerate() {
        if !ids.contains(dep.as_str()) {
            report(at(&format!("depends_on[{j}]")), format!("unknown task `{dep}`"));
        } else if !deps.insert(dep) {
            report(at(&format!("depends_on[{j}]")), format!("`{dep}` is listed twice"));
        }
    }
    if task.depends_on.is_empty() && task.when == super::When::AnyFailed {
        report(at("when"), "any_failed needs depends_on: with no dependencies the task could never run".into());
    }
    if let Some(retry) = &task.retry {
        check_retry(retry, &at("retry"), report);
    }
    if let Some(Json(input)) = &task.input {
        if serde_json::to_vec(input).map(|v| v.len()).unwrap_or(0) > limits::MAX_INPUT_BYTES {
            report(at("input"), format!("larger than {} bytes as JSON", limits::MAX_INPUT_BYTES));
        }
    }
    // Fields that belong to one kind only.
    let present: [(&str, bool, TaskKind); 7] = [
        ("url", task.url.is_some(), TaskKind::Http),
        ("method", task.method.is_some(), TaskKind::Http),
        ("headers", !task.headers.is_empty(), TaskKind::Http),
        ("command", task.command.is_some(), TaskKind::Shell),
        ("env", !task.env.is_empty(), TaskKind::Shell),
        ("workdir", task.workdir.is_some(), TaskKind::Shell),
        ("queue", task.queue.is_some(), TaskKind::Worker),
    ];
    for (field, is_set, owner) in present {
        if is_set && owner != task.kind {
            report(at(field), format!("not allowed for a task of type {} (only for type {owner})", task.kind));
        }
    }
    match task.kind {
        TaskKind::Http => match &task.url {
            None => report(at("url"), "required for a task of type http".into()),
            Some(url) => {
                if let Err(e) = crate::render::url::check_literal_origin(url) {
                    report(at("url"), e);
                }
            }
        },
        TaskKind::Shell => match &task.command {
            None => report(at("command"), "required for a task of type shell".into()),
            Some(super::ShellCommand::Argv(argv)) if argv.is_empty() => {
                report(at("command"), "the argv list is empty".into())
            }
            Some(super::ShellCommand::Argv(argv)) if argv[0].contains("{{") => report(
                at("command[0]"),
                "the program must be written out; a template may stand only in its arguments".into(),
            ),
            Some(super::ShellCommand::Script(s)) if s.trim().is_empty() => {
                report(at("command"), "the command is empty".into())
            }
            Some(super::ShellCommand::Script(s)) => {
                // An unterminated template is reported with the other template problems.
                let pieces = crate::render::split(s).map(|(pieces, _)| pieces).unwrap_or_default();
                if crate::render::shell::contexts(&pieces).contains(&crate::render::shell::ShellContext::HereDocument) {
                    report(
                        at("command"),
                        "a template inside a here-document (<<) cannot be quoted safely: pass the value in env or input instead".into(),
                    );
                }
            }
            Some(super::ShellCommand::Argv(_)) => {}
        },
        TaskKind::Worker => match &task.queue {
            None => report(at("queue"), "required for a task of type worker".into()),
            Some(queue) if !is_slug(queue) => {
                report(at("queue"), format!("`{queue}` is not a valid queue name: {SLUG_RULE}"))
            }
            Some(_) => {}
        },
    }
    if let Some(method) = &task.method {
        if !METHODS.contains(&method.as_str()) {
            report(at("method"), format!("`{method}` is not one of {}", METHODS.join(", ")));
        }
    }
    for name in task.env.keys() {
        if let Some(problem) = env_problem(name) {
            report(at(&format!("env.{name}")), problem);
        }
    }
    for name in task.headers.keys() {
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            report(at(&format!("headers.{name}")), format!("`{name}` is not a header name"));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            report(
                at(&format!("headers.{name}")),
                format!("`{name}` is set by the node or the connection, not by a workflow"),
            );
        }
    }
}

fn check_retry(retry: &super::RetrySpec, path: &str, report: &mut impl FnMut(String, String)) {
    if let Some(n) = retry.max_attempts {
        if n == 0 || n > limits::MAX_ATTEMPTS_PER_TASK {
            report(format!("{path}.max_attempts"), format!("{n} is out of range 1-{}", limits::MAX_ATTEMPTS_PER_TASK));
        }
    }
    if let Some(m) = retry.multiplier {
        if !(1.0..=10.0).contains(&m) {
            report(format!("{path}.multiplier"), format!("{m} is out of range 1.0-10.0"));
        }
    }
    if let (Some(b), Some(max)) = (retry.backoff, retry.max_backoff) {
        if b > max {
            report(format!("{path}.backoff"), format!("{b} is longer than max_backoff {max}"));
        }
    }
}

/// Every templated string field of a task, with its path relative to the task.
fn templated_fields(task: &TaskSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(url) = &task.url {
        out.push(("url".to_string(), url.clone()));
    }
    for (k, v) in &task.headers {
        out.push((format!("headers.{k}"), v.clone()));
    }
    for (k, v) in &task.env {
        out.push((format!("env.{k}"), v.clone()));
    }
    match &task.command {
        Some(super::ShellCommand::Argv(argv)) => {
            for (j, arg) in argv.iter().enumerate() {
                out.push((format!("command[{j}]"), arg.clone()));
            }
        }
        Some(super::ShellCommand::Script(s)) => out.push(("command".to_string(), s.clone())),
        None => {}
    }
    if let Some(Json(input)) = &task.input {
        collect_strings(input, "input".to_string(), &mut out);
    }
    out
}

fn collect_strings(value: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(s) => out.push((path, s.clone())),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_strings(item, format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                collect_strings(v, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{parse_json, parse_yaml, validate};

    const EXAMPLE: &str = r#"
id: daily-report
description: Build and send the daily report
schedule: "0 6 * * *"
timezone: Europe/Kyiv
concurrency: forbid
catchup: latest
params: {region: eu}
defaults:
  timeout: 5m
  retry: {max_attempts: 3, backoff: 2s, max_backoff: 1m, multiplier: 2.0}
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
    when: all_success
    retry: {max_attempts: 5}
"#;

    fn problems(yaml: &str) -> String {
        match parse_yaml(yaml) {
            Err(e) => e.to_string(),
            Ok(spec) => validate(&spec).err().map(|e| e.to_string()).unwrap_or_default(),
        }
    }

    #[test]
    fn the_documented_example_is_valid() {
        let spec = parse_yaml(EXAMPLE).unwrap();
        validate(&spec).unwrap();
        assert_eq!(spec.tasks.len(), 3);
        let load = spec.task("load").unwrap();
        let policy = spec.retry_policy(load);
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.backoff.0, 2_000);
        assert_eq!(spec.task_timeout(spec.task("transform").unwrap()).unwrap().0, 30_000);
    }

    #[test]
    fn every_example_workflow_is_valid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/workflows");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).expect("examples/workflows exists") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("readable");
                let spec = parse_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                validate(&spec).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                checked += 1;
            }
        }
        assert!(checked > 0, "no examples found in {dir}");
    }

    #[test]
    fn json_and_yaml_agree() {
        let spec = parse_yaml(EXAMPLE).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(parse_json(&json).unwrap(), spec);
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let err = problems("id: a\ntasks:\n  - id: t\n    type: worker\n    queue: q\n    retries: 3\n");
        assert!(err.contains("tasks[0]") && err.contains("unknown field `retries`"), "{err}");
        let err = problems("id: a\ncolour: blue\ntasks: []\n");
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn each_problem_is_named() {
        let cases = [
            ("id: Bad_Id\ntasks: [{id: t, type: worker, queue: q}]", "not a valid workflow id"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q}, {id: t, type: worker, queue: q}]", "duplicate task id `t`"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q, depends_on: [nope]}]", "tasks[0].depends_on[0]: unknown task `nope`"),
            ("id: a\nschedule: '61 * * * *'\ntasks: [{id: t, type: worker, queue: q}]", "minute field `61`"),
            ("id: a\nschedule: '@daily'\ntimezone: Mars/Base\ntasks: [{id: t, type: worker, queue: q}]", "unknown time zone `Mars/Base`"),
            ("id: a\ntasks: [{id: t, type: http}]", "tasks[0].url: required"),
            ("id: a\ntasks: [{id: t, type: shell, command: [echo], queue: q}]", "tasks[0].queue: not allowed"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q, timeout: 5 minutes}]", "5 minutes"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q, retry: {max_attempts: 0}}]", "max_attempts: 0 is out of range"),
            ("id: a\ntasks: []", "at least one task"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q, input: {x: '{{ tasks.u.output.y }}'}}, {id: u, type: worker, queue: q}]", "not upstream"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q, input: {x: '{{ tasks.zz.output }}'}}]", "does not exist"),
            ("id: a\ntasks: [{id: t, type: teleport}]", "unknown variant `teleport`"),
            ("id: a\ntasks: [{id: t, type: http, url: 'ftp://x'}]", "must start with http"),
            ("id: a\ntasks: [{id: t, type: worker, queue: q, when: any_failed}]", "any_failed needs depends_on"),
            ("id: a\ntasks: x: y\n", "line 2"),
        ];
        for (yaml, expected) in cases {
            let err = problems(yaml);
            assert!(err.contains(expected), "for {yaml:?}: expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn cycles_are_listed_as_a_path() {
        let yaml = "id: a\ntasks:\n - {id: x, type: worker, queue: q, depends_on: [z]}\n - {id: y, type: worker, queue: q, depends_on: [x]}\n - {id: z, type: worker, queue: q, depends_on: [y]}\n";
        let err = problems(yaml);
        assert!(err.contains("dependency cycle: x -> y -> z -> x"), "{err}");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let yaml = "id: a\ntasks:\n - {id: x, type: http}\n - {id: y, type: shell}\n";
        let err = parse_yaml(yaml).map(|s| validate(&s).unwrap_err()).unwrap();
        assert_eq!(err.problems.len(), 2, "{err}");
    }
}
