import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { FetchMock, json, stream } from '../test/fetch';
import { renderApp } from '../test/render';
import { execution, workflow } from '../test/wire';

const WORKFLOW = workflow({
  id: 'nightly',
  version: 2,
  paused: false,
  next_fire_at: '2099-01-01T06:00:00Z',
  last_tick_at: '2026-03-01T06:00:00Z',
  created_at: '2026-02-01T00:00:00Z',
  updated_at: '2026-02-02T00:00:00Z',
  versions: [1, 2],
  spec: {
    id: 'nightly',
    description: 'Build the nightly report',
    schedule: '0 6 * * *',
    params: { region: 'eu' },
    tasks: [
      { id: 'extract', type: 'http' },
      { id: 'load', type: 'worker', queue: 'loaders', depends_on: ['extract'] },
    ],
  },
});

/** Version 1: before `load` moved to a worker queue. */
const SPEC_V1 = {
  ...WORKFLOW.spec!,
  tasks: [
    { id: 'extract', type: 'http' as const },
    { id: 'load', type: 'shell' as const, command: 'load.sh', depends_on: ['extract'] },
  ],
};

const RUN = execution({
  id: 'nightly:20260301T060000Z',
  workflow_id: 'nightly',
  workflow_version: 2,
  status: 'failed',
  trigger: 'schedule',
  created_at: '2026-03-01T06:00:00Z',
  started_at: '2026-03-01T06:00:00Z',
  finished_at: '2026-03-01T06:00:10Z',
  tasks: [
    { id: 'extract', status: 'succeeded', attempts: [] },
    { id: 'load', status: 'failed', attempts: [] },
  ],
});

function mock({ versions = 2 }: { versions?: 1 | 2 } = {}) {
  let paused = false;
  const v2 = {
    id: 'nightly',
    version: 2,
    active: true,
    created_at: '2026-02-02T00:00:00Z',
    created_by: 'ops',
    spec: WORKFLOW.spec,
  };
  const v1 = { id: 'nightly', version: 1, spec: SPEC_V1 };
  return new FetchMock()
    .get('/api/v1/workflows/nightly', () => json({ ...WORKFLOW, paused }))
    .get('/api/v1/workflows/nightly/versions', () =>
      json({ items: versions === 2 ? [v2, v1] : [v2], next_cursor: null }),
    )
    .get('/api/v1/executions', () => json({ items: [RUN], next_cursor: null }))
    .post('/api/v1/workflows/nightly/pause', () => {
      paused = true;
      return json({ id: 'nightly', paused: true });
    })
    .post('/api/v1/workflows/nightly/trigger', () => json({ execution_id: 'nightly:20260301T070000Z-0000abcd' }, 202))
    .get('/api/v1/executions/nightly:20260301T070000Z-0000abcd', () =>
      json({ ...RUN, id: 'nightly:20260301T070000Z-0000abcd', status: 'succeeded', trigger: 'manual' }),
    )
    .get(/\/logs$/, () => stream(['event: end\ndata: task ended\n\n']))
    .install();
}

describe('WorkflowPage', () => {
  it('draws the tasks coloured by the latest execution, with settings, versions and history', async () => {
    mock();
    renderApp('/workflows/nightly');
    expect(await screen.findByRole('heading', { level: 1, name: /nightly/ })).toBeInTheDocument();
    const graph = await screen.findByRole('group', { name: 'Task graph of nightly version 2' });
    await waitFor(() =>
      expect(within(graph).getByRole('button', { name: 'load failed, type worker' })).toBeInTheDocument(),
    );
    expect(within(graph).getByRole('button', { name: 'extract succeeded, type http' })).toBeInTheDocument();
    expect(screen.getByText(/coloured by nightly:20260301T060000Z \(failed\)/)).toBeInTheDocument();
    expect(screen.getByText('0 6 * * *')).toBeInTheDocument();
    const settings = screen.getByRole('region', { name: 'Schedule and settings' });
    expect(within(settings).getByText('Next fire').nextElementSibling).toHaveTextContent(/\(in \d+ d\)$/);
    expect(within(settings).getByText('Last tick').nextElementSibling).toHaveTextContent(/\(\d+ d ago\)$/);
    const versions = await screen.findByRole('table', { name: 'Versions of nightly, newest first' });
    expect(within(versions).getByText('v2')).toBeInTheDocument();
    expect(screen.getByRole('table', { name: 'Newest executions of nightly' })).toHaveTextContent(
      'nightly:20260301T060000Z',
    );
  });

  it('validates trigger params and opens the new execution', async () => {
    const fetches = mock();
    const user = userEvent.setup();
    renderApp('/workflows/nightly');
    await user.click(await screen.findByRole('button', { name: 'Trigger…' }));
    const params = screen.getByLabelText(/Params/);
    expect(params).toHaveValue('{\n  "region": "eu"\n}');
    await user.clear(params);
    await user.type(params, '[[1]');
    expect(screen.getByRole('alert')).toHaveTextContent('Params must be a JSON object');
    expect(screen.getByRole('button', { name: 'Trigger now' })).toBeDisabled();
    await user.clear(params);
    await user.type(params, '{{"region": "us"');
    expect(screen.getByRole('alert')).toHaveTextContent('Not valid JSON');
    await user.type(params, '}');
    await user.click(screen.getByRole('button', { name: 'Trigger now' }));
    expect(
      await screen.findByRole('heading', { level: 1, name: 'nightly:20260301T070000Z-0000abcd' }),
    ).toBeInTheDocument();
    expect(JSON.parse(fetches.callsTo('POST', '/api/v1/workflows/nightly/trigger')[0]!.body!)).toEqual({
      params: { region: 'us' },
    });
  });

  it('shows the definition of a task picked on the graph with the keyboard, and its run', async () => {
    mock();
    const user = userEvent.setup();
    renderApp('/workflows/nightly');
    const graph = await screen.findByRole('group', { name: 'Task graph of nightly version 2' });
    const load = await within(graph).findByRole('button', { name: /^load failed/ });
    await waitFor(() => expect(load).toHaveAccessibleName('load failed, type worker'));
    load.focus();
    await user.keyboard('{Enter}');
    const details = await screen.findByRole('region', { name: /^Task load/ });
    expect(load).toHaveAttribute('aria-pressed', 'true');
    expect(within(details).getByText('worker')).toBeInTheDocument();
    expect(within(details).getByText(/on queue loaders/)).toBeInTheDocument();
    expect(within(details).getByText(/queue: loaders/)).toBeInTheDocument();
    expect(within(details).getByRole('link', { name: RUN.id })).toHaveAttribute(
      'href',
      '/executions/nightly%3A20260301T060000Z?task=load',
    );
    await user.keyboard(' ');
    expect(screen.queryByRole('region', { name: 'Task load failed' })).not.toBeInTheDocument();
    expect(load).toHaveAttribute('aria-pressed', 'false');
  });

  it('diffs the previous version against the active one, and any other pair picked', async () => {
    mock();
    const user = userEvent.setup();
    renderApp('/workflows/nightly');
    const diff = await screen.findByRole('table', { name: 'Changes from version 1 to version 2' });
    const changed = (op: string) =>
      within(diff)
        .getAllByRole('row')
        .filter((row) => row.className === `diff-${op}`)
        .map((row) => row.textContent);
    // Line numbers of both versions, the mark, the line: `load` moved from a shell to a worker queue.
    expect(changed('removed')).toEqual(['10-removed    command: load.sh', '13-removed    type: shell']);
    expect(changed('added')).toEqual(['12+added    queue: loaders', '13+added    type: worker']);
    expect(screen.getByText(/From v1 to v2:/)).toHaveTextContent('From v1 to v2: 2 lines added, 2 removed.');

    await user.selectOptions(screen.getByLabelText('From'), '2');
    expect(screen.getByText('Pick two different versions.')).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText('To'), '1');
    expect(await screen.findByRole('table', { name: 'Changes from version 2 to version 1' })).toBeInTheDocument();
  });

  it('says there is nothing to compare while a workflow has one version', async () => {
    mock({ versions: 1 });
    renderApp('/workflows/nightly');
    expect(await screen.findByText('Only one version so far: nothing to compare yet.')).toBeInTheDocument();
    expect(screen.queryByLabelText('From')).not.toBeInTheDocument();
  });

  it('lists what else starts it, without a schedule', async () => {
    mock().get('/api/v1/workflows/nightly', () =>
      json({
        ...WORKFLOW,
        spec: {
          ...WORKFLOW.spec!,
          schedule: null,
          triggers: [
            { event: 'order.created', filter: { region: 'eu' } },
            { workflow: 'extract', on: 'succeeded' },
            { webhook: 'push', auth: 'github', secret: 'gh' },
          ],
        },
      }),
    );
    renderApp('/workflows/nightly');
    const section = await screen.findByRole('region', { name: 'Triggers' });
    expect(
      within(section)
        .getAllByRole('listitem')
        .map((item) => item.textContent),
    ).toEqual([
      'event order.created where region = eu',
      'after workflow extract succeeded',
      'webhook push (GitHub signature, secret gh) at POST /api/v1/hooks/nightly/push',
    ]);
    expect(within(section).getByRole('link', { name: 'extract' })).toHaveAttribute('href', '/workflows/extract');
    expect(screen.getByText('Schedule').nextElementSibling).toHaveTextContent('none (see its triggers)');
  });

  it('says when it has no triggers', async () => {
    mock();
    renderApp('/workflows/nightly');
    const section = await screen.findByRole('region', { name: 'Triggers' });
    expect(section).toHaveTextContent('None: no event, workflow or webhook starts it.');
  });

  it('pauses scheduled ticks', async () => {
    const fetches = mock();
    const user = userEvent.setup();
    renderApp('/workflows/nightly');
    await user.click(await screen.findByRole('button', { name: 'Pause' }));
    expect(await screen.findByRole('button', { name: 'Resume' })).toBeInTheDocument();
    expect(fetches.callsTo('POST', '/api/v1/workflows/nightly/pause')).toHaveLength(1);
    expect(screen.getAllByText('paused').length).toBeGreaterThan(0);
    expect(screen.getByText('Next fire').nextElementSibling).toHaveTextContent('none while paused');
  });
});
