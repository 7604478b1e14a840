// A workflow's `triggers` as the server reads them (`TriggerSpec::kind` in
// core/src/spec/trigger.rs): each entry is exactly one of an event, another workflow ending, or a
// webhook. The words for each kind are the `TriggerDescription` component's.

import type { ChainOn, TriggerSpec, WebhookAuth } from '../api';

export type TriggerKind =
  | { kind: 'event'; name: string; filter: Record<string, unknown> }
  | { kind: 'workflow'; id: string; on: ChainOn }
  | { kind: 'webhook'; name: string; auth: WebhookAuth | null; secret: string | null }
  /** None or several kinds set: the server refuses such a spec, so only a newer one sends it. */
  | { kind: 'unknown' };

export function triggerKind(trigger: TriggerSpec): TriggerKind {
  const { event, workflow, webhook } = trigger;
  const set = [event, workflow, webhook].filter((k) => k !== undefined && k !== null).length;
  if (set !== 1) return { kind: 'unknown' };
  if (event != null) return { kind: 'event', name: event, filter: trigger.filter ?? {} };
  if (workflow != null) return { kind: 'workflow', id: workflow, on: trigger.on ?? 'succeeded' };
  return { kind: 'webhook', name: webhook!, auth: trigger.auth ?? null, secret: trigger.secret ?? null };
}

/**
 * A filter value as it reads in a condition: a string bare (`eu`), unless it would read as
 * another JSON value (`"1"`, `"true"`, `""`); anything else as JSON (`1`, `true`, `["a"]`).
 */
export function filterValueText(value: unknown): string {
  if (typeof value !== 'string') return JSON.stringify(value) ?? 'null';
  return value === '' || value.trim() !== value || readsAsJson(value) ? JSON.stringify(value) : value;
}

function readsAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** An event filter's conditions: `region = eu`, one per dotted path into the payload. */
export function filterConditions(filter: Record<string, unknown>): string[] {
  return Object.entries(filter).map(([path, value]) => `${path} = ${filterValueText(value)}`);
}
