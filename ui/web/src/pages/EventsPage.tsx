import { useId, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, type EventOutcome, type EventRecord } from '../api';
import { executionPath, workflowPath } from '../components/ExecutionTable';
import { Loaded } from '../components/Feedback';
import { Pager } from '../components/Pager';
import { TableFrame } from '../components/TableFrame';
import { useCursors } from '../hooks/useCursors';
import { useResource } from '../hooks/useResource';
import { ago, formatTime } from '../lib/format';
import { useSettings } from '../settings';

/** Events per page. */
export const EVENTS_PAGE = 50;

/** The events page, with only the events of `name` when given. */
export function eventsPath(name?: string): string {
  return name ? `/events?name=${encodeURIComponent(name)}` : '/events';
}

export function EventsPage() {
  const [params, setParams] = useSearchParams();
  const name = params.get('name') || undefined;
  const cursors = useCursors(name ?? '');
  const { cursor } = cursors;
  const { settings } = useSettings();

  const page = useResource(
    `events ${name ?? ''} ${cursor ?? ''}`,
    (signal) => api.events({ name, limit: EVENTS_PAGE, cursor }, signal),
    settings.refreshMs,
  );

  const apply = (next: string | undefined) => setParams(next ? { name: next } : {});

  return (
    <div className="page">
      <h1>Events</h1>
      <p className="muted">
        Events sent to <code>POST /api/v1/events</code> and webhook calls, newest first, with the executions each
        started. The cluster remembers them for 24 hours.
      </p>
      <NameFilter key={name ?? ''} name={name} onApply={apply} />
      <Loaded resource={page} what="events">
        {(data) =>
          data.items.length === 0 ? (
            <p>{cursors.page > 1 ? 'No more events.' : name ? `No events named ${name}.` : 'No events yet.'}</p>
          ) : (
            <EventTable items={data.items} />
          )
        }
      </Loaded>
      <Pager cursors={cursors} nextCursor={page.data?.next_cursor ?? null} />
    </div>
  );
}

function NameFilter({ name, onApply }: { name: string | undefined; onApply: (name: string | undefined) => void }) {
  const id = useId();
  const [text, setText] = useState(name ?? '');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply(text.trim() || undefined);
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="Filter events">
      <div className="field">
        <label htmlFor={`${id}-name`}>Name</label>
        <input id={`${id}-name`} value={text} onChange={(e) => setText(e.target.value)} placeholder="any" />
      </div>
      <div className="field field-actions">
        <button type="submit" className="primary">
          Apply
        </button>
        <button type="button" onClick={() => onApply(undefined)}>
          Clear
        </button>
      </div>
    </form>
  );
}

function EventTable({ items, now = Date.now() }: { items: readonly EventRecord[]; now?: number }) {
  return (
    <TableFrame label="Events" minWidth="44rem">
      <table>
        <caption className="sr-only">Events</caption>
        <thead>
          <tr>
            <th scope="col">Received</th>
            <th scope="col">Name</th>
            <th scope="col">Id</th>
            <th scope="col">Source</th>
            <th scope="col">Started</th>
          </tr>
        </thead>
        <tbody>
          {items.map((e) => (
            <tr key={`${e.name} ${e.id}`}>
              <td title={formatTime(e.received_at)}>{ago(e.received_at, now)}</td>
              <td>
                <Link to={eventsPath(e.name)} title={`Only events named ${e.name}`}>
                  <code>{e.name}</code>
                </Link>
              </td>
              <td className="mono break">{e.id}</td>
              <td>
                <Source event={e} />
              </td>
              <td>
                <Outcomes event={e} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableFrame>
  );
}

function Source({ event: e }: { event: EventRecord }) {
  return (
    <>
      {e.source}
      {e.webhook && (
        <>
          {' '}
          <code>{e.webhook.name}</code> of <Link to={workflowPath(e.webhook.workflow_id)}>{e.webhook.workflow_id}</Link>
        </>
      )}
      {e.upstream_execution_id && (
        <>
          {' '}
          end of{' '}
          <Link to={executionPath(e.upstream_execution_id)} className="mono">
            {e.upstream_execution_id}
          </Link>
        </>
      )}
      {e.by && <span className="muted"> by {e.by}</span>}
    </>
  );
}

function Outcomes({ event: e }: { event: EventRecord }) {
  if (e.outcomes.length === 0) return <span className="muted">no workflow matched</span>;
  return (
    <ul className="plain">
      {e.outcomes.map((o) => (
        <li key={o.workflow_id}>
          <Outcome outcome={o} />
        </li>
      ))}
      {e.more_outcomes > 0 && (
        <li className="muted">
          and {e.more_outcomes} more workflow{e.more_outcomes === 1 ? '' : 's'}
        </li>
      )}
    </ul>
  );
}

function Outcome({ outcome: o }: { outcome: EventOutcome }) {
  if (o.execution_id)
    return (
      <Link to={executionPath(o.execution_id)} className="mono">
        {o.execution_id}
      </Link>
    );
  return (
    <>
      <Link to={workflowPath(o.workflow_id)}>{o.workflow_id}</Link>{' '}
      <span className="muted">skipped: {o.skipped ?? 'no reason given'}</span>
    </>
  );
}
