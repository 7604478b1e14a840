import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { DagView } from './DagView';

const TASKS = [
  { id: 'extract', type: 'http' },
  { id: 'transform', type: 'shell', depends_on: ['extract'] },
  { id: 'load', type: 'worker', depends_on: ['transform'] },
];

describe('DagView', () => {
  it('reaches every task with Tab and selects it with Enter, Space or a click', async () => {
    const onSelect = vi.fn();
    const user = userEvent.setup();
    render(
      <DagView
        tasks={TASKS}
        statuses={{ extract: 'succeeded', transform: 'running' }}
        selected="transform"
        onSelect={onSelect}
        label="Task graph"
      />,
    );
    const graph = screen.getByRole('group', { name: 'Task graph' });

    await user.tab();
    expect(within(graph).getByRole('button', { name: 'extract succeeded, type http' })).toHaveFocus();
    await user.keyboard('{Enter}');
    expect(onSelect).toHaveBeenLastCalledWith('extract');

    await user.tab();
    const transform = within(graph).getByRole('button', { name: 'transform running, type shell' });
    expect(transform).toHaveFocus();
    expect(transform).toHaveAttribute('aria-pressed', 'true');
    await user.keyboard(' ');
    expect(onSelect).toHaveBeenLastCalledWith('transform');

    await user.tab();
    const load = within(graph).getByRole('button', { name: 'load worker' });
    expect(load).toHaveFocus();
    expect(load).toHaveAttribute('aria-pressed', 'false');
    await user.click(load);
    expect(onSelect).toHaveBeenLastCalledWith('load');
    expect(onSelect).toHaveBeenCalledTimes(3);
  });

  it('makes each task one tab stop, with edges left out', async () => {
    const user = userEvent.setup();
    render(<DagView tasks={TASKS} onSelect={() => {}} label="Task graph" />);
    const graph = screen.getByRole('group', { name: 'Task graph' });
    const stops: (Element | null)[] = [];
    for (let i = 0; i < TASKS.length; i++) {
      await user.tab();
      stops.push(document.activeElement);
    }
    expect(stops).toEqual(
      ['extract http', 'transform shell', 'load worker'].map((name) => within(graph).getByRole('button', { name })),
    );
  });
});
