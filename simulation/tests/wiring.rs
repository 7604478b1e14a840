//! The simulator must run the production wiring: every simulated node is built by
//! `linkloom_node::assemble`, the function `loom-node` calls. A hand-made copy of the wiring
//! (starting Raft, the engine or the router directly) would drift from production without any
//! simulation noticing, so this test refuses one.

use std::path::Path;

/// Calls that assemble a node by hand; only `linkloom_node::assemble` may make them.
const BY_HAND: [&str; 4] = ["ReplicatedNode::start", "linkloom_actors::start(", "linkloom_api::router(", "ApiState {"];

#[test]
fn simulated_nodes_are_assembled_as_loom_node_assembles_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut assembles = false;
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the simulation's sources") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            assembles |= text.contains("linkloom_node::assemble(");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if let Some(call) = BY_HAND.iter().find(|c| code.contains(**c)) {
                    offenders.push(format!("{}:{}: {call}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(assembles, "no simulated node is built with linkloom_node::assemble");
    assert!(offenders.is_empty(), "the simulation wires a node by hand:\n{}", offenders.join("\n"));
}
