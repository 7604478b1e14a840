// The geometry of an execution's timeline: one row per task, one bar per attempt, placed in
// percent of the execution's span so the component only has to draw.

import type { Execution, TaskStatus, AttemptStatus } from '../api';
import { ms } from './format';

export interface TimelineBar {
  attemptId: string;
  n: number;
  status: AttemptStatus;
  start: number;
  end: number;
  /** Still running: the bar grows to "now". */
  open: boolean;
  leftPct: number;
  widthPct: number;
  error: string | null;
}

export interface TimelineRow {
  taskId: string;
  status: TaskStatus;
  bars: TimelineBar[];
  /** Where a retrying task will try again, if that falls inside the span. */
  retryAtPct: number | null;
}

export interface TimelineTick {
  pct: number;
  /** Milliseconds from the start of the span. */
  offset: number;
}

export interface Timeline {
  start: number;
  end: number;
  rows: TimelineRow[];
  ticks: TimelineTick[];
  /** Where "now" is, while the execution runs. */
  nowPct: number | null;
}

/** Bars narrower than this are widened so a 3 ms attempt in a 1 h run can still be seen. */
export const MIN_BAR_PCT = 0.6;

const STEPS_MS = [
  10, 20, 50, 100, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
  1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000, 172_800_000, 604_800_000,
];

/** Tick intervals on a wide axis, or one whose width is not known. */
export const MAX_TICKS = 6;
/** Room per tick label: the longest (`+1d 23h`) and a gap, in CSS pixels. */
export const TICK_SPACING_PX = 72;

/** How many tick intervals fit an axis `widthPx` wide: at least 2, so a phone still has a scale. */
export function ticksForWidth(widthPx: number): number {
  if (widthPx <= 0) return MAX_TICKS;
  return Math.max(2, Math.min(MAX_TICKS, Math.floor(widthPx / TICK_SPACING_PX)));
}

/** A round tick step that gives at most `maxTicks` intervals over `span`. */
export function tickStep(span: number, maxTicks = MAX_TICKS): number {
  for (const step of STEPS_MS) {
    if (span / step <= maxTicks) return step;
  }
  const week = 604_800_000;
  return Math.ceil(span / maxTicks / week) * week;
}

export function layoutTimeline(execution: Execution, now: number, maxTicks = MAX_TICKS): Timeline {
  const finished = ms(execution.finished_at);
  const starts: number[] = [];
  const ends: number[] = [];
  for (const task of execution.tasks) {
    for (const attempt of task.attempts) {
      const s = ms(attempt.started_at);
      if (s !== null) starts.push(s);
      const e = ms(attempt.finished_at);
      if (e !== null) ends.push(e);
    }
  }
  const begin = ms(execution.started_at) ?? ms(execution.created_at);
  const candidates = begin === null ? starts : [begin, ...starts];
  const start = candidates.length > 0 ? Math.min(...candidates) : now;
  const end = Math.max(start + 1, finished ?? now, ...ends);
  const span = end - start;
  const pct = (t: number) => ((t - start) / span) * 100;

  const rows: TimelineRow[] = execution.tasks.map((task) => {
    const bars: TimelineBar[] = [];
    for (const attempt of task.attempts) {
      const s = ms(attempt.started_at);
      if (s === null) continue;
      const f = ms(attempt.finished_at);
      const open = f === null && attempt.status === 'running';
      // An attempt that stopped without a finish time (lost) ends where the execution did.
      const e = f ?? (open ? (finished ?? now) : s);
      const left = clamp(pct(s), 0, 100);
      let width = clamp(pct(Math.max(e, s)), 0, 100) - left;
      if (width < MIN_BAR_PCT) width = MIN_BAR_PCT;
      const leftPct = Math.min(left, 100 - width);
      bars.push({
        attemptId: attempt.id,
        n: attempt.n,
        status: attempt.status,
        start: s,
        end: e,
        open,
        leftPct,
        widthPct: width,
        error: attempt.error ?? null,
      });
    }
    const retryAt = ms(task.retry_at);
    const retryAtPct = retryAt !== null && retryAt >= start && retryAt <= end ? pct(retryAt) : null;
    return { taskId: task.id, status: task.status, bars, retryAtPct };
  });

  const step = tickStep(span, maxTicks);
  const ticks: TimelineTick[] = [];
  for (let offset = 0; offset <= span; offset += step) ticks.push({ pct: (offset / span) * 100, offset });

  const nowPct = finished === null && now >= start && now <= end ? pct(now) : null;
  return { start, end, rows, ticks, nowPct };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
