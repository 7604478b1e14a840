import { screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Execution } from '../api';
import { FetchMock, json } from '../test/fetch';
import { renderApp } from '../test/render';
import { execution } from '../test/wire';

const now = Date.now();
const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();

function exec(workflow: string, minutesAgo: number, status: Execution['status']): Execution {
  return execution({
    id: `${workflow}:${minutesAgo}`,
    workflow_id: workflow,
    status,
    trigger: 'schedule',
    created_at: at(minutesAgo),
    tasks:
      status === 'failed'
        ? [{ id: 'load', status: 'failed', attempts: [{ id: '1', n: 1, status: 'failed', error: 'disk full' }] }]
        : [],
  });
}

describe('Dashboard', () => {
  it('shows cluster health, workflows with their recent runs, and recent failures', async () => {
    const mock = new FetchMock()
      .get('/api/v1/cluster', () =>
        json({
          node_id: 2,
          leader_id: 1,
          term: 7,
          state: 'Follower',
          members: [
            { id: 1, addr: 'a:1', voter: true },
            { id: 2, addr: 'b:1', voter: true },
            { id: 3, addr: 'c:1', voter: false },
          ],
          replication: {
            leader_id: 1,
            last_log_index: 90,
            members: [
              { id: 1, matched_index: 90, behind: 0 },
              { id: 2, matched_index: 90, behind: 0 },
              { id: 3, matched_index: 50, behind: 40 },
            ],
          },
          auth: { enabled: false, warning: 'tokens are off: every caller is admin' },
        }),
      )
      .get('/api/v1/workers', () =>
        json({
          items: [
            { id: 'w1', node_id: 1, queues: ['q'] },
            { id: 'w2', node_id: 2, queues: ['q'] },
          ],
          next_cursor: null,
        }),
      )
      .get('/api/v1/workflows', () =>
        json({
          items: [
            { id: 'nightly', paused: true, spec: { id: 'nightly', schedule: '0 6 * * *', tasks: [] } },
            {
              id: 'hourly',
              next_fire_at: new Date(now + 25 * 60_000).toISOString(),
              spec: { id: 'hourly', schedule: '0 * * * *', tasks: [] },
            },
            { id: 'adhoc', spec: { id: 'adhoc', tasks: [] } },
            { id: 'on-order', spec: { id: 'on-order', tasks: [], triggers: [{ event: 'order.created' }] } },
          ],
          next_cursor: null,
        }),
      )
      .get('/api/v1/executions', (call) => {
        if (call.query.get('status') === 'failed')
          return json({ items: [exec('nightly', 30, 'failed')], next_cursor: null });
        // The node sorts: newest first when asked (and the dashboard must ask).
        if (call.query.get('workflow') === 'nightly' && call.query.get('order') === 'newest')
          return json({
            items: [
              exec('nightly', 1, 'running'),
              exec('nightly', 30, 'failed'),
              exec('nightly', 60, 'succeeded'),
              exec('nightly', 90, 'succeeded'),
            ],
            next_cursor: null,
          });
        return json({ items: [], next_cursor: null });
      })
      .install();
    renderApp('/');

    const cluster = screen.getByRole('region', { name: 'Cluster' });
    await waitFor(() => expect(within(cluster).getByText('node 1')).toBeInTheDocument());
    expect(within(cluster).getByText('7')).toBeInTheDocument();
    expect(within(cluster).getByText('3 (2 voting)')).toBeInTheDocument();
    expect(within(cluster).getByText(/node 3 is 40 entries behind/)).toBeInTheDocument();
    expect(await screen.findByText('next in 25 min')).toBeInTheDocument();
    await waitFor(() => expect(within(cluster).getByText('2')).toBeInTheDocument());
    expect(within(cluster).getByText('tokens are off: every caller is admin')).toBeInTheDocument();

    const failures = screen.getByRole('region', { name: 'Recent failures' });
    await waitFor(() => expect(within(failures).getByText(/disk full/)).toBeInTheDocument());

    const runs = await screen.findByRole('list', { name: 'Recent executions of nightly' });
    expect(
      within(runs)
        .getAllByRole('link')
        .map((a) => a.getAttribute('aria-label')),
    ).toEqual(['nightly:1: running', 'nightly:30: failed', 'nightly:60: succeeded', 'nightly:90: succeeded']);
    // Of the three that finished, two succeeded.
    expect(screen.getByText('67%')).toBeInTheDocument();
    const row = runs.closest('tr')!;
    expect(within(row).getByText('paused')).toBeInTheDocument();
    const adhoc = screen.getByRole('link', { name: 'adhoc' }).closest('tr')!;
    await waitFor(() => expect(within(adhoc).getByText('none')).toBeInTheDocument());
    expect(within(adhoc).getByText('manual')).toBeInTheDocument();
    // Started by an event, not by hand only.
    const onOrder = screen.getByRole('link', { name: 'on-order' }).closest('tr')!;
    expect(within(onOrder).getByText('1 trigger')).toBeInTheDocument();
    expect(within(onOrder).queryByText('manual')).not.toBeInTheDocument();
    // Recent runs are asked for within the dashboard's window.
    const since = mock
      .callsTo('GET', '/api/v1/executions')
      .find((c) => c.query.get('workflow') === 'nightly')!
      .query.get('since')!;
    expect(now - Date.parse(since)).toBeGreaterThan(6.9 * 86_400_000);
  });
});
