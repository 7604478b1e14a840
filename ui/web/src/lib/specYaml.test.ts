import { describe, expect, it } from 'vitest';
import { specYaml } from './specYaml';

describe('specYaml', () => {
  it('writes the same text whatever order the keys came in, id first', () => {
    const a = { tasks: [{ type: 'shell', id: 'hi', command: 'echo hi' }], id: 'hello', params: { b: 1, a: 2 } };
    const b = { params: { a: 2, b: 1 }, id: 'hello', tasks: [{ command: 'echo hi', id: 'hi', type: 'shell' }] };
    expect(specYaml(a)).toBe(specYaml(b));
    expect(specYaml(a)).toBe(
      [
        'id: hello',
        'params:',
        '  a: 2',
        '  b: 1',
        'tasks:',
        '  - id: hi',
        '    command: echo hi',
        '    type: shell',
        '',
      ].join('\n'),
    );
  });

  it('keeps list order, which means something (tasks, commands)', () => {
    expect(specYaml({ command: ['b', 'a'] })).toBe('command:\n  - b\n  - a\n');
  });

  it('does not fold long lines', () => {
    const url = `http://127.0.0.1:9000/${'x'.repeat(120)}`;
    expect(specYaml({ url })).toBe(`url: ${url}\n`);
  });
});
