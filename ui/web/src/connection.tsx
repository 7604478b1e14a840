// Whether the node can be reached, is ready, and accepts our token.
//
// The API client announces every 401 and every request that got no answer; this provider turns
// those into state for the layout (banner, login screen) and polls /readyz so the banner clears
// by itself once the node is back.

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { ApiError, UnreachableError, api, isAbort, setToken, subscribe } from './api';

export const READY_POLL_MS = 5000;
/** Poll faster while the node is away, so the banner goes soon after it is back. */
export const DOWN_POLL_MS = 2000;

export interface Connection {
  /** False once a request got no answer; true again after any answer. */
  reachable: boolean;
  /** The node answered /readyz with an error (no leader yet, still catching up). */
  notReady: string | null;
  /** The 401 that asked for a token, until the viewer signs in. */
  login: ApiError | null;
  /** Bumped on sign-in so the pages load again with the new token. */
  session: number;
  signIn: (token: string | null) => void;
}

const ConnectionContext = createContext<Connection | null>(null);

export function ConnectionProvider({ children, pollReady = true }: { children: ReactNode; pollReady?: boolean }) {
  const [reachable, setReachable] = useState(true);
  const [notReady, setNotReady] = useState<string | null>(null);
  const [login, setLogin] = useState<ApiError | null>(null);
  const [session, setSession] = useState(0);

  useEffect(
    () =>
      subscribe((event) => {
        if (event.kind === 'unreachable') setReachable(false);
        else if (event.kind === 'reachable') setReachable(true);
        else setLogin(event.error);
      }),
    [],
  );

  useEffect(() => {
    if (!pollReady) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | undefined;
    const check = async () => {
      controller = new AbortController();
      let wait = READY_POLL_MS;
      try {
        await api.readyz(controller.signal);
        if (!stopped) setNotReady(null);
      } catch (e) {
        if (stopped || isAbort(e)) return;
        if (e instanceof UnreachableError) wait = DOWN_POLL_MS;
        else if (e instanceof ApiError) setNotReady(e.message);
      }
      if (!stopped) timer = setTimeout(check, wait);
    };
    void check();
    return () => {
      stopped = true;
      controller?.abort();
      clearTimeout(timer);
    };
  }, [pollReady]);

  const signIn = useCallback((token: string | null) => {
    setToken(token);
    setLogin(null);
    setSession((s) => s + 1);
  }, []);

  const value = useMemo(
    () => ({ reachable, notReady, login, session, signIn }),
    [reachable, notReady, login, session, signIn],
  );
  return <ConnectionContext.Provider value={value}>{children}</ConnectionContext.Provider>;
}

export function useConnection(): Connection {
  const value = useContext(ConnectionContext);
  if (!value) throw new Error('useConnection outside ConnectionProvider');
  return value;
}
