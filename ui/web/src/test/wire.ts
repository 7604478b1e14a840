// Test data in the API's shapes. Answers from the node carry every field (api.gen.ts says which);
// tests name only the fields they are about, and these fill the rest as a node would for a fresh
// object (nulls, empty lists), deeply: an execution's tasks and their attempts too.

import type { Attempt, Execution, TaskRun, Workflow } from '../api';

export type AttemptFixture = Partial<Attempt> & Pick<Attempt, 'id' | 'n' | 'status'>;
export type TaskRunFixture = Partial<Omit<TaskRun, 'attempts'>> &
  Pick<TaskRun, 'id' | 'status'> & { attempts?: AttemptFixture[] };
export type ExecutionFixture = Partial<Omit<Execution, 'tasks'>> & { tasks?: TaskRunFixture[] };

export function attempt(fields: AttemptFixture): Attempt {
  return {
    node_id: 1,
    worker_id: null,
    started_at: '2026-01-01T00:00:00Z',
    finished_at: null,
    last_heartbeat_at: null,
    lease_expires_at: null,
    deadline: null,
    progress: null,
    error: null,
    ...fields,
  };
}

export function taskRun({ attempts, ...fields }: TaskRunFixture): TaskRun {
  return { output: null, retry_at: null, ...fields, attempts: (attempts ?? []).map(attempt) };
}

export function execution({ tasks, ...fields }: ExecutionFixture): Execution {
  return {
    id: 'wf:1',
    workflow_id: 'wf',
    workflow_version: 1,
    status: 'succeeded',
    trigger: 'manual',
    scheduled_at: null,
    created_at: '2026-01-01T00:00:00Z',
    started_at: null,
    finished_at: null,
    params: {},
    created_by: null,
    audit: [],
    owner_node_id: 1,
    blocked_by: null,
    event: null,
    ...fields,
    tasks: (tasks ?? []).map(taskRun),
  };
}

export function workflow(fields: Partial<Workflow> & Pick<Workflow, 'id'>): Workflow {
  return {
    version: 1,
    paused: false,
    next_fire_at: null,
    last_tick_at: null,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    created_by: null,
    updated_by: null,
    versions: [1],
    spec: { id: fields.id, tasks: [] },
    ...fields,
  };
}
