import { Link } from 'react-router';
import type { Execution } from '../api';
import { ago, between, formatTime } from '../lib/format';
import { StatusBadge } from './Status';
import { TableFrame } from './TableFrame';

/** An execution's page; with `task`, opened at that task's attempts and log. */
export function executionPath(id: string, task?: string): string {
  const path = `/executions/${encodeURIComponent(id)}`;
  return task === undefined ? path : `${path}?task=${encodeURIComponent(task)}`;
}

export function workflowPath(id: string): string {
  return `/workflows/${encodeURIComponent(id)}`;
}

/** The first error among an execution's attempts, for one-line summaries. */
export function firstError(execution: Execution): { task: string; error: string } | null {
  for (const task of execution.tasks) {
    for (const attempt of [...task.attempts].reverse()) {
      if (attempt.error) return { task: task.id, error: attempt.error };
    }
  }
  return null;
}

export interface ExecutionTableProps {
  items: readonly Execution[];
  caption: string;
  /** Hide the workflow column on a workflow's own page. */
  showWorkflow?: boolean;
  showError?: boolean;
  now?: number;
  /** Adds a "show on graph" control per row. */
  selected?: string | null;
  onSelect?: (id: string) => void;
}

export function ExecutionTable({
  items,
  caption,
  showWorkflow = true,
  showError = false,
  now = Date.now(),
  selected,
  onSelect,
}: ExecutionTableProps) {
  return (
    <TableFrame label={caption} minWidth="44rem">
      <table>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Execution</th>
            {showWorkflow && <th scope="col">Workflow</th>}
            <th scope="col">Status</th>
            <th scope="col">Trigger</th>
            <th scope="col">Created</th>
            <th scope="col">Duration</th>
            {showError && <th scope="col">Error</th>}
            {onSelect && (
              <th scope="col">
                <span className="sr-only">Graph</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {items.map((e) => {
            const error = showError ? firstError(e) : null;
            return (
              <tr key={e.id} className={selected === e.id ? 'is-selected' : undefined}>
                <td>
                  <Link to={executionPath(e.id)} className="mono">
                    {e.id}
                  </Link>
                </td>
                {showWorkflow && (
                  <td>
                    <Link to={workflowPath(e.workflow_id)}>{e.workflow_id}</Link>
                  </td>
                )}
                <td>
                  <StatusBadge status={e.status} />
                </td>
                <td>{e.trigger ?? '–'}</td>
                <td title={formatTime(e.created_at)}>{ago(e.created_at, now)}</td>
                <td>{e.started_at ? between(e.started_at, e.finished_at, now) : '–'}</td>
                {showError && (
                  <td className="error-cell">
                    {error ? (
                      <>
                        <code>{error.task}</code>: {error.error}
                      </>
                    ) : (
                      '–'
                    )}
                  </td>
                )}
                {onSelect && (
                  <td>
                    <button
                      type="button"
                      className="small"
                      aria-pressed={selected === e.id}
                      onClick={() => onSelect(e.id)}
                    >
                      {selected === e.id ? 'On graph' : 'Show on graph'}
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </TableFrame>
  );
}
