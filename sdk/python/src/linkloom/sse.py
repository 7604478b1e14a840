"""Server-sent events (``text/event-stream``), parsed from bytes as they arrive, and the log
follower built on them.

Only what following logs needs: ``event`` and ``data`` fields, comments (keep-alives) skipped,
CR, LF and CRLF line ends, events split anywhere across chunks. No I/O here: the clients feed
bytes in and take text out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from .errors import DecodeError

#: Largest event (its lines and data together) accepted before the stream is refused.
MAX_EVENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SseEvent:
    """One event: its name (``message`` when it has none) and its data lines joined by LF."""

    event: str
    data: str


class SseParser:
    """Feeds on bytes, answers complete events."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._line = bytearray()
        self._after_cr = False
        self._event: Optional[str] = None
        self._data: List[str] = []
        self._data_bytes = 0

    def feed(self, chunk: bytes) -> List[SseEvent]:
        """The events ``chunk`` completes.

        Raises:
            DecodeError: an event grew over the limit.
        """
        events: List[SseEvent] = []
        for byte in chunk:
            after_cr, self._after_cr = self._after_cr, False
            if byte == 0x0A and after_cr:
                continue
            if byte in (0x0A, 0x0D):
                self._after_cr = byte == 0x0D
                line = bytes(self._line)
                self._line.clear()
                event = self._end_line(line)
                if event is not None:
                    events.append(event)
                continue
            self._line.append(byte)
            if len(self._line) + self._data_bytes > self._max:
                raise DecodeError(f"an event larger than {self._max} bytes")
        return events

    def _end_line(self, line: bytes) -> Optional[SseEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        text = line.decode("utf-8", errors="replace")
        name, sep, value = text.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_bytes += len(value) + 1
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> Optional[SseEvent]:
        event, self._event = self._event, None
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        self._data_bytes = 0
        return SseEvent(event or "message", data)


class LogFollow:
    """What a log follower shows, across reconnects.

    The server sends the whole log so far first, then each new piece, then an ``end`` event.
    After a reconnect it sends everything again: the bytes already shown are skipped, so the
    caller sees the log once.
    """

    def __init__(self) -> None:
        self.done = False
        self._position = 0
        self._skip_until = 0
        self._parser = SseParser()

    def reconnected(self) -> None:
        """A new connection starts: what it sends first was shown up to here."""
        self._skip_until = max(self._skip_until, self._position)
        self._position = 0
        self._parser = SseParser()

    def feed(self, chunk: bytes) -> List[str]:
        """The new text in ``chunk`` (possibly none)."""
        texts: List[str] = []
        for event in self._parser.feed(chunk):
            if self.done:
                break
            if event.event == "end":
                self.done = True
                break
            if event.event != "message":
                continue
            start = self._position
            self._position += len(event.data)
            if self._position <= self._skip_until:
                continue
            text = event.data[max(0, self._skip_until - start) :]
            if text:
                texts.append(text)
        return texts
