import type { Cursors } from '../hooks/useCursors';

/** First, Previous, the page number and Next under a paged list. */
export function Pager({ cursors, nextCursor }: { cursors: Cursors; nextCursor: string | null }) {
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" disabled={cursors.page <= 1} onClick={cursors.first}>
        First
      </button>
      <button type="button" disabled={cursors.page <= 1} onClick={cursors.previous}>
        Previous
      </button>
      <span className="muted">Page {cursors.page}</span>
      <button type="button" disabled={!nextCursor} onClick={() => nextCursor && cursors.next(nextCursor)}>
        Next
      </button>
    </nav>
  );
}
