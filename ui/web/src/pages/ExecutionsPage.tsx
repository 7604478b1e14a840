import { useId, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { EXECUTION_STATUSES, TRIGGERS, api, type ExecutionFilter, type ExecutionStatus, type Trigger } from '../api';
import { ExecutionTable } from '../components/ExecutionTable';
import { Loaded } from '../components/Feedback';
import { Pager } from '../components/Pager';
import { useCursors } from '../hooks/useCursors';
import { useResource } from '../hooks/useResource';
import { localInputToRfc3339, rfc3339ToLocalInput } from '../lib/format';
import { useSettings } from '../settings';

export const PAGE_SIZES = [25, 50, 100, 200] as const;

/** The filters as they sit in the address bar, so a filtered list can be linked to. */
function readFilter(params: URLSearchParams): ExecutionFilter & { limit: number } {
  const status = params.get('status');
  const trigger = params.get('trigger');
  const limit = Number(params.get('limit'));
  return {
    workflow: params.get('workflow') || undefined,
    status: EXECUTION_STATUSES.includes(status as ExecutionStatus) ? (status as ExecutionStatus) : undefined,
    trigger: TRIGGERS.includes(trigger as Trigger) ? (trigger as Trigger) : undefined,
    since: params.get('since') || undefined,
    until: params.get('until') || undefined,
    limit: (PAGE_SIZES as readonly number[]).includes(limit) ? limit : 50,
  };
}

export function ExecutionsPage() {
  const [params, setParams] = useSearchParams();
  const filter = readFilter(params);
  const filterKey = JSON.stringify(filter);
  const cursors = useCursors(filterKey);
  const { cursor } = cursors;
  const { settings } = useSettings();

  const page = useResource(
    `executions ${filterKey} ${cursor ?? ''}`,
    (signal) => api.executions({ ...filter, order: 'newest', cursor }, signal),
    settings.refreshMs,
  );

  const apply = (next: ExecutionFilter & { limit: number }) => {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(next))
      if (v !== undefined && v !== '' && !(k === 'limit' && v === 50)) search.set(k, String(v));
    setParams(search);
  };

  return (
    <div className="page">
      <h1>Executions</h1>
      <FilterForm key={filterKey} filter={filter} onApply={apply} />
      <Loaded resource={page} what="executions">
        {(data) =>
          data.items.length === 0 ? (
            <p>{cursors.page > 1 ? 'No more executions.' : 'No executions match these filters.'}</p>
          ) : (
            <ExecutionTable items={data.items} caption="Executions" />
          )
        }
      </Loaded>
      <Pager cursors={cursors} nextCursor={page.data?.next_cursor ?? null} />
    </div>
  );
}

function FilterForm({
  filter,
  onApply,
}: {
  filter: ExecutionFilter & { limit: number };
  onApply: (f: ExecutionFilter & { limit: number }) => void;
}) {
  const id = useId();
  const [workflow, setWorkflow] = useState(filter.workflow ?? '');
  const [status, setStatus] = useState<string>(filter.status ?? '');
  const [trigger, setTrigger] = useState<string>(filter.trigger ?? '');
  const [since, setSince] = useState(rfc3339ToLocalInput(filter.since));
  const [until, setUntil] = useState(rfc3339ToLocalInput(filter.until));
  const [limit, setLimit] = useState(filter.limit);
  const workflows = useResource('workflow ids', (s) => api.allWorkflows(s));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply({
      workflow: workflow.trim() || undefined,
      status: (status || undefined) as ExecutionStatus | undefined,
      trigger: (trigger || undefined) as Trigger | undefined,
      since: localInputToRfc3339(since),
      until: localInputToRfc3339(until),
      limit,
    });
  };

  return (
    <form className="filters" onSubmit={submit} aria-label="Filter executions">
      <div className="field">
        <label htmlFor={`${id}-wf`}>Workflow</label>
        <input
          id={`${id}-wf`}
          list={`${id}-wfs`}
          value={workflow}
          onChange={(e) => setWorkflow(e.target.value)}
          placeholder="any"
        />
        <datalist id={`${id}-wfs`}>
          {workflows.data?.items.map((w) => (
            <option key={w.id} value={w.id} />
          ))}
        </datalist>
      </div>
      <div className="field">
        <label htmlFor={`${id}-status`}>Status</label>
        <select id={`${id}-status`} value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">any</option>
          {EXECUTION_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-trigger`}>Trigger</label>
        <select id={`${id}-trigger`} value={trigger} onChange={(e) => setTrigger(e.target.value)}>
          <option value="">any</option>
          {TRIGGERS.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-since`}>Created since</label>
        <input id={`${id}-since`} type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={`${id}-until`}>Created before</label>
        <input id={`${id}-until`} type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={`${id}-limit`}>Per page</label>
        <select id={`${id}-limit`} value={limit} onChange={(e) => setLimit(Number(e.target.value))}>
          {PAGE_SIZES.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
      <div className="field field-actions">
        <button type="submit" className="primary">
          Apply
        </button>
        <button type="button" onClick={() => onApply({ limit: 50 })}>
          Clear
        </button>
      </div>
    </form>
  );
}
