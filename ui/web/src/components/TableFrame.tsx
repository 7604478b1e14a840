// The frame around a table. On a narrow screen a wide table scrolls sideways inside it rather
// than squeezing into tall rows or widening the page; while it does, the frame is a named,
// focusable region, so a keyboard can reach it and scroll it with the arrow keys. A table that
// fits adds no tab stop.

import { useEffect, useRef, useState, type CSSProperties, type ReactNode } from 'react';

export interface TableFrameProps {
  /** What the table holds, said when the frame is focused ("Attempts of task load"). */
  label: string;
  /**
   * The narrowest the table may get before the frame scrolls (a CSS length), on phone widths.
   * Default `auto`: as narrow as its content allows. Give wide tables room, e.g. `44rem`.
   */
  minWidth?: string;
  children: ReactNode;
}

export function TableFrame({ label, minWidth, children }: TableFrameProps) {
  const frame = useRef<HTMLDivElement>(null);
  const [scrolls, setScrolls] = useState(false);
  useEffect(() => {
    const element = frame.current;
    if (!element) return;
    const measure = () => setScrolls(element.scrollWidth > element.clientWidth + 1);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    const table = element.firstElementChild;
    if (table) observer.observe(table);
    return () => observer.disconnect();
  }, []);
  const style = minWidth ? ({ '--table-min': minWidth } as CSSProperties) : undefined;
  return (
    <div
      ref={frame}
      className="table-wrap"
      style={style}
      {...(scrolls ? { role: 'region', 'aria-label': `${label} (scrolls sideways)`, tabIndex: 0 } : {})}
    >
      {children}
    </div>
  );
}
