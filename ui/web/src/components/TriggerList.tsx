// What starts a workflow besides its schedule, in words: "event order.created where region = eu",
// "after workflow nightly succeeded", "webhook push (GitHub signature, secret gh) at POST …".
// A webhook's secret never reaches the UI: the spec names it, and only the name is shown.

import { Link } from 'react-router';
import { webhookPath, type ChainOn, type TriggerSpec, type WebhookAuth } from '../api';
import { filterConditions, triggerKind } from '../lib/triggers';
import { workflowPath } from './ExecutionTable';

const ENDED: Record<ChainOn, string> = {
  succeeded: 'succeeded',
  failed: 'failed',
  finished: 'finished (succeeded, failed or cancelled)',
};

const PROOF: Record<WebhookAuth, string> = {
  github: 'GitHub signature',
  stripe: 'Stripe signature',
  bearer: 'bearer token',
};

export function TriggerList({ workflowId, triggers }: { workflowId: string; triggers: readonly TriggerSpec[] }) {
  if (triggers.length === 0) return <p className="muted">None: no event, workflow or webhook starts it.</p>;
  return (
    <ul className="plain trigger-list" aria-label={`Triggers of ${workflowId}`}>
      {triggers.map((trigger, i) => (
        <li key={i}>
          <TriggerDescription workflowId={workflowId} trigger={trigger} />
        </li>
      ))}
    </ul>
  );
}

export function TriggerDescription({ workflowId, trigger }: { workflowId: string; trigger: TriggerSpec }) {
  const t = triggerKind(trigger);
  switch (t.kind) {
    case 'event': {
      const conditions = filterConditions(t.filter);
      return (
        <>
          event <code>{t.name}</code>
          {conditions.length > 0 && (
            <>
              {' where '}
              {conditions.map((c, i) => (
                <span key={c}>
                  {i > 0 && ' and '}
                  <code>{c}</code>
                </span>
              ))}
            </>
          )}
        </>
      );
    }
    case 'workflow':
      return (
        <>
          after workflow <Link to={workflowPath(t.id)}>{t.id}</Link> {ENDED[t.on]}
        </>
      );
    case 'webhook':
      return (
        <>
          webhook <code>{t.name}</code> ({t.auth ? PROOF[t.auth] : 'no proof named'}
          {t.secret && (
            <>
              , secret <code>{t.secret}</code>
            </>
          )}
          ) at <code className="break">POST {webhookPath(workflowId, t.name)}</code>
        </>
      );
    case 'unknown':
      return (
        <>
          a trigger this page cannot read: <code className="break">{JSON.stringify(trigger)}</code>
        </>
      );
  }
}
