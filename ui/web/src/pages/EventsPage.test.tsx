import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../api';
import { FetchMock, apiError, json } from '../test/fetch';
import { renderApp } from '../test/render';

function event(fields: Partial<EventRecord> & Pick<EventRecord, 'name' | 'id'>): EventRecord {
  return {
    source: 'api',
    webhook: null,
    upstream_execution_id: null,
    received_at: '2026-03-01T06:00:00Z',
    by: null,
    payload_sha256: '0'.repeat(64),
    payload_bytes: 2,
    outcomes: [],
    more_outcomes: 0,
    repeated: false,
    ...fields,
  };
}

const ORDER = event({
  name: 'order.created',
  id: 'ord-17',
  by: 'shop',
  outcomes: [
    { workflow_id: 'invoice', execution_id: 'invoice:ev-ord-17', skipped: null },
    { workflow_id: 'ship', execution_id: null, skipped: 'the workflow is paused' },
  ],
  more_outcomes: 3,
});

const CHAINED = event({
  name: 'workflow.extract.succeeded',
  id: 'extract:1#1',
  source: 'workflow',
  upstream_execution_id: 'extract:1',
  outcomes: [{ workflow_id: 'report', execution_id: 'report:after-extract.1-1', skipped: null }],
});

const PUSH = event({
  name: 'push',
  id: 'delivery-1',
  source: 'webhook',
  webhook: { workflow_id: 'deploy', name: 'push' },
  outcomes: [{ workflow_id: 'deploy', execution_id: 'deploy:ev-delivery-1', skipped: null }],
});

const LATE = event({ name: 'order.created', id: 'ord-1' });

function listMock() {
  return new FetchMock()
    .get('/api/v1/events', (call) => {
      const cursor = call.query.get('cursor');
      if (call.query.get('name') === 'nothing') return json({ items: [], next_cursor: null });
      if (call.query.get('name') === 'workflow.extract.succeeded') return json({ items: [CHAINED], next_cursor: null });
      if (call.query.get('name') === 'order.created') return json({ items: [ORDER, LATE], next_cursor: null });
      if (cursor === null) return json({ items: [ORDER, PUSH], next_cursor: 'page-2' });
      if (cursor === 'page-2') return json({ items: [LATE], next_cursor: null });
      return apiError(400, 'bad_request', `unknown cursor ${cursor}`);
    })
    .install();
}

const rows = () =>
  within(screen.getByRole('table', { name: 'Events' }))
    .getAllByRole('row')
    .slice(1);
const idsShown = () => rows().map((r) => within(r).getAllByRole('cell')[2]!.textContent);

describe('EventsPage', () => {
  it('is in the main navigation', async () => {
    listMock();
    renderApp('/events');
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('link', { name: 'Events' })).toHaveAttribute('aria-current', 'page');
    await waitFor(() => expect(idsShown()).toHaveLength(2));
  });

  it('lists events newest first with their source and the executions they started or why not', async () => {
    const mock = listMock();
    renderApp('/events');
    await waitFor(() => expect(idsShown()).toEqual(['ord-17', 'delivery-1']));
    const [order, push] = rows() as [HTMLElement, HTMLElement];
    const cells = (row: HTMLElement) =>
      within(row)
        .getAllByRole('cell')
        .map((c) => c.textContent);
    expect(cells(order).slice(1)).toEqual([
      'order.created',
      'ord-17',
      'api by shop',
      'invoice:ev-ord-17ship skipped: the workflow is pausedand 3 more workflows',
    ]);
    expect(within(order).getByRole('link', { name: 'invoice:ev-ord-17' })).toHaveAttribute(
      'href',
      '/executions/invoice%3Aev-ord-17',
    );
    expect(within(order).getByRole('link', { name: 'ship' })).toHaveAttribute('href', '/workflows/ship');
    expect(within(order).getByRole('link', { name: 'order.created' })).toHaveAttribute(
      'href',
      '/events?name=order.created',
    );
    expect(cells(push)[3]).toBe('webhook push of deploy');
    expect(within(push).getByRole('link', { name: 'deploy' })).toHaveAttribute('href', '/workflows/deploy');
    expect(within(push).getByRole('link', { name: 'deploy:ev-delivery-1' })).toBeInTheDocument();
    expect(mock.callsTo('GET', '/api/v1/events')[0]!.query.get('limit')).toBe('50');
  });

  it('shows a chained start as the end of its upstream execution', async () => {
    listMock();
    renderApp('/events?name=workflow.extract.succeeded');
    await waitFor(() => expect(idsShown()).toEqual(['extract:1#1']));
    const [row] = rows() as [HTMLElement];
    expect(within(row).getAllByRole('cell')[3]!.textContent).toBe('workflow end of extract:1');
    expect(within(row).getByRole('link', { name: 'extract:1' })).toHaveAttribute('href', '/executions/extract%3A1');
    expect(within(row).getByRole('link', { name: 'report:after-extract.1-1' })).toBeInTheDocument();
  });

  it('pages forward with next_cursor and back again', async () => {
    const mock = listMock();
    const user = userEvent.setup();
    renderApp('/events');
    await waitFor(() => expect(idsShown()).toHaveLength(2));
    expect(screen.getByRole('button', { name: 'Previous' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await waitFor(() => expect(idsShown()).toEqual(['ord-1']));
    expect(mock.callsTo('GET', '/api/v1/events').at(-1)!.query.get('cursor')).toBe('page-2');
    expect(screen.getByText('Page 2')).toBeInTheDocument();
    // An event that matched no workflow says so.
    expect(rows()[0]).toHaveTextContent('no workflow matched');
    await user.click(screen.getByRole('button', { name: 'First' }));
    await waitFor(() => expect(idsShown()).toHaveLength(2));
    expect(mock.callsTo('GET', '/api/v1/events').at(-1)!.query.get('cursor')).toBeNull();
  });

  it('filters by name, from the form and from the address', async () => {
    const mock = listMock();
    const user = userEvent.setup();
    renderApp('/events');
    await waitFor(() => expect(idsShown()).toHaveLength(2));
    await user.type(screen.getByLabelText('Name'), 'order.created');
    await user.click(screen.getByRole('button', { name: 'Apply' }));
    await waitFor(() => expect(idsShown()).toEqual(['ord-17', 'ord-1']));
    expect(mock.callsTo('GET', '/api/v1/events').at(-1)!.query.get('name')).toBe('order.created');
    await user.click(screen.getByRole('button', { name: 'Clear' }));
    await waitFor(() => expect(idsShown()).toEqual(['ord-17', 'delivery-1']));
    expect(screen.getByLabelText('Name')).toHaveValue('');
  });

  it('says when no event has the name asked for', async () => {
    const mock = listMock();
    renderApp('/events?name=nothing');
    expect(await screen.findByText('No events named nothing.')).toBeInTheDocument();
    expect(mock.callsTo('GET', '/api/v1/events')[0]!.query.get('name')).toBe('nothing');
    expect(screen.getByLabelText('Name')).toHaveValue('nothing');
  });

  it('says which roles may read events when the token may not', async () => {
    new FetchMock()
      .get('/api/v1/events', () =>
        apiError(403, 'forbidden', 'role publisher may not', {
          role: 'publisher',
          allowed_roles: ['admin', 'operator', 'viewer'],
        }),
      )
      .install();
    renderApp('/events');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load events');
    expect(alert).toHaveTextContent("Your token's role is publisher; this needs admin or operator or viewer.");
  });
});
