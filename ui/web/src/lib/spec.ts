// Client-side reading of a workflow's YAML: the tasks and dependencies for the live preview, and
// where in the text a problem the server reported (`tasks[1].depends_on[0]`) sits.
//
// The server stays the judge of what is valid; this only draws what it can and points at lines.

import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import type { DagTask } from './dag';

/** A task as far as the preview reads it: enough to draw it, and where it starts in the text. */
export interface PreviewTask extends DagTask {
  type?: string;
  /** The 1-based line its entry starts on. */
  line: number | null;
}

export interface SpecPreview {
  id: string | null;
  tasks: PreviewTask[];
  /** Why the preview is partial or empty: YAML syntax errors, or a shape that is not a workflow. */
  problems: { line: number | null; message: string }[];
}

export function previewSpec(text: string): SpecPreview {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const problems: SpecPreview['problems'] = doc.errors.map((e) => ({
    line: e.linePos?.[0]?.line ?? (e.pos ? lines.linePos(e.pos[0]).line : null),
    message: e.message.split('\n')[0] ?? e.message,
  }));
  if (problems.length > 0) return { id: null, tasks: [], problems };
  const value: unknown = doc.toJS();
  if (!isObject(value)) {
    return { id: null, tasks: [], problems: [{ line: 1, message: 'a workflow is a mapping with `id` and `tasks`' }] };
  }
  const id = typeof value.id === 'string' ? value.id : null;
  if (!Array.isArray(value.tasks)) {
    return {
      id,
      tasks: [],
      problems: [{ line: lineOf(text, ['tasks']), message: '`tasks` should be a list of tasks' }],
    };
  }
  const entries = doc.get('tasks', true);
  const lineOfEntry = (i: number): number | null => {
    const start = isSeq(entries) ? (entries.items[i] as Node | undefined)?.range?.[0] : undefined;
    return start === undefined ? null : lines.linePos(start).line;
  };
  const tasks: PreviewTask[] = [];
  value.tasks.forEach((task: unknown, i: number) => {
    if (!isObject(task) || typeof task.id !== 'string' || task.id === '') {
      problems.push({ line: lineOfEntry(i), message: `tasks[${i}] has no id` });
      return;
    }
    const deps = Array.isArray(task.depends_on)
      ? task.depends_on.filter((d): d is string => typeof d === 'string')
      : [];
    const type = typeof task.type === 'string' ? task.type : undefined;
    tasks.push({ id: task.id, depends_on: deps, type, line: lineOfEntry(i) });
  });
  return { id, tasks, problems };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `tasks[1].depends_on[0]` → `['tasks', 1, 'depends_on', 0]`. */
export function parsePath(path: string): (string | number)[] {
  const segments: (string | number)[] = [];
  for (const part of path.split('.')) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!match) {
      segments.push(part);
      continue;
    }
    if (match[1]) segments.push(match[1]);
    for (const index of (match[2] ?? '').matchAll(/\[(\d+)\]/g)) segments.push(Number(index[1]));
  }
  return segments;
}

/**
 * The 1-based line of the deepest part of `path` present in `text` (a map key's own line for a
 * field), or null when not even the first part is there or the YAML does not parse.
 */
export function lineOf(text: string, path: string | (string | number)[]): number | null {
  const segments = typeof path === 'string' ? parsePath(path) : path;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) return null;
  let node: unknown = doc.contents;
  let offset: number | null = null;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      const key = pair.key as Node;
      if (key.range) offset = key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (!item) break;
      const range = (item as Node).range;
      if (range) offset = range[0];
      node = item;
    } else {
      break;
    }
  }
  return offset === null ? null : lines.linePos(offset).line;
}
