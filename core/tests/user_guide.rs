//! Holds docs/user-guide.md to the code. Users copy the guide's examples, so each must do what
//! the guide says: every ```yaml block is a workflow the cluster accepts, every ```yaml-invalid
//! block is refused, and every ```json block parses. A refused block that validates on its own
//! shows a chaining cycle, which only the state can see: it is stored after every ```yaml block
//! before it, and must be refused as a cycle. The test also checks that the guide still shows
//! each trigger kind and template family, so that it cannot pass by having no examples.

use std::collections::BTreeSet;

use linkloom_core::spec::{find_template_refs, parse_and_validate_yaml, TemplateRef, TriggerKind};
use linkloom_core::{Command, Response, State, WorkflowSpec};

/// A fenced block of the guide.
struct Block {
    info: String,
    /// The line of its opening fence, counted from 1.
    line: usize,
    text: String,
}

fn guide_blocks() -> Vec<Block> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/user-guide.md");
    let guide = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in guide.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block { info: info.trim().to_string(), line: i + 1, text: String::new() })
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    if let Some(block) = open {
        panic!("docs/user-guide.md:{}: the block is never closed", block.line);
    }
    blocks
}

fn of_kind<'a>(blocks: &'a [Block], info: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    blocks.iter().filter(move |b| b.info == info)
}

#[test]
fn every_yaml_example_is_a_valid_workflow_and_together_they_show_every_feature() {
    let blocks = guide_blocks();
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    let mut count = 0;
    for block in of_kind(&blocks, "yaml") {
        count += 1;
        let spec = match parse_and_validate_yaml(&block.text) {
            Ok(spec) => spec,
            Err(e) => {
                problems.push(format!("docs/user-guide.md:{}: {e}", block.line));
                continue;
            }
        };
        if spec.schedule.is_some() {
            shown.insert("schedule trigger");
        }
        for trigger in spec.triggers.iter().filter_map(|t| t.kind()) {
            shown.insert(match trigger {
                TriggerKind::Event { .. } => "event trigger",
                TriggerKind::Workflow { .. } => "workflow trigger",
                TriggerKind::Webhook { .. } => "webhook trigger",
            });
        }
        for reference in find_template_refs(&block.text).unwrap_or_default() {
            shown.insert(match reference {
                TemplateRef::Param(_) => "params template",
                TemplateRef::Execution(_) => "execution template",
                TemplateRef::TaskOutput { .. } => "tasks template",
                TemplateRef::Event { .. } => "event template",
            });
        }
    }
    assert!(problems.is_empty(), "examples that do not validate:\n{}", problems.join("\n"));
    assert!(count >= 8, "only {count} ```yaml blocks in the guide; expected at least 8");
    let wanted = [
        "schedule trigger",
        "event trigger",
        "workflow trigger",
        "webhook trigger",
        "params template",
        "tasks template",
        "event template",
    ];
    for feature in wanted {
        assert!(shown.contains(feature), "no ```yaml example in the guide shows a {feature}");
    }
}

#[test]
fn every_yaml_invalid_example_is_refused() {
    let blocks = guide_blocks();
    let mut refused_by_state = 0;
    let mut count = 0;
    for block in of_kind(&blocks, "yaml-invalid") {
        count += 1;
        let Ok(spec) = parse_and_validate_yaml(&block.text) else { continue };
        // Valid alone: it must close a chaining cycle with the workflows shown before it.
        let mut state = State::default();
        let earlier = of_kind(&blocks, "yaml").filter(|b| b.line < block.line);
        for (at_ms, earlier) in earlier.enumerate() {
            let earlier_spec = parse_and_validate_yaml(&earlier.text).unwrap_or_else(|e| {
                panic!("docs/user-guide.md:{}: {e}", earlier.line);
            });
            match put(&mut state, earlier_spec, at_ms as i64) {
                Response::WorkflowStored { .. } => {}
                other => panic!("docs/user-guide.md:{}: not stored: {other:?}", earlier.line),
            }
        }
        match put(&mut state, spec, 1_000) {
            Response::Rejected(r) if r.to_string().contains("chaining cycle") => refused_by_state += 1,
            other => panic!(
                "docs/user-guide.md:{}: validates alone, so it should close a chaining cycle with \
                 the workflows shown before it, but storing it answered {other:?}",
                block.line
            ),
        }
    }
    assert!(count >= 2, "only {count} ```yaml-invalid blocks in the guide");
    assert!(refused_by_state >= 1, "no ```yaml-invalid block shows a chaining cycle");
}

#[test]
fn every_json_block_parses() {
    let blocks = guide_blocks();
    let mut count = 0;
    for block in of_kind(&blocks, "json") {
        count += 1;
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&block.text) {
            panic!("docs/user-guide.md:{}: not JSON: {e}", block.line);
        }
    }
    assert!(count >= 3, "only {count} ```json blocks in the guide");
}

fn put(state: &mut State, spec: WorkflowSpec, at_ms: i64) -> Response {
    state.apply(Command::PutWorkflow { spec, actor: None, at_ms })
}
