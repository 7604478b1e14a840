"""The API's calls as data: each function answers the request to send and how to read its answer.

Both clients run the same operations, so a call's path, query, body and decoding are written
once; only sending differs (asyncio or blocking). No I/O here.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generic, List, Mapping, Optional, Tuple, TypeVar
from urllib.parse import parse_qsl, quote

from .errors import DecodeError, InvalidError
from .models import (
    AttemptFinished,
    Cancelled,
    Cluster,
    Event,
    Execution,
    Model,
    Page,
    Paused,
    Queue,
    Retried,
    StoredWorkflow,
    WorkerInfo,
    Workflow,
    decode,
)

T = TypeVar("T")
M = TypeVar("M", bound=Model)

#: Methods that change something: each carries a fresh ``Idempotency-Key``.
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Following logs: a stream silent this long is reconnected (the node sends keep-alives).
FOLLOW_IDLE_TIMEOUT_S = 45.0
#: The largest page the API serves by default (``LOOM_MAX_PAGE_SIZE``).
MAX_PAGE_SIZE = 500


def new_idempotency_key() -> str:
    """A fresh idempotency key: 128 random bits in hex, one per logical operation."""
    return secrets.token_hex(16)


def segment(text: str) -> str:
    """``text`` as one path segment (``:``, which execution ids contain, kept as is)."""
    return quote(text, safe="-._~:")


@dataclass(frozen=True)
class Request:
    """A request as the failover loop sends it: everything needed to send it again elsewhere.

    Attributes:
        method: The HTTP method, in capitals.
        path: Starts with ``/``; ids already encoded with :func:`segment`.
        query: Query parameters, in order.
        body: The body, or ``None``.
        content_type: The body's type.
        idempotency_key: Sent as ``Idempotency-Key`` with every resend of this request.
        bearer: Sent as the bearer token instead of the client's (an attempt's callback token).
        accept: The ``Accept`` header, if any.
        streaming: The 2xx answer is read as it arrives, with ``read_timeout_s`` between reads.
        read: A read of replicated state (takes ``consistency=stale`` with stale reads).
        read_timeout_s: A streaming answer's longest silence (``None``: unbounded).
    """

    method: str
    path: str
    query: Tuple[Tuple[str, str], ...] = ()
    body: Optional[bytes] = None
    content_type: Optional[str] = None
    idempotency_key: Optional[str] = None
    bearer: Optional[str] = field(default=None, repr=False)
    accept: Optional[str] = None
    streaming: bool = False
    read: bool = False
    read_timeout_s: Optional[float] = None

    @classmethod
    def new(
        cls,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        query: Tuple[Tuple[str, str], ...] = (),
        idempotency_key: Optional[str] = None,
        read: bool = False,
    ) -> Request:
        """A request; a mutating one gets a fresh idempotency key (or ``idempotency_key``)
        and a JSON body (``{}`` when there is nothing to send).
        """
        method = method.upper()
        if not path.startswith("/"):
            raise InvalidError(f"path `{path}` must start with /")
        body: Optional[bytes] = None
        content_type: Optional[str] = None
        key: Optional[str] = None
        if method in MUTATING_METHODS:
            key = idempotency_key or new_idempotency_key()
            if method != "DELETE" or json_body is not None:
                body = encode_json({} if json_body is None else json_body)
                content_type = "application/json"
        elif json_body is not None:
            raise InvalidError(f"a {method} request takes no body")
        return cls(method, path, query, body, content_type, key, read=read)

    def with_bearer(self, token: str) -> Request:
        """This request, authenticated with ``token`` instead of the client's token."""
        return replace(self, bearer=token)


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON.

    Raises:
        InvalidError: ``value`` is not JSON (a set, an object, NaN).
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise InvalidError(f"not JSON: {e}") from e


def parse_json(body: bytes, what: str) -> Any:
    """Parsed JSON of an answer.

    Raises:
        DecodeError: the answer is not JSON.
    """
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeError(f"could not decode {what}: {e}") from e


@dataclass(frozen=True)
class Op(Generic[T]):
    """One API call: the request, and how to read a 2xx answer's body."""

    request: Request
    decode: Callable[[bytes], T]


def _model(cls: type[M], what: str) -> Callable[[bytes], M]:
    return lambda body: decode(cls, parse_json(body, what), what)


def _page(cls: type[M], what: str) -> Callable[[bytes], Page[M]]:
    def read(body: bytes) -> Page[M]:
        data = parse_json(body, what)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise DecodeError(f"could not decode {what}: expected {{items, next_cursor}}")
        items = [decode(cls, item, f"{what}[{i}]") for i, item in enumerate(data["items"])]
        cursor = data.get("next_cursor")
        return Page(items, cursor if isinstance(cursor, str) else None)

    return read


def _items(cls: type[M], what: str) -> Callable[[bytes], List[M]]:
    page = _page(cls, what)
    return lambda body: page(body).items


def _nothing(body: bytes) -> None:
    return None


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"could not decode the logs: {e}") from e


def _json(body: bytes) -> Any:
    if not body.strip():
        return None
    return parse_json(body, "the answer")


def spec_json(spec: Any) -> Mapping[str, Any]:
    """A workflow spec as a JSON object: a mapping, or anything with ``to_json()`` (a builder)."""
    to_json = getattr(spec, "to_json", None)
    if callable(to_json):
        spec = to_json()
    if not isinstance(spec, Mapping):
        raise InvalidError("a workflow spec must be a mapping or a WorkflowBuilder")
    return spec


def put_workflow(spec: Any) -> Op[StoredWorkflow]:
    request = Request.new("POST", "/api/v1/workflows", json_body=dict(spec_json(spec)))
    return Op(request, _model(StoredWorkflow, "the stored workflow"))


def put_workflow_yaml(text: str) -> Op[StoredWorkflow]:
    request = replace(
        Request.new("POST", "/api/v1/workflows"),
        body=text.encode("utf-8"),
        content_type="application/yaml",
    )
    return Op(request, _model(StoredWorkflow, "the stored workflow"))


def get_workflow(workflow_id: str) -> Op[Workflow]:
    request = Request.new("GET", f"/api/v1/workflows/{segment(workflow_id)}", read=True)
    return Op(request, _model(Workflow, "the workflow"))


def list_workflows(limit: Optional[int], cursor: Optional[str]) -> Op[Page[Workflow]]:
    request = Request.new("GET", "/api/v1/workflows", query=_paging(limit, cursor), read=True)
    return Op(request, _page(Workflow, "a page of workflows"))


def delete_workflow(workflow_id: str) -> Op[None]:
    return Op(Request.new("DELETE", f"/api/v1/workflows/{segment(workflow_id)}"), _nothing)


def pause_workflow(workflow_id: str, pause: bool) -> Op[Paused]:
    action = "pause" if pause else "resume"
    request = Request.new("POST", f"/api/v1/workflows/{segment(workflow_id)}/{action}")
    return Op(request, _model(Paused, "the workflow's paused flag"))


def trigger(workflow_id: str, params: Optional[Mapping[str, Any]], idempotency_key: Optional[str]) -> Op[str]:
    if params is not None and not isinstance(params, Mapping):
        raise InvalidError("params must be a mapping (or None for the workflow's defaults)")
    body = {} if params is None else {"params": dict(params)}
    request = Request.new(
        "POST",
        f"/api/v1/workflows/{segment(workflow_id)}/trigger",
        json_body=body,
        idempotency_key=idempotency_key,
    )

    def read(answer: bytes) -> str:
        data = parse_json(answer, "the new execution")
        if not isinstance(data, dict) or not isinstance(data.get("execution_id"), str):
            raise DecodeError("could not decode the new execution: no execution_id")
        return str(data["execution_id"])

    return Op(request, read)


def get_execution(execution_id: str) -> Op[Execution]:
    request = Request.new("GET", f"/api/v1/executions/{segment(execution_id)}", read=True)
    return Op(request, _model(Execution, "the execution"))


def list_executions(
    workflow: Optional[str],
    status: Optional[str],
    trigger: Optional[str],
    limit: Optional[int],
    newest_first: bool,
    cursor: Optional[str],
) -> Op[Page[Execution]]:
    query: List[Tuple[str, str]] = []
    for name, value in (("workflow", workflow), ("status", status), ("trigger", trigger)):
        if value is not None:
            query.append((name, value))
    if newest_first:
        query.append(("order", "newest"))
    query.extend(_paging(limit, cursor))
    request = Request.new("GET", "/api/v1/executions", query=tuple(query), read=True)
    return Op(request, _page(Execution, "a page of executions"))


def send_event(name: str, event_id: Optional[str], payload: Any) -> Op[Event]:
    if not isinstance(name, str) or not name:
        raise InvalidError("an event needs a name (letters, digits, `.`, `_` and `-`)")
    # The id is drawn here, once, when the caller gives none: every resend of this call (another
    # node after a failover) then names the same event, which the cluster acts on once.
    body = {"name": name, "id": event_id or new_idempotency_key(), "payload": payload}
    request = Request.new("POST", "/api/v1/events", json_body=body)
    return Op(request, _model(Event, "the event"))


def list_events(name: Optional[str], limit: Optional[int], cursor: Optional[str]) -> Op[Page[Event]]:
    query: List[Tuple[str, str]] = [] if name is None else [("name", name)]
    query.extend(_paging(limit, cursor))
    request = Request.new("GET", "/api/v1/events", query=tuple(query), read=True)
    return Op(request, _page(Event, "a page of events"))


def cancel_execution(execution_id: str) -> Op[Cancelled]:
    request = Request.new("POST", f"/api/v1/executions/{segment(execution_id)}/cancel")
    return Op(request, _model(Cancelled, "the cancelled execution"))


def retry_execution(execution_id: str) -> Op[Retried]:
    request = Request.new("POST", f"/api/v1/executions/{segment(execution_id)}/retry")
    return Op(request, _model(Retried, "the retried execution"))


def logs(execution_id: str, task: Optional[str]) -> Op[str]:
    query = () if task is None else (("task", task),)
    request = Request.new("GET", f"/api/v1/executions/{segment(execution_id)}/logs", query=query)
    return Op(request, _text)


def follow_logs(execution_id: str, task: Optional[str]) -> Request:
    query: Tuple[Tuple[str, str], ...] = (("follow", "true"),)
    if task is not None:
        query += (("task", task),)
    request = Request.new("GET", f"/api/v1/executions/{segment(execution_id)}/logs", query=query)
    return replace(request, accept="text/event-stream", streaming=True, read_timeout_s=FOLLOW_IDLE_TIMEOUT_S)


def cluster() -> Op[Cluster]:
    return Op(Request.new("GET", "/api/v1/cluster"), _model(Cluster, "the cluster"))


def workers() -> Op[List[WorkerInfo]]:
    query = (("limit", str(MAX_PAGE_SIZE)),)
    request = Request.new("GET", "/api/v1/workers", query=query, read=True)
    return Op(request, _items(WorkerInfo, "the workers"))


def queues() -> Op[List[Queue]]:
    return Op(Request.new("GET", "/api/v1/queues", read=True), _items(Queue, "the queues"))


def request_json(method: str, path: str, body: Any) -> Op[Any]:
    path_only, _, query_text = path.partition("?")
    query: Tuple[Tuple[str, str], ...] = ()
    if query_text:
        query = tuple(parse_qsl(query_text, keep_blank_values=True))
    return Op(Request.new(method, path_only, json_body=body, query=query), _json)


def callback_base_and_attempt(callback_url: str) -> Tuple[str, str]:
    """``http://node/api/v1/tasks/42/callback`` → (``http://node``, ``42``).

    Raises:
        InvalidError: not a Link Loom callback URL.
    """
    base, sep, rest = callback_url.partition("/api/v1/tasks/")
    attempt_id, slash, tail = rest.partition("/")
    if not sep or not slash or not attempt_id or not tail.startswith("callback") or not base:
        raise InvalidError(f"`{callback_url}` is not a Link Loom callback URL")
    return base, attempt_id


def complete_callback(attempt_id: str, token: str, answer_body: bytes) -> Op[AttemptFinished]:
    request = replace(
        Request.new("POST", f"/api/v1/tasks/{segment(attempt_id)}/callback"),
        body=answer_body,
        content_type="application/json",
    ).with_bearer(token)
    return Op(request, _model(AttemptFinished, "the completion"))


def callback_heartbeat(attempt_id: str, token: str) -> Op[None]:
    request = Request.new("POST", f"/api/v1/tasks/{segment(attempt_id)}/heartbeat")
    return Op(request.with_bearer(token), _nothing)


def _paging(limit: Optional[int], cursor: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    query: List[Tuple[str, str]] = []
    if limit is not None:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidError(f"limit must be 1 to {MAX_PAGE_SIZE}")
        query.append(("limit", str(limit)))
    if cursor is not None:
        query.append(("cursor", cursor))
    return tuple(query)
