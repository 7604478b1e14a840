//! Rendering of templates (`{{ params.x }}`, `{{ tasks.a.output.rows }}`) into task fields.
//!
//! Pure: the caller passes the execution and the outputs of finished tasks. A string that is one
//! template and nothing else keeps the referenced value's JSON type when rendered into JSON input;
//! anywhere else values are spliced in as text (strings as they are, other values as JSON). Where
//! text is parsed again — a shell script, a URL — the value is quoted or encoded for where it
//! lands ([`shell`], [`url`]), so it can never change the command or the destination. A reference
//! that cannot be resolved is an error naming it, which fails the attempt.

pub mod shell;
pub mod url;

use serde_json::Value;

use crate::ids::rfc3339;
use crate::spec::{find_template_refs, TemplateRef};
use crate::state::Execution;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{{{{ {reference} }}}}` cannot be resolved: {reason}")]
pub struct RenderError {
    pub reference: String,
    pub reason: String,
}

/// What templates of one execution can see.
pub struct RenderContext<'a> {
    pub execution: &'a Execution,
}

impl RenderContext<'_> {
    fn resolve(&self, expr: &str) -> Result<Value, RenderError> {
        let fail = |reason: String| RenderError { reference: expr.to_string(), reason };
        let parsed = find_template_refs(&format!("{{{{{expr}}}}}")).map_err(&fail)?;
        let parts: Vec<&str> = expr.split('.').map(str::trim).collect();
        match parsed.first() {
            Some(TemplateRef::Param(_)) => lookup(&self.execution.params.0, &parts[1..])
                .ok_or_else(|| fail(format!("the execution has no param `{}`", parts[1..].join(".")))),
            Some(TemplateRef::Execution(field)) => {
                let e = self.execution;
                Ok(match field.as_str() {
                    "id" => Value::String(e.id.clone()),
                    "workflow_id" => Value::String(e.workflow_id.clone()),
                    "scheduled_at" => e.scheduled_at_ms.map(|t| Value::String(rfc3339(t))).unwrap_or(Value::Null),
                    "trigger" => Value::String(e.trigger.to_string()),
                    "created_at" => Value::String(rfc3339(e.created_at_ms)),
                    other => return Err(fail(format!("unknown execution field `{other}`"))),
                })
            }
            Some(TemplateRef::TaskOutput { task, path }) => {
                let run = self.execution.task(task).ok_or_else(|| fail(format!("no task `{task}`")))?;
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                lookup(&run.output.0, &path).ok_or_else(|| {
                    fail(format!("task `{task}` output has no `{}` (status {})", path.join("."), run.status))
                })
            }
            Some(TemplateRef::Event { field, path }) => {
                let event = self.execution.event.as_ref().ok_or_else(|| {
                    fail(format!(
                        "execution `{}` was not started by an event (its trigger is {})",
                        self.execution.id, self.execution.trigger
                    ))
                })?;
                match field.as_str() {
                    "name" => Ok(Value::String(event.name.clone())),
                    "id" => Ok(Value::String(event.id.clone())),
                    _ => {
                        let path: Vec<&str> = path.iter().map(String::as_str).collect();
                        lookup(&event.payload.0, &path).ok_or_else(|| {
                            fail(format!("the payload of event `{}` has no `{}`", event.name, path.join(".")))
                        })
                    }
                }
            }
            None => Err(fail("empty template".into())),
        }
    }

    /// Renders `text` as text.
    pub fn render_str(&self, text: &str) -> Result<String, RenderError> {
        let (pieces, exprs) = split(text)?;
        let mut out = String::with_capacity(text.len());
        for (i, piece) in pieces.iter().enumerate() {
            out.push_str(piece);
            if let Some(expr) = exprs.get(i) {
                match self.resolve(expr)? {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                }
            }
        }
        Ok(out)
    }

    /// Renders a shell script (`sh -c` form): each value quoted for where it stands (see
    /// [`shell`]).
    pub fn render_shell_script(&self, script: &str) -> Result<String, RenderError> {
        let (pieces, exprs) = split(script)?;
        let contexts = shell::contexts(&pieces);
        let mut out = String::with_capacity(script.len());
        for (i, piece) in pieces.iter().enumerate() {
            out.push_str(piece);
            if let (Some(expr), Some(context)) = (exprs.get(i), contexts.get(i)) {
                let value = text_of(self.resolve(expr)?);
                let quoted = shell::quote(&value, *context).ok_or_else(|| RenderError {
                    reference: expr.to_string(),
                    reason: "it stands in a here-document, where no quoting is safe".into(),
                })?;
                out.push_str(&quoted);
            }
        }
        Ok(out)
    }

    /// Renders a task URL: each value percent-encoded for the part it stands in (see [`url`]).
    pub fn render_url(&self, url: &str) -> Result<String, RenderError> {
        url::check_literal_origin(url).map_err(|reason| RenderError { reference: url.to_string(), reason })?;
        let (pieces, exprs) = split(url)?;
        let parts = url::parts(&pieces);
        let mut out = String::with_capacity(url.len());
        for (i, piece) in pieces.iter().enumerate() {
            out.push_str(piece);
            if let (Some(expr), Some(part)) = (exprs.get(i), parts.get(i)) {
                out.push_str(&url::encode(&text_of(self.resolve(expr)?), *part));
            }
        }
        Ok(out)
    }

    /// Renders every string inside a JSON value.
    pub fn render_json(&self, value: &Value) -> Result<Value, RenderError> {
        Ok(match value {
            Value::String(s) => {
                let trimmed = s.trim();
                let whole = trimmed.starts_with("{{")
                    && trimmed.ends_with("}}")
                    && trimmed[2..trimmed.len() - 2].find("{{").is_none();
                if whole {
                    self.resolve(trimmed[2..trimmed.len() - 2].trim())?
                } else {
                    Value::String(self.render_str(s)?)
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.render_json(v)).collect::<Result<_, _>>()?),
            Value::Object(map) => Value::Object(
                map.iter().map(|(k, v)| Ok((k.clone(), self.render_json(v)?))).collect::<Result<_, RenderError>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// A value as text: strings as they are, anything else as JSON.
fn text_of(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The literal pieces of `text` and the template expressions between them
/// (`pieces.len() == exprs.len() + 1`).
pub(crate) fn split(text: &str) -> Result<(Vec<&str>, Vec<&str>), RenderError> {
    let (mut pieces, mut exprs) = (Vec::new(), Vec::new());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        pieces.push(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(RenderError { reference: after.to_string(), reason: "missing `}}`".into() });
        };
        exprs.push(after[..close].trim());
        rest = &after[close + 2..];
    }
    pieces.push(rest);
    Ok((pieces, exprs))
}

fn lookup<'v>(value: &'v Value, path: &[&str]) -> Option<Value> {
    let mut current: &'v Value = value;
    for part in path {
        current = match current {
            Value::Object(map) => map.get(*part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Json;
    use crate::spec::parse_yaml;
    use crate::state::{Command, State, Trigger};

    fn execution() -> Execution {
        let spec = parse_yaml("id: wf\nparams: {region: eu, n: 3}\ntasks: [{id: a, type: worker, queue: q}, {id: b, type: worker, queue: q, depends_on: [a]}]\n").unwrap();
        let mut state = State::default();
        state.apply(Command::PutWorkflow { spec, actor: None, at_ms: 0 });
        state.apply(Command::CreateExecution {
            execution_id: "wf:x".into(),
            workflow_id: "wf".into(),
            trigger: Trigger::Schedule,
            scheduled_at_ms: Some(1_767_247_200_000),
            params: Json::null(),
            actor: None,
            at_ms: 1,
        });
        let mut e = state.execution("wf:x").unwrap().into_owned();
        e.tasks[0].output = Json(serde_json::json!({"rows": 42, "names": ["x", "y"]}));
        e
    }

    #[test]
    fn renders_text_and_keeps_types_for_whole_values() {
        let e = execution();
        let ctx = RenderContext { execution: &e };
        assert_eq!(ctx.render_str("--rows={{ tasks.a.output.rows }} in {{params.region}}").unwrap(), "--rows=42 in eu");
        assert_eq!(ctx.render_str("{{ execution.scheduled_at }}").unwrap(), "2026-01-01T06:00:00.000Z");
        let input = serde_json::json!({"rows": "{{ tasks.a.output.rows }}", "first": "{{ tasks.a.output.names.0 }}", "n": "{{ params.n }}!"});
        assert_eq!(ctx.render_json(&input).unwrap(), serde_json::json!({"rows": 42, "first": "x", "n": "3!"}));
    }

    #[test]
    fn scripts_and_urls_cannot_be_changed_by_a_value() {
        let mut e = execution();
        e.tasks[0].output = Json(serde_json::json!({"name": "x; id > /tmp/pwn", "path": "../admin"}));
        let ctx = RenderContext { execution: &e };
        assert_eq!(
            ctx.render_shell_script("echo {{ tasks.a.output.name }} \"{{ params.region }}\"").unwrap(),
            "echo 'x; id > /tmp/pwn' \"eu\""
        );
        assert_eq!(
            ctx.render_url("http://h:9000/v1/{{ tasks.a.output.path }}?n={{ tasks.a.output.name }}").unwrap(),
            "http://h:9000/v1/..%2Fadmin?n=x%3B%20id%20%3E%20%2Ftmp%2Fpwn"
        );
        assert!(ctx.render_url("http://{{ params.region }}/x").is_err());
        let err = ctx.render_shell_script("cat <<EOF\n{{ params.region }}\nEOF\n").unwrap_err();
        assert!(err.reason.contains("here-document"), "{err}");
    }

    #[test]
    fn an_unresolvable_reference_is_named() {
        let e = execution();
        let ctx = RenderContext { execution: &e };
        let err = ctx.render_str("{{ tasks.b.output.rows }}").unwrap_err().to_string();
        assert!(err.contains("tasks.b.output.rows") && err.contains("pending"), "{err}");
        let err = ctx.render_str("{{ params.missing }}").unwrap_err().to_string();
        assert!(err.contains("params.missing"), "{err}");
    }
}
