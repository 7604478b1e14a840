import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Execution } from '../api';
import { FetchMock, apiError, json } from '../test/fetch';
import { renderApp } from '../test/render';
import { execution } from '../test/wire';

function exec(n: number, status: Execution['status'] = 'succeeded'): Execution {
  const minute = String(n).padStart(2, '0');
  return execution({
    id: `nightly:20260301T06${minute}00Z`,
    workflow_id: 'nightly',
    status,
    trigger: 'schedule',
    created_at: `2026-03-01T06:${minute}:00Z`,
    started_at: `2026-03-01T06:${minute}:01Z`,
    finished_at: status === 'running' ? null : `2026-03-01T06:${minute}:31Z`,
    tasks: [],
  });
}

function listMock() {
  return new FetchMock()
    .get('/api/v1/workflows', () => json({ items: [{ id: 'nightly' }, { id: 'hourly' }], next_cursor: null }))
    .get('/api/v1/executions', (call) => {
      const cursor = call.query.get('cursor');
      if (call.query.get('status') === 'cancelled') return json({ items: [], next_cursor: null });
      if (call.query.get('status') === 'bogus') return apiError(400, 'bad_request', 'status `bogus` is not one of …');
      if (cursor === null) return json({ items: [exec(1), exec(2, 'failed')], next_cursor: 'page-2' });
      if (cursor === 'page-2') return json({ items: [exec(3, 'running')], next_cursor: null });
      return apiError(400, 'bad_request', `unknown cursor ${cursor}`);
    })
    .install();
}

const rowsText = () =>
  within(screen.getByRole('table', { name: 'Executions' }))
    .getAllByRole('row')
    .slice(1)
    .map((r) => within(r).getAllByRole('cell')[0]!.textContent);

describe('ExecutionsPage', () => {
  it('lists a page of executions with links and statuses', async () => {
    const mock = listMock();
    renderApp('/executions');
    await waitFor(() => expect(rowsText()).toEqual(['nightly:20260301T060100Z', 'nightly:20260301T060200Z']));
    const table = screen.getByRole('table', { name: 'Executions' });
    expect(within(table).getByRole('link', { name: 'nightly:20260301T060200Z' })).toHaveAttribute(
      'href',
      '/executions/nightly%3A20260301T060200Z',
    );
    expect(within(table).getAllByRole('link', { name: 'nightly' })[0]).toHaveAttribute('href', '/workflows/nightly');
    expect(within(table).getByText('failed')).toBeInTheDocument();
    expect(within(table).getAllByText('30.0 s')).toHaveLength(2);
    expect(mock.callsTo('GET', '/api/v1/executions')[0]!.query.get('limit')).toBe('50');
    // Newest first, sorted by the node across workflows.
    expect(mock.callsTo('GET', '/api/v1/executions')[0]!.query.get('order')).toBe('newest');
  });

  it('pages forward with next_cursor and back again', async () => {
    const mock = listMock();
    const user = userEvent.setup();
    renderApp('/executions');
    await waitFor(() => expect(rowsText()).toHaveLength(2));
    expect(screen.getByRole('button', { name: 'Previous' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await waitFor(() => expect(rowsText()).toEqual(['nightly:20260301T060300Z']));
    expect(mock.callsTo('GET', '/api/v1/executions').at(-1)!.query.get('cursor')).toBe('page-2');
    expect(screen.getByText('Page 2')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Next' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Previous' }));
    await waitFor(() => expect(rowsText()).toHaveLength(2));
    expect(mock.callsTo('GET', '/api/v1/executions').at(-1)!.query.get('cursor')).toBeNull();
  });

  it('filters by workflow, status, trigger and time', async () => {
    const mock = listMock();
    const user = userEvent.setup();
    renderApp('/executions');
    await waitFor(() => expect(rowsText()).toHaveLength(2));
    await user.type(screen.getByLabelText('Workflow'), 'nightly');
    await user.selectOptions(screen.getByLabelText('Status'), 'failed');
    await user.selectOptions(screen.getByLabelText('Trigger'), 'schedule');
    await user.type(screen.getByLabelText('Created since'), '2026-03-01T06:00');
    await user.selectOptions(screen.getByLabelText('Per page'), '25');
    await user.click(screen.getByRole('button', { name: 'Apply' }));
    await waitFor(() => expect(mock.callsTo('GET', '/api/v1/executions').at(-1)!.query.get('status')).toBe('failed'));
    const query = mock.callsTo('GET', '/api/v1/executions').at(-1)!.query;
    expect(query.get('workflow')).toBe('nightly');
    expect(query.get('trigger')).toBe('schedule');
    expect(query.get('limit')).toBe('25');
    expect(query.get('since')).toBe(new Date('2026-03-01T06:00').toISOString());
    expect(query.get('until')).toBeNull();
    // The form keeps what was applied.
    expect(screen.getByLabelText('Status')).toHaveValue('failed');
  });

  it('filters by the triggers that events, webhooks and other workflows fire', async () => {
    const mock = listMock();
    renderApp('/executions?trigger=workflow');
    await waitFor(() => expect(rowsText()).toHaveLength(2));
    expect(mock.callsTo('GET', '/api/v1/executions')[0]!.query.get('trigger')).toBe('workflow');
    const trigger = screen.getByLabelText('Trigger');
    expect(trigger).toHaveValue('workflow');
    expect(
      within(trigger)
        .getAllByRole('option')
        .map((o) => o.textContent),
    ).toEqual(['any', 'manual', 'schedule', 'backfill', 'event', 'webhook', 'workflow']);
  });

  it('reads filters from the address and says when nothing matches', async () => {
    const mock = listMock();
    renderApp('/executions?status=cancelled&workflow=hourly');
    expect(await screen.findByText('No executions match these filters.')).toBeInTheDocument();
    const query = mock.callsTo('GET', '/api/v1/executions')[0]!.query;
    expect(query.get('status')).toBe('cancelled');
    expect(query.get('workflow')).toBe('hourly');
    expect(screen.getByLabelText('Workflow')).toHaveValue('hourly');
  });

  it('shows the API error and retries on request', async () => {
    let fail = true;
    new FetchMock()
      .get('/api/v1/workflows', () => json({ items: [], next_cursor: null }))
      .get('/api/v1/executions', () =>
        fail ? apiError(503, 'unavailable', 'no leader within 2 s') : json({ items: [exec(1)], next_cursor: null }),
      )
      .install();
    const user = userEvent.setup();
    renderApp('/executions');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('no leader within 2 s (unavailable, HTTP 503)');
    expect(alert).toHaveTextContent('The cluster has no leader right now');
    fail = false;
    await user.click(within(alert).getByRole('button', { name: 'Try again' }));
    await waitFor(() => expect(rowsText()).toEqual(['nightly:20260301T060100Z']));
  });
});
