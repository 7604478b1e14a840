import { label, tone } from '../lib/status';

/** A coloured dot with the status as its accessible name. */
export function StatusDot({ status, pulse = true }: { status: string; pulse?: boolean }) {
  const t = tone(status);
  return (
    <span
      className={`dot tone-${t}${pulse && t === 'busy' ? ' pulse' : ''}`}
      role="img"
      aria-label={label(status)}
      title={label(status)}
    />
  );
}

/** The dot and the status in words. */
export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge tone-${tone(status)}`}>
      <StatusDot status={status} />
      <span>{label(status)}</span>
    </span>
  );
}
