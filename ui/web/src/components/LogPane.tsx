// Tails one task's log live and stays at the bottom unless the viewer scrolled up.

import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { describeError, followLogs, isAbort, UnreachableError } from '../api';

/** The most log text kept in the page; older text is dropped from the top. */
export const MAX_LOG_CHARS = 1_000_000;
/** How close to the bottom (px) still counts as "at the bottom". */
const STICK_PX = 24;
const RECONNECT_MS = 2000;

type Phase = 'connecting' | 'live' | 'ended' | 'reconnecting' | 'error';

export interface LogPaneProps {
  executionId: string;
  task: string;
  /** Changes when the task gets a new attempt, so an ended stream is followed again. */
  restartKey: string;
}

export function LogPane({ executionId, task, restartKey }: LogPaneProps) {
  const [text, setText] = useState('');
  const [phase, setPhase] = useState<Phase>('connecting');
  const [error, setError] = useState<string | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const stick = useRef(true);
  const pre = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const follow = async () => {
      // The server sends the whole log from the start on every connection.
      let received = '';
      let first = true;
      try {
        const ended = await followLogs(
          executionId,
          task,
          {
            onText: (chunk) => {
              received += chunk;
              if (received.length > MAX_LOG_CHARS)
                received = '… (earlier lines dropped)\n' + received.slice(-MAX_LOG_CHARS);
              if (first) {
                first = false;
                setPhase('live');
              }
              setText(received);
            },
          },
          controller.signal,
        );
        if (stopped) return;
        setText(received);
        setError(null);
        if (ended) {
          setPhase('ended');
          return;
        }
        setPhase('reconnecting');
      } catch (e) {
        if (stopped || isAbort(e)) return;
        setError(describeError(e));
        if (!(e instanceof UnreachableError)) {
          setPhase('error');
          return;
        }
        setPhase('reconnecting');
      }
      timer = setTimeout(() => void follow(), RECONNECT_MS);
    };
    setText('');
    setError(null);
    setPhase('connecting');
    void follow();
    return () => {
      stopped = true;
      controller.abort();
      clearTimeout(timer);
    };
  }, [executionId, task, restartKey]);

  useLayoutEffect(() => {
    const el = pre.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [text]);

  const onScroll = useCallback(() => {
    const el = pre.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight <= STICK_PX;
    stick.current = bottom;
    setAtBottom(bottom);
  }, []);

  const jump = () => {
    const el = pre.current;
    stick.current = true;
    setAtBottom(true);
    if (el) el.scrollTop = el.scrollHeight;
  };

  const phaseText: Record<Phase, string> = {
    connecting: 'connecting…',
    live: 'live',
    ended: 'complete',
    reconnecting: 'reconnecting…',
    error: 'failed',
  };

  return (
    <section className="logs" aria-label={`Logs of task ${task}`}>
      <div className="logs-head">
        <h3>
          Logs: <code>{task}</code>
        </h3>
        <span className={`logs-phase phase-${phase}`} role="status">
          {phaseText[phase]}
        </span>
        {!atBottom && (
          <button type="button" className="small" onClick={jump}>
            Jump to latest
          </button>
        )}
      </div>
      {error && <p className="field-error">{error}</p>}
      <pre ref={pre} className="logs-text" tabIndex={0} onScroll={onScroll} data-testid="log-text">
        {text || (phase === 'ended' ? '(no output)' : '')}
      </pre>
    </section>
  );
}
