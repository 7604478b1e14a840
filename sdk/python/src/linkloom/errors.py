"""Typed errors, and the one function that decides what a call does with each outcome.

Every failure a caller can see is a :class:`LinkLoomError`; its subclass says what kind of
failure it is (the ``kind`` names of sdk/conformance/README.md, "errors.json"). The failover loop
of both clients and the conformance vector tests share :func:`classify`, so the behaviour the
vectors pin down is the behaviour the clients have.

This module does no I/O.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Type, Union

__all__ = [
    "SAFE_METHODS",
    "Answer",
    "Classification",
    "ConflictError",
    "ConnectError",
    "DecodeError",
    "ForbiddenError",
    "InvalidError",
    "LinkLoomError",
    "NotFoundError",
    "Outcome",
    "RateLimitedError",
    "ServerError",
    "StaleAttemptError",
    "TimeoutError",
    "TooLargeError",
    "TransportError",
    "TransportFailure",
    "UnauthorizedError",
    "UnavailableError",
    "classify",
    "error_for",
    "error_from_answer",
]

#: Longest piece of a non-JSON error body kept in an error's message.
MAX_ERROR_TEXT_CHARS = 500

#: Methods whose repeat cannot apply anything twice (reads, and the idempotent PUT and DELETE).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class LinkLoomError(Exception):
    """Base of every error this SDK raises.

    Attributes:
        status: The HTTP status of the answer, or ``None`` when there was no answer.
        code: The stable API code (``not_found``, ``stale_attempt``, ...), or ``None``.
        message: A human-readable explanation.
        details: Extra structure from the server (``{"problems": [...]}``, ...), or ``None``.
    """

    #: The contract's name for this kind of failure (sdk/conformance/README.md).
    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details

    def __str__(self) -> str:
        if self.status is not None:
            return f"{self.message} ({self.status} {self.code})"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"

    @property
    def problems(self) -> list[dict[str, str]]:
        """The ``{path, message}`` problems of an ``invalid_spec`` answer; empty otherwise."""
        if isinstance(self.details, dict):
            problems = self.details.get("problems")
            if isinstance(problems, list):
                return [
                    {"path": str(p.get("path", "")), "message": str(p.get("message", ""))}
                    for p in problems
                    if isinstance(p, dict)
                ]
        return []


class UnauthorizedError(LinkLoomError):
    """401: no token, or one the cluster does not know."""

    kind = "unauthorized"


class ForbiddenError(LinkLoomError):
    """403: the token's role may not make this call, or the worker is bound to another token."""

    kind = "forbidden"


class NotFoundError(LinkLoomError):
    """404: no such workflow, execution, task, attempt, token or route."""

    kind = "not_found"


class ConflictError(LinkLoomError):
    """409: the state moved under the request, or does not allow it: read again and decide."""

    kind = "conflict"


class StaleAttemptError(ConflictError):
    """409 ``stale_attempt``: the attempt is no longer current, or not the caller's."""

    kind = "stale_attempt"


class InvalidError(LinkLoomError, ValueError):
    """400 or 422 from the server, or a mistake found locally before anything was sent."""

    kind = "invalid"


class TooLargeError(LinkLoomError):
    """413: a body or a value over its limit (``details.limit_bytes``)."""

    kind = "too_large"


class RateLimitedError(LinkLoomError):
    """429: over the token's request rate, still after the retries."""

    kind = "rate_limited"


class UnavailableError(LinkLoomError):
    """503: no leader within the wait, still after trying the servers."""

    kind = "unavailable"


class ServerError(LinkLoomError):
    """A 5xx other than 503: the node failed (storage, Raft) or something in front of it did."""

    kind = "server"


class ConnectError(LinkLoomError):
    """No server could be reached (connection refused, or not opened in time)."""

    kind = "connect"


class TransportError(LinkLoomError):
    """The connection broke after the request was sent: it may or may not have taken effect."""

    kind = "transport"


class TimeoutError(LinkLoomError, builtins.TimeoutError):  # noqa: A001 - the contract's kind name
    """No answer in time, or a wait (for an execution) ran out."""

    kind = "timeout"


class DecodeError(LinkLoomError):
    """An answer (or a task request) that could not be read as the expected shape."""

    kind = "decode"


_KINDS: Dict[str, Type[LinkLoomError]] = {
    cls.kind: cls
    for cls in (
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        StaleAttemptError,
        InvalidError,
        TooLargeError,
        RateLimitedError,
        UnavailableError,
        ServerError,
        ConnectError,
        TransportError,
        TimeoutError,
        DecodeError,
    )
}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as the failover loop sees it.

    Attributes:
        status: The HTTP status.
        body: The body as received (at most the client's answer limit).
        retry_after: The ``Retry-After`` header, if any.
    """

    status: int
    body: bytes = b""
    retry_after: Optional[str] = None


@dataclass(frozen=True)
class TransportFailure:
    """A request that got no answer.

    Attributes:
        failure: ``refused`` (no connection: nothing was sent), ``reset`` (the connection broke
            after the request was sent) or ``timeout`` (no answer in time).
        detail: What the HTTP library said, for messages.
    """

    failure: str
    detail: str = ""


Outcome = Union[Answer, TransportFailure]


@dataclass(frozen=True)
class Classification:
    """What to do with one outcome.

    Attributes:
        disposition: ``success``, ``retry``, ``failover``, ``stale_attempt``, ``auth`` or ``fatal``.
        kind: The error kind the caller sees (``None`` for a success).
        code: The stable API code (``None`` for a success or a transport failure).
        status: The HTTP status (``None`` without an answer).
        message: A human-readable explanation (empty for a success).
        details: The server's ``details`` (``None`` if it sent none).
    """

    disposition: str
    kind: Optional[str]
    code: Optional[str]
    status: Optional[int]
    message: str = ""
    details: Any = None

    def error(self) -> LinkLoomError:
        """The typed error for this outcome (a success has none: ``ValueError``)."""
        if self.kind is None:
            raise ValueError("a success is not an error")
        cls = _KINDS.get(self.kind, LinkLoomError)
        return cls(self.message, status=self.status, code=self.code, details=self.details)


def code_for_status(status: int) -> str:
    """The API's code for a status, for answers that carry none (a proxy's, an empty body)."""
    known = {
        400: "bad_request",
        401: "unauthenticated",  # the API's code (docs/api.md); the Rust SDK says "unauthorized"
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        408: "request_timeout",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media_type",
        422: "invalid_spec",
        429: "rate_limited",
        503: "unavailable",
    }
    if status in known:
        return known[status]
    if 500 <= status <= 599:
        return "internal"
    return "http_error"


def _read_error_body(status: int, body: bytes) -> tuple[str, str, Any]:
    """(code, message, details) of an error answer: the API's shape, or a proxy's text."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        inner = parsed["error"]
        code = inner.get("code")
        message = inner.get("message")
        return (
            code if isinstance(code, str) and code else code_for_status(status),
            message if isinstance(message, str) and message else f"HTTP {status}",
            inner.get("details"),
        )
    text = body.decode("utf-8", errors="replace").strip()[:MAX_ERROR_TEXT_CHARS]
    return code_for_status(status), text or f"HTTP {status}", None


def _kind_for_status(status: int, code: str) -> str:
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "not_found"
    if status == 409:
        return "stale_attempt" if code == "stale_attempt" else "conflict"
    if status == 413:
        return "too_large"
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "unavailable"
    if 500 <= status <= 599:
        return "server"
    return "invalid"


def classify(
    method: str, idempotency_key: bool, outcome: Outcome, attempt_call: bool = False
) -> Classification:
    """Decides what a call does next with one outcome (sdk/conformance/README.md, errors.json).

    Args:
        method: The request's HTTP method.
        idempotency_key: Whether the request carries an ``Idempotency-Key`` (reused on resends).
        outcome: The answer, or the transport failure.
        attempt_call: A worker's heartbeat, completion or release of one attempt: there a 404
            (the attempt is gone) means the same as ``409 stale_attempt``.

    Returns:
        The disposition, the error kind, the code and the status.
    """
    if isinstance(outcome, TransportFailure):
        repeatable = idempotency_key or method.upper() in SAFE_METHODS
        if outcome.failure == "refused":
            message = f"could not connect: {outcome.detail}".rstrip(": ")
            return Classification("failover", "connect", None, None, message)
        if outcome.failure == "timeout":
            message = "no answer in time"
            kind = "timeout"
        else:
            message = "the connection broke after the request was sent"
            kind = "transport"
        if outcome.detail:
            message = f"{message}: {outcome.detail}"
        if not repeatable:
            message += " (it may have taken effect)"
        return Classification("failover" if repeatable else "fatal", kind, None, None, message)

    status = outcome.status
    if 200 <= status <= 299:
        return Classification("success", None, None, status)
    code, message, details = _read_error_body(status, outcome.body)
    kind = _kind_for_status(status, code)
    if status == 503:
        disposition = "failover"
    elif status == 429:
        disposition = "retry"
    elif status in (401, 403):
        disposition = "auth"
    elif kind == "stale_attempt" or (attempt_call and status == 404):
        disposition = "stale_attempt"
    else:
        disposition = "fatal"
    return Classification(disposition, kind, code, status, message, details)


def error_from_answer(status: int, body: bytes) -> LinkLoomError:
    """The typed error for an answer that is not a 2xx."""
    return classify("GET", False, Answer(status, body)).error()


def error_for(kind: str, message: str) -> LinkLoomError:
    """A typed error of ``kind`` with no answer behind it (``connect``, ``timeout``, ...)."""
    return _KINDS.get(kind, LinkLoomError)(message)
