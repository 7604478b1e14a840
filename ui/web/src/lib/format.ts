// How times, durations and JSON read in the UI.

/** Milliseconds since the epoch of an RFC 3339 time, or null. */
export function ms(time: string | null | undefined): number | null {
  if (!time) return null;
  const t = Date.parse(time);
  return Number.isNaN(t) ? null : t;
}

/** `850 ms`, `12.3 s`, `4m 05s`, `2h 03m`, `3d 4h`. */
export function formatDuration(millis: number): string {
  if (!Number.isFinite(millis)) return '–';
  const d = Math.max(0, millis);
  if (d < 1000) return `${Math.round(d)} ms`;
  if (d < 60_000) return `${(d / 1000).toFixed(d < 10_000 ? 2 : 1)} s`;
  const s = Math.floor(d / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

function pad(n: number): string {
  return n.toString().padStart(2, '0');
}

/** The time between two RFC 3339 times; a missing end means "until now". */
export function between(start: string | null | undefined, end: string | null | undefined, now = Date.now()): string {
  const a = ms(start);
  if (a === null) return '–';
  const b = ms(end) ?? now;
  return formatDuration(b - a);
}

/** A local date and time, short. */
export function formatTime(time: string | null | undefined): string {
  const t = ms(time);
  if (t === null) return '–';
  return new Date(t).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `in …` for the future. */
export function ago(time: string | null | undefined, now = Date.now()): string {
  const t = ms(time);
  if (t === null) return '–';
  const d = now - t;
  const abs = Math.abs(d);
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return d >= 0 ? `${text} ago` : `in ${text}`;
}

export function prettyJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, null, 2);
}

/** An `<input type="datetime-local">` value (local time) as RFC 3339 UTC, or undefined. */
export function localInputToRfc3339(value: string): string | undefined {
  if (!value) return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/** RFC 3339 as an `<input type="datetime-local">` value in local time. */
export function rfc3339ToLocalInput(value: string | null | undefined): string {
  const t = ms(value);
  if (t === null) return '';
  const d = new Date(t);
  const p = (n: number) => n.toString().padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
