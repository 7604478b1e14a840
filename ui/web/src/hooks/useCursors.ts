// Where a paged list is: the API pages forward only (`next_cursor`), so the cursors of the pages
// before this one are kept for "Previous". A new `key` (other filters) starts at the first page.

import { useState } from 'react';

export interface Cursors {
  /** The cursor of the page shown (null: the first). */
  cursor: string | null;
  /** 1-based. */
  page: number;
  first: () => void;
  previous: () => void;
  next: (cursor: string) => void;
}

export function useCursors(key: string): Cursors {
  const [state, setState] = useState<{ key: string; stack: (string | null)[] }>({ key, stack: [null] });
  const stack = state.key === key ? state.stack : [null];
  return {
    cursor: stack[stack.length - 1] ?? null,
    page: stack.length,
    first: () => setState({ key, stack: [null] }),
    previous: () => setState({ key, stack: stack.slice(0, -1) }),
    next: (cursor) => setState({ key, stack: [...stack, cursor] }),
  };
}
