// Loads something from the API, keeps it while it refreshes, and refreshes on a timer.

import { useCallback, useEffect, useRef, useState } from 'react';
import { isAbort } from '../api';

export interface Resource<T> {
  data: T | undefined;
  /** The last load's error; `data` may still hold what an earlier load answered. */
  error: unknown;
  loading: boolean;
  /** When `data` was last loaded (ms since the epoch). */
  updatedAt: number | null;
  reload: () => void;
}

interface State<T> {
  key: string;
  data: T | undefined;
  error: unknown;
  loading: boolean;
  updatedAt: number | null;
}

/**
 * `load` runs when `key` changes (its data is then dropped), on `reload()`, and every
 * `refreshMs` after the previous load settled (null: never). A hidden tab refreshes at most
 * every 30 s.
 */
export function useResource<T>(
  key: string,
  load: (signal: AbortSignal) => Promise<T>,
  refreshMs: number | null = null,
): Resource<T> {
  const [state, setState] = useState<State<T>>({ key, data: undefined, error: undefined, loading: true, updatedAt: null });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | undefined;
    setState((s) => (s.key === key ? { ...s, loading: true } : { key, data: undefined, error: undefined, loading: true, updatedAt: null }));
    const run = async () => {
      controller = new AbortController();
      try {
        const data = await loadRef.current(controller.signal);
        if (!stopped) setState({ key, data, error: undefined, loading: false, updatedAt: Date.now() });
      } catch (error) {
        if (stopped || isAbort(error)) return;
        setState((s) => ({ ...s, key, error, loading: false }));
      }
      if (!stopped && refreshMs !== null) {
        const wait = typeof document !== 'undefined' && document.hidden ? Math.max(refreshMs, 30_000) : refreshMs;
        timer = setTimeout(() => void run(), wait);
      }
    };
    void run();
    return () => {
      stopped = true;
      controller?.abort();
      clearTimeout(timer);
    };
  }, [key, generation, refreshMs]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: current ? state.loading : true,
    updatedAt: current ? state.updatedAt : null,
    reload,
  };
}
