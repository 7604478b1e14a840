import { describe, expect, it } from 'vitest';
import type { Execution } from '../api';
import { execution as fixture, type ExecutionFixture } from '../test/wire';
import { MAX_TICKS, MIN_BAR_PCT, layoutTimeline, tickStep, ticksForWidth } from './timeline';

const T0 = Date.parse('2026-03-01T06:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function execution(partial: ExecutionFixture): Execution {
  return fixture({ id: 'wf:1', workflow_id: 'wf', status: 'succeeded', ...partial });
}

describe('tickStep', () => {
  it('picks round steps', () => {
    expect(tickStep(100_000)).toBe(30_000);
    expect(tickStep(60_000)).toBe(10_000);
    expect(tickStep(900)).toBe(250);
    expect(tickStep(3 * 3_600_000)).toBe(1_800_000);
    expect(tickStep(100 * 86_400_000)).toBe(3 * 604_800_000);
  });
});

describe('ticksForWidth', () => {
  it('gives a narrow axis fewer ticks, never fewer than two', () => {
    expect(ticksForWidth(0)).toBe(MAX_TICKS); // not measured yet
    expect(ticksForWidth(1200)).toBe(MAX_TICKS);
    expect(ticksForWidth(230)).toBe(3);
    expect(ticksForWidth(90)).toBe(2);
  });
});

describe('layoutTimeline', () => {
  it('places attempts in percent of the execution', () => {
    const t = layoutTimeline(
      execution({
        started_at: at(0),
        finished_at: at(100),
        tasks: [
          {
            id: 'extract',
            status: 'succeeded',
            attempts: [{ id: '1', n: 1, status: 'succeeded', started_at: at(0), finished_at: at(20) }],
          },
          {
            id: 'load',
            status: 'succeeded',
            attempts: [
              { id: '2', n: 1, status: 'failed', started_at: at(20), finished_at: at(50), error: 'exit 1' },
              { id: '3', n: 2, status: 'succeeded', started_at: at(60), finished_at: at(100) },
            ],
          },
          { id: 'never', status: 'skipped', attempts: [] },
        ],
      }),
      T0 + 500_000,
    );
    expect(t.start).toBe(T0);
    expect(t.end).toBe(T0 + 100_000);
    expect(t.nowPct).toBeNull();
    expect(t.rows.map((r) => r.taskId)).toEqual(['extract', 'load', 'never']);
    const [extract, load, never] = t.rows;
    expect(extract!.bars[0]).toMatchObject({ leftPct: 0, widthPct: 20, open: false });
    expect(load!.bars.map((b) => [b.leftPct, b.widthPct, b.status, b.error])).toEqual([
      [20, 30, 'failed', 'exit 1'],
      [60, 40, 'succeeded', null],
    ]);
    expect(never!.bars).toEqual([]);
    expect(t.ticks.map((k) => k.offset)).toEqual([0, 30_000, 60_000, 90_000]);
    expect(t.ticks[1]!.pct).toBeCloseTo(30);
  });

  it('spaces ticks further apart when fewer fit', () => {
    const t = layoutTimeline(execution({ started_at: at(0), finished_at: at(100) }), T0, 2);
    expect(t.ticks.map((k) => k.offset)).toEqual([0, 60_000]);
  });

  it('grows running attempts to now', () => {
    const t = layoutTimeline(
      execution({
        status: 'running',
        started_at: at(0),
        tasks: [
          {
            id: 'a',
            status: 'succeeded',
            attempts: [{ id: '1', n: 1, status: 'succeeded', started_at: at(0), finished_at: at(10) }],
          },
          {
            id: 'b',
            status: 'running',
            attempts: [{ id: '2', n: 1, status: 'running', started_at: at(10), finished_at: null }],
          },
        ],
      }),
      T0 + 40_000,
    );
    expect(t.end).toBe(T0 + 40_000);
    expect(t.nowPct).toBe(100);
    expect(t.rows[1]!.bars[0]).toMatchObject({ open: true, leftPct: 25, widthPct: 75 });
  });

  it('keeps tiny attempts visible and inside the track', () => {
    const t = layoutTimeline(
      execution({
        started_at: at(0),
        finished_at: at(3600),
        tasks: [
          {
            id: 'quick',
            status: 'succeeded',
            attempts: [{ id: '1', n: 1, status: 'succeeded', started_at: at(3600), finished_at: at(3600) }],
          },
        ],
      }),
      T0,
    );
    const bar = t.rows[0]!.bars[0]!;
    expect(bar.widthPct).toBe(MIN_BAR_PCT);
    expect(bar.leftPct + bar.widthPct).toBeCloseTo(100);
  });

  it('shows a queued execution without attempts', () => {
    const now = T0 + 5000;
    const t = layoutTimeline(
      execution({ status: 'queued', created_at: at(0), tasks: [{ id: 'a', status: 'pending', attempts: [] }] }),
      now,
    );
    expect(t.start).toBe(T0);
    expect(t.end).toBe(now);
    expect(t.rows[0]!.bars).toEqual([]);
  });

  it('marks where a retrying task tries again', () => {
    const t = layoutTimeline(
      execution({
        status: 'running',
        started_at: at(0),
        tasks: [
          {
            id: 'a',
            status: 'retrying',
            retry_at: at(30),
            attempts: [{ id: '1', n: 1, status: 'failed', started_at: at(0), finished_at: at(10), error: 'boom' }],
          },
        ],
      }),
      T0 + 60_000,
    );
    expect(t.rows[0]!.retryAtPct).toBeCloseTo(50);
  });
});
