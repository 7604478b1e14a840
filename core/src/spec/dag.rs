//! The task graph of a workflow: cycle detection with the cycle's path, a topological order, and
//! each task's upstream set (for template references).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use super::TaskSpec;

/// A validated DAG over task ids (edges point from a dependency to its dependent).
#[derive(Debug, Clone)]
pub struct Dag {
    order: Vec<String>,
    upstream: BTreeMap<String, BTreeSet<String>>,
}

impl Dag {
    /// Builds the DAG. Dependencies on unknown tasks are ignored here (validation reports them);
    /// a cycle is returned as its path, first task repeated at the end: `a -> b -> c -> a`.
    pub fn build(tasks: &[TaskSpec]) -> Result<Dag, Vec<String>> {
        let mut graph: DiGraph<&str, ()> = DiGraph::new();
        let mut index: BTreeMap<&str, NodeIndex> = BTreeMap::new();
        for task in tasks {
            index.entry(task.id.as_str()).or_insert_with(|| graph.add_node(task.id.as_str()));
        }
        for task in tasks {
            for dep in &task.depends_on {
                if let (Some(&from), Some(&to)) = (index.get(dep.as_str()), index.get(task.id.as_str())) {
                    graph.update_edge(from, to, ());
                }
            }
        }
        let sorted = match toposort(&graph, None) {
            Ok(sorted) => sorted,
            Err(cycle) => return Err(cycle_path(&graph, cycle.node_id())),
        };
        let order: Vec<String> = sorted.iter().map(|n| graph[*n].to_string()).collect();
        let mut upstream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for node in &sorted {
            let mut set = BTreeSet::new();
            for dep in graph.neighbors_directed(*node, petgraph::Direction::Incoming) {
                set.insert(graph[dep].to_string());
                if let Some(theirs) = upstream.get(graph[dep]) {
                    set.extend(theirs.iter().cloned());
                }
            }
            upstream.insert(graph[*node].to_string(), set);
        }
        Ok(Dag { order, upstream })
    }

    /// Task ids, each after all of its dependencies.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// Every task `task` depends on, directly or transitively.
    pub fn upstream(&self, task: &str) -> Option<&BTreeSet<String>> {
        self.upstream.get(task)
    }
}

/// Finds a cycle through `start` by depth-first search and returns it as a path.
fn cycle_path(graph: &DiGraph<&str, ()>, start: NodeIndex) -> Vec<String> {
    // Iterative DFS keeping the current path; the first back edge to a node on the path closes a
    // cycle. `start` is known to lie on one (toposort said so), but any cycle found is reported.
    let mut on_path: Vec<NodeIndex> = vec![start];
    let mut iters = vec![sorted_successors(graph, start)];
    let mut done: BTreeSet<NodeIndex> = BTreeSet::new();
    while let Some(next) = iters.last_mut().and_then(|it| it.pop()) {
        if let Some(pos) = on_path.iter().position(|n| *n == next) {
            // Start the cycle at its smallest name, so the same cycle always reads the same.
            let mut path: Vec<String> = on_path[pos..].iter().map(|n| graph[*n].to_string()).collect();
            let smallest = path.iter().enumerate().min_by(|a, b| a.1.cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
            path.rotate_left(smallest);
            path.push(path[0].clone());
            return path;
        }
        if done.contains(&next) {
            continue;
        }
        on_path.push(next);
        iters.push(sorted_successors(graph, next));
        while iters.last().is_some_and(|it| it.is_empty()) {
            iters.pop();
            if let Some(finished) = on_path.pop() {
                done.insert(finished);
            }
        }
    }
    vec![graph[start].to_string(), graph[start].to_string()]
}

/// Successors in reverse name order, so that popping visits them in name order (stable output).
fn sorted_successors(graph: &DiGraph<&str, ()>, node: NodeIndex) -> Vec<NodeIndex> {
    let mut next: Vec<NodeIndex> = graph.neighbors(node).collect();
    next.sort_by(|a, b| graph[*b].cmp(graph[*a]));
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{TaskKind, When};

    fn task(id: &str, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            kind: TaskKind::Worker,
            description: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            when: When::AllSuccess,
            timeout: None,
            retry: None,
            input: None,
            url: None,
            method: None,
            headers: Default::default(),
            command: None,
            env: Default::default(),
            workdir: None,
            queue: Some("q".into()),
        }
    }

    #[test]
    fn orders_dependencies_first_and_collects_upstream() {
        let dag = Dag::build(&[task("c", &["b"]), task("b", &["a"]), task("a", &[])]).unwrap();
        assert_eq!(dag.order(), ["a", "b", "c"]);
        let up: Vec<_> = dag.upstream("c").unwrap().iter().cloned().collect();
        assert_eq!(up, ["a", "b"]);
    }

    #[test]
    fn reports_the_cycle_as_a_path() {
        let err = Dag::build(&[task("a", &["c"]), task("b", &["a"]), task("c", &["b"]), task("d", &[])]).unwrap_err();
        assert_eq!(err.first(), err.last());
        assert_eq!(err.len(), 4, "{err:?}");
        assert_eq!(err.join(" -> "), "a -> b -> c -> a");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let err = Dag::build(&[task("a", &["a"])]).unwrap_err();
        assert_eq!(err, ["a", "a"]);
    }
}
