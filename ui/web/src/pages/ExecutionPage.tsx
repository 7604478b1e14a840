import { useEffect, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { ApiError, api, describeError, type Execution, type StartEvent, type TaskRun, type Trigger } from '../api';
import { executionPath, workflowPath } from '../components/ExecutionTable';
import { Loaded, forbiddenHint } from '../components/Feedback';
import { LogPane } from '../components/LogPane';
import { StatusBadge, StatusDot } from '../components/Status';
import { Timeline } from '../components/Timeline';
import { useResource } from '../hooks/useResource';
import { between, formatDuration, formatTime, ms, prettyJson } from '../lib/format';
import { executionFinished, label } from '../lib/status';
import { TableFrame } from '../components/TableFrame';
import { eventsPath } from './EventsPage';

/** An unfinished execution refreshes this often, whatever the refresh setting. */
export const LIVE_REFRESH_MS = 1000;

export function ExecutionPage() {
  const { id = '' } = useParams();
  const [finished, setFinished] = useState(false);
  const execution = useResource(`execution ${id}`, (s) => api.execution(id, s), finished ? null : LIVE_REFRESH_MS);
  useEffect(() => {
    if (execution.data) setFinished(executionFinished(execution.data.status));
  }, [execution.data]);

  return (
    <div className="page">
      <Loaded resource={execution} what="execution">
        {(e) => <ExecutionView execution={e} reload={execution.reload} />}
      </Loaded>
    </div>
  );
}

/** The task to show first: the one the link names, else a failed one, else a running one, else the first. */
function defaultTask(e: Execution, asked: string | null = null): string | null {
  const pick =
    e.tasks.find((t) => t.id === asked) ??
    e.tasks.find((t) => t.status === 'failed') ??
    e.tasks.find((t) => t.status === 'running' || t.status === 'retrying') ??
    e.tasks.find((t) => t.attempts.length > 0) ??
    e.tasks[0];
  return pick?.id ?? null;
}

function ExecutionView({ execution: e, reload }: { execution: Execution; reload: () => void }) {
  const [search] = useSearchParams();
  const [selected, setSelected] = useState<string | null>(() => defaultTask(e, search.get('task')));
  const [now, setNow] = useState(() => Date.now());
  const done = executionFinished(e.status);
  useEffect(() => {
    if (done) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [done]);
  useEffect(() => {
    // The execution changed under us (a retry reset tasks): keep the selection if it still exists.
    if (selected === null || !e.tasks.some((t) => t.id === selected)) setSelected(defaultTask(e));
  }, [e, selected]);

  const task = e.tasks.find((t) => t.id === selected) ?? null;
  const errors = e.tasks.flatMap((t) => t.attempts.filter((a) => a.error).map((a) => ({ task: t.id, attempt: a })));
  const shownNow = done ? (ms(e.finished_at) ?? now) : now;

  return (
    <>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link to="/executions">Executions</Link> / <Link to={workflowPath(e.workflow_id)}>{e.workflow_id}</Link>
          </p>
          <h1 className="mono break">{e.id}</h1>
        </div>
        <div className="head-actions">
          <StatusBadge status={e.status} />
          <ExecutionActions execution={e} onDone={reload} />
        </div>
      </div>

      <dl className="facts facts-row">
        <dt>Workflow</dt>
        <dd>
          <Link to={workflowPath(e.workflow_id)}>{e.workflow_id}</Link>
          {e.workflow_version != null && <span className="muted"> v{e.workflow_version}</span>}
        </dd>
        <dt>Trigger</dt>
        <dd>{e.trigger ?? '–'}</dd>
        {e.scheduled_at && (
          <>
            <dt>Scheduled for</dt>
            <dd>{formatTime(e.scheduled_at)}</dd>
          </>
        )}
        <dt>Created</dt>
        <dd>
          {formatTime(e.created_at)}
          {e.created_by && <span className="muted"> by {e.created_by}</span>}
        </dd>
        <dt>Started</dt>
        <dd>{formatTime(e.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(e.finished_at)}</dd>
        <dt>Duration</dt>
        <dd>{e.started_at ? between(e.started_at, e.finished_at, now) : '–'}</dd>
        {e.owner_node_id != null && (
          <>
            <dt>Owner node</dt>
            <dd>{e.owner_node_id}</dd>
          </>
        )}
        {e.blocked_by && (
          <>
            <dt>Waiting for</dt>
            <dd className="mono">{e.blocked_by}</dd>
          </>
        )}
      </dl>

      <section aria-labelledby="exec-timeline">
        <h2 id="exec-timeline">Timeline</h2>
        {e.tasks.length === 0 ? (
          <p className="muted">This execution has no tasks.</p>
        ) : (
          <Timeline execution={e} now={shownNow} selectedTask={selected} onSelectTask={setSelected} />
        )}
      </section>

      {errors.length > 0 && (
        <section aria-labelledby="exec-errors">
          <h2 id="exec-errors">Attempt errors</h2>
          <ul className="error-list">
            {errors.map(({ task: t, attempt }) => (
              <li key={attempt.id}>
                <button type="button" className="link" onClick={() => setSelected(t)}>
                  <code>{t}</code> attempt {attempt.n}
                </button>{' '}
                <span className="muted">({label(attempt.status)})</span>
                <pre className="inline-pre">{attempt.error}</pre>
              </li>
            ))}
          </ul>
        </section>
      )}

      {task && (
        <div className="split">
          <TaskDetails task={task} now={now} />
          <LogPane executionId={e.id} task={task.id} restartKey={`${task.attempts.length}`} />
        </div>
      )}

      {e.event && <StartEventSection trigger={e.trigger} event={e.event} />}

      <div className="split">
        <section aria-labelledby="exec-params">
          <h2 id="exec-params">Params</h2>
          <pre className="json">{prettyJson(e.params ?? {})}</pre>
        </section>
        {e.audit && e.audit.length > 0 && (
          <section aria-labelledby="exec-audit">
            <h2 id="exec-audit">Audit</h2>
            <ul className="plain">
              {e.audit.map((a, i) => (
                <li key={i}>
                  {a.action} {a.by ? `by ${a.by}` : 'by an anonymous caller'} at {formatTime(a.at)}
                </li>
              ))}
            </ul>
          </section>
        )}
      </div>
    </>
  );
}

/** The event an execution started from; a chained one's is its upstream execution ending. */
function StartEventSection({ trigger, event }: { trigger: Trigger; event: StartEvent }) {
  const chained = trigger === 'workflow';
  return (
    <section aria-labelledby="exec-event">
      <h2 id="exec-event">Triggering event</h2>
      <dl className="facts">
        <dt>Name</dt>
        <dd>
          <code>{event.name}</code>
          {!chained && (
            <>
              {' '}
              <Link to={eventsPath(event.name)} className="small-print">
                events named {event.name}
              </Link>
            </>
          )}
        </dd>
        {chained ? (
          <>
            <dt>Upstream execution</dt>
            <dd>
              <Link to={executionPath(event.id)} className="mono">
                {event.id}
              </Link>
            </dd>
          </>
        ) : (
          <>
            <dt>Id</dt>
            <dd className="mono">{event.id}</dd>
          </>
        )}
      </dl>
      <h3>Payload</h3>
      <pre className="json">{prettyJson(event.payload ?? null)}</pre>
    </section>
  );
}

function TaskDetails({ task, now }: { task: TaskRun; now: number }) {
  return (
    <section className="task-details" aria-labelledby="task-details">
      <h2 id="task-details">
        Task <code>{task.id}</code> <StatusBadge status={task.status} />
      </h2>
      {task.retry_at && task.status === 'retrying' && <p>Next attempt at {formatTime(task.retry_at)}.</p>}
      {task.attempts.length === 0 ? (
        <p className="muted">No attempts yet.</p>
      ) : (
        <TableFrame label={`Attempts of task ${task.id}`} minWidth="30rem">
          <table>
            <caption className="sr-only">Attempts of task {task.id}</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Status</th>
                <th scope="col">Ran on</th>
                <th scope="col">Started</th>
                <th scope="col">Took</th>
              </tr>
            </thead>
            <tbody>
              {task.attempts.map((a) => (
                <tr key={a.id}>
                  <td>{a.n}</td>
                  <td>
                    <StatusDot status={a.status} /> {label(a.status)}
                  </td>
                  <td>
                    {a.worker_id
                      ? `worker ${a.worker_id} via node ${a.node_id ?? '?'}`
                      : a.node_id != null
                        ? `node ${a.node_id}`
                        : '–'}
                  </td>
                  <td>{formatTime(a.started_at)}</td>
                  <td>{a.started_at ? formatDuration((ms(a.finished_at) ?? now) - (ms(a.started_at) ?? now)) : '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableFrame>
      )}
      {task.output !== undefined && task.output !== null && (
        <>
          <h3>Output</h3>
          <pre className="json">{prettyJson(task.output)}</pre>
        </>
      )}
    </section>
  );
}

function ExecutionActions({ execution: e, onDone }: { execution: Execution; onDone: () => void }) {
  const [busy, setBusy] = useState<null | 'cancel' | 'retry'>(null);
  const [confirming, setConfirming] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const canCancel = !executionFinished(e.status);
  const canRetry = e.status === 'failed' || e.status === 'cancelled';

  const act = async (what: 'cancel' | 'retry') => {
    setBusy(what);
    setMessage(null);
    try {
      if (what === 'cancel') {
        await api.cancel(e.id);
        setMessage({ ok: true, text: 'Cancelled.' });
      } else {
        const answer = await api.retry(e.id);
        setMessage({ ok: true, text: `Retrying ${answer.tasks_reset} task${answer.tasks_reset === 1 ? '' : 's'}.` });
      }
      onDone();
    } catch (err) {
      const text = err instanceof ApiError && err.status === 403 ? forbiddenHint(err) : describeError(err);
      setMessage({ ok: false, text });
    } finally {
      setBusy(null);
      setConfirming(false);
    }
  };

  return (
    <div className="actions">
      {canCancel &&
        (confirming ? (
          <>
            <button
              type="button"
              className="danger"
              disabled={busy !== null}
              onClick={() => void act('cancel')}
              autoFocus
            >
              {busy === 'cancel' ? 'Cancelling…' : 'Confirm cancel'}
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep running
            </button>
          </>
        ) : (
          <button type="button" onClick={() => setConfirming(true)}>
            Cancel…
          </button>
        ))}
      {canRetry && (
        <button type="button" className="primary" disabled={busy !== null} onClick={() => void act('retry')}>
          {busy === 'retry' ? 'Retrying…' : 'Retry failed tasks'}
        </button>
      )}
      {message && (
        <span className={message.ok ? 'ok-text' : 'field-error'} role={message.ok ? 'status' : 'alert'}>
          {message.text}
        </span>
      )}
    </div>
  );
}
