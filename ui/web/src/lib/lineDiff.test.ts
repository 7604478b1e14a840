import { describe, expect, it } from 'vitest';
import { diffLines, foldUnchanged, splitLines, type DiffLine, type LineDiff } from './lineDiff';

/** `' a'`, `'-b'`, `'+c'`: the diff as a unified-diff reader would write it. */
function unified(diff: LineDiff): string[] {
  const marks = { same: ' ', removed: '-', added: '+' } as const;
  return diff.lines.map((l) => marks[l.op] + l.text);
}

/** The texts a diff was made from, read back from its lines. */
function sides(diff: LineDiff): { before: string[]; after: string[] } {
  return {
    before: diff.lines.filter((l) => l.op !== 'added').map((l) => l.text),
    after: diff.lines.filter((l) => l.op !== 'removed').map((l) => l.text),
  };
}

/** The length of a longest common subsequence, by the textbook table: the reference for minimality. */
function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    let diagonal = 0;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = x === b[j - 1] ? diagonal + 1 : Math.max(above, row[j - 1]!);
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** A small deterministic generator, so a failing case can be replayed. */
function lines(seed: number, length: number, alphabet: number): string[] {
  let s = seed;
  return Array.from({ length }, () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return String.fromCharCode(97 + (s % alphabet));
  });
}

describe('splitLines', () => {
  it('does not invent an empty last line', () => {
    expect(splitLines('')).toEqual([]);
    expect(splitLines('a')).toEqual(['a']);
    expect(splitLines('a\nb\n')).toEqual(['a', 'b']);
    expect(splitLines('a\r\n\nb')).toEqual(['a', '', 'b']);
  });
});

describe('diffLines', () => {
  it('finds nothing to change between identical texts', () => {
    const diff = diffLines(['id: x', 'tasks: []'], ['id: x', 'tasks: []']);
    expect(unified(diff)).toEqual([' id: x', ' tasks: []']);
    expect(diff).toMatchObject({ added: 0, removed: 0, coarse: false });
  });

  it('handles empty texts on either side', () => {
    expect(diffLines([], []).lines).toEqual([]);
    expect(unified(diffLines([], ['a', 'b']))).toEqual(['+a', '+b']);
    expect(unified(diffLines(['a', 'b'], []))).toEqual(['-a', '-b']);
  });

  it('replaces every line when nothing is shared', () => {
    const diff = diffLines(['a', 'b'], ['c', 'd']);
    expect(diff).toMatchObject({ added: 2, removed: 2, coarse: false });
    expect(sides(diff)).toEqual({ before: ['a', 'b'], after: ['c', 'd'] });
  });

  it('inserts at the start and at the end', () => {
    expect(unified(diffLines(['b', 'c'], ['a', 'b', 'c']))).toEqual(['+a', ' b', ' c']);
    expect(unified(diffLines(['a', 'b'], ['a', 'b', 'c']))).toEqual([' a', ' b', '+c']);
  });

  it('numbers the lines of both texts', () => {
    const diff = diffLines(['id: x', 'schedule: a', 'tasks: []'], ['id: x', 'schedule: b', 'tasks: []']);
    expect(diff.lines).toEqual<DiffLine[]>([
      { op: 'same', text: 'id: x', oldLine: 1, newLine: 1 },
      { op: 'removed', text: 'schedule: a', oldLine: 2, newLine: null },
      { op: 'added', text: 'schedule: b', oldLine: null, newLine: 2 },
      { op: 'same', text: 'tasks: []', oldLine: 3, newLine: 3 },
    ]);
  });

  it('keeps repeated lines apart', () => {
    // Task blocks repeat the same lines (`type: shell`); a new task in the middle is one block.
    const before = ['- id: a', '  type: shell', '- id: c', '  type: shell'];
    const after = ['- id: a', '  type: shell', '- id: b', '  type: shell', '- id: c', '  type: shell'];
    const diff = diffLines(before, after);
    expect(diff).toMatchObject({ added: 2, removed: 0 });
    expect(sides(diff)).toEqual({ before, after });
  });

  it('is minimal and reproduces both texts', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const before = lines(seed, seed % 13, 4);
      const after = lines(seed * 7 + 3, (seed * 5) % 11, 4);
      const diff = diffLines(before, after);
      expect(sides(diff)).toEqual({ before, after });
      expect(diff.added + diff.removed).toBe(before.length + after.length - 2 * lcsLength(before, after));
    }
  });

  it('falls back to whole blocks past the edit bound, keeping the shared head and tail', () => {
    const diff = diffLines(['head', 'a', 'b', 'c', 'tail'], ['head', 'x', 'y', 'z', 'tail'], 2);
    expect(diff.coarse).toBe(true);
    expect(unified(diff)).toEqual([' head', '-a', '-b', '-c', '+x', '+y', '+z', ' tail']);
  });

  it('answers quickly for two unrelated 5,000-line specs', () => {
    const before = Array.from({ length: 5000 }, (_, i) => `old ${i}`);
    const after = Array.from({ length: 5000 }, (_, i) => `new ${i}`);
    const started = performance.now();
    const diff = diffLines(before, after);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(diff).toMatchObject({ coarse: true, added: 5000, removed: 5000 });
  });

  it('stays exact for a few changes in a 5,000-line spec', () => {
    const before = Array.from({ length: 5000 }, (_, i) => `line ${i}`);
    const after = [...before];
    after.splice(10, 1, 'changed');
    after.splice(4000, 0, 'inserted');
    const diff = diffLines(before, after);
    expect(diff).toMatchObject({ coarse: false, added: 2, removed: 1 });
  });
});

describe('foldUnchanged', () => {
  const numbered = (n: number) => Array.from({ length: n }, (_, i) => `l${i + 1}`);

  it('folds long unchanged runs, keeping context around each change', () => {
    const before = numbered(20);
    const after = [...before];
    after[9] = 'changed';
    const rows = foldUnchanged(diffLines(before, after).lines, 2);
    expect(rows.map((r) => (r.op === 'gap' ? `gap ${r.start}+${r.count}` : r.text))).toEqual([
      'gap 0+7',
      'l8',
      'l9',
      'l10',
      'changed',
      'l11',
      'l12',
      'gap 13+8',
    ]);
  });

  it('opens the gaps it is told to', () => {
    const before = numbered(10);
    const after = [...before, 'new'];
    const diff = diffLines(before, after);
    expect(foldUnchanged(diff.lines, 1)[0]).toEqual({ op: 'gap', start: 0, count: 9 });
    expect(foldUnchanged(diff.lines, 1, new Set([0]))).toHaveLength(11);
  });

  it('does not fold a single line or identical texts into nothing', () => {
    const before = numbered(7);
    const after = [...before];
    after[0] = 'first';
    after[6] = 'last';
    // Five unchanged lines between the changes, two of context each side: one would be folded.
    expect(foldUnchanged(diffLines(before, after).lines, 2).some((r) => r.op === 'gap')).toBe(false);
    expect(foldUnchanged(diffLines(before, before).lines, 3)).toEqual([{ op: 'gap', start: 0, count: 7 }]);
  });
});
