// A workflow spec, as the API answers it (JSON), written back as YAML for people to read.
//
// The same spec always gives the same text, whatever order its keys arrived in: keys are sorted,
// with `id` first so each task's block starts with its name. That makes a line diff of two
// versions show what changed in meaning, and the editor's lines match the diff's.

import { stringify } from 'yaml';

export function specYaml(spec: unknown): string {
  return stringify(ordered(spec), { lineWidth: 0 });
}

function ordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(ordered);
  if (typeof value !== 'object' || value === null) return value;
  const keys = Object.keys(value).sort((a, b) => (a === 'id' ? -1 : b === 'id' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const record = value as Record<string, unknown>;
  return Object.fromEntries(keys.map((key) => [key, ordered(record[key])]));
}
