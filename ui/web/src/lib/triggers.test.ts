import { describe, expect, it } from 'vitest';
import { filterConditions, filterValueText, triggerKind } from './triggers';

describe('triggerKind', () => {
  it('reads each kind with its fields', () => {
    expect(triggerKind({ event: 'order.created', filter: { region: 'eu' } })).toEqual({
      kind: 'event',
      name: 'order.created',
      filter: { region: 'eu' },
    });
    expect(triggerKind({ workflow: 'extract', on: 'failed' })).toEqual({
      kind: 'workflow',
      id: 'extract',
      on: 'failed',
    });
    expect(triggerKind({ webhook: 'push', auth: 'github', secret: 'gh' })).toEqual({
      kind: 'webhook',
      name: 'push',
      auth: 'github',
      secret: 'gh',
    });
  });

  it('fills in what the server takes as default, with every field present as the node sends it', () => {
    const absent = { event: null, filter: null, workflow: null, on: null, webhook: null, auth: null, secret: null };
    expect(triggerKind({ ...absent, workflow: 'extract' })).toEqual({
      kind: 'workflow',
      id: 'extract',
      on: 'succeeded',
    });
    expect(triggerKind({ ...absent, event: 'ping' })).toEqual({ kind: 'event', name: 'ping', filter: {} });
  });

  it('reads no kind, or several, as unknown', () => {
    expect(triggerKind({})).toEqual({ kind: 'unknown' });
    expect(triggerKind({ event: 'a', workflow: 'b' })).toEqual({ kind: 'unknown' });
  });
});

describe('filter conditions', () => {
  it('shows a string bare unless it would read as another value', () => {
    expect(filterValueText('eu')).toBe('eu');
    expect(filterValueText('1')).toBe('"1"');
    expect(filterValueText('true')).toBe('"true"');
    expect(filterValueText('')).toBe('""');
    expect(filterValueText(' eu')).toBe('" eu"');
    expect(filterValueText(1)).toBe('1');
    expect(filterValueText(false)).toBe('false');
    expect(filterValueText(null)).toBe('null');
    expect(filterValueText(['a', 2])).toBe('["a",2]');
  });

  it('says one condition per dotted path', () => {
    expect(filterConditions({ region: 'eu', 'customer.tier': 2 })).toEqual(['region = eu', 'customer.tier = 2']);
    expect(filterConditions({})).toEqual([]);
  });
});
