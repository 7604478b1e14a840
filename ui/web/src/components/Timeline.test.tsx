import { render } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Timeline, tickLabel } from './Timeline';
import { execution } from '../test/wire';

const T0 = Date.parse('2026-03-01T06:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

const EXECUTION = execution({
  id: 'wf:1',
  workflow_id: 'wf',
  status: 'succeeded',
  started_at: at(0),
  finished_at: at(100),
  tasks: [
    {
      id: 'extract',
      status: 'succeeded',
      attempts: [{ id: '1', n: 1, status: 'succeeded', started_at: at(0), finished_at: at(100) }],
    },
  ],
});

/** Lays every observed element out `width` pixels wide, as a browser would report it. */
function layOutAt(width: number) {
  vi.stubGlobal(
    'ResizeObserver',
    class {
      constructor(private readonly callback: ResizeObserverCallback) {}
      observe(target: Element) {
        const entry = { target, contentRect: { width, height: 20 } } as unknown as ResizeObserverEntry;
        this.callback([entry], this as unknown as ResizeObserver);
      }
      unobserve() {}
      disconnect() {}
    },
  );
}

function ticks(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>('.tl-tick')];
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('Timeline', () => {
  it('labels a wide axis every 30 s of a 100 s run', () => {
    layOutAt(900);
    render(<Timeline execution={EXECUTION} now={T0} selectedTask={null} onSelectTask={() => {}} />);
    expect(ticks().map((t) => t.textContent)).toEqual(['0', '+30s', '+1m', '+1m 30s']);
  });

  it('keeps a phone-width axis to a few labels, each inside the frame', () => {
    layOutAt(200);
    render(<Timeline execution={EXECUTION} now={T0} selectedTask={null} onSelectTask={() => {}} />);
    const labels = ticks();
    expect(labels.map((t) => t.textContent)).toEqual(['0', '+1m']);
    // Each label is shifted left by as much of its own width as its tick is along the axis:
    // the first starts at the left edge, a last one at 100% would end at the right edge.
    for (const label of labels) {
      const pct = parseFloat(label.style.left);
      expect(label.style.transform).toBe(`translateX(-${pct}%)`);
    }
    expect(labels[0]!.style.left).toBe('0%');
  });
});

describe('tickLabel', () => {
  it('writes offsets from the start, shortest first', () => {
    expect([0, 250, 30_000, 90_000, 7_200_000, 108_000_000].map(tickLabel)).toEqual([
      '0',
      '+250ms',
      '+30s',
      '+1m 30s',
      '+2h',
      '+1d 6h',
    ]);
  });
});
