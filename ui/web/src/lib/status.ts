// One place that decides what a status looks like: green done, red failed, amber in progress,
// grey for the rest (waiting, skipped, cancelled).

import type { AttemptStatus, ExecutionStatus, TaskStatus } from '../api';

export type Tone = 'ok' | 'bad' | 'busy' | 'idle';
export type AnyStatus = ExecutionStatus | TaskStatus | AttemptStatus;

export function tone(status: AnyStatus | string | null | undefined): Tone {
  switch (status) {
    case 'succeeded':
      return 'ok';
    case 'failed':
    case 'timed_out':
    case 'lost':
      return 'bad';
    case 'running':
    case 'retrying':
    case 'queued':
      return 'busy';
    default:
      return 'idle';
  }
}

const TERMINAL_EXECUTION: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);
const TERMINAL_TASK: ReadonlySet<string> = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);

export function executionFinished(status: ExecutionStatus): boolean {
  return TERMINAL_EXECUTION.has(status);
}

export function taskFinished(status: TaskStatus): boolean {
  return TERMINAL_TASK.has(status);
}

export function label(status: string): string {
  return status.replace(/_/g, ' ');
}
