import { describe, expect, it } from 'vitest';
import { lineOf, parsePath, previewSpec } from './spec';

const YAML = `# nightly
id: nightly
schedule: "0 6 * * *"
tasks:
  - id: extract
    type: http
    url: http://127.0.0.1:9000/x
  - id: transform
    type: shell
    command: [echo, hi]
    depends_on:
      - extract
      - nope
`;

describe('parsePath', () => {
  it('splits fields and indexes', () => {
    expect(parsePath('tasks[1].depends_on[0]')).toEqual(['tasks', 1, 'depends_on', 0]);
    expect(parsePath('schedule')).toEqual(['schedule']);
    expect(parsePath('defaults.retry.backoff')).toEqual(['defaults', 'retry', 'backoff']);
  });
});

describe('lineOf', () => {
  it('maps server problem paths to lines', () => {
    expect(lineOf(YAML, 'schedule')).toBe(3);
    expect(lineOf(YAML, 'tasks')).toBe(4);
    expect(lineOf(YAML, 'tasks[1]')).toBe(8);
    expect(lineOf(YAML, 'tasks[1].id')).toBe(8);
    expect(lineOf(YAML, 'tasks[1].depends_on')).toBe(11);
    expect(lineOf(YAML, 'tasks[1].depends_on[1]')).toBe(13);
  });

  it('falls back to the deepest part that exists', () => {
    expect(lineOf(YAML, 'tasks[0].retry.max_attempts')).toBe(5);
    expect(lineOf(YAML, 'tasks[7].id')).toBe(4);
    expect(lineOf(YAML, 'timezone')).toBeNull();
    expect(lineOf('id: [', 'id')).toBeNull();
  });
});

describe('previewSpec', () => {
  it('reads tasks and dependencies', () => {
    const preview = previewSpec(YAML);
    expect(preview.id).toBe('nightly');
    expect(preview.problems).toEqual([]);
    expect(preview.tasks).toEqual([
      { id: 'extract', type: 'http', depends_on: [], line: 5 },
      { id: 'transform', type: 'shell', depends_on: ['extract', 'nope'], line: 8 },
    ]);
  });

  it('reports syntax errors with their line', () => {
    const preview = previewSpec('id: x\ntasks:\n  - id: a\n   bad: [\n');
    expect(preview.tasks).toEqual([]);
    expect(preview.problems.length).toBeGreaterThan(0);
    expect(preview.problems[0]!.line).toBeGreaterThanOrEqual(3);
  });

  it('explains shapes that are not a workflow', () => {
    expect(previewSpec('- a\n- b\n').problems[0]!.message).toMatch(/mapping/);
    expect(previewSpec('id: x\ntasks: 3\n').problems[0]).toEqual({
      line: 2,
      message: '`tasks` should be a list of tasks',
    });
    expect(previewSpec('id: x\ntasks:\n  - type: shell\n').problems[0]).toEqual({
      line: 3,
      message: 'tasks[0] has no id',
    });
  });
});
