//! Template references (`{{ params.region }}`, `{{ tasks.extract.output.rows }}`) found in task
//! fields. Rendering happens in the engine; here they are only found and checked, so that a
//! reference to a task that is not upstream is an error at registration, not at 3 a.m.

/// A reference found between `{{` and `}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    /// `params.NAME[.more]`
    Param(String),
    /// `execution.FIELD`
    Execution(String),
    /// `tasks.ID.output[.path]`
    TaskOutput { task: String, path: Vec<String> },
    /// `event.name`, `event.id`, `event.payload[.path]`: the event that started the execution.
    Event { field: String, path: Vec<String> },
}

/// Execution fields a template may name.
pub const EXECUTION_FIELDS: [&str; 5] = ["id", "workflow_id", "scheduled_at", "trigger", "created_at"];

/// Finds every template reference in `text`. Returns an error naming the first malformed one.
pub fn find_template_refs(text: &str) -> Result<Vec<TemplateRef>, String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| format!("unterminated template in `{text}`: missing `}}}}`"))?;
        let expr = after[..close].trim();
        refs.push(parse_ref(expr)?);
        rest = &after[close + 2..];
    }
    Ok(refs)
}

fn parse_ref(expr: &str) -> Result<TemplateRef, String> {
    let parts: Vec<&str> = expr.split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("template `{{{{ {expr} }}}}` is not a dotted name"));
    }
    match parts.as_slice() {
        ["params", name, ..] => Ok(TemplateRef::Param(name.to_string())),
        ["execution", field] if EXECUTION_FIELDS.contains(field) => Ok(TemplateRef::Execution(field.to_string())),
        ["execution", ..] => {
            Err(format!("template `{{{{ {expr} }}}}`: execution has the fields {}", EXECUTION_FIELDS.join(", ")))
        }
        ["tasks", task, "output", path @ ..] => {
            Ok(TemplateRef::TaskOutput { task: task.to_string(), path: path.iter().map(|p| p.to_string()).collect() })
        }
        ["tasks", ..] => Err(format!("template `{{{{ {expr} }}}}`: expected tasks.<id>.output[.field...]")),
        ["event", field @ ("name" | "id")] => Ok(TemplateRef::Event { field: field.to_string(), path: Vec::new() }),
        ["event", "payload", path @ ..] => {
            Ok(TemplateRef::Event { field: "payload".into(), path: path.iter().map(|p| p.to_string()).collect() })
        }
        ["event", ..] => {
            Err(format!("template `{{{{ {expr} }}}}`: expected event.name, event.id or event.payload[.field...]"))
        }
        _ => Err(format!("template `{{{{ {expr} }}}}`: a reference starts with params., execution., tasks. or event.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_all_kinds() {
        let refs = find_template_refs("{{ params.region }}/{{execution.id}}/{{ tasks.a.output.rows }}").unwrap();
        assert_eq!(
            refs,
            vec![
                TemplateRef::Param("region".into()),
                TemplateRef::Execution("id".into()),
                TemplateRef::TaskOutput { task: "a".into(), path: vec!["rows".into()] },
            ]
        );
        assert!(find_template_refs("no templates").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert!(find_template_refs("{{ params.x").unwrap_err().contains("unterminated"));
        assert!(find_template_refs("{{ env.HOME }}").is_err());
        assert!(find_template_refs("{{ execution.nope }}").is_err());
        assert!(find_template_refs("{{ tasks.a.result }}").is_err());
        assert!(find_template_refs("{{ params..x }}").is_err());
        assert!(find_template_refs("{{ event.payload.order.id }}").is_ok());
        assert!(find_template_refs("{{ event.colour }}").unwrap_err().contains("event.payload"));
    }
}
