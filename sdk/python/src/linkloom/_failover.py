"""The failover policy of one call, as a pure state machine both clients drive.

The asynchronous and the synchronous client send requests differently but must decide alike:
after each outcome this policy answers "done", "raise this" or "send again to server N after
this pause". It does no I/O and reads no clock, so it is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Union

from .errors import (
    Answer,
    Classification,
    ConnectError,
    LinkLoomError,
    Outcome,
    TransportFailure,
    classify,
)

#: First pause after a 503 before the next server; doubled after each, up to the maximum.
UNAVAILABLE_PAUSE_FIRST_S = 0.1
UNAVAILABLE_PAUSE_MAX_S = 2.0
#: Pause after a 429 without ``Retry-After``; doubled after each, up to the maximum.
RATE_LIMITED_PAUSE_FIRST_S = 0.1
RATE_LIMITED_PAUSE_MAX_S = 1.0
#: Longest ``Retry-After`` honoured; a larger one is waited this long.
MAX_RETRY_AFTER_S = 10.0


def default_max_attempts(servers: int) -> int:
    """Sends per call by default: twice the servers, at least 3."""
    return max(3, 2 * servers)


@dataclass(frozen=True)
class Succeed:
    """The answer is the caller's: server ``server`` gave it."""

    server: int


@dataclass(frozen=True)
class Fail:
    """Give up with ``error``; ``answered`` says whether a server answered (it is remembered)."""

    error: LinkLoomError
    classification: Classification
    answered: bool


@dataclass(frozen=True)
class Resend:
    """Send the same request (same idempotency key) to ``server`` after ``pause_s`` seconds."""

    server: int
    pause_s: float


Step = Union[Succeed, Fail, Resend]


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    text = (value or "").strip()
    if not text.isdigit():
        return None  # absent, or an HTTP date (never from a node): the growing pause serves
    return min(float(text), MAX_RETRY_AFTER_S)


class Failover:
    """Decides, outcome by outcome, what one call does next.

    Args:
        servers: The servers' base URLs, in order.
        start: Index of the server to try first (the one that answered last).
        max_attempts: Sends at most, counting every server tried.
        method: The request's method.
        idempotency_key: Whether the request carries an ``Idempotency-Key``.
    """

    def __init__(
        self,
        servers: List[str],
        start: int,
        max_attempts: int,
        method: str,
        idempotency_key: bool,
    ) -> None:
        if not servers:
            raise ValueError("no servers")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._servers = servers
        self._current = start % len(servers)
        self._max_attempts = max_attempts
        self._method = method
        self._has_key = idempotency_key
        self._sent = 0
        self._unavailable_pause = UNAVAILABLE_PAUSE_FIRST_S
        self._rate_pause = RATE_LIMITED_PAUSE_FIRST_S
        self._unreachable: List[int] = []

    @property
    def server(self) -> int:
        """The server the next send goes to."""
        return self._current

    def _next_server(self) -> int:
        return (self._current + 1) % len(self._servers)

    def after(self, outcome: Outcome) -> Step:
        """The step after ``outcome`` of a send to :attr:`server`."""
        self._sent += 1
        attempts_left = self._sent < self._max_attempts
        c = classify(self._method, self._has_key, outcome)
        if c.disposition == "success":
            return Succeed(self._current)
        answered = isinstance(outcome, Answer)
        if c.disposition == "retry" and attempts_left:
            assert isinstance(outcome, Answer)
            pause = _retry_after_seconds(outcome.retry_after)
            if pause is None:
                pause = self._rate_pause
                self._rate_pause = min(self._rate_pause * 2, RATE_LIMITED_PAUSE_MAX_S)
            return Resend(self._current, pause)
        if c.disposition != "failover":
            return Fail(c.error(), c, answered)
        if isinstance(outcome, TransportFailure):
            if self._current not in self._unreachable:
                self._unreachable.append(self._current)
            if len(self._unreachable) == len(self._servers) or not attempts_left:
                return Fail(self._unreachable_error(c), c, False)
            self._current = self._next_server()
            return Resend(self._current, 0.0)
        # 503: the next server, after a growing pause.
        if not attempts_left:
            return Fail(c.error(), c, True)
        pause = self._unavailable_pause
        self._unavailable_pause = min(self._unavailable_pause * 2, UNAVAILABLE_PAUSE_MAX_S)
        self._current = self._next_server()
        return Resend(self._current, pause)

    def _unreachable_error(self, c: Classification) -> LinkLoomError:
        tried = ", ".join(self._servers[i] for i in self._unreachable)
        if c.kind == "connect":
            return ConnectError(f"could not reach any Link Loom server (tried {tried}): {c.message}")
        error = c.error()
        error.message = f"{c.message} (tried {tried})"
        return error
