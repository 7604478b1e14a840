import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  UnreachableError,
  api,
  errorFromResponse,
  followLogs,
  getToken,
  newestExecutions,
  setToken,
  subscribe,
  type ApiEvent,
} from './api';
import { FetchMock, apiError, json, stream } from './test/fetch';

let events: ApiEvent[];
let unsubscribe: () => void;

beforeEach(() => {
  events = [];
  unsubscribe = subscribe((e) => events.push(e));
});
afterEach(() => unsubscribe());

describe('errors', () => {
  it('maps the error body to ApiError', async () => {
    new FetchMock().get('/api/v1/workflows/x', () => apiError(404, 'not_found', 'workflow `x` not found')).install();
    const error = await api.workflow('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: 'not_found', message: 'workflow `x` not found', details: null });
  });

  it('exposes invalid_spec problems', async () => {
    const problems = [
      { path: 'tasks[1].depends_on[0]', message: 'unknown task `nope`' },
      { path: 'schedule', message: 'bad cron' },
    ];
    const mock = new FetchMock()
      .post('/api/v1/workflows', () => apiError(422, 'invalid_spec', 'invalid workflow', { problems }))
      .install();
    const error = await api.putWorkflowYaml('id: x\n').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).problems).toEqual(problems);
    const call = mock.calls[0]!;
    expect(call.headers.get('Content-Type')).toBe('application/yaml');
    expect(call.body).toBe('id: x\n');
  });

  it('keeps a non-JSON error readable', () => {
    const e = errorFromResponse(400, 'Bad Request', 'plain words');
    expect(e).toMatchObject({ status: 400, code: 'http_400', message: 'plain words' });
    expect(e.problems).toEqual([]);
    expect(errorFromResponse(418, "I'm a teapot", '')).toMatchObject({ message: "I'm a teapot" });
  });

  it('announces a 401 so the UI can ask for a token', async () => {
    new FetchMock().get('/api/v1/cluster', () => apiError(401, 'unauthenticated', 'a token is needed')).install();
    const error = await api.cluster().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).unauthenticated).toBe(true);
    expect(events.map((e) => e.kind)).toEqual(['reachable', 'unauthorized']);
  });

  it('does not treat a 403 as a missing token', async () => {
    new FetchMock()
      .post('/api/v1/workflows/w/pause', () => apiError(403, 'forbidden', 'viewer may not', { role: 'viewer' }))
      .install();
    const error = (await api.pause('w').catch((e: unknown) => e)) as ApiError;
    expect(error.unauthenticated).toBe(false);
    expect(error.details).toEqual({ role: 'viewer' });
    expect(events.map((e) => e.kind)).toEqual(['reachable']);
  });

  it('tells an unreachable node apart from an error answer', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => {
        throw new TypeError('Failed to fetch');
      }),
    );
    const error = await api.cluster().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    expect(error).not.toBeInstanceOf(ApiError);
    expect(events.map((e) => e.kind)).toEqual(['unreachable']);
  });

  it('treats a proxy answering for a dead node as unreachable', async () => {
    new FetchMock()
      .get('/api/v1/cluster', () => new Response('', { status: 502, statusText: 'Bad Gateway' }))
      .install();
    await expect(api.cluster()).rejects.toBeInstanceOf(UnreachableError);
  });

  it('lets an abort through unchanged', async () => {
    new FetchMock().get('/api/v1/cluster', () => json({})).install();
    const controller = new AbortController();
    controller.abort();
    const error = await api.cluster(controller.signal).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect(events).toEqual([]);
  });
});

describe('idempotency keys', () => {
  it('gives each write its own key and leaves reads without one', async () => {
    const mock = new FetchMock()
      .post('/api/v1/workflows/w/pause', () => json({ id: 'w', paused: true }))
      .get('/api/v1/cluster', () => json({ node_id: 1, members: [], auth: { enabled: false } }))
      .install();
    await api.pause('w');
    await api.pause('w');
    await api.cluster();
    const [first, second, read] = mock.calls.map((c) => c.headers.get('Idempotency-Key'));
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(second).toMatch(/^[0-9a-f]{32}$/);
    expect(second).not.toBe(first);
    expect(read).toBeNull();
  });

  it('sends a write again under the same key when no answer came', async () => {
    vi.useFakeTimers();
    try {
      const keys: (string | null)[] = [];
      let calls = 0;
      vi.stubGlobal(
        'fetch',
        vi.fn(async (_url: string, init: RequestInit) => {
          keys.push(new Headers(init.headers).get('Idempotency-Key'));
          calls += 1;
          if (calls < 3) throw new TypeError('Failed to fetch');
          return json({ execution_id: 'wf:1' }, 202);
        }),
      );
      const answer = api.trigger('wf', {});
      await vi.runAllTimersAsync();
      await expect(answer).resolves.toMatchObject({ execution_id: 'wf:1' });
      expect(keys).toHaveLength(3);
      expect(new Set(keys).size).toBe(1);
      expect(events.map((e) => e.kind)).toEqual(['reachable']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('gives up on a write after its resends, as unreachable', async () => {
    vi.useFakeTimers();
    try {
      const fetchMock = vi.fn(async () => {
        throw new TypeError('Failed to fetch');
      });
      vi.stubGlobal('fetch', fetchMock);
      const answer = api.trigger('wf', {}).catch((e: unknown) => e);
      await vi.runAllTimersAsync();
      expect(await answer).toBeInstanceOf(UnreachableError);
      expect(fetchMock).toHaveBeenCalledTimes(3);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('token', () => {
  it('is stored and sent as a bearer token', async () => {
    const mock = new FetchMock()
      .get('/api/v1/cluster', () => json({ node_id: 1, members: [], auth: { enabled: true } }))
      .install();
    await api.cluster();
    expect(mock.calls[0]!.headers.get('Authorization')).toBeNull();
    setToken('  s3cret ');
    expect(getToken()).toBe('s3cret');
    await api.cluster();
    expect(mock.calls[1]!.headers.get('Authorization')).toBe('Bearer s3cret');
    setToken(null);
    expect(getToken()).toBeNull();
  });

  it('can be checked before it is kept', async () => {
    setToken('old');
    const mock = new FetchMock()
      .get('/api/v1/cluster', () => json({ node_id: 1, members: [], auth: { enabled: true } }))
      .install();
    await api.checkToken('new');
    expect(mock.calls[0]!.headers.get('Authorization')).toBe('Bearer new');
  });

  it('does not ask to sign in again when a token being checked is refused', async () => {
    new FetchMock().get('/api/v1/cluster', () => apiError(401, 'invalid_token', 'unknown token')).install();
    await expect(api.checkToken('nope')).rejects.toMatchObject({ status: 401 });
    expect(events.map((e) => e.kind)).toEqual(['reachable']);
  });
});

describe('requests', () => {
  it('encodes ids and filters', async () => {
    const mock = new FetchMock()
      .get('/api/v1/executions/wf:20260101T060000Z', () =>
        json({ id: 'wf:20260101T060000Z', workflow_id: 'wf', status: 'queued', tasks: [] }),
      )
      .get('/api/v1/executions', () => json({ items: [], next_cursor: null }))
      .install();
    await api.execution('wf:20260101T060000Z');
    expect(mock.calls[0]!.url).toBe('/api/v1/executions/wf%3A20260101T060000Z');
    await api.executions({ workflow: 'wf', status: 'failed', since: undefined, cursor: 'c 1', limit: 50 });
    expect(mock.calls[1]!.url).toBe('/api/v1/executions?workflow=wf&status=failed&cursor=c+1&limit=50');
  });

  it('sends trigger params as a JSON body', async () => {
    const mock = new FetchMock()
      .post('/api/v1/workflows/wf/trigger', () => json({ execution_id: 'wf:1' }, 202))
      .install();
    expect(await api.trigger('wf', { region: 'us' })).toEqual({ execution_id: 'wf:1' });
    expect(JSON.parse(mock.calls[0]!.body!)).toEqual({ params: { region: 'us' } });
    expect(mock.calls[0]!.headers.get('Content-Type')).toBe('application/json');
  });

  it('asks the node for the newest executions, and pages on only when it needs more', async () => {
    const exec = (id: string) => ({ id, workflow_id: 'wf', status: 'succeeded', tasks: [] });
    const mock = new FetchMock()
      .get('/api/v1/executions', (call) =>
        call.query.get('cursor') === null
          ? json({ items: [exec('c'), exec('b')], next_cursor: '2:b' })
          : json({ items: [exec('a')], next_cursor: null }),
      )
      .install();
    const newest = await newestExecutions({ workflow: 'wf', status: 'succeeded' }, 3);
    expect(newest.map((e) => e.id)).toEqual(['c', 'b', 'a']);
    const [first, second] = mock.calls.map((c) => c.query);
    expect(first!.get('order')).toBe('newest');
    expect(first!.get('limit')).toBe('3');
    expect(first!.get('workflow')).toBe('wf');
    expect(first!.get('status')).toBe('succeeded');
    expect(second!.get('cursor')).toBe('2:b');
    expect(second!.get('limit')).toBe('1');

    mock.calls.length = 0;
    expect((await newestExecutions({}, 2)).map((e) => e.id)).toEqual(['c', 'b']);
    expect(mock.calls).toHaveLength(1);
  });
});

describe('followLogs', () => {
  it('streams data until event: end', async () => {
    const mock = new FetchMock()
      .get('/api/v1/executions/wf:1/logs', () =>
        stream([
          'data: --- t attempt 1 (running) ---\ndata: hel',
          'lo\ndata: \n\n: keep-alive\n\n',
          'event: end\ndata: task ended\n\n',
          'data: never read\n\n',
        ]),
      )
      .install();
    const text: string[] = [];
    const ends: string[] = [];
    const ended = await followLogs('wf:1', 't', { onText: (t) => text.push(t), onEnd: (r) => ends.push(r) });
    expect(ended).toBe(true);
    expect(text).toEqual(['--- t attempt 1 (running) ---\nhello\n']);
    expect(ends).toEqual(['task ended']);
    const call = mock.calls[0]!;
    expect(call.query.get('follow')).toBe('true');
    expect(call.query.get('task')).toBe('t');
    expect(call.headers.get('Accept')).toBe('text/event-stream');
  });

  it('reports a stream that closed without an end', async () => {
    new FetchMock().get('/api/v1/executions/wf:1/logs', () => stream(['data: a\n\n', 'data: cut'])).install();
    const text: string[] = [];
    expect(await followLogs('wf:1', undefined, { onText: (t) => text.push(t) })).toBe(false);
    expect(text).toEqual(['a']);
  });

  it('decodes characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: ünïcödé\n\nevent: end\ndata: task ended\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 8));
        controller.enqueue(bytes.slice(8));
        controller.close();
      },
    });
    new FetchMock().get('/api/v1/executions/e/logs', () => new Response(body, { status: 200 })).install();
    const text: string[] = [];
    await followLogs('e', 't', { onText: (t) => text.push(t) });
    expect(text).toEqual(['ünïcödé']);
  });

  it('throws the API error of a refused stream', async () => {
    new FetchMock()
      .get('/api/v1/executions/e/logs', () => apiError(404, 'not_found', 'execution `e` not found'))
      .install();
    await expect(followLogs('e', 't', { onText: () => undefined })).rejects.toMatchObject({ code: 'not_found' });
  });
});
