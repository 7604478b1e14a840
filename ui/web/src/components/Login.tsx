import { useId, useState, type FormEvent } from 'react';
import { ApiError, UnreachableError, api, describeError, getToken } from '../api';
import { useConnection } from '../connection';
import { forbiddenHint } from './Feedback';

/** The token form, shown in place of a page when the node answered 401. */
export function Login({ reason }: { reason: ApiError }) {
  const { signIn } = useConnection();
  const [token, setToken] = useState('');
  const [checking, setChecking] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const inputId = useId();
  const hadToken = getToken() !== null;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setProblem('Enter a token.');
      return;
    }
    setChecking(true);
    setProblem(null);
    try {
      await api.checkToken(value);
      signIn(value);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setProblem(`The node refused this token (${e.code}).`);
      else if (e instanceof ApiError && e.status === 403)
        setProblem(`The token is valid but cannot read the cluster. ${forbiddenHint(e)}`);
      else if (e instanceof UnreachableError) setProblem('The node cannot be reached; try again when it is back.');
      else setProblem(describeError(e));
    } finally {
      setChecking(false);
    }
  };

  return (
    <section className="login card" aria-labelledby={`${inputId}-title`}>
      <h1 id={`${inputId}-title`}>Sign in</h1>
      <p>
        {hadToken && reason.code === 'invalid_token'
          ? 'The node no longer accepts the stored token.'
          : 'This node needs an API token.'}{' '}
        <span className="muted">({reason.message})</span>
      </p>
      <p className="muted">
        An admin creates one with <code>loom token create NAME --role viewer</code> (or operator, to trigger and edit).
        It is kept in this browser only.
      </p>
      <form onSubmit={submit}>
        <label htmlFor={inputId}>API token</label>
        <input
          id={inputId}
          type="password"
          autoComplete="current-password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          autoFocus
          aria-describedby={problem ? `${inputId}-problem` : undefined}
        />
        {problem && (
          <p id={`${inputId}-problem`} className="field-error" role="alert">
            {problem}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={checking}>
            {checking ? 'Checking…' : 'Sign in'}
          </button>
        </div>
      </form>
    </section>
  );
}
