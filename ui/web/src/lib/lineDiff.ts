// A line diff of two texts, for comparing a workflow's versions.
//
// Myers' O(ND) algorithm over lines, after the common head and tail are set aside. Its work
// grows with the number of differences D, so D is bounded: past `MAX_EDITS` the changed middle is
// reported as removed and then added (a coarse diff) instead of hanging the tab on two unrelated
// 5,000-line specs. Pure: no DOM, no clock.

export type DiffOp = 'same' | 'removed' | 'added';

export interface DiffLine {
  op: DiffOp;
  text: string;
  /** 1-based line in the old text; null for an added line. */
  oldLine: number | null;
  /** 1-based line in the new text; null for a removed line. */
  newLine: number | null;
}

export interface LineDiff {
  lines: DiffLine[];
  added: number;
  removed: number;
  /** The edit distance passed the bound: the changed middle is whole blocks, not a minimal diff. */
  coarse: boolean;
}

/** The most line edits searched for; about MAX_EDITS² / 2 numbers of memory at the limit. */
export const MAX_EDITS = 1000;

/** Lines of a text; a final newline ends the last line rather than starting an empty one. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r\n|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The lines that turn `before` into `after`, in order, with both texts' line numbers. */
export function diffLines(before: readonly string[], after: readonly string[], maxEdits = MAX_EDITS): LineDiff {
  // Equal strings get equal numbers, so the inner loop compares integers.
  const ids = new Map<string, number>();
  const intern = (line: string) => {
    let id = ids.get(line);
    if (id === undefined) ids.set(line, (id = ids.size));
    return id;
  };
  const a = Int32Array.from(before, intern);
  const b = Int32Array.from(after, intern);

  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;

  const middle = shortestEdit(a.subarray(head, a.length - tail), b.subarray(head, b.length - tail), maxEdits);
  const ops: DiffOp[] = [
    ...repeat('same', head),
    ...(middle ?? [...repeat('removed', a.length - head - tail), ...repeat('added', b.length - head - tail)]),
    ...repeat('same', tail),
  ];

  const lines: DiffLine[] = [];
  let i = 0;
  let j = 0;
  let added = 0;
  let removed = 0;
  for (const op of ops) {
    if (op === 'same') {
      lines.push({ op, text: before[i]!, oldLine: ++i, newLine: ++j });
    } else if (op === 'removed') {
      lines.push({ op, text: before[i]!, oldLine: ++i, newLine: null });
      removed++;
    } else {
      lines.push({ op, text: after[j]!, oldLine: null, newLine: ++j });
      added++;
    }
  }
  return { lines, added, removed, coarse: middle === null };
}

function repeat(op: DiffOp, n: number): DiffOp[] {
  return new Array<DiffOp>(n).fill(op);
}

/**
 * Myers' greedy forward search: `v[k]` is the furthest x reached on diagonal k = x - y. Each
 * round d keeps a copy of `v` for diagonals -d..d so the path can be walked back; null when more
 * than `maxEdits` edits would be needed.
 */
function shortestEdit(a: Int32Array, b: Int32Array, maxEdits: number): DiffOp[] | null {
  const n = a.length;
  const m = b.length;
  const limit = Math.min(n + m, maxEdits);
  const offset = limit + 1;
  const v = new Int32Array(2 * limit + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= limit; d++) {
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!);
      let x = down ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return walkBack(trace, n, m, d);
    }
    trace.push(v.slice(offset - d, offset + d + 1));
  }
  return null;
}

/** The edit path found in round `edits`, read backwards from the end through the saved rounds. */
function walkBack(trace: readonly Int32Array[], n: number, m: number, edits: number): DiffOp[] {
  const ops: DiffOp[] = [];
  let x = n;
  let y = m;
  for (let d = edits; d > 0; d--) {
    const previous = trace[d - 1]!; // diagonals -(d-1)..(d-1), at index k + d - 1
    const at = (k: number) => previous[k + d - 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const fromK = down ? k + 1 : k - 1;
    const fromX = at(fromK);
    const fromY = fromX - fromK;
    // The snake that followed the edit, then the edit itself.
    while (x > (down ? fromX : fromX + 1) && y > (down ? fromY + 1 : fromY)) {
      ops.push('same');
      x--;
      y--;
    }
    ops.push(down ? 'added' : 'removed');
    x = fromX;
    y = fromY;
  }
  while (x > 0) {
    ops.push('same');
    x--;
  }
  return ops.reverse();
}

/** A run of unchanged lines left out of view, between two hunks. */
export interface DiffGap {
  op: 'gap';
  /** Index in `LineDiff.lines` of the first hidden line. */
  start: number;
  count: number;
}

/**
 * The diff as a reader wants it: changed lines with `context` unchanged lines around them, and
 * each longer unchanged run folded into a gap. Gaps whose `start` is in `expanded` stay open.
 */
export function foldUnchanged(
  lines: readonly DiffLine[],
  context = 3,
  expanded: ReadonlySet<number> = new Set(),
): (DiffLine | DiffGap)[] {
  const rows: (DiffLine | DiffGap)[] = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i]!.op !== 'same') {
      rows.push(lines[i++]!);
      continue;
    }
    let end = i;
    while (end < lines.length && lines[end]!.op === 'same') end++;
    const keepBefore = i === 0 ? 0 : context;
    const keepAfter = end === lines.length ? 0 : context;
    const hidden = end - i - keepBefore - keepAfter;
    // Folding a single line saves nothing: the gap takes a row too.
    if (hidden > 1 && !expanded.has(i + keepBefore)) {
      for (let j = i; j < i + keepBefore; j++) rows.push(lines[j]!);
      rows.push({ op: 'gap', start: i + keepBefore, count: hidden });
      for (let j = end - keepAfter; j < end; j++) rows.push(lines[j]!);
    } else {
      for (let j = i; j < end; j++) rows.push(lines[j]!);
    }
    i = end;
  }
  return rows;
}
