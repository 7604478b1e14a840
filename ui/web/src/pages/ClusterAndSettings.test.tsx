import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { FetchMock, apiError, json } from '../test/fetch';
import { renderApp } from '../test/render';

describe('ClusterPage', () => {
  it('shows members, raft positions, queues and workers', async () => {
    new FetchMock()
      .get('/api/v1/cluster', () =>
        json({
          node_id: 2,
          leader_id: 1,
          term: 4,
          state: 'Follower',
          last_log_index: 120,
          last_applied: 117,
          snapshot_index: 100,
          members: [
            { id: 1, addr: '10.0.0.1:7000', voter: true },
            { id: 2, addr: '10.0.0.2:7000', voter: true },
            { id: 3, addr: '10.0.0.3:7000', voter: false },
          ],
          replication: {
            leader_id: 1,
            last_log_index: 120,
            members: [
              { id: 1, matched_index: 120, behind: 0 },
              { id: 2, matched_index: 117, behind: 3 },
              { id: 3, matched_index: null, behind: null },
            ],
          },
          engine: { actor_restarts: 0, worker_dispatches: 1234 },
          auth: { enabled: true, peers_authenticated: true, warning: null },
        }),
      )
      .get('/api/v1/queues', () =>
        json({
          items: [{ queue: 'loaders', waiting: 3, oldest_waiting_ms: 65_000, workers: 1, capacity: 4, running: 4 }],
        }),
      )
      .get('/api/v1/workers', () =>
        json({
          items: [{ id: 'w-1', node_id: 1, queues: ['loaders'], concurrency: 4, running: 4, draining: true }],
          next_cursor: null,
        }),
      )
      .install();
    renderApp('/cluster');
    expect(await screen.findByText('3 behind', { exact: false })).toBeInTheDocument();
    const members = screen.getByRole('region', { name: 'Members' });
    const rows = within(members).getAllByRole('row').slice(1);
    expect(rows.map((r) => r.textContent)).toEqual([
      expect.stringMatching(/node 1.*leader.*10\.0\.0\.1:7000.*voter0$/),
      expect.stringMatching(/node 2.*answered.*voter3$/),
      expect.stringMatching(/node 3.*learner–$/),
    ]);
    expect(screen.getByText('1,234')).toBeInTheDocument();
    const queues = screen.getByRole('region', { name: 'Queues' });
    await waitFor(() => expect(within(queues).getByText('1m 05s')).toBeInTheDocument());
    const workers = screen.getByRole('region', { name: 'Workers' });
    await waitFor(() => expect(within(workers).getByText('draining')).toBeInTheDocument());
    expect(within(workers).getByText('4 / 4')).toBeInTheDocument();
  });
});

describe('SettingsPage', () => {
  it('switches the theme and refresh interval, and keeps them', async () => {
    new FetchMock().install();
    const user = userEvent.setup();
    renderApp('/settings');
    expect(document.documentElement.dataset.theme).toBeUndefined();
    await user.click(screen.getByRole('radio', { name: 'Dark' }));
    expect(document.documentElement.dataset.theme).toBe('dark');
    const refresh = screen.getByLabelText('Refresh lists and views every');
    expect(
      within(refresh)
        .getAllByRole('option')
        .map((o) => o.textContent),
    ).toEqual(['2 s', '5 s', '10 s', '30 s', '1 min']);
    await user.selectOptions(refresh, '10000');
    expect(JSON.parse(localStorage.getItem('linkloom.settings')!)).toEqual({ refreshMs: 10_000, theme: 'dark' });
    await user.click(screen.getByRole('radio', { name: 'Follow the system' }));
    expect(document.documentElement.dataset.theme).toBeUndefined();
  });

  it('checks a token before keeping it', async () => {
    const mock = new FetchMock()
      .get('/api/v1/cluster', (call) =>
        call.headers.get('Authorization') === 'Bearer right'
          ? json({ node_id: 1, members: [], auth: { enabled: true } })
          : apiError(401, 'invalid_token', 'unknown token'),
      )
      .install();
    const user = userEvent.setup();
    renderApp('/settings');
    const input = screen.getByLabelText('Token');
    await user.type(input, 'wrong');
    await user.click(screen.getByRole('button', { name: 'Check and save' }));
    expect(await screen.findByText(/refused this token \(invalid_token\); nothing was saved/)).toBeInTheDocument();
    expect(localStorage.getItem('linkloom.token')).toBeNull();
    // A refused token on this page does not replace the page with the login screen.
    expect(screen.getByRole('heading', { level: 1, name: 'Settings' })).toBeInTheDocument();
    await user.clear(input);
    await user.type(input, 'right');
    await user.click(screen.getByRole('button', { name: 'Check and save' }));
    expect(await screen.findByText('Token saved; the node accepts it.')).toBeInTheDocument();
    expect(localStorage.getItem('linkloom.token')).toBe('right');
    await user.click(screen.getByRole('button', { name: 'Forget token' }));
    expect(localStorage.getItem('linkloom.token')).toBeNull();
    expect(mock.calls).toHaveLength(2);
  });
});
