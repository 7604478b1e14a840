"""Helpers for HTTP-task backends: the services a ``type: http`` task calls (docs/tasks.md).

For each attempt the node POSTs a JSON body (:class:`TaskRequest`) with the header
``Idempotency-Key: <execution_id>/<task_id>/<attempt>``, signed with ``X-Loom-Signature`` when the
cluster has a signing key (:class:`Verifier`). The backend answers at once (200 with
:meth:`TaskAnswer.succeeded` or :meth:`TaskAnswer.failed`) or later (:meth:`TaskAnswer.accepted`,
202, then :func:`complete_callback` with the attempt's own callback token, and
:func:`heartbeat_callback` meanwhile).

Nothing here needs a web framework: read the body as bytes, answer a status code, a content type
and bytes. :mod:`linkloom.backend.starlette` (FastAPI too) and :mod:`linkloom.backend.flask` wire
it into those frameworks; they are imported only when used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .._ops import callback_base_and_attempt
from ..client import AsyncClient, Client
from ..errors import DecodeError, InvalidError
from ..models import AttemptFinished
from ..signature import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    MalformedSignature,
    MissingSignature,
    SignatureError,
    SignatureMismatch,
    StaleSignature,
    UnknownKey,
    Verifier,
    sign,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MAX_TASK_REQUEST_BYTES",
    "SIGNATURE_HEADER",
    "MalformedSignature",
    "MissingSignature",
    "SignatureError",
    "SignatureMismatch",
    "StaleSignature",
    "TaskAnswer",
    "TaskRequest",
    "UnknownKey",
    "Verifier",
    "complete_callback",
    "complete_callback_async",
    "heartbeat_callback",
    "heartbeat_callback_async",
    "sign",
]

#: Largest task request read (a task's input and params are far smaller).
MAX_TASK_REQUEST_BYTES = 8 * 1024 * 1024
_MAX_ATTEMPT = 2**32 - 1


def _required_text(data: Dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise DecodeError(f"could not decode a task request: `{name}` must be a string")
    return value


def _optional_text(data: Dict[str, Any], name: str) -> Optional[str]:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise DecodeError(f"could not decode a task request: `{name}` must be a string or null")
    return value


@dataclass(frozen=True)
class TaskRequest:
    """What the node sends a backend for one attempt of an ``http`` task.

    Attributes:
        execution_id: The execution this attempt belongs to.
        workflow_id: The workflow of the execution.
        task_id: The task's id in the workflow.
        attempt: 1 for the first attempt, higher for retries and repeats.
        input: The task's input, templates rendered (``None`` when the task has none).
        params: The execution's params.
        callback_url: Where to POST the answer of an attempt accepted with 202.
        callback_token: The attempt's own token for the callback (never in reprs).
        deadline: RFC 3339: when the attempt times out, if the task has a timeout.
    """

    execution_id: str
    workflow_id: str
    task_id: str
    attempt: int
    input: Any = None
    params: Any = None
    callback_url: Optional[str] = None
    callback_token: Optional[str] = field(default=None, repr=False)
    deadline: Optional[str] = None

    @classmethod
    def parse(cls, body: bytes) -> TaskRequest:
        """Reads the raw request body; unknown fields are ignored.

        Raises:
            DecodeError: not a task request.
        """
        if len(body) > MAX_TASK_REQUEST_BYTES:
            raise DecodeError(f"could not decode a task request: larger than {MAX_TASK_REQUEST_BYTES} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise DecodeError(f"could not decode a task request: {e}") from e
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> TaskRequest:
        """Reads a body already parsed as JSON.

        Raises:
            DecodeError: not a task request.
        """
        if not isinstance(data, dict):
            raise DecodeError("could not decode a task request: expected a JSON object")
        attempt = data.get("attempt")
        if isinstance(attempt, float) and attempt.is_integer():
            attempt = int(attempt)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= _MAX_ATTEMPT:
            raise DecodeError("could not decode a task request: `attempt` must be an unsigned integer")
        return cls(
            execution_id=_required_text(data, "execution_id"),
            workflow_id=_required_text(data, "workflow_id"),
            task_id=_required_text(data, "task_id"),
            attempt=attempt,
            input=data.get("input"),
            params=data.get("params"),
            callback_url=_optional_text(data, "callback_url"),
            callback_token=_optional_text(data, "callback_token"),
            deadline=_optional_text(data, "deadline"),
        )

    @classmethod
    def from_signed(
        cls,
        verifier: Verifier,
        method: str,
        url: str,
        headers: Any,
        body: bytes,
        now: Optional[float] = None,
    ) -> TaskRequest:
        """Verifies the request's ``X-Loom-Signature`` then reads it.

        Args:
            verifier: The keys accepted.
            method: The request's method.
            url: The full URL the node called (your public URL).
            headers: The request's headers: any mapping with a case-insensitive ``get``
                (Starlette's, Flask's, httpx's), or a plain dict with lowercase names.
            body: The raw body bytes.
            now: Unix seconds to check against (default: the clock).

        Raises:
            SignatureError: the signature does not verify (its subclass says why).
            DecodeError: not a task request.
        """
        signature = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
        key = headers.get("Idempotency-Key") or headers.get("idempotency-key") or ""
        verifier.verify(signature, method, url, key, body, now=now)
        return cls.parse(body)

    @property
    def attempt_id(self) -> Optional[str]:
        """The attempt's id, read from the callback URL (``None`` without one)."""
        if self.callback_url is None:
            return None
        try:
            return callback_base_and_attempt(self.callback_url)[1]
        except InvalidError:
            return None

    @property
    def idempotency_key(self) -> str:
        """``<execution_id>/<task_id>/<attempt>``: the same as the ``Idempotency-Key`` header."""
        return f"{self.execution_id}/{self.task_id}/{self.attempt}"


@dataclass(frozen=True)
class TaskAnswer:
    """How a backend answers an attempt: done now (:meth:`succeeded`, :meth:`failed`) or later
    (:meth:`accepted`, then a callback).

    Example::

        answer = TaskAnswer.succeeded({"rows": 3}, logs="read 3 rows")
        return Response(answer.body_bytes(), status_code=answer.status_code,
                        media_type=answer.content_type)
    """

    outcome: str
    output: Any = None
    error: Optional[str] = None
    retryable: bool = True
    logs: Optional[str] = None

    @classmethod
    def succeeded(cls, output: Any = None, logs: Optional[str] = None) -> TaskAnswer:
        """The task succeeded with ``output`` (JSON; ``None`` becomes ``{}``)."""
        return cls("succeeded", output={} if output is None else output, logs=logs)

    @classmethod
    def failed(cls, error: str, retryable: bool = True, logs: Optional[str] = None) -> TaskAnswer:
        """The attempt failed; ``retryable=False`` fails the task at once."""
        return cls("failed", error=error, retryable=retryable, logs=logs)

    @classmethod
    def accepted(cls) -> TaskAnswer:
        """The attempt goes on (202): answer later with :func:`complete_callback`."""
        return cls("accepted")

    @property
    def is_accepted(self) -> bool:
        """This is the 202 of an attempt that goes on."""
        return self.outcome == "accepted"

    @property
    def status_code(self) -> int:
        """202 for :meth:`accepted`, else 200 (a failure is told in the body)."""
        return 202 if self.is_accepted else 200

    @property
    def content_type(self) -> str:
        """The body's content type."""
        return "application/json"

    def body(self) -> Dict[str, Any]:
        """The body as JSON."""
        if self.outcome == "succeeded":
            body: Dict[str, Any] = {"status": "succeeded", "output": self.output}
        elif self.outcome == "failed":
            body = {"status": "failed", "error": self.error}
            if not self.retryable:
                body["retryable"] = False
        else:
            return {"status": "accepted"}
        if self.logs is not None:
            body["logs"] = self.logs
        return body

    def body_bytes(self) -> bytes:
        """The body as bytes to send."""
        return json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False).encode()


def complete_callback(
    callback_url: str,
    token: str,
    answer: TaskAnswer,
    *,
    client: Optional[Client] = None,
) -> AttemptFinished:
    """Completes an attempt accepted with 202, through its callback URL (then ``client``'s
    servers, if given, should that node be down). Blocking.

    Raises:
        StaleAttemptError: the attempt is no longer current.
        InvalidError: ``answer`` is :meth:`TaskAnswer.accepted`, or the URL is not a callback URL.
    """
    base, _ = callback_base_and_attempt(callback_url)
    if client is not None:
        return client.complete_callback(callback_url, token, answer)
    with Client([base]) as own:
        return own.complete_callback(callback_url, token, answer)


async def complete_callback_async(
    callback_url: str,
    token: str,
    answer: TaskAnswer,
    *,
    client: Optional[AsyncClient] = None,
) -> AttemptFinished:
    """:func:`complete_callback` for asyncio programs."""
    base, _ = callback_base_and_attempt(callback_url)
    if client is not None:
        return await client.complete_callback(callback_url, token, answer)
    async with AsyncClient([base]) as own:
        return await own.complete_callback(callback_url, token, answer)


def heartbeat_callback(callback_url: str, token: str, *, client: Optional[Client] = None) -> None:
    """Tells the cluster a backend still works on an accepted attempt. Blocking.

    Raises:
        StaleAttemptError: the attempt is no longer current: stop working on it.
    """
    base, _ = callback_base_and_attempt(callback_url)
    if client is not None:
        client.heartbeat_callback(callback_url, token)
        return
    with Client([base]) as own:
        own.heartbeat_callback(callback_url, token)


async def heartbeat_callback_async(
    callback_url: str, token: str, *, client: Optional[AsyncClient] = None
) -> None:
    """:func:`heartbeat_callback` for asyncio programs."""
    base, _ = callback_base_and_attempt(callback_url)
    if client is not None:
        await client.heartbeat_callback(callback_url, token)
        return
    async with AsyncClient([base]) as own:
        await own.heartbeat_callback(callback_url, token)
