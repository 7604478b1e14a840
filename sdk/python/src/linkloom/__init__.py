"""Link Loom's Python SDK: a client for the cluster's API, workers that run ``type: worker``
tasks, and helpers for HTTP-task backends.

- :class:`AsyncClient` / :class:`Client`: register workflows, trigger and watch executions, with
  failover across the nodes you list.
- :class:`Worker`: serve queues with ``@worker.task("queue")`` handlers.
- :mod:`linkloom.backend`: verify signed task calls and answer them.
- :class:`WorkflowBuilder`: workflows in code, checked before they are sent.
"""

from __future__ import annotations

import logging

from .builder import Retry, TaskBuilder, WorkflowBuilder
from .client import AsyncClient, Client, ClientSettings
from .errors import (
    ConflictError,
    ConnectError,
    DecodeError,
    ForbiddenError,
    InvalidError,
    LinkLoomError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    StaleAttemptError,
    TimeoutError,
    TooLargeError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    classify,
)
from .models import (
    Attempt,
    AttemptFinished,
    Cancelled,
    Cluster,
    Event,
    EventOutcome,
    Execution,
    Page,
    Paused,
    Queue,
    Retried,
    StartEvent,
    StoredWorkflow,
    TaskAssignment,
    TaskRun,
    WorkerInfo,
    Workflow,
)
from .worker import TaskContext, TaskFailed, Worker

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Attempt",
    "AttemptFinished",
    "Cancelled",
    "Client",
    "ClientSettings",
    "Cluster",
    "ConflictError",
    "ConnectError",
    "DecodeError",
    "Event",
    "EventOutcome",
    "Execution",
    "ForbiddenError",
    "InvalidError",
    "LinkLoomError",
    "NotFoundError",
    "Page",
    "Paused",
    "Queue",
    "RateLimitedError",
    "Retried",
    "Retry",
    "ServerError",
    "StaleAttemptError",
    "StartEvent",
    "StoredWorkflow",
    "TaskAssignment",
    "TaskBuilder",
    "TaskContext",
    "TaskFailed",
    "TaskRun",
    "TimeoutError",
    "TooLargeError",
    "TransportError",
    "UnauthorizedError",
    "UnavailableError",
    "Worker",
    "WorkerInfo",
    "Workflow",
    "WorkflowBuilder",
    "__version__",
    "classify",
]

logging.getLogger("linkloom").addHandler(logging.NullHandler())
