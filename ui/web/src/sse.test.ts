import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from './sse';

function parseAll(chunks: string[]): SseEvent[] {
  const parser = new SseParser();
  return chunks.flatMap((c) => parser.push(c));
}

describe('SseParser', () => {
  it('joins data lines and names events', () => {
    const events = parseAll([
      'data: --- extract attempt 1 (running) ---\ndata: line one\ndata: \n\n',
      'event: end\ndata: task ended\n\n',
    ]);
    expect(events).toEqual([
      { event: 'message', data: '--- extract attempt 1 (running) ---\nline one\n' },
      { event: 'end', data: 'task ended' },
    ]);
  });

  it('survives chunks split anywhere, CR LF pairs included', () => {
    const text = 'data: one\r\ndata: two\r\n\r\n: keep-alive\r\n\r\nevent: end\r\ndata: task ended\r\n\r\n';
    const whole = parseAll([text]);
    expect(whole).toEqual([
      { event: 'message', data: 'one\ntwo' },
      { event: 'end', data: 'task ended' },
    ]);
    for (let cut = 1; cut < text.length; cut++) {
      expect(parseAll([text.slice(0, cut), text.slice(cut)])).toEqual(whole);
    }
    expect(parseAll([...text])).toEqual(whole);
  });

  it('ignores comments, unknown fields and events without data', () => {
    expect(parseAll([': ping\n\nretry: 1000\nevent: nothing\n\nfoo: bar\ndata:x\n\n'])).toEqual([
      { event: 'message', data: 'x' },
    ]);
  });

  it('keeps the space after the first, and only the first', () => {
    expect(parseAll(['data:  two spaces\n\n'])).toEqual([{ event: 'message', data: ' two spaces' }]);
  });

  it('carries the last event id', () => {
    expect(parseAll(['id: 7\ndata: a\n\ndata: b\n\n'])).toEqual([
      { event: 'message', data: 'a', id: '7' },
      { event: 'message', data: 'b', id: '7' },
    ]);
  });

  it('drops an event cut off by the end of the stream', () => {
    const parser = new SseParser();
    expect(parser.push('data: half')).toEqual([]);
    parser.finish();
    expect(parser.push('data: whole\n\n')).toEqual([{ event: 'message', data: 'whole' }]);
  });

  it('handles a lone CR as a line end', () => {
    expect(parseAll(['data: a\r\rdata: b\r', '\r'])).toEqual([
      { event: 'message', data: 'a' },
      { event: 'message', data: 'b' },
    ]);
  });
});
