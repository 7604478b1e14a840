import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Execution, Workflow } from '../api';
import { FetchMock, json, stream } from '../test/fetch';
import { renderApp } from '../test/render';

const WORKFLOW: Workflow = {
  id: 'nightly',
  version: 2,
  paused: false,
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
};

const RUN: Execution = {
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
};

function mock() {
  let paused = false;
  return new FetchMock()
    .get('/api/v1/workflows/nightly', () => json({ ...WORKFLOW, paused }))
    .get('/api/v1/workflows/nightly/versions', () =>
      json({
        items: [
          { id: 'nightly', version: 2, active: true, created_at: '2026-02-02T00:00:00Z', created_by: 'ops' },
          { id: 'nightly', version: 1 },
        ],
        next_cursor: null,
      }),
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
    await waitFor(() => expect(within(graph).getByLabelText('task load, failed')).toBeInTheDocument());
    expect(within(graph).getByLabelText('task extract, succeeded')).toBeInTheDocument();
    expect(screen.getByText(/coloured by nightly:20260301T060000Z \(failed\)/)).toBeInTheDocument();
    expect(screen.getByText('0 6 * * *')).toBeInTheDocument();
    expect(await screen.findByText('v2')).toBeInTheDocument();
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

  it('pauses scheduled ticks', async () => {
    const fetches = mock();
    const user = userEvent.setup();
    renderApp('/workflows/nightly');
    await user.click(await screen.findByRole('button', { name: 'Pause' }));
    expect(await screen.findByRole('button', { name: 'Resume' })).toBeInTheDocument();
    expect(fetches.callsTo('POST', '/api/v1/workflows/nightly/pause')).toHaveLength(1);
    expect(screen.getAllByText('paused').length).toBeGreaterThan(0);
  });
});
