"""The API's answers as typed, read-only values (the schemas of docs/openapi.json).

Each model names the schema it mirrors in ``__schema__``; tests/test_openapi_drift.py fails when a
model's fields and its schema's properties differ. Decoding ignores fields a newer server adds,
and status-like values stay plain strings, so a value this version does not know (a newer
status) is read as is instead of failing the whole answer.

This module does no I/O.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Generic, List, Optional, Type, TypeVar

from .errors import DecodeError

__all__ = [
    "TERMINAL_EXECUTION_STATUSES",
    "Attempt",
    "AttemptFinished",
    "AuditEntry",
    "AuthState",
    "Backfilled",
    "Cancelled",
    "Cluster",
    "EngineCounters",
    "Event",
    "EventHook",
    "EventOutcome",
    "Execution",
    "LeaseExtended",
    "Member",
    "Model",
    "Page",
    "Paused",
    "Problem",
    "Queue",
    "Replication",
    "ReplicationMember",
    "Retried",
    "StartEvent",
    "StoredWorkflow",
    "TaskAssignment",
    "TaskRun",
    "WorkerInfo",
    "Workflow",
    "WorkflowVersion",
    "decode",
]

#: Execution statuses after which nothing changes (unless the execution is retried).
TERMINAL_EXECUTION_STATUSES = frozenset({"succeeded", "failed", "cancelled"})

M = TypeVar("M", bound="Model")
T = TypeVar("T")


class Model:
    """Base of the answer models: decoding from the JSON the server sends."""

    #: The name of the schema in docs/openapi.json this model mirrors.
    __schema__: ClassVar[str] = ""

    @classmethod
    def from_json(cls: Type[M], data: Any) -> M:
        """Reads ``data`` (parsed JSON); unknown fields are ignored.

        Raises:
            DecodeError: a required field is missing or has the wrong shape.
        """
        return decode(cls, data)


def _hints(cls: type) -> Dict[str, Any]:
    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls, vars(module))


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        if value is None:
            if type(None) in args:
                return None
            raise DecodeError(f"{where}: null where a value is required")
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if isinstance(hint, type) and issubclass(hint, Model):
        return decode(hint, value, where)
    if origin in (list, List):
        if not isinstance(value, list):
            raise DecodeError(f"{where}: expected a list")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if hint is str:
        if not isinstance(value, str):
            raise DecodeError(f"{where}: expected a string")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(f"{where}: expected an integer")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise DecodeError(f"{where}: expected true or false")
        return value
    return value  # Any, dict: JSON as is


def decode(cls: Type[M], data: Any, where: str = "") -> M:
    """Reads ``data`` as a ``cls``; unknown fields are ignored.

    Args:
        cls: A model class.
        data: Parsed JSON.
        where: Where ``data`` sits in the answer, for error messages.

    Raises:
        DecodeError: ``data`` is not an object, or a required field is missing or ill-typed.
    """
    name = where or cls.__name__
    if not isinstance(data, dict):
        raise DecodeError(f"{name}: expected a JSON object")
    hints = _hints(cls)
    kwargs: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # every Model is a dataclass
        key = f.metadata.get("json", f.name)
        if key not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DecodeError(f"{name}: missing field `{key}`")
            continue
        kwargs[f.name] = _convert(hints[f.name], data[key], f"{name}.{key}")
    return cls(**kwargs)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the cursor of the next (``None`` on the last page).

    Attributes:
        items: This page's items.
        next_cursor: Pass it as ``cursor`` to read the next page.
    """

    items: List[T]
    next_cursor: Optional[str] = None


@dataclass(frozen=True)
class Problem(Model):
    """One problem the server found in a workflow, with its path (``tasks[0].url``)."""

    __schema__ = "Problem"
    path: str
    message: str


@dataclass(frozen=True)
class Workflow(Model):
    """A registered workflow, as ``GET /api/v1/workflows/{id}`` answers it."""

    __schema__ = "Workflow"
    id: str
    version: int
    spec: Dict[str, Any]
    paused: bool = False
    next_fire_at: Optional[str] = None
    last_tick_at: Optional[str] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    created_by: Optional[str] = None
    updated_by: Optional[str] = None
    versions: List[int] = field(default_factory=list)


@dataclass(frozen=True)
class StoredWorkflow(Model):
    """What registering a workflow answers: its id, the version stored and the spec."""

    __schema__ = "StoredWorkflow"
    id: str
    version: int
    created_at: str
    spec: Dict[str, Any]


@dataclass(frozen=True)
class WorkflowVersion(Model):
    """One kept version of a workflow."""

    __schema__ = "WorkflowVersion"
    id: str
    version: int
    active: bool
    created_at: str
    spec: Dict[str, Any]
    created_by: Optional[str] = None


@dataclass(frozen=True)
class Paused(Model):
    """A workflow's paused flag after a pause or a resume."""

    __schema__ = "Paused"
    id: str
    paused: bool


@dataclass(frozen=True)
class Attempt(Model):
    """One attempt of a task run (worker attempts also show worker, lease and progress)."""

    __schema__ = "Attempt"
    id: str
    n: int
    status: str
    node_id: Optional[int] = None
    worker_id: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    last_heartbeat_at: Optional[str] = None
    lease_expires_at: Optional[str] = None
    deadline: Optional[str] = None
    progress: Any = None
    error: Optional[str] = None


@dataclass(frozen=True)
class TaskRun(Model):
    """A task of an execution: its status, output and attempts."""

    __schema__ = "TaskRun"
    id: str
    status: str
    output: Any = None
    retry_at: Optional[str] = None
    attempts: List[Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class AuditEntry(Model):
    """Who cancelled or retried an execution, and when."""

    __schema__ = "AuditEntry"
    action: str
    by: Optional[str]
    at: str


@dataclass(frozen=True)
class StartEvent(Model):
    """The event an execution started from (``trigger`` event, webhook or workflow)."""

    __schema__ = "StartEvent"
    #: The event's name; for a chained execution ``workflow.<upstream>.<status>``.
    name: str
    #: The event's id; for a chained execution the upstream execution's id.
    id: str
    #: The payload, as templates see it (``{{ event.payload.FIELD }}``).
    payload: Any = None


@dataclass(frozen=True)
class Execution(Model):
    """One run of a workflow."""

    __schema__ = "Execution"
    id: str
    workflow_id: str
    status: str
    workflow_version: Optional[int] = None
    trigger: Optional[str] = None
    scheduled_at: Optional[str] = None
    created_at: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    params: Any = None
    created_by: Optional[str] = None
    audit: List[AuditEntry] = field(default_factory=list)
    owner_node_id: Optional[int] = None
    blocked_by: Optional[str] = None
    tasks: List[TaskRun] = field(default_factory=list)
    event: Optional[StartEvent] = None

    @property
    def finished(self) -> bool:
        """Whether the execution ended (succeeded, failed or cancelled)."""
        return self.status in TERMINAL_EXECUTION_STATUSES

    def task(self, task_id: str) -> Optional[TaskRun]:
        """The task run of ``task_id``, or ``None``."""
        return next((t for t in self.tasks if t.id == task_id), None)


@dataclass(frozen=True)
class EventOutcome(Model):
    """What an event did for one workflow it matched: the execution it started, or why none."""

    __schema__ = "EventOutcome"
    workflow_id: str
    execution_id: Optional[str] = None
    #: Why it started none: the workflow is paused, or its concurrency policy refused.
    skipped: Optional[str] = None


@dataclass(frozen=True)
class EventHook(Model):
    """The workflow and webhook a webhook event was sent to."""

    __schema__ = "EventHook"
    workflow_id: str
    name: str


@dataclass(frozen=True)
class Event(Model):
    """An event as the cluster remembers it, with the executions it started.

    The payload itself is not kept here (only its hash and size); it is on each execution the
    event started (:attr:`Execution.event`).
    """

    __schema__ = "Event"
    name: str
    id: str
    #: ``api``, ``webhook`` or ``workflow`` (a chained workflow's upstream ended).
    source: str
    received_at: str
    payload_sha256: str
    payload_bytes: int
    webhook: Optional[EventHook] = None
    upstream_execution_id: Optional[str] = None
    #: The token name of the sender (``None``: an open node, or a webhook).
    by: Optional[str] = None
    #: One per matching workflow, in workflow id order (at most 64).
    outcomes: List[EventOutcome] = field(default_factory=list)
    #: Matching workflows beyond those listed.
    more_outcomes: int = 0
    #: True when this answers a repeat of an id seen within the window: nothing new started.
    repeated: bool = False

    @property
    def execution_ids(self) -> List[str]:
        """The executions this event started (in :attr:`outcomes`)."""
        return [o.execution_id for o in self.outcomes if o.execution_id is not None]


@dataclass(frozen=True)
class Cancelled(Model):
    """An execution's status after a cancel."""

    __schema__ = "Cancelled"
    id: str
    status: str


@dataclass(frozen=True)
class Retried(Model):
    """How many tasks a retry reset."""

    __schema__ = "Retried"
    id: str
    tasks_reset: int


@dataclass(frozen=True)
class Backfilled(Model):
    """The executions a backfill created or found."""

    __schema__ = "Backfilled"
    execution_ids: List[str]
    created: int
    existing: int


@dataclass(frozen=True)
class AttemptFinished(Model):
    """What a completion (worker or callback) answers."""

    __schema__ = "AttemptFinished"
    attempt_id: str
    task_status: str
    execution_status: str


@dataclass(frozen=True)
class LeaseExtended(Model):
    """What a worker heartbeat answers."""

    __schema__ = "LeaseExtended"
    attempt_id: str
    lease_expires_at: Optional[str] = None


@dataclass(frozen=True)
class TaskAssignment(Model):
    """A task handed to a worker (a ``task`` line of the worker stream)."""

    __schema__ = "TaskAssignment"
    attempt_id: str
    attempt: int
    execution_id: str
    workflow_id: str
    task_id: str
    queue: str
    input: Any = None
    params: Any = None
    lease_expires_at: Optional[str] = None
    deadline: Optional[str] = None


@dataclass(frozen=True)
class Member(Model):
    """A member of the cluster."""

    __schema__ = "Member"
    id: int
    addr: str
    voter: bool


@dataclass(frozen=True)
class ReplicationMember(Model):
    """How far one member's log is behind the leader's."""

    __schema__ = "ReplicationMember"
    id: int
    matched_index: Optional[int] = None
    behind: Optional[int] = None


@dataclass(frozen=True)
class Replication(Model):
    """The leader's view of replication."""

    __schema__ = "Replication"
    leader_id: int
    last_log_index: int
    members: List[ReplicationMember] = field(default_factory=list)


@dataclass(frozen=True)
class EngineCounters(Model):
    """Counters of the node's engine."""

    __schema__ = "EngineCounters"
    actor_restarts: int = 0
    ticks_fired: int = 0
    tick_lateness_ms_total: int = 0
    worker_dispatches: int = 0
    worker_connections: int = 0


@dataclass(frozen=True)
class AuthState(Model):
    """Whether tokens are required, and the warning of a node that runs open."""

    __schema__ = "AuthState"
    enabled: bool
    peers_authenticated: bool = False
    warning: Optional[str] = None


@dataclass(frozen=True)
class Cluster(Model):
    """The cluster as the answering node sees it."""

    __schema__ = "Cluster"
    node_id: int
    leader_id: Optional[int] = None
    term: int = 0
    state: str = ""
    last_log_index: Optional[int] = None
    last_applied: Optional[int] = None
    snapshot_index: Optional[int] = None
    purged_index: Optional[int] = None
    log_entries_on_disk: int = 0
    members: List[Member] = field(default_factory=list)
    replication: Optional[Replication] = None
    replication_error: Optional[str] = None
    engine: Optional[EngineCounters] = None
    auth: Optional[AuthState] = None


@dataclass(frozen=True)
class WorkerInfo(Model):
    """A live worker, as ``GET /api/v1/workers`` lists it."""

    __schema__ = "Worker"
    id: str
    node_id: int
    queues: List[str]
    concurrency: int
    running: int = 0
    draining: bool = False
    connected_at: Optional[str] = None
    last_seen_at: Optional[str] = None


@dataclass(frozen=True)
class Queue(Model):
    """One queue: tasks waiting, workers and their capacity."""

    __schema__ = "Queue"
    queue: str
    waiting: int = 0
    oldest_waiting_since: Optional[str] = None
    oldest_waiting_ms: Optional[int] = None
    workers: int = 0
    capacity: int = 0
    running: int = 0
