// A parser for server-sent events (the `text/event-stream` format), fed text as it arrives.
//
// The log stream cannot use EventSource, which cannot send an Authorization header, so the
// client reads the body with fetch and feeds the chunks here. Chunks may split a line, or even
// a CR LF pair, anywhere.

export interface SseEvent {
  /** The `event:` field; `message` when absent, as in the standard. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The `id:` field, if the server sent one. */
  id?: string;
}

export class SseParser {
  private buffer = '';
  /** A chunk ended with CR: a LF starting the next chunk belongs to the same line break. */
  private pendingCr = false;
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  /** Feeds decoded text; returns the events it completed, in order. */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.pendingCr && text.startsWith('\n')) {
      text = text.slice(1);
    }
    this.pendingCr = false;
    this.buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buffer.slice(start, i);
      if (c === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** The stream ended: an event without its closing blank line is dropped, as the standard says. */
  finish(): void {
    this.buffer = '';
    this.pendingCr = false;
    this.reset();
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // a comment, e.g. keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      default:
        // `retry` and unknown fields do not matter to a fetch-based reader.
        break;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    if (this.data.length === 0) {
      this.event = '';
      return null;
    }
    const event: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
    if (this.id !== undefined) event.id = this.id;
    this.reset();
    return event;
  }

  private reset(): void {
    this.event = '';
    this.data = [];
  }
}
