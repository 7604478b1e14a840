"""Decoding the worker event stream (docs/workers.md §1): bytes in, actions out.

The node answers ``POST /api/v1/workers/connect`` with one JSON object per line. This module
turns chunks of those bytes, split anywhere, into what the worker must do: keep the welcome's
session and timing, run a task, cancel an attempt, ignore a line, or reconnect. It does no I/O
and keeps no clock: the worker feeds it and acts; the conformance vectors (stream.json) drive
:func:`decode_chunks` the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Set, Union

from .errors import DecodeError
from .models import TaskAssignment, decode

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "MIN_HEARTBEAT_INTERVAL_MS",
    "Action",
    "AlreadyRunning",
    "Cancel",
    "Ignore",
    "Reconnect",
    "Run",
    "StreamDecoder",
    "Welcome",
    "decode_chunks",
]

#: The longest line accepted by default (a task's input is at most 64 KiB).
DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
#: A welcome's heartbeat interval is used as at least this.
MIN_HEARTBEAT_INTERVAL_MS = 50


@dataclass(frozen=True)
class Welcome:
    """The connection is registered: keep ``session`` (for drain) and the timing."""

    session: str
    node_id: int
    heartbeat_interval_ms: int
    lease_ms: int


@dataclass(frozen=True)
class Run:
    """Run this attempt."""

    task: TaskAssignment


@dataclass(frozen=True)
class AlreadyRunning:
    """A task line for an attempt this worker runs already: not started twice."""

    attempt_id: str


@dataclass(frozen=True)
class Cancel:
    """Stop this running attempt and report nothing."""

    attempt_id: str
    reason: str


@dataclass(frozen=True)
class Ignore:
    """A line that asks nothing: ``ping``, ``unknown_type``, ``malformed``, ``blank`` or
    ``cancel_unknown`` (a cancel for an attempt not running here).
    """

    why: str


@dataclass(frozen=True)
class Reconnect:
    """End this connection and connect again: ``closing``, ``line_too_long`` or ``eof``."""

    why: str


Action = Union[Welcome, Run, AlreadyRunning, Cancel, Ignore, Reconnect]


def _uint(value: Any, maximum: int = 2**64 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError("expected an unsigned integer")
    number: int = value
    if not 0 <= number <= maximum:
        raise DecodeError("expected an unsigned integer in range")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise DecodeError("expected a string")
    return value


class StreamDecoder:
    """Turns chunks of the stream into actions.

    Args:
        is_running: Whether an attempt runs on this worker (a task line for one is
            :class:`AlreadyRunning`, a cancel for one that is not is ``cancel_unknown``).
        max_line_bytes: More bytes than this without a line end ends the connection.
    """

    def __init__(
        self,
        is_running: Callable[[str], bool],
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self._is_running = is_running
        self._max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self.ended = False

    def feed(self, chunk: bytes) -> List[Action]:
        """The actions the lines ``chunk`` completes ask for; nothing once the stream ended."""
        if self.ended:
            return []
        self._buffer.extend(chunk)
        actions: List[Action] = []
        # Attempts that earlier lines of this same chunk start count as running.
        started: Set[str] = set()
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end < 0:
                break
            line = bytes(self._buffer[start:end])
            start = end + 1
            action = self._line(line, started)
            if isinstance(action, Run):
                started.add(action.task.attempt_id)
            actions.append(action)
            if isinstance(action, Reconnect):
                self.ended = True
                self._buffer.clear()
                return actions
        del self._buffer[:start]
        if len(self._buffer) > self._max_line_bytes:
            self.ended = True
            self._buffer.clear()
            actions.append(Reconnect("line_too_long"))
        return actions

    def eof(self) -> List[Action]:
        """The connection ended: reconnect (a partial last line is dropped)."""
        if self.ended:
            return []
        self.ended = True
        self._buffer.clear()
        return [Reconnect("eof")]

    def _line(self, line: bytes, started: Set[str]) -> Action:
        if not line.strip():
            return Ignore("blank")
        try:
            event = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return Ignore("malformed")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return Ignore("malformed")
        kind = event["type"]
        try:
            if kind == "welcome":
                interval = _uint(event.get("heartbeat_interval_ms"))
                return Welcome(
                    session=_text(event.get("session")),
                    node_id=_uint(event.get("node_id")),
                    heartbeat_interval_ms=max(interval, MIN_HEARTBEAT_INTERVAL_MS),
                    lease_ms=_uint(event.get("lease_ms")),
                )
            if kind == "task":
                _uint(event.get("attempt"), 2**32 - 1)  # strictly an integer, as the node sends it
                task = decode(TaskAssignment, event, "task")
                if self._is_running(task.attempt_id) or task.attempt_id in started:
                    return AlreadyRunning(task.attempt_id)
                return Run(task)
            if kind == "cancel":
                attempt_id = _text(event.get("attempt_id"))
                reason = _text(event.get("reason"))
                if not (self._is_running(attempt_id) or attempt_id in started):
                    return Ignore("cancel_unknown")
                return Cancel(attempt_id, reason)
            if kind == "ping":
                return Ignore("ping")
            if kind == "closing":
                _text(event.get("reason"))
                return Reconnect("closing")
        except DecodeError:
            return Ignore("malformed")
        return Ignore("unknown_type")


def decode_chunks(
    chunks: Iterable[bytes],
    running: Iterable[str] = (),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    end: Optional[str] = "eof",
) -> List[Action]:
    """Decodes a whole stream as a worker would see it (the shape of a stream.json case).

    Attempts in ``running`` run before the stream opens; each :class:`Run` adds its attempt, as
    the worker starts it.

    Args:
        chunks: The bytes, as they arrive.
        running: Attempts this worker runs before the stream opens.
        max_line_bytes: The line limit.
        end: ``eof`` if the connection ends after the chunks, ``open`` (or ``None``) if not.
    """
    active: Set[str] = set(running)
    decoder = StreamDecoder(active.__contains__, max_line_bytes)
    actions: List[Action] = []
    for chunk in chunks:
        for action in decoder.feed(chunk):
            if isinstance(action, Run):
                active.add(action.task.attempt_id)
            actions.append(action)
    if end == "eof":
        actions.extend(decoder.eof())
    return actions
