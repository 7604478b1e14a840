import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { WorkflowSpec, WorkflowVersion } from '../api';
import { ROWS_SHOWN, VersionDiff, defaultPair } from './VersionDiff';

/** A workflow of `n` shell tasks, each echoing `word`. */
function spec(n: number, word = 'hi'): WorkflowSpec {
  return {
    id: 'wf',
    tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, type: 'shell', command: `echo ${word} ${i}` })),
  };
}

const version = (n: number, s: WorkflowSpec = { id: 'wf', tasks: [{ id: 't', type: 'shell' }] }): WorkflowVersion => ({
  id: 'wf',
  version: n,
  active: false,
  created_at: '2026-01-01T00:00:00Z',
  created_by: null,
  spec: s,
});

describe('defaultPair', () => {
  it('compares the active version with the one before it', () => {
    expect(defaultPair([3, 2, 1])).toEqual({ from: 2, to: 3 });
    expect(defaultPair([1, 3, 2], 2)).toEqual({ from: 1, to: 2 });
    // The active version is the oldest kept (later ones deleted and the workflow stored again).
    expect(defaultPair([5, 4], 4)).toEqual({ from: 5, to: 4 });
    expect(defaultPair([7], 7)).toEqual({ from: 7, to: 7 });
  });
});

describe('VersionDiff', () => {
  it('folds unchanged runs and opens them on request', async () => {
    const before = spec(10);
    const after = { ...before, tasks: before.tasks.map((t, i) => (i === 5 ? { ...t, command: 'echo bye 5' } : t)) };
    const user = userEvent.setup();
    render(<VersionDiff versions={[version(2, after), version(1, before)]} active={2} />);
    const table = screen.getByRole('table', { name: 'Changes from version 1 to version 2' });
    const removed = within(table).getByText('command: echo hi 5').closest('tr')!;
    expect(removed).toHaveClass('diff-removed');
    expect(removed).toHaveTextContent(/^\d+-removed/); // a number, the mark, a word for screen readers
    expect(within(table).getByText('command: echo bye 5').closest('tr')).toHaveClass('diff-added');

    const rows = () => within(table).getAllByRole('row').length;
    const folded = rows();
    await user.click(within(table).getAllByRole('button', { name: /^Show \d+ unchanged lines$/ })[0]!);
    expect(rows()).toBeGreaterThan(folded);
  });

  it('draws a bounded number of rows until asked for all', async () => {
    const user = userEvent.setup();
    render(<VersionDiff versions={[version(2, spec(300, 'new')), version(1, spec(300, 'old'))]} />);
    const rows = () => screen.getByRole('table').querySelectorAll('tbody tr').length;
    expect(rows()).toBe(ROWS_SHOWN);
    const note = screen.getByText(new RegExp(`^Showing ${ROWS_SHOWN} of \\d+ rows\\.`));
    const total = Number(/of (\d+) rows/.exec(note.textContent!)![1]);
    expect(total).toBe(4 * 300 + 2); // each task's id and type kept, its command out and in
    await user.click(screen.getByRole('button', { name: 'Show all' }));
    expect(rows()).toBe(total);
  });

  it('says when two versions define the same workflow, or one came without its definition', async () => {
    const user = userEvent.setup();
    // The contract always carries a spec; a malformed answer without one must not break the page.
    const malformed = { ...version(3), spec: undefined } as unknown as WorkflowVersion;
    render(<VersionDiff versions={[malformed, version(2, spec(2)), version(1, spec(2))]} active={2} />);
    expect(screen.getByText('v1 and v2 define the same workflow.')).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText('To'), '3');
    expect(screen.getByText('Version 3 came without its definition.')).toBeInTheDocument();
  });
});
