import { Link } from 'react-router';
import { api, newestExecutions, type Cluster, type Workflow } from '../api';
import { ExecutionTable, executionPath, workflowPath } from '../components/ExecutionTable';
import { Loaded } from '../components/Feedback';
import { StatusDot } from '../components/Status';
import { useResource } from '../hooks/useResource';
import { useSettings } from '../settings';
import { executionFinished } from '../lib/status';
import { TableFrame } from '../components/TableFrame';
import { lagSummary } from '../lib/replication';
import { ago, formatTime } from '../lib/format';

/** The window the dashboard looks at: recent runs and failures of the last seven days. */
export const DASHBOARD_WINDOW_MS = 7 * 86_400_000;
const RECENT_RUNS = 8;

function windowStart(): string {
  // Rounded to the minute so the resource key stays put between refreshes.
  return new Date(Math.floor((Date.now() - DASHBOARD_WINDOW_MS) / 60_000) * 60_000).toISOString();
}

export function Dashboard() {
  const { settings } = useSettings();
  const refresh = settings.refreshMs;
  const cluster = useResource('cluster', (s) => api.cluster(s), refresh);
  const workers = useResource('workers', (s) => api.workers({ limit: 500 }, s), refresh);
  const workflows = useResource('workflows', (s) => api.allWorkflows(s), refresh);
  const failures = useResource(
    'failures',
    (s) => newestExecutions({ status: 'failed', since: windowStart() }, 10, s),
    refresh,
  );

  return (
    <div className="page">
      <h1>Dashboard</h1>
      <div className="cards">
        <section className="card" aria-labelledby="dash-cluster">
          <h2 id="dash-cluster">
            <Link to="/cluster">Cluster</Link>
          </h2>
          <Loaded resource={cluster} what="the cluster">
            {(c) => (
              <dl className="facts">
                <dt>Leader</dt>
                <dd>
                  {c.leader_id != null ? (
                    <>
                      <StatusDot status="succeeded" /> node {c.leader_id}
                    </>
                  ) : (
                    <>
                      <StatusDot status="failed" /> none
                    </>
                  )}
                </dd>
                <dt>Term</dt>
                <dd>{c.term ?? '–'}</dd>
                <dt>Members</dt>
                <dd>
                  {c.members.length} ({c.members.filter((m) => m.voter).length} voting)
                </dd>
                <dt>Lag</dt>
                <dd>
                  <LagLine cluster={c} />
                </dd>
                <dt>Answered by</dt>
                <dd>
                  node {c.node_id} ({c.state ?? 'unknown'})
                </dd>
                <dt>Workers</dt>
                <dd>
                  {workers.data
                    ? `${workers.data.items.length}${workers.data.next_cursor ? '+' : ''}`
                    : workers.error
                      ? 'unknown'
                      : '…'}
                </dd>
                {c.auth.warning && (
                  <>
                    <dt>Auth</dt>
                    <dd className="warn-text">{c.auth.warning}</dd>
                  </>
                )}
              </dl>
            )}
          </Loaded>
        </section>
        <section className="card card-wide" aria-labelledby="dash-failures">
          <h2 id="dash-failures">Recent failures</h2>
          <p className="muted small-print">Failed executions of the last 7 days, newest first.</p>
          <Loaded resource={failures} what="recent failures">
            {(items) =>
              items.length === 0 ? (
                <p>No failed executions in the last 7 days.</p>
              ) : (
                <ExecutionTable items={items} caption="Recent failures" showError />
              )
            }
          </Loaded>
        </section>
      </div>
      <section aria-labelledby="dash-workflows">
        <div className="section-head">
          <h2 id="dash-workflows">Workflows</h2>
          <Link to="/editor" className="button">
            New workflow
          </Link>
        </div>
        <Loaded resource={workflows} what="workflows">
          {({ items, complete }) =>
            items.length === 0 ? (
              <p>
                No workflows yet. <Link to="/editor">Write the first one</Link>.
              </p>
            ) : (
              <>
                <TableFrame label="Workflows with their recent executions" minWidth="40rem">
                  <table>
                    <caption className="sr-only">Workflows with their recent executions</caption>
                    <thead>
                      <tr>
                        <th scope="col">Workflow</th>
                        <th scope="col">Schedule, next fire</th>
                        <th scope="col">Last runs, 7 days (newest first)</th>
                        <th scope="col">Success of those</th>
                      </tr>
                    </thead>
                    <tbody>
                      {items.map((w) => (
                        <WorkflowRow key={w.id} workflow={w} refreshMs={refresh} />
                      ))}
                    </tbody>
                  </table>
                </TableFrame>
                {!complete && <p className="muted">Showing the first {items.length} workflows.</p>}
              </>
            )
          }
        </Loaded>
      </section>
    </div>
  );
}

function WorkflowRow({ workflow, refreshMs }: { workflow: Workflow; refreshMs: number }) {
  // Rows refresh less often than the rest: one request per workflow.
  const runs = useResource(
    `runs ${workflow.id}`,
    (s) => newestExecutions({ workflow: workflow.id, since: windowStart() }, RECENT_RUNS, s),
    Math.max(refreshMs * 3, 15_000),
  );
  const finished = runs.data?.filter((e) => executionFinished(e.status)) ?? [];
  const succeeded = finished.filter((e) => e.status === 'succeeded').length;
  const triggers = workflow.spec?.triggers?.length ?? 0;
  return (
    <tr>
      <td className="wf-cell">
        <Link to={workflowPath(workflow.id)}>{workflow.id}</Link>
        {workflow.paused && <span className="tag">paused</span>}
        {workflow.spec?.description && <div className="muted small-print">{workflow.spec.description}</div>}
      </td>
      <td>
        {workflow.spec?.schedule ? (
          <code>{workflow.spec.schedule}</code>
        ) : (
          triggers === 0 && <span className="muted">manual</span>
        )}
        {triggers > 0 && (
          <div className="small-print">
            {triggers} trigger{triggers === 1 ? '' : 's'}
          </div>
        )}
        {workflow.next_fire_at && (
          <div className="small-print" title={formatTime(workflow.next_fire_at)}>
            next {ago(workflow.next_fire_at)}
          </div>
        )}
      </td>
      <td>
        {runs.data === undefined ? (
          runs.error ? (
            <span className="muted">unavailable</span>
          ) : (
            <span className="muted">…</span>
          )
        ) : runs.data.length === 0 ? (
          <span className="muted">none</span>
        ) : (
          <ul className="run-dots" aria-label={`Recent executions of ${workflow.id}`}>
            {runs.data.slice(0, RECENT_RUNS).map((e) => (
              <li key={e.id}>
                <Link to={executionPath(e.id)} title={`${e.id}: ${e.status}`} aria-label={`${e.id}: ${e.status}`}>
                  <StatusDot status={e.status} />
                </Link>
              </li>
            ))}
          </ul>
        )}
      </td>
      <td>
        {finished.length === 0 ? (
          <span className="muted">–</span>
        ) : (
          <span title={`${succeeded} of ${finished.length} finished executions succeeded`}>
            {Math.round((succeeded / finished.length) * 100)}%{' '}
            <span className="muted">
              ({succeeded}/{finished.length})
            </span>
          </span>
        )}
      </td>
    </tr>
  );
}

/** The member furthest behind the leader, or that every member is in step. */
function LagLine({ cluster }: { cluster: Cluster }) {
  const lag = lagSummary(cluster);
  return (
    <>
      <span className={`dot tone-${lag.tone}`} aria-hidden="true" /> {lag.text}
    </>
  );
}
