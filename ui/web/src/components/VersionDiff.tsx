// What changed between two versions of a workflow: pick them, read a unified line diff of their
// definitions. Versions carry their spec as JSON, so each is written as YAML by `specYaml` first
// (the same text the editor shows); the diff itself is `lib/lineDiff`.
//
// Unified rather than side by side, so it reads on a phone. Every changed line has a +/- mark and
// a word for screen readers as well as its colour.

import { useId, useMemo, useState } from 'react';
import type { WorkflowVersion } from '../api';
import { diffLines, foldUnchanged, splitLines, type DiffLine } from '../lib/lineDiff';
import { specYaml } from '../lib/specYaml';

/** Unchanged lines kept around each change. */
const CONTEXT_LINES = 3;
/** Rows drawn before asking: two unrelated 5,000-line specs make 10,000. */
export const ROWS_SHOWN = 1000;

export interface VersionDiffProps {
  /** Every kept version, in any order. */
  versions: readonly WorkflowVersion[];
  /** The active version: what "current" means for the default pair. */
  active?: number;
}

export function VersionDiff({ versions, active }: VersionDiffProps) {
  const numbers = useMemo(() => versions.map((v) => v.version).sort((a, b) => b - a), [versions]);
  const [picked, setPicked] = useState<{ from: number; to: number } | null>(null);
  if (numbers.length < 2) return <p className="muted">Only one version so far: nothing to compare yet.</p>;

  // The user's pair while both versions are still kept; else the previous and the current one.
  const pair =
    picked && numbers.includes(picked.from) && numbers.includes(picked.to) ? picked : defaultPair(numbers, active);
  const from = versions.find((v) => v.version === pair.from)!;
  const to = versions.find((v) => v.version === pair.to)!;
  return (
    <>
      <div className="diff-picker">
        <VersionSelect
          label="From"
          value={pair.from}
          numbers={numbers}
          onChange={(v) => setPicked({ ...pair, from: v })}
        />
        <VersionSelect label="To" value={pair.to} numbers={numbers} onChange={(v) => setPicked({ ...pair, to: v })} />
      </div>
      {from.version === to.version ? (
        <p className="muted">Pick two different versions.</p>
      ) : !from.spec || !to.spec ? (
        <p className="field-error">Version {(from.spec ? to : from).version} came without its definition.</p>
      ) : (
        <SpecDiff
          key={`${from.version}-${to.version}`}
          from={from.version}
          to={to.version}
          before={from.spec}
          after={to.spec}
        />
      )}
    </>
  );
}

/** The newest version before `active` (or before the newest), and `active` itself. */
export function defaultPair(numbers: readonly number[], active?: number): { from: number; to: number } {
  const newestFirst = [...numbers].sort((a, b) => b - a);
  const to = active !== undefined && newestFirst.includes(active) ? active : newestFirst[0]!;
  const from = newestFirst.find((n) => n < to) ?? newestFirst.find((n) => n !== to) ?? to;
  return { from, to };
}

function VersionSelect({
  label,
  value,
  numbers,
  onChange,
}: {
  label: string;
  value: number;
  numbers: readonly number[];
  onChange: (version: number) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(Number(e.target.value))}>
        {numbers.map((n) => (
          <option key={n} value={n}>
            v{n}
          </option>
        ))}
      </select>
    </div>
  );
}

function SpecDiff({ from, to, before, after }: { from: number; to: number; before: unknown; after: unknown }) {
  const diff = useMemo(() => diffLines(splitLines(specYaml(before)), splitLines(specYaml(after))), [before, after]);
  if (diff.added === 0 && diff.removed === 0)
    return (
      <p className="muted">
        v{from} and v{to} define the same workflow.
      </p>
    );
  return (
    <>
      <p className="small-print">
        From v{from} to v{to}: <span className="diff-count-added">{plural(diff.added, 'line')} added</span>,{' '}
        <span className="diff-count-removed">{diff.removed} removed</span>.
        {diff.coarse && ' Too many changes to match line by line: the changed part is shown removed, then added.'}
      </p>
      <DiffTable lines={diff.lines} from={from} to={to} />
    </>
  );
}

function DiffTable({ lines, from, to }: { lines: readonly DiffLine[]; from: number; to: number }) {
  const [opened, setOpened] = useState<ReadonlySet<number>>(new Set());
  const [showAll, setShowAll] = useState(false);
  const rows = useMemo(() => foldUnchanged(lines, CONTEXT_LINES, opened), [lines, opened]);
  const shown = showAll ? rows : rows.slice(0, ROWS_SHOWN);
  return (
    <div className="diff">
      <table>
        <caption className="sr-only">
          Changes from version {from} to version {to}
        </caption>
        <thead>
          <tr>
            <th scope="col" className="diff-num">
              <span className="sr-only">Line in </span>v{from}
            </th>
            <th scope="col" className="diff-num">
              <span className="sr-only">Line in </span>v{to}
            </th>
            <th scope="col">
              <span className="sr-only">Change</span>
            </th>
            <th scope="col">Definition</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((row) =>
            row.op === 'gap' ? (
              <tr key={`gap ${row.start}`} className="diff-gap">
                <td colSpan={4}>
                  <button type="button" className="link" onClick={() => setOpened(new Set(opened).add(row.start))}>
                    Show {plural(row.count, 'unchanged line')}
                  </button>
                </td>
              </tr>
            ) : (
              <DiffRow key={`${row.oldLine}:${row.newLine}`} line={row} />
            ),
          )}
        </tbody>
      </table>
      {shown.length < rows.length && (
        <p className="diff-more">
          Showing {ROWS_SHOWN} of {rows.length} rows.{' '}
          <button type="button" className="link" onClick={() => setShowAll(true)}>
            Show all
          </button>
        </p>
      )}
    </div>
  );
}

const MARK = { same: ' ', added: '+', removed: '-' } as const;

function DiffRow({ line }: { line: DiffLine }) {
  return (
    <tr className={`diff-${line.op}`}>
      <td className="diff-num">{line.oldLine ?? ''}</td>
      <td className="diff-num">{line.newLine ?? ''}</td>
      <td className="diff-mark">
        <span aria-hidden="true">{MARK[line.op]}</span>
        {line.op !== 'same' && <span className="sr-only">{line.op}</span>}
      </td>
      <td className="diff-text">{line.text}</td>
    </tr>
  );
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
