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

/** A hidden tab refreshes at most this often. */
const HIDDEN_REFRESH_MS = 30_000;

/**
 * `load` runs when `key` changes (its data is then dropped), on `reload()`, and `refreshMs`
 * after the previous load settled (null: no refresh). Changing `refreshMs` does not load by
 * itself: it decides when the next load is, so a view that stops refreshing (an execution that
 * finished) makes no extra request.
 */
export function useResource<T>(
  key: string,
  load: (signal: AbortSignal) => Promise<T>,
  refreshMs: number | null = null,
): Resource<T> {
  const [state, setState] = useState<State<T>>({
    key,
    data: undefined,
    error: undefined,
    loading: true,
    updatedAt: null,
  });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  const refreshRef = useRef(refreshMs);
  const scheduleRef = useRef<(() => void) | null>(null);
  useEffect(() => {
    loadRef.current = load;
  });
  useEffect(() => {
    refreshRef.current = refreshMs;
    scheduleRef.current?.();
  }, [refreshMs]);

  useEffect(() => {
    let stopped = false;
    let inFlight = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | undefined;

    const schedule = () => {
      const every = refreshRef.current;
      if (stopped || inFlight || timer !== undefined || every === null) return;
      const wait = typeof document !== 'undefined' && document.hidden ? Math.max(every, HIDDEN_REFRESH_MS) : every;
      timer = setTimeout(() => {
        timer = undefined;
        void run();
      }, wait);
    };

    const run = async () => {
      inFlight = true;
      controller = new AbortController();
      try {
        const data = await loadRef.current(controller.signal);
        if (!stopped) setState({ key, data, error: undefined, loading: false, updatedAt: Date.now() });
      } catch (error) {
        if (!stopped && !isAbort(error)) setState((s) => ({ ...s, key, error, loading: false }));
      } finally {
        inFlight = false;
      }
      schedule();
    };

    setState((s) =>
      s.key === key
        ? { ...s, loading: true }
        : { key, data: undefined, error: undefined, loading: true, updatedAt: null },
    );
    // A new interval replaces a pending timer, so "stop refreshing" stops at once.
    scheduleRef.current = () => {
      clearTimeout(timer);
      timer = undefined;
      schedule();
    };
    void run();
    return () => {
      stopped = true;
      scheduleRef.current = null;
      controller?.abort();
      clearTimeout(timer);
    };
  }, [key, generation]);

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
