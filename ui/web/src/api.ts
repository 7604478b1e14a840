// A small typed client for the node's HTTP API (docs/api.md, docs/openapi.json).
//
// The UI is served by the node itself, so every call is same-origin and relative. Errors come
// back in two kinds the UI treats differently: `ApiError` (the node answered with an error) and
// `UnreachableError` (no answer at all). Both are also announced to subscribers, which is how
// the layout shows the login screen on a 401 and the banner when the node is gone.

import { SseParser } from './sse';

// ---- shapes ---------------------------------------------------------------------------------

// The shapes of the API's JSON are generated from docs/openapi.json (itself derived from the
// server's Rust types) into api.gen.ts; this file keeps only behaviour. A few UI names differ
// from the wire's and are aliased here.

import type * as Wire from './api.gen';

import type {
  Cluster,
  Execution,
  ExecutionStatus,
  Problem,
  StoredWorkflow,
  Trigger,
  Workflow,
  WorkflowVersion,
  Worker,
} from './api.gen';

// Every generated shape is part of this module's interface too.
export type * from './api.gen';

export type MemberReplication = Wire.ReplicationMember;
export type QueueInfo = Wire.Queue;
/** An event the cluster remembers (named apart from the DOM's `Event`). */
export type EventRecord = Wire.Event;
/** One page of a list: every list answer has this shape. */
export type Page<T> = Omit<Wire.ExecutionList, 'items'> & { items: T[] };

export const EXECUTION_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
] as const satisfies readonly Wire.ExecutionStatus[];
export const TRIGGERS = [
  'manual',
  'schedule',
  'backfill',
  'event',
  'webhook',
  'workflow',
] as const satisfies readonly Wire.Trigger[];

/** `true` only when `Listed` names every value of `All`. */
type ListsAll<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : false;
type Assert<T extends true> = T;
/** Fails the type check when the wire gains a status or trigger the lists above do not name. */
export type EveryValueListed = [
  Assert<ListsAll<Wire.ExecutionStatus, (typeof EXECUTION_STATUSES)[number]>>,
  Assert<ListsAll<Wire.Trigger, (typeof TRIGGERS)[number]>>,
];

export interface ExecutionFilter {
  workflow?: string;
  status?: ExecutionStatus;
  trigger?: Trigger;
  /** RFC 3339, on `created_at`, inclusive. */
  since?: string;
  /** RFC 3339, on `created_at`, exclusive. */
  until?: string;
  /** `id` (the node's default: by workflow, then creation) or `newest` (creation, newest first). */
  order?: 'id' | 'newest';
}

export interface EventFilter {
  /** Only events of this name. */
  name?: string;
}

// ---- errors ---------------------------------------------------------------------------------

/** The node answered with an error (`{"error": {"code", "message", "details"}}`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details: unknown = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** A token is missing or refused: the caller should sign in. */
  get unauthenticated(): boolean {
    return this.status === 401;
  }

  /** `details.problems` of an `invalid_spec` answer; empty for any other error. */
  get problems(): Problem[] {
    const problems = isRecord(this.details) ? this.details.problems : undefined;
    if (!Array.isArray(problems)) return [];
    return problems.filter(
      (p): p is Problem => isRecord(p) && typeof p.path === 'string' && typeof p.message === 'string',
    );
  }
}

/** No answer from the node: it is down, or the network is. */
export class UnreachableError extends Error {
  constructor(message = 'the Link Loom node cannot be reached') {
    super(message);
    this.name = 'UnreachableError';
  }
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}

/** A one-line description of any error, for the UI. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code}, HTTP ${e.status})`;
  if (e instanceof Error) return e.message;
  return String(e);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Builds an `ApiError` from an error answer, whatever its body turned out to be. */
export function errorFromResponse(status: number, statusText: string, body: string): ApiError {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && isRecord(parsed.error)) {
      const { code, message, details } = parsed.error;
      if (typeof code === 'string' && typeof message === 'string') {
        return new ApiError(status, code, message, details ?? null);
      }
    }
  } catch {
    // not JSON: fall through to the plain-text form
  }
  const text = body.trim().slice(0, 300);
  return new ApiError(status, `http_${status}`, text || statusText || `HTTP ${status}`, null);
}

// ---- token and events -----------------------------------------------------------------------

const TOKEN_KEY = 'linkloom.token';

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  const value = token?.trim();
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export type ApiEvent =
  { kind: 'unauthorized'; error: ApiError } | { kind: 'unreachable'; error: UnreachableError } | { kind: 'reachable' };

type Listener = (event: ApiEvent) => void;
const listeners = new Set<Listener>();

/** Hears about 401s and about the node coming and going; returns the unsubscribe function. */
export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(event: ApiEvent): void {
  for (const listener of [...listeners]) listener(event);
}

// ---- requests -------------------------------------------------------------------------------

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  /** A JSON-serialisable body, or a string sent as is with `contentType`. */
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  /** Use this token instead of the stored one (checking a token before keeping it). */
  token?: string | null;
}

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}${path.includes('?') ? '&' : '?'}${text}` : path;
}

/** A path segment: execution ids contain `:`. */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}

/** Methods that change something: each call gets an `Idempotency-Key`. */
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Pauses before sending a mutating request again after no answer came (same key each time). */
export const RESEND_DELAYS_MS = [250, 750];

/**
 * A fresh idempotency key: 128 random bits in hex. `crypto.getRandomValues` works on plain
 * http too (`crypto.randomUUID` only in secure contexts, and a node's UI may be served on a
 * LAN address without TLS).
 */
export function newIdempotencyKey(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends a request and answers the `Response` of a 2xx; throws `ApiError` or `UnreachableError`.
 *
 * A mutating request carries an `Idempotency-Key`; when no answer comes (the node died, the
 * connection broke) it is sent again with the same key, so the cluster applies it once.
 */
export async function send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers = new Headers();
  const mutating = MUTATING.has(method.toUpperCase());
  if (mutating) headers.set('Idempotency-Key', newIdempotencyKey());
  const token = options.token !== undefined ? options.token : getToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  headers.set('Accept', options.accept ?? 'application/json');
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers.set('Content-Type', options.contentType ?? 'application/json');
  } else if (mutating) {
    // Nodes refuse writes without a JSON or YAML type: a type no HTML form or simple cross-site
    // request can send, so another site's page cannot make this browser write to the cluster.
    headers.set('Content-Type', 'application/json');
  }
  let response: Response | undefined;
  const delays = mutating ? RESEND_DELAYS_MS : [];
  for (let attempt = 0; response === undefined; attempt++) {
    try {
      response = await fetch(withQuery(path, options.query), { method, headers, body, signal: options.signal });
    } catch (e) {
      if (isAbort(e) || options.signal?.aborted) throw e;
      // fetch rejects with a TypeError when there is no answer at all.
      const delay = delays[attempt];
      if (delay !== undefined) {
        await sleep(delay);
        continue;
      }
      const error = new UnreachableError();
      emit({ kind: 'unreachable', error });
      throw error;
    }
  }
  if (response.ok) {
    emit({ kind: 'reachable' });
    return response;
  }
  const text = await response.text().catch(() => '');
  const error = errorFromResponse(response.status, response.statusText, text);
  if (isGatewayFailure(error)) {
    // A proxy in between (the dev server, a load balancer) answered for a node that is gone.
    const unreachable = new UnreachableError(`the Link Loom node cannot be reached (${error.message})`);
    emit({ kind: 'unreachable', error: unreachable });
    throw unreachable;
  }
  emit({ kind: 'reachable' });
  // A token being checked (options.token) is the caller's to judge; only the session's own
  // token failing means the viewer must sign in again.
  if (error.unauthenticated && options.token === undefined) emit({ kind: 'unauthorized', error });
  throw error;
}

/** 502/504, or a 5xx without the node's error body: not the node speaking. */
function isGatewayFailure(error: ApiError): boolean {
  return error.status === 502 || error.status === 504 || (error.status >= 500 && error.code.startsWith('http_'));
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await send(method, path, options);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  if (!text) return undefined as T;
  return JSON.parse(text) as T;
}

const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal });
const post = <T>(path: string, body?: unknown, signal?: AbortSignal) => request<T>('POST', path, { body, signal });

// ---- endpoints ------------------------------------------------------------------------------

export interface PageQuery {
  limit?: number;
  cursor?: string | null;
}

/** The most items a `collect` walks through, so a huge list cannot hang a page. */
export const COLLECT_LIMIT = 5000;

/** Every item of a paged list, up to `max`; `complete` is false if it stopped early. */
export async function collect<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  max = COLLECT_LIMIT,
): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page: Page<T> = await fetchPage(cursor);
    items.push(...page.items);
    const next = page.next_cursor ?? null;
    if (!next) return { items, complete: true };
    if (items.length >= max) return { items, complete: false };
    cursor = next;
  }
}

export const api = {
  readyz: (signal?: AbortSignal) => send('GET', '/readyz', { signal }),

  cluster: (signal?: AbortSignal) => get<Cluster>('/api/v1/cluster', undefined, signal),
  /** Checks a token by reading the cluster with it. */
  checkToken: (token: string, signal?: AbortSignal) => request<Cluster>('GET', '/api/v1/cluster', { token, signal }),

  workers: (page: PageQuery = {}, signal?: AbortSignal) =>
    get<Page<Worker>>('/api/v1/workers', { limit: page.limit, cursor: page.cursor }, signal),
  allWorkers: (signal?: AbortSignal) => collect((cursor) => api.workers({ limit: 500, cursor }, signal)),
  queues: (signal?: AbortSignal) => get<Page<QueueInfo>>('/api/v1/queues', undefined, signal),

  workflows: (page: PageQuery = {}, signal?: AbortSignal) =>
    get<Page<Workflow>>('/api/v1/workflows', { limit: page.limit, cursor: page.cursor }, signal),
  allWorkflows: (signal?: AbortSignal) => collect((cursor) => api.workflows({ limit: 500, cursor }, signal)),
  workflow: (id: string, signal?: AbortSignal) => get<Workflow>(`/api/v1/workflows/${seg(id)}`, undefined, signal),
  versions: (id: string, signal?: AbortSignal) =>
    get<Page<WorkflowVersion>>(`/api/v1/workflows/${seg(id)}/versions`, undefined, signal),
  version: (id: string, version: number, signal?: AbortSignal) =>
    get<WorkflowVersion>(`/api/v1/workflows/${seg(id)}/versions/${seg(version)}`, undefined, signal),
  putWorkflowYaml: (yaml: string, signal?: AbortSignal) =>
    request<StoredWorkflow>('POST', '/api/v1/workflows', { body: yaml, contentType: 'application/yaml', signal }),
  trigger: (id: string, params?: Record<string, unknown>, signal?: AbortSignal) =>
    post<{ execution_id: string }>(`/api/v1/workflows/${seg(id)}/trigger`, params ? { params } : {}, signal),
  pause: (id: string, signal?: AbortSignal) =>
    post<{ id: string; paused: boolean }>(`/api/v1/workflows/${seg(id)}/pause`, undefined, signal),
  resume: (id: string, signal?: AbortSignal) =>
    post<{ id: string; paused: boolean }>(`/api/v1/workflows/${seg(id)}/resume`, undefined, signal),

  executions: (filter: ExecutionFilter & PageQuery = {}, signal?: AbortSignal) =>
    get<Page<Execution>>('/api/v1/executions', { ...filter }, signal),
  execution: (id: string, signal?: AbortSignal) => get<Execution>(`/api/v1/executions/${seg(id)}`, undefined, signal),
  cancel: (id: string, signal?: AbortSignal) =>
    post<{ id: string; status: 'cancelled' }>(`/api/v1/executions/${seg(id)}/cancel`, undefined, signal),
  retry: (id: string, signal?: AbortSignal) =>
    post<{ id: string; tasks_reset: number }>(`/api/v1/executions/${seg(id)}/retry`, undefined, signal),
  /** Remembered events (the node keeps the last 24 hours), newest first. */
  events: (filter: EventFilter & PageQuery = {}, signal?: AbortSignal) =>
    get<Page<EventRecord>>('/api/v1/events', { ...filter }, signal),
  logs: async (id: string, task?: string, signal?: AbortSignal) => {
    const response = await send('GET', `/api/v1/executions/${seg(id)}/logs`, {
      query: { task },
      accept: 'text/plain',
      signal,
    });
    return response.text();
  },
};

/** Where a workflow's `webhook` trigger is called: `POST` here, proving the trigger's secret. */
export function webhookPath(workflowId: string, name: string): string {
  return `/api/v1/hooks/${seg(workflowId)}/${seg(name)}`;
}

/** The most executions the node gives in one page (its default page limit). */
export const PAGE_MAX = 500;

/**
 * The newest `n` executions matching `filter`, newest first: the node sorts them
 * (`order=newest`), so this is one request for up to `PAGE_MAX`, and pages on past that.
 */
export async function newestExecutions(filter: ExecutionFilter, n: number, signal?: AbortSignal): Promise<Execution[]> {
  const items: Execution[] = [];
  let cursor: string | null = null;
  while (items.length < n) {
    const page: Page<Execution> = await api.executions(
      { ...filter, order: 'newest', limit: Math.min(n - items.length, PAGE_MAX), cursor },
      signal,
    );
    items.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return items.slice(0, n);
}

// ---- logs -----------------------------------------------------------------------------------

export interface FollowHandlers {
  /** Text appended to the log. */
  onText: (text: string) => void;
  /** The server ended the stream (`event: end`), with its reason (`task ended`, `gone`). */
  onEnd?: (reason: string) => void;
}

/**
 * Follows a task's log as server-sent events until the server sends `event: end`, the stream
 * closes, or `signal` aborts. Resolves to whether the server ended it (false: the connection
 * closed early and the caller may follow again; the server then starts from the beginning).
 */
export async function followLogs(
  executionId: string,
  task: string | undefined,
  handlers: FollowHandlers,
  signal?: AbortSignal,
): Promise<boolean> {
  const response = await send('GET', `/api/v1/executions/${seg(executionId)}/logs`, {
    query: { follow: true, task },
    accept: 'text/event-stream',
    signal,
  });
  if (!response.body) {
    // No streaming body (an old browser or a test double): the whole text at once.
    return deliver(new SseParser(), await response.text(), handlers) ?? false;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        const ended = deliver(parser, decoder.decode(), handlers);
        parser.finish();
        return ended ?? false;
      }
      const ended = deliver(parser, decoder.decode(value, { stream: true }), handlers);
      if (ended !== null) return ended;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** Feeds text to the parser; returns true once `end` arrives, else null. */
function deliver(parser: SseParser, text: string, handlers: FollowHandlers): boolean | null {
  for (const event of parser.push(text)) {
    if (event.event === 'end') {
      handlers.onEnd?.(event.data);
      return true;
    }
    if (event.event === 'message') handlers.onText(event.data);
  }
  return null;
}
