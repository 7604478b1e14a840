// The size of an element as laid out, for views that draw differently when narrow (the timeline's
// ticks, the task graph's direction). Zero until the first measurement, and always where there
// is no layout (tests under jsdom): callers treat zero as "unknown" and keep their wide defaults.

import { useEffect, useState } from 'react';

export interface ElementSize {
  width: number;
  height: number;
}

/** A ref to put on the element, and its size; the element may come and go. */
export function useElementSize<T extends HTMLElement>(): [(element: T | null) => void, ElementSize] {
  const [element, setElement] = useState<T | null>(null);
  const [size, setSize] = useState<ElementSize>({ width: 0, height: 0 });
  useEffect(() => {
    if (!element) return;
    const observer = new ResizeObserver(([entry]) => {
      if (!entry) return;
      // Whole pixels: sub-pixel jitter would re-render for nothing.
      const width = Math.round(entry.contentRect.width);
      const height = Math.round(entry.contentRect.height);
      setSize((s) => (s.width === width && s.height === height ? s : { width, height }));
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [element]);
  return [setElement, size];
}
