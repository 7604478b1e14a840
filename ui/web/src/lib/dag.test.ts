import { describe, expect, it } from 'vitest';
import { NODE_HEIGHT, NODE_WIDTH, findCycle, fitZoom, layoutDag } from './dag';

describe('layoutDag', () => {
  it('places dependencies left of their dependants', () => {
    const layout = layoutDag([
      { id: 'extract' },
      { id: 'transform', depends_on: ['extract'] },
      { id: 'load', depends_on: ['transform'] },
      { id: 'audit', depends_on: ['extract'] },
    ]);
    const at = Object.fromEntries(layout.nodes.map((n) => [n.id, n]));
    expect(Object.keys(at).sort()).toEqual(['audit', 'extract', 'load', 'transform']);
    expect(at.extract!.x).toBeLessThan(at.transform!.x);
    expect(at.transform!.x).toBeLessThan(at.load!.x);
    expect(at.audit!.x).toBe(at.transform!.x);
    expect(at.audit!.y).not.toBe(at.transform!.y);
    expect(layout.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual([
      'extract>audit',
      'extract>transform',
      'transform>load',
    ]);
    for (const n of layout.nodes) {
      expect(n.x).toBeGreaterThanOrEqual(0);
      expect(n.y).toBeGreaterThanOrEqual(0);
      expect([n.width, n.height]).toEqual([NODE_WIDTH, NODE_HEIGHT]);
    }
    expect(layout.width).toBeGreaterThanOrEqual(at.load!.x + NODE_WIDTH);
    expect(layout.unknown).toEqual([]);
    expect(layout.cycle).toBeNull();
  });

  it('stacks top to bottom on request', () => {
    const layout = layoutDag([{ id: 'a' }, { id: 'b', depends_on: ['a'] }], 'TB');
    const [a, b] = layout.nodes;
    expect(a!.y).toBeLessThan(b!.y);
    expect(a!.x).toBe(b!.x);
  });

  it('reports unknown dependencies and draws the rest', () => {
    const layout = layoutDag([
      { id: 'a', depends_on: ['ghost'] },
      { id: 'b', depends_on: ['a', 'a'] },
    ]);
    expect(layout.unknown).toEqual([{ task: 'a', dependency: 'ghost' }]);
    expect(layout.edges).toHaveLength(1);
    expect(layout.nodes).toHaveLength(2);
  });

  it('draws duplicates once and survives cycles', () => {
    const layout = layoutDag([
      { id: 'a', depends_on: ['c'] },
      { id: 'b', depends_on: ['a'] },
      { id: 'c', depends_on: ['b'] },
      { id: 'a' },
    ]);
    expect(layout.nodes).toHaveLength(3);
    expect(layout.cycle).toEqual(['a', 'b', 'c', 'a']);
  });

  it('handles an empty workflow', () => {
    expect(layoutDag([])).toMatchObject({ nodes: [], edges: [], cycle: null });
  });
});

describe('fitZoom', () => {
  const chain = [
    { id: 'extract' },
    { id: 'transform', depends_on: ['extract'] },
    { id: 'load', depends_on: ['transform'] },
  ];
  const phone = { width: 370, height: 340 };

  it('prefers top to bottom for a chain on a phone, left to right on a desktop', () => {
    const wide = layoutDag(chain, 'LR');
    const tall = layoutDag(chain, 'TB');
    expect(fitZoom(tall, phone)).toBeGreaterThan(fitZoom(wide, phone));
    expect(fitZoom(wide, { width: 1240, height: 340 })).toBe(1.2);
  });

  it('keeps a wide fan left to right even on a phone', () => {
    const fan = [{ id: 'start' }, ...Array.from({ length: 6 }, (_, i) => ({ id: `part-${i}`, depends_on: ['start'] }))];
    expect(fitZoom(layoutDag(fan, 'LR'), phone)).toBeGreaterThan(fitZoom(layoutDag(fan, 'TB'), phone));
  });

  it('answers 0 while the box is not measured', () => {
    expect(fitZoom(layoutDag(chain), { width: 0, height: 0 })).toBe(0);
  });
});

describe('findCycle', () => {
  it('reads a cycle in the direction work flows', () => {
    expect(findCycle([{ id: 'x', depends_on: ['x'] }])).toEqual(['x', 'x']);
    expect(findCycle([{ id: 'a' }, { id: 'b', depends_on: ['a', 'c'] }, { id: 'c', depends_on: ['b'] }])).toEqual([
      'b',
      'c',
      'b',
    ]);
    expect(findCycle([{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['a', 'b'] }])).toBeNull();
  });
});
