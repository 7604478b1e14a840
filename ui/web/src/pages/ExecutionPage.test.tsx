import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Execution } from '../api';
import { FetchMock, apiError, json, stream } from '../test/fetch';
import { controlledStream, renderApp } from '../test/render';
import { execution } from '../test/wire';

const ID = 'nightly:20260301T060000Z';
const PATH = `/executions/${encodeURIComponent(ID)}`;

function running(): Execution {
  return execution({
    id: ID,
    workflow_id: 'nightly',
    workflow_version: 3,
    status: 'running',
    trigger: 'schedule',
    scheduled_at: '2026-03-01T06:00:00Z',
    created_at: '2026-03-01T06:00:00Z',
    started_at: '2026-03-01T06:00:00.100Z',
    finished_at: null,
    params: { region: 'eu' },
    created_by: null,
    audit: [],
    owner_node_id: 1,
    tasks: [
      {
        id: 'extract',
        status: 'succeeded',
        output: { rows: 42 },
        attempts: [
          {
            id: '11',
            n: 1,
            status: 'failed',
            node_id: 1,
            started_at: '2026-03-01T06:00:00.100Z',
            finished_at: '2026-03-01T06:00:02Z',
            error: 'HTTP 503 from backend',
          },
          {
            id: '12',
            n: 2,
            status: 'succeeded',
            node_id: 2,
            started_at: '2026-03-01T06:00:04Z',
            finished_at: '2026-03-01T06:00:05Z',
          },
        ],
      },
      {
        id: 'load',
        status: 'running',
        attempts: [
          {
            id: '13',
            n: 1,
            status: 'running',
            node_id: 1,
            worker_id: 'w-1',
            started_at: '2026-03-01T06:00:05Z',
            finished_at: null,
          },
        ],
      },
      { id: 'report', status: 'pending', attempts: [] },
    ],
  });
}

function finished(status: 'succeeded' | 'failed'): Execution {
  const e = running();
  e.status = status;
  e.finished_at = '2026-03-01T06:00:09Z';
  e.tasks[1]!.status = status;
  e.tasks[1]!.attempts[0]!.status = status;
  e.tasks[1]!.attempts[0]!.finished_at = '2026-03-01T06:00:09Z';
  if (status === 'failed') e.tasks[1]!.attempts[0]!.error = 'exit status 2';
  e.tasks[2]!.status = status === 'failed' ? 'skipped' : 'succeeded';
  return e;
}

const endedLog = (text: string) =>
  stream([`data: ${text.split('\n').join('\ndata: ')}\n\n`, 'event: end\ndata: task ended\n\n']);

describe('ExecutionPage', () => {
  it('shows the timeline, attempt errors and the live log of the running task', async () => {
    const log = controlledStream();
    const mock = new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => json(running()))
      .get(`/api/v1/executions/${ID}/logs`, () => log.response())
      .install();
    renderApp(PATH);

    expect(await screen.findByRole('heading', { level: 1, name: ID })).toBeInTheDocument();
    const timeline = screen.getByRole('list', { name: 'Tasks over time' });
    const rows = within(timeline).getAllByRole('button');
    expect(rows.map((r) => r.textContent)).toEqual([
      expect.stringContaining('extract'),
      expect.stringContaining('load'),
      expect.stringContaining('report'),
    ]);
    // The running task is selected first, and its log is followed.
    expect(within(timeline).getByRole('button', { pressed: true })).toHaveTextContent('load');
    expect(screen.getAllByRole('img', { name: 'running' }).length).toBeGreaterThan(0);
    expect(screen.getByText('HTTP 503 from backend')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Cancel…' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Retry/ })).not.toBeInTheDocument();

    await waitFor(() => expect(mock.callsTo('GET', `/api/v1/executions/${ID}/logs`)).toHaveLength(1));
    const call = mock.callsTo('GET', `/api/v1/executions/${ID}/logs`)[0]!;
    expect(call.query.get('task')).toBe('load');
    expect(call.query.get('follow')).toBe('true');

    act(() => log.write('data: --- load attempt 1 (running) ---\ndata: loading rows\ndata: \n\n'));
    const pre = screen.getByTestId('log-text');
    await waitFor(() => expect(pre).toHaveTextContent('loading rows'));
    act(() => log.write('data: done\ndata: \n\nevent: end\ndata: task ended\n\n'));
    await waitFor(() => expect(pre).toHaveTextContent(/loading rows\s+done/));
    expect(await screen.findByText('complete')).toBeInTheDocument();
  });

  it('refreshes every second until the execution finishes', async () => {
    let calls = 0;
    const mock = new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => json(++calls < 2 ? running() : finished('succeeded')))
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('ok'))
      .install();
    renderApp(PATH);
    await screen.findByRole('heading', { level: 1, name: ID });
    await waitFor(() => expect(screen.getAllByText('succeeded').length).toBeGreaterThan(1), { timeout: 3000 });
    expect(screen.queryByRole('button', { name: 'Cancel…' })).not.toBeInTheDocument();
    const seen = mock.callsTo('GET', `/api/v1/executions/${ID}`).length;
    await new Promise((r) => setTimeout(r, 1300));
    expect(mock.callsTo('GET', `/api/v1/executions/${ID}`)).toHaveLength(seen);
  });

  it('cancels after a confirmation', async () => {
    let cancelled = false;
    const mock = new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => {
        const e = running();
        if (cancelled) e.status = 'cancelled';
        return json(e);
      })
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('x'))
      .post(`/api/v1/executions/${ID}/cancel`, () => {
        cancelled = true;
        return json({ id: ID, status: 'cancelled' });
      })
      .install();
    const user = userEvent.setup();
    renderApp(PATH);
    await user.click(await screen.findByRole('button', { name: 'Cancel…' }));
    expect(mock.callsTo('POST', `/api/v1/executions/${ID}/cancel`)).toHaveLength(0);
    await user.click(screen.getByRole('button', { name: 'Confirm cancel' }));
    expect(await screen.findByText('Cancelled.')).toBeInTheDocument();
    expect(mock.callsTo('POST', `/api/v1/executions/${ID}/cancel`)).toHaveLength(1);
    await waitFor(() => expect(screen.getByRole('button', { name: 'Retry failed tasks' })).toBeInTheDocument());
  });

  it('retries a failed execution and says what the node refused', async () => {
    let refuse = true;
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => json(finished('failed')))
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('boom'))
      .post(`/api/v1/executions/${ID}/retry`, () =>
        refuse
          ? apiError(403, 'forbidden', 'role viewer may not', { role: 'viewer', allowed_roles: ['admin', 'operator'] })
          : json({ id: ID, tasks_reset: 2 }),
      )
      .install();
    const user = userEvent.setup();
    renderApp(PATH);
    // A failed run opens on its failed task, with that attempt's error.
    expect(await screen.findByRole('heading', { name: /Task load/ })).toBeInTheDocument();
    expect(screen.getAllByText('exit status 2').length).toBeGreaterThan(0);
    await user.click(screen.getByRole('button', { name: 'Retry failed tasks' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      "Your token's role is viewer; this needs admin or operator.",
    );
    refuse = false;
    await user.click(screen.getByRole('button', { name: 'Retry failed tasks' }));
    expect(await screen.findByText('Retrying 2 tasks.')).toBeInTheDocument();
  });

  it('opens at the task a link names', async () => {
    const mock = new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => json(finished('failed')))
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('--- extract attempt 2 (succeeded) ---'))
      .install();
    renderApp(`${PATH}?task=extract`);
    const timeline = await screen.findByRole('list', { name: 'Tasks over time' });
    expect(within(timeline).getByRole('button', { pressed: true })).toHaveTextContent('extract');
    await waitFor(() =>
      expect(mock.callsTo('GET', `/api/v1/executions/${ID}/logs`)[0]!.query.get('task')).toBe('extract'),
    );
  });

  it('shows the event that started it, with its payload', async () => {
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () =>
        json({
          ...finished('succeeded'),
          trigger: 'event',
          event: { name: 'order.created', id: 'ord-17', payload: { region: 'eu', total: 12 } },
        }),
      )
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('ok'))
      .install();
    renderApp(PATH);
    const section = await screen.findByRole('region', { name: 'Triggering event' });
    expect(screen.getByText('Trigger').nextElementSibling).toHaveTextContent('event');
    expect(within(section).getByText('Name').nextElementSibling).toHaveTextContent(/^order\.created/);
    expect(within(section).getByText('Id').nextElementSibling).toHaveTextContent('ord-17');
    expect(within(section).getByRole('link', { name: 'events named order.created' })).toHaveAttribute(
      'href',
      '/events?name=order.created',
    );
    expect(section.querySelector('pre.json')!.textContent).toBe('{\n  "region": "eu",\n  "total": 12\n}');
  });

  it('links a chained execution to the upstream execution whose ending started it', async () => {
    const upstream = 'extract:20260301T050000Z';
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () =>
        json({
          ...finished('succeeded'),
          trigger: 'workflow',
          event: { name: 'workflow.extract.succeeded', id: upstream, payload: { status: 'succeeded' } },
        }),
      )
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('ok'))
      .install();
    renderApp(PATH);
    const section = await screen.findByRole('region', { name: 'Triggering event' });
    expect(within(section).getByText('workflow.extract.succeeded')).toBeInTheDocument();
    expect(within(section).getByRole('link', { name: upstream })).toHaveAttribute(
      'href',
      '/executions/extract%3A20260301T050000Z',
    );
    // Chained executions are not events sent to the cluster: nothing to list there.
    expect(within(section).queryByRole('link', { name: /events named/ })).not.toBeInTheDocument();
    expect(section).toHaveTextContent('"status": "succeeded"');
  });

  it('has no event section when no event started it', async () => {
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => json(finished('succeeded')))
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('ok'))
      .install();
    renderApp(PATH);
    await screen.findByRole('heading', { level: 1, name: ID });
    expect(screen.queryByRole('region', { name: 'Triggering event' })).not.toBeInTheDocument();
  });

  it('says when there is no such execution', async () => {
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => apiError(404, 'not_found', `execution \`${ID}\` not found`))
      .install();
    renderApp(PATH);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('No such execution');
    expect(alert).toHaveTextContent('not_found, HTTP 404');
  });

  it('asks for a token on 401 and loads again with it', async () => {
    const mock = new FetchMock()
      .get(`/api/v1/executions/${ID}`, (call) =>
        call.headers.get('Authorization') === 'Bearer good'
          ? json(finished('succeeded'))
          : apiError(401, 'unauthenticated', 'this node needs a bearer token'),
      )
      .get('/api/v1/cluster', (call) =>
        call.headers.get('Authorization') === 'Bearer good'
          ? json({ node_id: 1, members: [], auth: { enabled: true } })
          : apiError(401, 'invalid_token', 'unknown token'),
      )
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('ok'))
      .install();
    const user = userEvent.setup();
    renderApp(PATH);
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeInTheDocument();
    const input = screen.getByLabelText('API token');
    await user.type(input, 'bad');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('The node refused this token (invalid_token).')).toBeInTheDocument();
    await user.clear(input);
    await user.type(input, 'good');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { level: 1, name: ID })).toBeInTheDocument();
    expect(localStorage.getItem('linkloom.token')).toBe('good');
    expect(mock.callsTo('GET', `/api/v1/executions/${ID}`).at(-1)!.headers.get('Authorization')).toBe('Bearer good');
  });

  it('shows a banner while the node cannot be reached and recovers when it answers', async () => {
    let up = false;
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => {
        if (!up) throw new TypeError('Failed to fetch');
        return json(finished('succeeded'));
      })
      .get(`/api/v1/executions/${ID}/logs`, () => endedLog('ok'))
      .install();
    renderApp(PATH);
    expect(await screen.findByText(/cannot be reached/, { selector: '.banner' })).toBeInTheDocument();
    expect(await screen.findByText(/The node does not answer/)).toBeInTheDocument();
    up = true;
    expect(await screen.findByRole('heading', { level: 1, name: ID }, { timeout: 3000 })).toBeInTheDocument();
    expect(screen.queryByText(/cannot be reached/, { selector: '.banner' })).not.toBeInTheDocument();
  });
});

describe('the /readyz poll', () => {
  it('clears the banner once /readyz answers, and says when the node is not ready', async () => {
    let answer: 'none' | 'not_ready' | 'ready' = 'none';
    const mock = new FetchMock()
      .get('/readyz', () => {
        if (answer === 'none') throw new TypeError('Failed to fetch');
        if (answer === 'not_ready') return apiError(503, 'not_ready', 'no leader known yet');
        return json({ status: 'ready' });
      })
      .install();
    renderApp('/settings', { pollReady: true });
    expect(await screen.findByText(/cannot be reached/, { selector: '.banner' })).toBeInTheDocument();
    answer = 'not_ready';
    expect(
      await screen.findByText(/The node is not ready: no leader known yet/, undefined, { timeout: 4000 }),
    ).toBeInTheDocument();
    expect(screen.queryByText(/cannot be reached/, { selector: '.banner' })).not.toBeInTheDocument();
    expect(mock.callsTo('GET', '/readyz').length).toBe(2);
  }, 10_000);
});

describe('LogPane scrolling', () => {
  it('stays at the bottom unless the viewer scrolled up', async () => {
    const log = controlledStream();
    new FetchMock()
      .get(`/api/v1/executions/${ID}`, () => json(running()))
      .get(`/api/v1/executions/${ID}/logs`, () => log.response())
      .install();
    renderApp(PATH);
    const pre = await screen.findByTestId('log-text');
    let height = 1000;
    Object.defineProperty(pre, 'scrollHeight', { configurable: true, get: () => height });
    Object.defineProperty(pre, 'clientHeight', { configurable: true, get: () => 200 });
    Object.defineProperty(pre, 'scrollTop', { configurable: true, writable: true, value: 0 });

    act(() => log.write('data: one\n\n'));
    await waitFor(() => expect(pre).toHaveTextContent('one'));
    expect(pre.scrollTop).toBe(1000);

    // The viewer scrolls up: new text must not pull them down.
    pre.scrollTop = 300;
    act(() => pre.dispatchEvent(new Event('scroll')));
    const jump = await screen.findByRole('button', { name: 'Jump to latest' });
    height = 1400;
    act(() => log.write('data: two\n\n'));
    await waitFor(() => expect(pre).toHaveTextContent('two'));
    expect(pre.scrollTop).toBe(300);

    await userEvent.setup().click(jump);
    expect(pre.scrollTop).toBe(1400);
    height = 1800;
    act(() => log.write('data: three\n\n'));
    await waitFor(() => expect(pre).toHaveTextContent('three'));
    expect(pre.scrollTop).toBe(1800);
  });
});
