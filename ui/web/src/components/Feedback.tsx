import type { ReactNode } from 'react';
import { ApiError, UnreachableError, describeError } from '../api';
import { ago } from '../lib/format';

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

/** An error from the API, said plainly, with a way to try again. */
export function ErrorBox({ error, what, onRetry }: { error: unknown; what: string; onRetry?: () => void }) {
  let title = `Could not load ${what}`;
  let hint: ReactNode = null;
  if (error instanceof UnreachableError) {
    hint = 'The node does not answer. The page will recover once it is back.';
  } else if (error instanceof ApiError) {
    if (error.status === 404) title = `No such ${what}`;
    if (error.status === 403) hint = forbiddenHint(error);
    if (error.code === 'unavailable' || error.code === 'not_ready')
      hint = 'The cluster has no leader right now; try again shortly.';
  }
  return (
    <div className="error-box" role="alert">
      <strong>{title}</strong>
      <p>{describeError(error)}</p>
      {hint && <p className="muted">{hint}</p>}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function forbiddenHint(error: ApiError): string {
  const details = error.details as { role?: string; allowed_roles?: string[] } | null;
  if (details?.role && details.allowed_roles) {
    return `Your token's role is ${details.role}; this needs ${details.allowed_roles.join(' or ')}.`;
  }
  return 'Your token may not do this.';
}

/** Shown above data that a later refresh failed to update. */
export function StaleNote({ error, updatedAt }: { error: unknown; updatedAt: number | null }) {
  if (!error) return null;
  const when = updatedAt ? ago(new Date(updatedAt).toISOString()) : 'earlier';
  // An unreachable node is said once, by the layout's banner; each view only says how old it is.
  if (error instanceof UnreachableError)
    return (
      <p className="stale" role="status">
        As of {when}
      </p>
    );
  return (
    <p className="stale" role="status">
      Showing data from {when}: {describeError(error)}
    </p>
  );
}

/** The usual three states of a loaded resource. */
export function Loaded<T>({
  resource,
  what,
  children,
}: {
  resource: { data: T | undefined; error: unknown; loading: boolean; updatedAt: number | null; reload: () => void };
  what: string;
  children: (data: T) => ReactNode;
}) {
  if (resource.data === undefined) {
    if (resource.error) return <ErrorBox error={resource.error} what={what} onRetry={resource.reload} />;
    return <Loading what={what} />;
  }
  return (
    <>
      <StaleNote error={resource.error} updatedAt={resource.updatedAt} />
      {children(resource.data)}
    </>
  );
}
