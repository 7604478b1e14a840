// One task of a workflow, as picked on its graph: what it runs and when, and how it went in the
// execution that colours the graph, with the way to that execution's attempts and logs.

import { useId } from 'react';
import { Link } from 'react-router';
import type { TaskSpec, TaskStatus } from '../api';
import { specYaml } from '../lib/specYaml';
import { executionPath } from './ExecutionTable';
import { StatusBadge } from './Status';

export interface TaskRunRef {
  executionId: string;
  status: TaskStatus;
}

export function TaskDefinition({ task, run }: { task: TaskSpec; run?: TaskRunRef }) {
  const id = useId();
  return (
    <section className="task-definition" aria-labelledby={id}>
      <h3 id={id}>
        Task <code>{task.id}</code> {run && <StatusBadge status={run.status} />}
      </h3>
      <dl className="facts">
        <dt>Type</dt>
        <dd>
          {task.type}
          {task.queue && <span className="muted"> on queue {task.queue}</span>}
        </dd>
        <dt>Depends on</dt>
        <dd>{task.depends_on?.length ? task.depends_on.join(', ') : 'nothing: it starts the run'}</dd>
        <dt>Runs when</dt>
        <dd>{task.when ?? 'all_success'}</dd>
        {run && (
          <>
            <dt>Execution</dt>
            <dd>
              <Link to={executionPath(run.executionId, task.id)}>{run.executionId}</Link>
            </dd>
          </>
        )}
      </dl>
      <pre className="json">{specYaml(task)}</pre>
    </section>
  );
}
