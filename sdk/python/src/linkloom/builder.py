"""Typed workflows: :class:`WorkflowBuilder` and :class:`TaskBuilder` build the JSON document the
server validates (the ``WorkflowSpec`` schema of docs/openapi.json), and check locally what can
be checked without the server, so a mistake shows up before anything is sent, every problem
with its path in one error.

The server stays the judge (cron syntax, time zones, templates): a built spec can still be
refused with ``invalid_spec``. No I/O here.
"""

from __future__ import annotations

import copy
import datetime
import math
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .errors import InvalidError

__all__ = ["DurationLike", "Retry", "TaskBuilder", "WorkflowBuilder", "duration_text"]

#: The longest duration the server accepts: 30 days.
MAX_DURATION_MS = 30 * 24 * 3600 * 1000
#: Most tasks a builder takes (the server's ceiling may be lower: ``max_tasks_per_workflow``).
MAX_TASKS = 10_000  # the checks below are linear, so this only bounds memory

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUEUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_WHEN = ("all_success", "all_done", "any_failed")
_CONCURRENCY = ("allow", "forbid", "buffer_one", "replace")
_CATCHUP = ("none", "latest", "all")
_KIND_FIELDS = {
    "http": {"url", "method", "headers"},
    "shell": {"command", "env", "workdir"},
    "worker": {"queue"},
}

DurationLike = Union[datetime.timedelta, int, float, str]
"""A duration: a ``timedelta``, seconds (int or float), or the server's text (``"30s"``)."""


def duration_text(value: DurationLike) -> Union[str, int]:
    """A duration as the server reads it: a one-unit text when exact, else milliseconds.

    Raises:
        InvalidError: negative, over 30 days, or not a duration.
    """
    if isinstance(value, str):
        if not value.strip():
            raise InvalidError("a duration must not be empty")
        return value
    if isinstance(value, bool):
        raise InvalidError(f"{value!r} is not a duration")
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        raise InvalidError(f"{value!r} is not a duration")
    if math.isnan(seconds) or seconds < 0:
        raise InvalidError(f"{value!r} is not a duration of zero or more")
    ms = round(seconds * 1000)
    if ms > MAX_DURATION_MS:
        raise InvalidError(f"{value!r} is longer than the 30 day limit")
    for unit, size, digits in (("d", 86_400_000, 2), ("h", 3_600_000, 2), ("m", 60_000, 4), ("s", 1000, 6)):
        if ms and ms % size == 0 and len(str(ms // size)) <= digits:
            return f"{ms // size}{unit}"
    return ms


class Retry:
    """A retry policy: ``Retry(3, backoff=2, max_backoff=60, multiplier=2.0)``.

    Args:
        max_attempts: Attempts in all, the first included (at least 1).
        backoff: The delay before the second attempt.
        max_backoff: The longest delay.
        multiplier: How the delay grows from one attempt to the next (at least 1).
    """

    def __init__(
        self,
        max_attempts: Optional[int] = None,
        *,
        backoff: Optional[DurationLike] = None,
        max_backoff: Optional[DurationLike] = None,
        multiplier: Optional[float] = None,
    ) -> None:
        self.problems: List[str] = []
        self.fields: Dict[str, Any] = {}
        if max_attempts is not None:
            if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
                self.problems.append("max_attempts: must be an integer of at least 1")
            self.fields["max_attempts"] = max_attempts
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff)):
            if value is not None:
                try:
                    self.fields[name] = duration_text(value)
                except InvalidError as e:
                    self.problems.append(f"{name}: {e.message}")
        if multiplier is not None:
            if not isinstance(multiplier, (int, float)) or not math.isfinite(multiplier) or multiplier < 1:
                self.problems.append("multiplier: must be a number of at least 1")
            self.fields["multiplier"] = multiplier

    def to_json(self) -> Dict[str, Any]:
        """The policy as the spec's ``retry`` object."""
        return dict(self.fields)


class TaskBuilder:
    """One task; start with :meth:`http`, :meth:`shell`, :meth:`script` or :meth:`worker`."""

    def __init__(self, task_id: str, kind: str) -> None:
        self.fields: Dict[str, Any] = {"id": task_id, "type": kind}
        self.problems: List[str] = []

    @classmethod
    def http(cls, task_id: str, url: str, *, method: Optional[str] = None) -> TaskBuilder:
        """A task that calls a backend: ``POST url`` (or ``method``) with the task request."""
        task = cls(task_id, "http")
        task.fields["url"] = url
        if method is not None:
            task.fields["method"] = method.upper()
        return task

    @classmethod
    def shell(cls, task_id: str, argv: Sequence[str]) -> TaskBuilder:
        """A process run as is (no shell): ``argv[0]`` is the program."""
        task = cls(task_id, "shell")
        if isinstance(argv, str) or not argv:
            task.problems.append("command: an argv list needs at least one item (use script() for text)")
        task.fields["command"] = list(argv)
        return task

    @classmethod
    def script(cls, task_id: str, script: str) -> TaskBuilder:
        """A script run by ``sh -c``."""
        task = cls(task_id, "shell")
        task.fields["command"] = script
        return task

    @classmethod
    def worker(cls, task_id: str, queue: str) -> TaskBuilder:
        """A task run by a worker serving ``queue``."""
        task = cls(task_id, "worker")
        task.fields["queue"] = queue
        return task

    def description(self, text: str) -> TaskBuilder:
        """Says what the task does, for people."""
        self.fields["description"] = text
        return self

    def depends_on(self, *task_ids: str) -> TaskBuilder:
        """Runs after these tasks (per :meth:`when`)."""
        self.fields.setdefault("depends_on", []).extend(task_ids)
        return self

    def when(self, when: str) -> TaskBuilder:
        """``all_success`` (default), ``all_done`` or ``any_failed``."""
        if when not in _WHEN:
            self.problems.append(f"when: `{when}` is not one of {', '.join(_WHEN)}")
        self.fields["when"] = when
        return self

    def timeout(self, timeout: DurationLike) -> TaskBuilder:
        """Bounds each attempt."""
        return self._duration("timeout", timeout)

    def retry(self, retry: Retry) -> TaskBuilder:
        """The task's retry policy."""
        self.problems.extend(f"retry.{p}" for p in retry.problems)
        self.fields["retry"] = retry.to_json()
        return self

    def input(self, value: Any) -> TaskBuilder:
        """The task's input (JSON; templates such as ``{{ params.region }}`` are rendered)."""
        self.fields["input"] = copy.deepcopy(value)
        return self

    def header(self, name: str, value: str) -> TaskBuilder:
        """An extra request header of an ``http`` task."""
        self.fields.setdefault("headers", {})[name] = value
        return self

    def env(self, name: str, value: str) -> TaskBuilder:
        """An environment variable of a ``shell`` task."""
        self.fields.setdefault("env", {})[name] = value
        return self

    def workdir(self, path: str) -> TaskBuilder:
        """The working directory of a ``shell`` task."""
        self.fields["workdir"] = path
        return self

    def _duration(self, name: str, value: DurationLike) -> TaskBuilder:
        try:
            self.fields[name] = duration_text(value)
        except InvalidError as e:
            self.problems.append(f"{name}: {e.message}")
        return self

    def check(self) -> List[str]:
        """Problems found locally, each with its path inside the task."""
        problems = list(self.problems)
        task_id = self.fields["id"]
        if not isinstance(task_id, str) or not _ID.match(task_id):
            problems.append("id: must be 1 to 64 of A-Z a-z 0-9 _ -")
        kind = self.fields["type"]
        for other, names in _KIND_FIELDS.items():
            if other != kind:
                problems.extend(
                    f"{n}: not a field of a {kind} task" for n in sorted(names & set(self.fields))
                )
        required = {"http": "url", "shell": "command", "worker": "queue"}[kind]
        if not self.fields.get(required):
            problems.append(f"{required}: required for a task of type {kind}")
        queue = self.fields.get("queue")
        if kind == "worker" and isinstance(queue, str) and not _QUEUE.match(queue):
            problems.append(
                "queue: 1-63 lowercase letters, digits, `-`, `_`, starting with a letter or digit"
            )
        return problems

    def to_json(self) -> Dict[str, Any]:
        """The task as the spec's JSON."""
        return copy.deepcopy(self.fields)


class WorkflowBuilder:
    """A workflow, built in code.

    Example::

        spec = (
            WorkflowBuilder("daily-report")
            .schedule("0 6 * * *")
            .param("region", "eu")
            .task(TaskBuilder.http("extract", "https://reports.internal/extract"))
            .task(TaskBuilder.worker("load", "loaders").depends_on("extract").retry(Retry(3)))
        )
        client.put_workflow(spec)
    """

    def __init__(self, workflow_id: str) -> None:
        self.fields: Dict[str, Any] = {"id": workflow_id}
        self.tasks: List[TaskBuilder] = []
        self.problems: List[str] = []

    def description(self, text: str) -> WorkflowBuilder:
        """Says what the workflow does, for people."""
        self.fields["description"] = text
        return self

    def schedule(self, cron: str) -> WorkflowBuilder:
        """A crontab (5 fields, or 6 with seconds first): the workflow runs on each tick."""
        self.fields["schedule"] = cron
        return self

    def timezone(self, name: str) -> WorkflowBuilder:
        """The IANA time zone of the schedule (UTC by default)."""
        self.fields["timezone"] = name
        return self

    def concurrency(self, policy: str) -> WorkflowBuilder:
        """``allow`` (default), ``forbid``, ``buffer_one`` or ``replace``."""
        if policy not in _CONCURRENCY:
            self.problems.append(f"concurrency: `{policy}` is not one of {', '.join(_CONCURRENCY)}")
        self.fields["concurrency"] = policy
        return self

    def catchup(self, policy: str) -> WorkflowBuilder:
        """``none``, ``latest`` (default) or ``all``: which missed ticks run."""
        if policy not in _CATCHUP:
            self.problems.append(f"catchup: `{policy}` is not one of {', '.join(_CATCHUP)}")
        self.fields["catchup"] = policy
        return self

    def signing_key(self, name: str) -> WorkflowBuilder:
        """Signs this workflow's HTTP tasks with the nodes' key of this name."""
        self.fields["signing_key"] = name
        return self

    def param(self, name: str, default: Any) -> WorkflowBuilder:
        """A parameter and its default value."""
        self.fields.setdefault("params", {})[name] = copy.deepcopy(default)
        return self

    def params(self, params: Mapping[str, Any]) -> WorkflowBuilder:
        """Every parameter at once (replacing those set before)."""
        self.fields["params"] = copy.deepcopy(dict(params))
        return self

    def default_timeout(self, timeout: DurationLike) -> WorkflowBuilder:
        """The timeout of tasks that set none."""
        try:
            self.fields.setdefault("defaults", {})["timeout"] = duration_text(timeout)
        except InvalidError as e:
            self.problems.append(f"defaults.timeout: {e.message}")
        return self

    def default_retry(self, retry: Retry) -> WorkflowBuilder:
        """The retry policy of tasks that set none."""
        self.problems.extend(f"defaults.retry.{p}" for p in retry.problems)
        self.fields.setdefault("defaults", {})["retry"] = retry.to_json()
        return self

    def execution_timeout(self, timeout: DurationLike) -> WorkflowBuilder:
        """Bounds the whole execution, from its creation."""
        try:
            self.fields["execution_timeout"] = duration_text(timeout)
        except InvalidError as e:
            self.problems.append(f"execution_timeout: {e.message}")
        return self

    def task(self, task: TaskBuilder) -> WorkflowBuilder:
        """Adds a task."""
        self.tasks.append(task)
        return self

    def check(self) -> List[str]:
        """Every problem found locally, each with its path (``tasks[1].url: ...``)."""
        problems = list(self.problems)
        if not isinstance(self.fields["id"], str) or not _ID.match(self.fields["id"]):
            problems.append("id: must be 1 to 64 of A-Z a-z 0-9 _ -")
        if not self.tasks:
            problems.append("tasks: a workflow needs at least one task")
        if len(self.tasks) > MAX_TASKS:
            problems.append(f"tasks: more than {MAX_TASKS}")
        ids = [t.fields["id"] for t in self.tasks]
        for i, task in enumerate(self.tasks):
            problems.extend(f"tasks[{i}].{p}" for p in task.check())
            if ids.count(task.fields["id"]) > 1 and ids.index(task.fields["id"]) != i:
                problems.append(f"tasks[{i}].id: `{task.fields['id']}` is used by another task")
            for dep in task.fields.get("depends_on", []):
                if dep not in ids:
                    problems.append(f"tasks[{i}].depends_on: no task `{dep}`")
                elif dep == task.fields["id"]:
                    problems.append(f"tasks[{i}].depends_on: a task cannot depend on itself")
        graph: Dict[str, List[str]] = {}
        for t in self.tasks:
            graph.setdefault(t.fields["id"], []).extend(t.fields.get("depends_on", []))
        cycle = _cycle(graph)
        if cycle:
            problems.append(f"tasks: a dependency cycle among {', '.join(cycle)}")
        return problems

    def to_json(self) -> Dict[str, Any]:
        """The workflow as the JSON the server validates.

        Raises:
            InvalidError: every problem found locally, separated by ``; ``.
        """
        problems = self.check()
        if problems:
            raise InvalidError("; ".join(problems))
        spec = copy.deepcopy(self.fields)
        spec["tasks"] = [t.to_json() for t in self.tasks]
        return spec

    build = to_json


def _cycle(graph: Mapping[str, Iterable[str]]) -> List[str]:
    """Tasks on or behind a dependency cycle of ``graph`` (task → its dependencies), sorted;
    empty when there is none. Iterative (Kahn's algorithm), so any size is fine.
    """
    deps = {node: {d for d in graph[node] if d in graph and d != node} for node in graph}
    dependents: Dict[str, List[str]] = {node: [] for node in graph}
    for node, ds in deps.items():
        for d in ds:
            dependents[d].append(node)
    ready = [node for node, ds in deps.items() if not ds]
    while ready:
        node = ready.pop()
        for later in dependents[node]:
            deps[later].discard(node)
            if not deps[later]:
                ready.append(later)
        del deps[node]
    return sorted(deps)
