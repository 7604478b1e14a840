import { api } from '../api';
import { Loaded } from '../components/Feedback';
import { StatusDot } from '../components/Status';
import { useResource } from '../hooks/useResource';
import { ago, formatDuration, formatTime } from '../lib/format';
import { useSettings } from '../settings';
import { TableFrame } from '../components/TableFrame';
import { behindOf } from '../lib/replication';

export function ClusterPage() {
  const { settings } = useSettings();
  const cluster = useResource('cluster', (s) => api.cluster(s), settings.refreshMs);
  const workers = useResource('all workers', (s) => api.allWorkers(s), settings.refreshMs);
  const queues = useResource('queues', (s) => api.queues(s), settings.refreshMs);
  const now = Date.now();

  return (
    <div className="page">
      <h1>Cluster</h1>
      <Loaded resource={cluster} what="the cluster">
        {(c) => (
          <>
            <dl className="facts facts-row">
              <dt>Leader</dt>
              <dd>{c.leader_id != null ? `node ${c.leader_id}` : 'none'}</dd>
              <dt>Term</dt>
              <dd>{c.term ?? '–'}</dd>
              <dt>Answered by</dt>
              <dd>
                node {c.node_id} ({c.state ?? 'unknown'})
              </dd>
              <dt>Last log index</dt>
              <dd>{c.last_log_index ?? '–'}</dd>
              <dt>Last applied</dt>
              <dd>
                {c.last_applied ?? '–'}
                {c.last_log_index != null && c.last_applied != null && c.last_log_index > c.last_applied && (
                  <span className="muted"> ({c.last_log_index - c.last_applied} behind)</span>
                )}
              </dd>
              <dt>Snapshot index</dt>
              <dd>{c.snapshot_index ?? '–'}</dd>
              <dt>Purged up to</dt>
              <dd>{c.purged_index ?? '–'}</dd>
              <dt>Log entries on disk</dt>
              <dd>{c.log_entries_on_disk ?? '–'}</dd>
              <dt>Authentication</dt>
              <dd>
                {c.auth.enabled ? 'tokens required' : 'open'}
                {c.auth.peers_authenticated !== undefined && (
                  <span className="muted">
                    ; peers {c.auth.peers_authenticated ? 'authenticated' : 'not authenticated'}
                  </span>
                )}
              </dd>
            </dl>
            {c.auth.warning && (
              <p className="warn-box" role="note">
                {c.auth.warning}
              </p>
            )}
            <section aria-labelledby="cl-members">
              <h2 id="cl-members">Members</h2>
              {!c.replication && (
                <p className="muted small-print">
                  Replication figures unavailable{c.replication_error ? `: ${c.replication_error}` : ''}.
                </p>
              )}
              <TableFrame label="Members of the cluster" minWidth="30rem">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Node</th>
                      <th scope="col">Address</th>
                      <th scope="col">Role</th>
                      <th scope="col">Entries behind the leader</th>
                    </tr>
                  </thead>
                  <tbody>
                    {c.members.map((m) => (
                      <tr key={m.id}>
                        <td>
                          {m.id === c.leader_id && <StatusDot status="succeeded" />} node {m.id}
                          {m.id === c.leader_id && <span className="tag">leader</span>}
                          {m.id === c.node_id && <span className="tag">answered</span>}
                        </td>
                        <td className="mono">{m.addr}</td>
                        <td>{m.voter ? 'voter' : 'learner'}</td>
                        <td>{behindOf(c, m.id)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableFrame>
            </section>
            {c.engine && Object.keys(c.engine).length > 0 && (
              <section aria-labelledby="cl-engine">
                <h2 id="cl-engine">Engine on node {c.node_id}</h2>
                <dl className="facts facts-row">
                  {Object.entries(c.engine).map(([k, v]) => (
                    <div key={k} className="fact">
                      <dt>{k.replace(/_/g, ' ')}</dt>
                      <dd>{typeof v === 'number' ? v.toLocaleString() : String(v)}</dd>
                    </div>
                  ))}
                </dl>
              </section>
            )}
          </>
        )}
      </Loaded>

      <section aria-labelledby="cl-queues">
        <h2 id="cl-queues">Queues</h2>
        <Loaded resource={queues} what="queues">
          {(q) =>
            q.items.length === 0 ? (
              <p>No worker queues in use.</p>
            ) : (
              <TableFrame label="Queues" minWidth="36rem">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Queue</th>
                      <th scope="col">Waiting</th>
                      <th scope="col">Oldest waiting</th>
                      <th scope="col">Running</th>
                      <th scope="col">Workers</th>
                      <th scope="col">Capacity</th>
                    </tr>
                  </thead>
                  <tbody>
                    {q.items.map((item) => (
                      <tr key={item.queue}>
                        <td>
                          <code>{item.queue}</code>
                        </td>
                        <td>{item.waiting ?? 0}</td>
                        <td>{item.oldest_waiting_ms != null ? formatDuration(item.oldest_waiting_ms) : '–'}</td>
                        <td>{item.running ?? 0}</td>
                        <td>{item.workers ?? 0}</td>
                        <td>{item.capacity ?? 0}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableFrame>
            )
          }
        </Loaded>
      </section>

      <section aria-labelledby="cl-workers">
        <h2 id="cl-workers">Workers</h2>
        <Loaded resource={workers} what="workers">
          {({ items, complete }) =>
            items.length === 0 ? (
              <p>No workers connected.</p>
            ) : (
              <>
                <TableFrame label="Connected workers" minWidth="40rem">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Worker</th>
                        <th scope="col">Node</th>
                        <th scope="col">Queues</th>
                        <th scope="col">Running</th>
                        <th scope="col">Connected</th>
                        <th scope="col">Last seen</th>
                      </tr>
                    </thead>
                    <tbody>
                      {items.map((w) => (
                        <tr key={w.id}>
                          <td>
                            <code>{w.id}</code>
                            {w.draining && <span className="tag">draining</span>}
                          </td>
                          <td>{w.node_id}</td>
                          <td>{w.queues.join(', ')}</td>
                          <td>
                            {w.running ?? 0} / {w.concurrency ?? '?'}
                          </td>
                          <td title={formatTime(w.connected_at)}>{ago(w.connected_at, now)}</td>
                          <td title={formatTime(w.last_seen_at)}>{ago(w.last_seen_at, now)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableFrame>
                {!complete && <p className="muted">Showing the first {items.length} workers.</p>}
              </>
            )
          }
        </Loaded>
      </section>
    </div>
  );
}
