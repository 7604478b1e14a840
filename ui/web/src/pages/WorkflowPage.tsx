import { useCallback, useMemo, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import {
  ApiError,
  api,
  describeError,
  newestExecutions,
  type Execution,
  type TaskStatus,
  type Workflow,
  type WorkflowSpec,
} from '../api';
import { DagView } from '../components/DagView';
import { ExecutionTable, executionPath } from '../components/ExecutionTable';
import { Loaded, forbiddenHint } from '../components/Feedback';
import { StatusBadge } from '../components/Status';
import { TaskDefinition } from '../components/TaskDefinition';
import { TriggerForm } from '../components/TriggerForm';
import { TriggerList } from '../components/TriggerList';
import { VersionDiff } from '../components/VersionDiff';
import { useResource } from '../hooks/useResource';
import { ago, formatTime, prettyJson } from '../lib/format';
import { useSettings } from '../settings';
import { TableFrame } from '../components/TableFrame';

const HISTORY = 25;

export function WorkflowPage() {
  const { id = '' } = useParams();
  const { settings } = useSettings();
  const workflow = useResource(`workflow ${id}`, (s) => api.workflow(id, s), settings.refreshMs);
  return (
    <div className="page">
      <Loaded resource={workflow} what="workflow">
        {(w) => <WorkflowView workflow={w} reload={workflow.reload} />}
      </Loaded>
    </div>
  );
}

function WorkflowView({ workflow: w, reload }: { workflow: Workflow; reload: () => void }) {
  const { settings } = useSettings();
  const navigate = useNavigate();
  const [triggering, setTriggering] = useState(false);
  const [chosen, setChosen] = useState<string | null>(null);
  const [shownVersion, setShownVersion] = useState<number | null>(null);
  // The task picked on the graph; picking it again puts it back.
  const [task, setTask] = useState<string | null>(null);
  const toggleTask = useCallback((id: string) => setTask((current) => (current === id ? null : id)), []);
  const history = useResource(
    `history ${w.id}`,
    (s) => newestExecutions({ workflow: w.id }, HISTORY, s),
    settings.refreshMs,
  );
  const versions = useResource(`versions ${w.id} ${w.version ?? ''}`, (s) => api.versions(w.id, s));

  // The execution whose task statuses colour the graph: the chosen one, else the newest.
  const execution = history.data?.find((e) => e.id === chosen) ?? (chosen === null ? history.data?.[0] : undefined);
  // The graph shows the version that execution ran, or the version picked in the list.
  const graphVersion = shownVersion ?? execution?.workflow_version ?? w.version ?? null;
  const needOtherSpec = graphVersion !== null && graphVersion !== w.version;
  const other = useResource(`version ${w.id} ${needOtherSpec ? graphVersion : 'active'}`, (s) =>
    needOtherSpec && graphVersion !== null ? api.version(w.id, graphVersion, s) : Promise.resolve(null),
  );
  const spec: WorkflowSpec | undefined = needOtherSpec ? (other.data?.spec ?? undefined) : w.spec;
  const statuses = useMemo(() => {
    if (!execution || shownVersion !== null) return undefined;
    const map: Record<string, TaskStatus> = {};
    for (const t of execution.tasks) map[t.id] = t.status;
    return map;
  }, [execution, shownVersion]);

  return (
    <>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link to="/">Dashboard</Link> / workflow
          </p>
          <h1>
            {w.id} {w.paused && <span className="tag">paused</span>}
          </h1>
          {w.spec?.description && <p className="muted">{w.spec.description}</p>}
        </div>
        <div className="head-actions">
          <button type="button" className="primary" onClick={() => setTriggering((t) => !t)} aria-expanded={triggering}>
            Trigger…
          </button>
          <PauseButton workflow={w} onDone={reload} />
          <Link className="button" to={`/editor/${encodeURIComponent(w.id)}`}>
            Edit
          </Link>
        </div>
      </div>

      {triggering && (
        <TriggerForm
          workflowId={w.id}
          defaults={w.spec?.params}
          onTriggered={(executionId) => navigate(executionPath(executionId))}
          onClose={() => setTriggering(false)}
        />
      )}

      <section aria-labelledby="wf-graph">
        <div className="section-head">
          <h2 id="wf-graph">Tasks</h2>
          <p className="muted small-print" role="status">
            Version {graphVersion ?? '?'}
            {shownVersion !== null
              ? ' (picked below)'
              : execution
                ? `, coloured by ${execution.id} (${execution.status})`
                : ', no executions yet'}
            {shownVersion !== null && (
              <>
                {' '}
                <button type="button" className="link" onClick={() => setShownVersion(null)}>
                  back to the latest run
                </button>
              </>
            )}
          </p>
        </div>
        {spec ? (
          <>
            <DagView
              tasks={spec.tasks}
              statuses={statuses}
              selected={task}
              onSelect={toggleTask}
              label={`Task graph of ${w.id} version ${graphVersion ?? ''}`}
              height="340px"
            />
            <PickedTask spec={spec} taskId={task} execution={statuses ? execution : undefined} />
            <TaskTable spec={spec} statuses={statuses} selected={task} />
          </>
        ) : other.error ? (
          <p className="field-error">
            Version {graphVersion} could not be loaded: {describeError(other.error)}
          </p>
        ) : (
          <p className="loading">Loading version {graphVersion}…</p>
        )}
      </section>

      <div className="split">
        <section aria-labelledby="wf-settings">
          <h2 id="wf-settings">Schedule and settings</h2>
          <dl className="facts">
            <dt>Schedule</dt>
            <dd>
              {w.spec?.schedule ? (
                <code>{w.spec.schedule}</code>
              ) : w.spec?.triggers?.length ? (
                'none (see its triggers)'
              ) : (
                'none (manual and backfill only)'
              )}
            </dd>
            {w.spec?.timezone && (
              <>
                <dt>Time zone</dt>
                <dd>{w.spec.timezone}</dd>
              </>
            )}
            {w.spec?.schedule && (
              <>
                <dt>Next fire</dt>
                <dd>
                  {w.paused
                    ? 'none while paused'
                    : w.next_fire_at
                      ? `${formatTime(w.next_fire_at)} (${ago(w.next_fire_at)})`
                      : '–'}
                </dd>
                <dt>Last tick</dt>
                <dd>{w.last_tick_at ? `${formatTime(w.last_tick_at)} (${ago(w.last_tick_at)})` : 'none yet'}</dd>
              </>
            )}
            <dt>Concurrency</dt>
            <dd>{w.spec?.concurrency ?? 'allow'}</dd>
            <dt>Catch-up</dt>
            <dd>{w.spec?.catchup ?? 'default'}</dd>
            {w.spec?.execution_timeout !== undefined && (
              <>
                <dt>Execution timeout</dt>
                <dd>{String(w.spec.execution_timeout)}</dd>
              </>
            )}
            <dt>Updated</dt>
            <dd>
              {formatTime(w.updated_at)}
              {w.updated_by && <span className="muted"> by {w.updated_by}</span>}
            </dd>
          </dl>
          <h3>Default params</h3>
          <pre className="json">{prettyJson(w.spec?.params ?? {})}</pre>
        </section>
        <section aria-labelledby="wf-versions">
          <h2 id="wf-versions">Versions</h2>
          <Loaded resource={versions} what="versions">
            {(v) => (
              <TableFrame label={`Versions of ${w.id}`} minWidth="28rem">
                <table>
                  <caption className="sr-only">Versions of {w.id}, newest first</caption>
                  <thead>
                    <tr>
                      <th scope="col">Version</th>
                      <th scope="col">Stored</th>
                      <th scope="col">By</th>
                      <th scope="col">
                        <span className="sr-only">Graph</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {v.items.map((item) => (
                      <tr key={item.version} className={graphVersion === item.version ? 'is-selected' : undefined}>
                        <td>
                          v{item.version}{' '}
                          {(item.active ?? item.version === w.version) && <span className="tag">active</span>}
                        </td>
                        <td>{formatTime(item.created_at)}</td>
                        <td>{item.created_by ?? '–'}</td>
                        <td>
                          <button
                            type="button"
                            className="small"
                            aria-pressed={shownVersion === item.version}
                            onClick={() => setShownVersion(item.version)}
                          >
                            Show tasks
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableFrame>
            )}
          </Loaded>
        </section>
      </div>

      <section aria-labelledby="wf-triggers">
        <h2 id="wf-triggers">Triggers</h2>
        <TriggerList workflowId={w.id} triggers={w.spec?.triggers ?? []} />
      </section>

      <section aria-labelledby="wf-changes">
        <h2 id="wf-changes">Changes between versions</h2>
        <Loaded resource={versions} what="versions">
          {(v) => <VersionDiff versions={v.items} active={w.version} />}
        </Loaded>
      </section>

      <section aria-labelledby="wf-history">
        <div className="section-head">
          <h2 id="wf-history">Execution history</h2>
          <Link to={`/executions?workflow=${encodeURIComponent(w.id)}`}>All executions of {w.id}</Link>
        </div>
        <Loaded resource={history} what="execution history">
          {(items) =>
            items.length === 0 ? (
              <p>No executions yet.</p>
            ) : (
              <ExecutionTable
                items={items}
                caption={`Newest executions of ${w.id}`}
                showWorkflow={false}
                selected={execution?.id ?? null}
                onSelect={(eid) => {
                  setChosen(eid);
                  setShownVersion(null);
                }}
              />
            )
          }
        </Loaded>
      </section>
    </>
  );
}

/** The definition of the task picked on the graph, with its status in the execution shown. */
function PickedTask({
  spec,
  taskId,
  execution,
}: {
  spec: WorkflowSpec;
  taskId: string | null;
  execution: Execution | undefined;
}) {
  const task = spec.tasks.find((t) => t.id === taskId);
  if (!task) return null;
  const status = execution?.tasks.find((t) => t.id === task.id)?.status;
  return <TaskDefinition task={task} run={execution && status ? { executionId: execution.id, status } : undefined} />;
}

function TaskTable({
  spec,
  statuses,
  selected,
}: {
  spec: WorkflowSpec;
  statuses: Record<string, TaskStatus> | undefined;
  selected: string | null;
}) {
  return (
    <details className="task-table">
      <summary>Tasks as a list ({spec.tasks.length})</summary>
      <TableFrame label="Tasks of this version" minWidth="30rem">
        <table>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Type</th>
              <th scope="col">Depends on</th>
              <th scope="col">Runs when</th>
              {statuses && <th scope="col">Status</th>}
            </tr>
          </thead>
          <tbody>
            {spec.tasks.map((t) => (
              <tr key={t.id} className={t.id === selected ? 'is-selected' : undefined}>
                <td>
                  <code>{t.id}</code>
                </td>
                <td>
                  {t.type}
                  {t.queue && <span className="muted"> ({t.queue})</span>}
                </td>
                <td>{t.depends_on?.length ? t.depends_on.join(', ') : '–'}</td>
                <td>{t.when ?? 'all_success'}</td>
                {statuses && <td>{statuses[t.id] ? <StatusBadge status={statuses[t.id]!} /> : '–'}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </TableFrame>
    </details>
  );
}

function PauseButton({ workflow: w, onDone }: { workflow: Workflow; onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const toggle = async () => {
    setBusy(true);
    setFailure(null);
    try {
      if (w.paused) await api.resume(w.id);
      else await api.pause(w.id);
      onDone();
    } catch (e) {
      setFailure(e instanceof ApiError && e.status === 403 ? forbiddenHint(e) : describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        onClick={() => void toggle()}
        disabled={busy}
        title={w.paused ? 'Fire scheduled ticks again' : 'Stop firing scheduled ticks'}
      >
        {busy ? '…' : w.paused ? 'Resume' : 'Pause'}
      </button>
      {failure && (
        <span className="field-error" role="alert">
          {failure}
        </span>
      )}
    </>
  );
}
