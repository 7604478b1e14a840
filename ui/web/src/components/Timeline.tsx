// A Gantt-like view of an execution: one row per task, one bar per attempt.
//
// The time axis has as many ticks as its measured width has room for, and each label slides
// along its own width as its tick moves across (left-aligned at 0, right-aligned at the end), so
// no label leaves the frame, however narrow the phone.

import type { Execution } from '../api';
import { useElementSize } from '../hooks/useElementSize';
import { formatDuration, formatTime } from '../lib/format';
import { label, tone } from '../lib/status';
import { layoutTimeline, ticksForWidth, type TimelineBar } from '../lib/timeline';
import { StatusDot } from './Status';

/** `0`, `+250ms`, `+30s`, `+1m 30s`, `+2h`, `+1d 6h`: tick labels, offsets from the start. */
export function tickLabel(offset: number): string {
  if (offset === 0) return '0';
  if (offset < 1000) return `+${offset}ms`;
  const s = Math.round(offset / 1000);
  if (s < 60) return `+${s}s`;
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'd'],
    [Math.floor((s % 86_400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const shown = parts.filter(([n]) => n > 0).slice(0, 2);
  return '+' + shown.map(([n, u]) => `${n}${u}`).join(' ');
}

function barTitle(bar: TimelineBar): string {
  const took = formatDuration(bar.end - bar.start);
  const error = bar.error ? `\n${bar.error}` : '';
  return `attempt ${bar.n}: ${label(bar.status)}, ${bar.open ? 'running for' : 'took'} ${took}\nstarted ${formatTime(new Date(bar.start).toISOString())}${error}`;
}

export interface TimelineProps {
  execution: Execution;
  now: number;
  selectedTask: string | null;
  onSelectTask: (taskId: string) => void;
}

export function Timeline({ execution, now, selectedTask, onSelectTask }: TimelineProps) {
  const [axis, axisSize] = useElementSize<HTMLDivElement>();
  const t = layoutTimeline(execution, now, ticksForWidth(axisSize.width));
  return (
    <div className="timeline">
      <div className="tl-row tl-axis" aria-hidden="true">
        <div className="tl-label" />
        <div className="tl-track" ref={axis}>
          {t.ticks.map((tick) => (
            <span
              key={tick.offset}
              className="tl-tick"
              style={{ left: `${tick.pct}%`, transform: `translateX(-${tick.pct}%)` }}
            >
              {tickLabel(tick.offset)}
            </span>
          ))}
        </div>
      </div>
      <ul className="tl-rows" aria-label="Tasks over time">
        {t.rows.map((row) => (
          <li key={row.taskId} className={`tl-row${row.taskId === selectedTask ? ' is-selected' : ''}`}>
            <button
              type="button"
              className="tl-label"
              aria-pressed={row.taskId === selectedTask}
              onClick={() => onSelectTask(row.taskId)}
              title={`${row.taskId}: ${label(row.status)}`}
            >
              <StatusDot status={row.status} />
              <span className="tl-task">{row.taskId}</span>
              <span className="sr-only">
                , {label(row.status)}, {row.bars.length} attempt{row.bars.length === 1 ? '' : 's'}
              </span>
            </button>
            <div className="tl-track">
              {t.ticks.map((tick) => (
                <span key={tick.offset} className="tl-grid" style={{ left: `${tick.pct}%` }} aria-hidden="true" />
              ))}
              {row.bars.map((bar) => (
                <span
                  key={bar.attemptId}
                  className={`tl-bar tone-${tone(bar.status)}${bar.open ? ' open' : ''}`}
                  style={{ left: `${bar.leftPct}%`, width: `${bar.widthPct}%` }}
                  title={barTitle(bar)}
                  aria-hidden="true"
                />
              ))}
              {row.retryAtPct !== null && (
                <span
                  className="tl-retry"
                  style={{ left: `${row.retryAtPct}%` }}
                  title="next attempt"
                  aria-hidden="true"
                />
              )}
              {t.nowPct !== null && <span className="tl-now" style={{ left: `${t.nowPct}%` }} aria-hidden="true" />}
            </div>
          </li>
        ))}
      </ul>
      <p className="tl-legend muted">
        {formatTime(new Date(t.start).toISOString())} –{' '}
        {execution.finished_at ? formatTime(execution.finished_at) : 'now'} · {formatDuration(t.end - t.start)}
      </p>
    </div>
  );
}
