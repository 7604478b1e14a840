import { useId, useState, type FormEvent } from 'react';
import { ApiError, UnreachableError, api, describeError, getToken, setToken as storeToken } from '../api';
import { REFRESH_CHOICES_MS, useSettings, type Theme } from '../settings';

export function SettingsPage() {
  const { settings, update } = useSettings();
  const id = useId();
  return (
    <div className="page page-narrow">
      <h1>Settings</h1>
      <TokenSettings />
      <section className="card" aria-labelledby={`${id}-display`}>
        <h2 id={`${id}-display`}>Display</h2>
        <div className="field">
          <label htmlFor={`${id}-refresh`}>Refresh lists and views every</label>
          <select
            id={`${id}-refresh`}
            value={settings.refreshMs}
            onChange={(e) => update({ refreshMs: Number(e.target.value) })}
          >
            {REFRESH_CHOICES_MS.map((ms) => (
              <option key={ms} value={ms}>
                {intervalLabel(ms)}
              </option>
            ))}
          </select>
          <p className="muted small-print">A running execution's page refreshes every second regardless.</p>
        </div>
        <fieldset>
          <legend>Theme</legend>
          {(['system', 'light', 'dark'] as Theme[]).map((theme) => (
            <label key={theme} className="radio">
              <input
                type="radio"
                name={`${id}-theme`}
                value={theme}
                checked={settings.theme === theme}
                onChange={() => update({ theme })}
              />
              {theme === 'system' ? 'Follow the system' : theme === 'light' ? 'Light' : 'Dark'}
            </label>
          ))}
        </fieldset>
      </section>
    </div>
  );
}

function TokenSettings() {
  const id = useId();
  const [token, setToken] = useState('');
  const [stored, setStored] = useState(() => getToken() !== null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) return;
    setBusy(true);
    setMessage(null);
    try {
      const cluster = await api.checkToken(value);
      storeToken(value);
      setStored(true);
      setToken('');
      setMessage({
        ok: true,
        text: cluster.auth.enabled
          ? 'Token saved; the node accepts it.'
          : 'Token saved. This node runs open and does not check tokens.',
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401)
        setMessage({ ok: false, text: `The node refused this token (${e.code}); nothing was saved.` });
      else if (e instanceof UnreachableError)
        setMessage({ ok: false, text: 'The node cannot be reached; nothing was saved.' });
      else setMessage({ ok: false, text: `${describeError(e)}; nothing was saved.` });
    } finally {
      setBusy(false);
    }
  };

  const clear = () => {
    storeToken(null);
    setStored(false);
    setMessage({ ok: true, text: 'Token removed from this browser.' });
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>API token</h2>
      <p className="muted">
        {stored
          ? 'A token is stored in this browser and sent with every request.'
          : 'No token stored. Nodes that require tokens will ask for one.'}
      </p>
      <form onSubmit={save}>
        <label htmlFor={`${id}-token`}>{stored ? 'Replace the token' : 'Token'}</label>
        <input
          id={`${id}-token`}
          type="password"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
        />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || token.trim() === ''}>
            {busy ? 'Checking…' : 'Check and save'}
          </button>
          {stored && (
            <button type="button" className="danger" onClick={clear}>
              Forget token
            </button>
          )}
        </div>
      </form>
      {message && (
        <p className={message.ok ? 'ok-text' : 'field-error'} role={message.ok ? 'status' : 'alert'}>
          {message.text}
        </p>
      )}
    </section>
  );
}

/** `2 s`, `30 s`, `1 min`: a refresh interval as a person says it (not a measured duration). */
export function intervalLabel(ms: number): string {
  return ms < 60_000 ? `${ms / 1000} s` : `${ms / 60_000} min`;
}
