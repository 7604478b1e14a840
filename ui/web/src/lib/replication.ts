// What the cluster's replication figures mean for a person: is every member in step with the
// leader, and if not, which one is furthest behind. The node reports, per member, how many log
// entries it lacks (`behind`), as the leader sees it.

import type { Cluster } from '../api';
import type { Tone } from './status';

export interface Lag {
  text: string;
  tone: Tone;
}

/** One line for the dashboard: `in step`, `node 3 is 152 entries behind`, or why it is unknown. */
export function lagSummary(cluster: Partial<Pick<Cluster, 'replication' | 'replication_error'>>): Lag {
  const replication = cluster.replication;
  if (!replication) {
    return { text: `unknown${cluster.replication_error ? ` (${cluster.replication_error})` : ''}`, tone: 'idle' };
  }
  const silent = replication.members.find((m) => m.behind === null || m.behind === undefined);
  if (silent) return { text: `node ${silent.id} has not answered the leader yet`, tone: 'bad' };
  const worst = replication.members.reduce<{ id: number; behind: number } | null>(
    (w, m) => ((m.behind ?? 0) > (w?.behind ?? 0) ? { id: m.id, behind: m.behind ?? 0 } : w),
    null,
  );
  if (!worst) return { text: 'every member in step', tone: 'ok' };
  const entries = worst.behind === 1 ? 'entry' : 'entries';
  return { text: `node ${worst.id} is ${worst.behind.toLocaleString()} ${entries} behind`, tone: 'busy' };
}

/** A member's own figure for the members table: `0`, `152`, or `–` while unknown. */
export function behindOf(cluster: Partial<Pick<Cluster, 'replication'>>, id: number): string {
  const member = cluster.replication?.members.find((m) => m.id === id);
  if (member?.behind === null || member?.behind === undefined) return '–';
  return member.behind.toLocaleString();
}
