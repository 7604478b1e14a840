// A fetch double for tests: routes by method and path, records calls, answers JSON or streams.

import { vi } from 'vitest';

export interface Call {
  method: string;
  url: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: string | undefined;
}

export type Answer = Response | (() => Response | Promise<Response>);
type Route = { method: string; path: string | RegExp; answer: (call: Call) => Answer };

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

export function apiError(status: number, code: string, message: string, details: unknown = null): Response {
  return json({ error: { code, message, details } }, status);
}

/** A streaming body that delivers `chunks` one by one. */
export function stream(chunks: string[], contentType = 'text/event-stream'): Response {
  const encoder = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(encoder.encode(chunks[i++]));
      else controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': contentType } });
}

export class FetchMock {
  readonly calls: Call[] = [];
  private routes: Route[] = [];

  on(method: string, path: string | RegExp, answer: (call: Call) => Answer): this {
    this.routes.unshift({ method, path, answer });
    return this;
  }

  get(path: string | RegExp, answer: (call: Call) => Answer): this {
    return this.on('GET', path, answer);
  }

  post(path: string | RegExp, answer: (call: Call) => Answer): this {
    return this.on('POST', path, answer);
  }

  install(): this {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => this.handle(input, init)),
    );
    return this;
  }

  callsTo(method: string, path: string): Call[] {
    return this.calls.filter((c) => c.method === method && c.path === path);
  }

  private async handle(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const parsed = new URL(url, 'http://ui.test');
    const call: Call = {
      method: (init?.method ?? 'GET').toUpperCase(),
      url,
      path: decodeURIComponent(parsed.pathname),
      query: parsed.searchParams,
      headers: new Headers(init?.headers),
      body: typeof init?.body === 'string' ? init.body : undefined,
    };
    this.calls.push(call);
    if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const route = this.routes.find(
      (r) => r.method === call.method && (typeof r.path === 'string' ? r.path === call.path : r.path.test(call.path)),
    );
    if (!route)
      return json(
        { error: { code: 'not_found', message: `no test route for ${call.method} ${call.path}`, details: null } },
        404,
      );
    const answer = route.answer(call);
    return typeof answer === 'function' ? answer() : answer;
  }
}
