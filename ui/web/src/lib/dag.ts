// Lays out a workflow's tasks as a left-to-right DAG with dagre, for the graph views.
//
// Pure: it takes task ids and their dependencies, answers positions and what is wrong with the
// graph (unknown dependencies, cycles), and leaves drawing to the component.

import { Graph, layout } from '@dagrejs/dagre';

export interface DagTask {
  id: string;
  depends_on?: readonly string[];
}

export interface DagNode {
  id: string;
  /** Top-left corner, as React Flow wants it (dagre answers centres). */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DagEdge {
  id: string;
  source: string;
  target: string;
}

export interface DagLayout {
  direction: Direction;
  nodes: DagNode[];
  edges: DagEdge[];
  width: number;
  height: number;
  /** Dependencies on task ids that are not in the list, as `task -> missing`. */
  unknown: { task: string; dependency: string }[];
  /** One dependency cycle, as a path of task ids that starts and ends on the same task. */
  cycle: string[] | null;
}

export const NODE_WIDTH = 168;
export const NODE_HEIGHT = 44;

export type Direction = 'LR' | 'TB';

export function layoutDag(tasks: readonly DagTask[], direction: Direction = 'LR'): DagLayout {
  const graph = new Graph();
  graph.setGraph({ rankdir: direction, nodesep: 24, ranksep: 56, marginx: 8, marginy: 8 });
  graph.setDefaultEdgeLabel(() => ({}));
  const ids = new Set<string>();
  for (const task of tasks) {
    // A duplicate id is the server's to report; draw it once.
    if (ids.has(task.id)) continue;
    ids.add(task.id);
    graph.setNode(task.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  }
  const edges: DagEdge[] = [];
  const unknown: DagLayout['unknown'] = [];
  const seen = new Set<string>();
  for (const task of tasks) {
    for (const dependency of task.depends_on ?? []) {
      const id = `${dependency}->${task.id}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (!ids.has(dependency)) {
        unknown.push({ task: task.id, dependency });
        continue;
      }
      graph.setEdge(dependency, task.id);
      edges.push({ id, source: dependency, target: task.id });
    }
  }
  layout(graph);
  const nodes: DagNode[] = [];
  let width = 0;
  let height = 0;
  for (const id of ids) {
    const n = graph.node(id) as { x: number; y: number; width: number; height: number };
    const node = { id, x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height };
    width = Math.max(width, node.x + node.width);
    height = Math.max(height, node.y + node.height);
    nodes.push(node);
  }
  return { direction, nodes, edges, width, height, unknown, cycle: findCycle(tasks, ids) };
}

/**
 * The zoom at which a layout fills `box` (capped at `maxZoom`), or 0 when the box is not measured.
 * The graph views compare it across directions: a chain of tasks reads better top to bottom on a
 * phone than at a third of its size from left to right.
 */
export function fitZoom(
  layout: Pick<DagLayout, 'width' | 'height'>,
  box: { width: number; height: number },
  maxZoom = 1.2,
): number {
  if (box.width <= 0 || box.height <= 0 || layout.width <= 0 || layout.height <= 0) return 0;
  return Math.min(maxZoom, box.width / layout.width, box.height / layout.height);
}

/** A dependency cycle among known tasks, or null; depth-first, in the tasks' order. */
export function findCycle(tasks: readonly DagTask[], known?: ReadonlySet<string>): string[] | null {
  const ids = known ?? new Set(tasks.map((t) => t.id));
  const deps = new Map<string, string[]>();
  for (const task of tasks) {
    if (!deps.has(task.id))
      deps.set(
        task.id,
        (task.depends_on ?? []).filter((d) => ids.has(d)),
      );
  }
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    state.set(id, 'open');
    path.push(id);
    for (const dep of deps.get(id) ?? []) {
      const s = state.get(dep);
      if (s === 'open') {
        // `id` depends on `dep`, which is on the path: read it in the direction work flows.
        const loop = path.slice(path.indexOf(dep));
        return [...loop, dep].reverse();
      }
      if (s === undefined) {
        const found = visit(dep);
        if (found) return found;
      }
    }
    path.pop();
    state.set(id, 'done');
    return null;
  };
  for (const id of deps.keys()) {
    if (state.get(id) === undefined) {
      const found = visit(id);
      if (found) return found;
    }
  }
  return null;
}
