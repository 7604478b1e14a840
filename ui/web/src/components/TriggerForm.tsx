import { useId, useState, type FormEvent } from 'react';
import { ApiError, api, describeError } from '../api';
import { forbiddenHint } from './Feedback';

/** Parses the params textarea: a JSON object, or an explanation of why not. */
export function parseParams(
  text: string,
): { ok: true; params: Record<string, unknown> } | { ok: false; problem: string } {
  if (text.trim() === '') return { ok: true, params: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `Not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: 'Params must be a JSON object, like {"region": "eu"}.' };
  }
  return { ok: true, params: value as Record<string, unknown> };
}

export interface TriggerFormProps {
  workflowId: string;
  defaults: Record<string, unknown> | undefined;
  onTriggered: (executionId: string) => void;
  onClose: () => void;
}

/** Triggers a run with params that override the workflow's defaults. */
export function TriggerForm({ workflowId, defaults, onTriggered, onClose }: TriggerFormProps) {
  const id = useId();
  const [text, setText] = useState(() => JSON.stringify(defaults ?? {}, null, 2));
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const parsed = parseParams(text);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!parsed.ok) return;
    setBusy(true);
    setFailure(null);
    try {
      const answer = await api.trigger(workflowId, parsed.params);
      onTriggered(answer.execution_id);
    } catch (e) {
      setFailure(e instanceof ApiError && e.status === 403 ? forbiddenHint(e) : describeError(e));
      setBusy(false);
    }
  };

  return (
    <form className="card trigger-form" onSubmit={submit} aria-label={`Trigger ${workflowId}`}>
      <label htmlFor={`${id}-params`}>Params (JSON object; overrides the workflow's defaults)</label>
      <textarea
        id={`${id}-params`}
        rows={Math.min(14, Math.max(4, text.split('\n').length + 1))}
        value={text}
        onChange={(e) => setText(e.target.value)}
        spellCheck={false}
        aria-invalid={!parsed.ok}
        aria-describedby={`${id}-problem`}
        autoFocus
      />
      <p
        id={`${id}-problem`}
        className={parsed.ok ? 'muted small-print' : 'field-error'}
        role={parsed.ok ? undefined : 'alert'}
      >
        {parsed.ok ? `${Object.keys(parsed.params).length} param(s)` : parsed.problem}
      </p>
      {failure && (
        <p className="field-error" role="alert">
          {failure}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={!parsed.ok || busy}>
          {busy ? 'Triggering…' : 'Trigger now'}
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}
