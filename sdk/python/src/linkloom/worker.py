"""Workers: run ``type: worker`` tasks inside your own program, pulled from the cluster.

A :class:`Worker` opens one connection to a node and receives the tasks the cluster leases to it
on that connection (docs/workers.md). It runs each with the handler registered for the task's
queue (or for that queue and task id), heartbeats running attempts so their leases stay alive,
and reports each result, sending it again through other nodes until the lease would have ended.
If its node goes away it connects to the next one and says which attempts it still runs.

Delivery is at-least-once across attempts: make handlers idempotent, or use
``execution_id`` + ``task_id`` as an idempotency key.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import signal
import socket
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
)

import httpx

from . import _ops
from ._ops import Request, segment
from .client import AsyncClient, Client
from .errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    LinkLoomError,
    NotFoundError,
    UnauthorizedError,
)
from .models import TaskAssignment
from .stream import (
    DEFAULT_MAX_LINE_BYTES,
    AlreadyRunning,
    Cancel,
    Ignore,
    Reconnect,
    Run,
    StreamDecoder,
    Welcome,
)

__all__ = ["Handler", "TaskContext", "TaskFailed", "Worker"]

logger = logging.getLogger("linkloom")

#: Pauses between reconnects grow from the first to the maximum.
RECONNECT_PAUSE_FIRST_S = 0.1
RECONNECT_PAUSE_MAX_S = 2.0
#: A stream silent for this many heartbeat intervals is a dead or cut-off node.
SILENT_INTERVALS = 3
#: Timing used until the first welcome says otherwise.
DEFAULT_HEARTBEAT_S = 1.0
DEFAULT_LEASE_S = 10.0
#: Log text sent with one heartbeat or completion at most (the API's per-call limit).
MAX_LOG_BYTES_PER_CALL = 64 * 1024
#: Log text kept waiting for the next heartbeat at most; the oldest is dropped past it.
MAX_PENDING_LOG_BYTES = 1024 * 1024
#: Largest progress value sent (the API's limit); a larger one is dropped with a warning.
MAX_PROGRESS_BYTES = 4 * 1024
#: Most queues one worker serves, and the longest worker id (the server's rules).
MAX_QUEUES = 64
MAX_WORKER_ID_CHARS = 128
MAX_CONCURRENCY = 1024
#: How often a draining worker checks whether its attempts ended.
DRAIN_POLL_S = 0.02
#: Attempts remembered as delivered on the current connection at most (oldest forgotten first).
MAX_REMEMBERED_DELIVERIES = 100_000
#: After a shutdown released them, handlers get this long to notice before they are abandoned.
ABANDON_AFTER_S = 1.0

_WORKER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_QUEUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

Handler = Callable[["TaskContext"], Any]
H = TypeVar("H", bound=Handler)


class TaskFailed(Exception):
    """Raise from a handler to fail the attempt with ``message``.

    Args:
        message: Recorded as the attempt's error.
        retryable: ``False`` fails the task at once, whatever its retry policy.
    """

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class TaskContext:
    """What a handler gets: the task, a way to log and report progress, and cancellation.

    A cancelled attempt (the execution was cancelled, the task timed out, the lease was lost, or
    the worker shuts down past its grace) reports nothing: return as soon as you notice.
    """

    def __init__(self, task: TaskAssignment) -> None:
        self._task = task
        self._lock = threading.Lock()
        self._logs: List[str] = []
        self._log_bytes = 0
        self._progress: Any = None
        self._has_progress = False
        self._cancelled = threading.Event()
        self._cancelled_async = asyncio.Event()

    def __repr__(self) -> str:
        return f"TaskContext(attempt_id={self.attempt_id!r}, task_id={self.task_id!r})"

    @property
    def assignment(self) -> TaskAssignment:
        """The task as the node sent it."""
        return self._task

    @property
    def input(self) -> Any:
        """The task's input, templates rendered."""
        return self._task.input

    @property
    def params(self) -> Any:
        """The execution's params."""
        return self._task.params

    @property
    def execution_id(self) -> str:
        """The execution this attempt belongs to."""
        return self._task.execution_id

    @property
    def workflow_id(self) -> str:
        """The workflow of the execution."""
        return self._task.workflow_id

    @property
    def task_id(self) -> str:
        """The task's id in the workflow."""
        return self._task.task_id

    @property
    def queue(self) -> str:
        """The queue the task came from."""
        return self._task.queue

    @property
    def attempt(self) -> int:
        """The attempt number: 1 for the first."""
        return self._task.attempt

    @property
    def attempt_id(self) -> str:
        """The attempt's id (what heartbeats and the completion name)."""
        return self._task.attempt_id

    @property
    def deadline(self) -> Optional[str]:
        """RFC 3339: when the attempt times out, if the task has a timeout."""
        return self._task.deadline

    def log(self, text: str) -> None:
        """Appends a line to the attempt's log (sent with the next heartbeat or the result)."""
        line = text if text.endswith("\n") else text + "\n"
        with self._lock:
            self._logs.append(line)
            self._log_bytes += len(line.encode())
            while self._log_bytes > MAX_PENDING_LOG_BYTES and len(self._logs) > 1:
                dropped = self._logs.pop(0)
                self._log_bytes -= len(dropped.encode())

    def progress(self, value: Any) -> None:
        """Reports progress (any JSON), shown with the attempt after the next heartbeat."""
        with self._lock:
            self._progress = value
            self._has_progress = True

    @property
    def cancelled(self) -> bool:
        """Whether the attempt was cancelled."""
        return self._cancelled.is_set()

    def is_cancelled(self) -> bool:
        """Whether the attempt was cancelled (safe from any thread)."""
        return self._cancelled.is_set()

    async def wait_cancelled(self) -> None:
        """Returns when the attempt is cancelled; race it against long work."""
        await self._cancelled_async.wait()

    def wait_cancelled_sync(self, timeout: Optional[float] = None) -> bool:
        """Blocks (a plain ``def`` handler's thread) until cancelled or ``timeout`` seconds;
        answers whether the attempt was cancelled.
        """
        return self._cancelled.wait(timeout)

    def _cancel(self) -> None:
        """Cancels the attempt; called on the worker's event loop."""
        self._cancelled.set()
        self._cancelled_async.set()

    def _take_pending(self, max_log_bytes: int = MAX_LOG_BYTES_PER_CALL) -> Tuple[str, Any, bool]:
        """Takes up to ``max_log_bytes`` of pending log text, and the pending progress."""
        with self._lock:
            taken: List[str] = []
            size = 0
            while self._logs:
                n = len(self._logs[0].encode())
                if taken and size + n > max_log_bytes:
                    break
                line = self._logs.pop(0)
                if n > max_log_bytes:
                    line = line.encode()[: max_log_bytes - 1].decode("utf-8", "ignore") + "\n"
                taken.append(line)
                size += n
                if size >= max_log_bytes:
                    break
            self._log_bytes = sum(len(x.encode()) for x in self._logs)
            progress, has = self._progress, self._has_progress
            self._progress, self._has_progress = None, False
        return "".join(taken), progress, has

    def _restore(self, logs: str, progress: Any, has_progress: bool) -> None:
        """Puts back what a heartbeat that did not get through carried."""
        with self._lock:
            if logs:
                self._logs.insert(0, logs)
                self._log_bytes += len(logs.encode())
            if has_progress and not self._has_progress:
                self._progress, self._has_progress = progress, True


@dataclass
class _Running:
    context: TaskContext
    job: Optional[asyncio.Task[None]] = None


@dataclass(frozen=True)
class _StreamEnd:
    shutdown: bool
    why: str
    welcomed: bool
    grace_deadline: Optional[float] = None


def _default_worker_id() -> str:
    host = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname()) or "worker"
    return f"{host[:100]}-{os.getpid()}"


class Worker:
    """A worker process's connection to the cluster.

    Args:
        client: The client whose servers and token the worker uses (a :class:`Client`'s settings
            are copied into an asyncio client of the worker's own).
        id: The worker's id, unique per process (default ``<hostname>-<pid>``).
        concurrency: How many tasks run at once (default 4); plain ``def`` handlers run in a
            thread pool of this size.
        shutdown_grace: Seconds a shutdown waits for running tasks before giving them back.
        max_line_bytes: The longest line of the event stream accepted (default 4 MiB).
        on_welcome: Called with each :class:`~linkloom.stream.Welcome` (a new connection).

    Example::

        worker = linkloom.Worker(linkloom.AsyncClient("http://127.0.0.1:8080"), id="images-1")

        @worker.task("images")
        async def resize(task: linkloom.TaskContext) -> dict:
            return {"width": task.input["width"] // 2}

        worker.run()
    """

    def __init__(
        self,
        client: Union[AsyncClient, Client],
        id: Optional[str] = None,  # noqa: A002 - the domain's word
        concurrency: int = 4,
        shutdown_grace: float = 30.0,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        on_welcome: Optional[Callable[[Welcome], None]] = None,
    ) -> None:
        self._given = client
        self._id = id if id is not None else _default_worker_id()
        if not _WORKER_ID.match(self._id) or len(self._id) > MAX_WORKER_ID_CHARS:
            raise InvalidError(
                f"worker id `{self._id}` must be 1-{MAX_WORKER_ID_CHARS} characters of letters, "
                "digits, `-`, `_`, `.`, `:` or `@`"
            )
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise InvalidError(f"concurrency {concurrency} is out of range 1-{MAX_CONCURRENCY}")
        if shutdown_grace < 0:
            raise InvalidError("shutdown_grace must not be negative")
        if max_line_bytes < 1:
            raise InvalidError("max_line_bytes must be at least 1")
        self._concurrency = concurrency
        self._grace_s = float(shutdown_grace)
        self._max_line_bytes = max_line_bytes
        self._on_welcome = on_welcome
        self._handlers: Dict[str, Handler] = {}
        self._task_handlers: Dict[Tuple[str, str], Handler] = {}
        self._running: Dict[str, _Running] = {}
        self._jobs: Set[asyncio.Task[None]] = set()
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._heartbeat_s = DEFAULT_HEARTBEAT_S
        self._lease_s = DEFAULT_LEASE_S
        self._session: Optional[str] = None
        self._client: Optional[AsyncClient] = None
        self._pool: Optional[ThreadPoolExecutor] = None

    def __repr__(self) -> str:
        return f"Worker(id={self._id!r}, queues={self.queues!r}, concurrency={self._concurrency})"

    @property
    def id(self) -> str:
        """The worker's id."""
        return self._id

    @property
    def queues(self) -> List[str]:
        """The queues served: every queue a handler is registered for."""
        return sorted(set(self._handlers) | {q for q, _ in self._task_handlers})

    def task(self, queue: str, task_id: Optional[str] = None) -> Callable[[H], H]:
        """Registers the decorated function as the handler of ``queue`` (or only of its task
        ``task_id``). It may be ``async def`` or plain ``def``; it returns the output (a dict,
        ``None`` for ``{}``) or raises :class:`TaskFailed`.

        Example::

            @worker.task("etl", task_id="load")
            def load(task: linkloom.TaskContext) -> dict:
                return {"loaded": True}
        """

        def register(handler: H) -> H:
            self.handle(queue, handler, task_id=task_id)
            return handler

        return register

    def handle(self, queue: str, handler: Handler, *, task_id: Optional[str] = None) -> None:
        """Registers ``handler`` for ``queue`` (or only for its task ``task_id``)."""
        if not _QUEUE.match(queue):
            raise InvalidError(
                f"`{queue}` is not a valid queue name: 1-63 lowercase letters, digits, `-`, `_`, "
                "starting with a letter or digit"
            )
        if queue not in self.queues and len(self.queues) >= MAX_QUEUES:
            raise InvalidError(f"a worker serves at most {MAX_QUEUES} queues")
        if task_id is None:
            self._handlers[queue] = handler
        else:
            self._task_handlers[(queue, task_id)] = handler

    # ---- running ----

    def run(self) -> None:
        """Runs until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            installed: List[signal.Signals] = []
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, stop.set)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                    pass
            try:
                await self.run_until(stop)
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)

        asyncio.run(main())

    async def run_until(self, stop: Union[asyncio.Event, Awaitable[Any]]) -> None:
        """Runs until ``stop`` is set (an :class:`asyncio.Event`) or completes (an awaitable),
        then shuts down gracefully: drain (the cluster hands over nothing new), keep serving
        cancellations and heartbeats up to the grace, give back what still runs, close.

        Connection failures are retried for ever; only a refusal retrying cannot fix (an
        invalid worker, a token that may not serve the queues) raises.

        Raises:
            InvalidError: no handler registered, or the node refused the worker's declaration.
            UnauthorizedError, ForbiddenError: the token may not connect this worker.
        """
        if not self.queues:
            raise InvalidError("a worker must serve at least one queue: register a handler")
        waiter: Awaitable[Any] = stop.wait() if isinstance(stop, asyncio.Event) else stop
        stop_future = asyncio.ensure_future(waiter)
        if isinstance(self._given, AsyncClient):
            client, owned = self._given, False
        else:
            client, owned = AsyncClient.from_settings(self._given.settings), True
        self._client = client
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix=f"linkloom-{self._id}")
        try:
            await self._connect_loop(stop_future)
        finally:
            stop_future.cancel()
            self._pool.shutdown(wait=False)
            if owned:
                await client.aclose()

    async def _connect_loop(self, stop: asyncio.Future[Any]) -> None:
        assert self._client is not None
        client = self._client
        pause = RECONNECT_PAUSE_FIRST_S
        while True:
            if stop.done():
                await self._shut_down(None)
                return
            hello = {
                "id": self._id,
                "queues": self.queues,
                "concurrency": self._concurrency,
                "running": list(self._running),
            }
            request = replace(Request.new("POST", "/api/v1/workers/connect", json_body=hello), streaming=True)
            opening = asyncio.ensure_future(client._open(request))
            await asyncio.wait({opening, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not opening.done():
                opening.cancel()
                await self._shut_down(None)
                return
            try:
                response = opening.result()
            except (InvalidError, UnauthorizedError, ForbiddenError, NotFoundError) as e:
                logger.error("worker %s: the cluster refused the connection: %s", self._id, e)
                raise
            except LinkLoomError as e:
                logger.warning("worker %s: cannot connect, retrying in %.1f s: %s", self._id, pause, e)
                if await self._pause_or_stop(pause, stop):
                    await self._shut_down(None)
                    return
                pause = min(pause * 2, RECONNECT_PAUSE_MAX_S)
                continue
            end = await self._serve(response, stop)
            if end.shutdown:
                await self._shut_down(end.grace_deadline)
                return
            logger.warning("worker %s: connection lost (%s); reconnecting", self._id, end.why)
            if end.welcomed:
                pause = RECONNECT_PAUSE_FIRST_S
            client._advance()  # another node first: this one may be down or cut off
            if await self._pause_or_stop(pause, stop):
                await self._shut_down(None)
                return
            pause = min(pause * 2, RECONNECT_PAUSE_MAX_S)

    @staticmethod
    async def _pause_or_stop(pause_s: float, stop: asyncio.Future[Any]) -> bool:
        """Waits ``pause_s``; answers whether the stop came meanwhile."""
        await asyncio.wait({stop}, timeout=pause_s)
        return stop.done()

    async def _serve(self, response: httpx.Response, stop: asyncio.Future[Any]) -> _StreamEnd:
        """Reads one connection's events until it ends."""
        loop = asyncio.get_running_loop()
        # An attempt is delivered once per connection: one that ran and ended on this connection
        # and comes again is a duplicate, not new work.
        self._delivered.clear()
        decoder = StreamDecoder(
            lambda attempt_id: attempt_id in self._running or attempt_id in self._delivered,
            self._max_line_bytes,
        )
        chunks = response.aiter_bytes()
        reading: Optional[asyncio.Future[bytes]] = None
        last_data = loop.time()
        draining_until: Optional[float] = None
        welcomed = False
        self._session = None
        try:
            while True:
                now = loop.time()
                if draining_until is not None and (not self._running or now >= draining_until):
                    return _StreamEnd(True, "drained", welcomed, draining_until)
                if reading is None:
                    reading = asyncio.ensure_future(chunks.__anext__())
                silence = SILENT_INTERVALS * self._heartbeat_s
                waiters: Set[asyncio.Future[Any]] = {reading}
                if draining_until is None:
                    waiters.add(stop)
                    timeout = max(0.0, last_data + silence - now)
                else:
                    timeout = DRAIN_POLL_S
                done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                now = loop.time()
                if stop in done and draining_until is None:
                    await self._drain()
                    draining_until = loop.time() + self._grace_s
                    continue
                if reading not in done:
                    if draining_until is None and now - last_data >= silence:
                        return _StreamEnd(False, f"no event for {silence:.2f} s", welcomed)
                    continue
                finished, reading = reading, None
                try:
                    chunk = finished.result()
                except StopAsyncIteration:
                    actions = decoder.eof()
                except (httpx.HTTPError, OSError) as e:
                    actions = [Reconnect(f"the stream broke: {e}")]
                else:
                    last_data = now
                    actions = decoder.feed(chunk)
                for action in actions:
                    if isinstance(action, Reconnect):
                        if draining_until is not None:
                            return _StreamEnd(True, action.why, welcomed, draining_until)
                        return _StreamEnd(False, action.why, welcomed)
                    if isinstance(action, Welcome):
                        welcomed = True
                        self._welcome(action)
                    else:
                        self._act(action)
        finally:
            if reading is not None:
                reading.cancel()
            await response.aclose()

    def _welcome(self, welcome: Welcome) -> None:
        self._session = welcome.session
        self._heartbeat_s = welcome.heartbeat_interval_ms / 1000
        self._lease_s = max(welcome.lease_ms / 1000, 2 * self._heartbeat_s)
        logger.info("worker %s: connected to node %s", self._id, welcome.node_id)
        if self._on_welcome is not None:
            self._on_welcome(welcome)

    def _act(self, action: Union[Run, AlreadyRunning, Cancel, Ignore]) -> None:
        if isinstance(action, Run):
            self._start(action.task)
        elif isinstance(action, Cancel):
            running = self._running.pop(action.attempt_id, None)
            if running is not None:
                logger.info(
                    "worker %s: attempt %s cancelled by the cluster: %s",
                    self._id,
                    action.attempt_id,
                    action.reason,
                )
                running.context._cancel()
        elif isinstance(action, AlreadyRunning):
            logger.debug("worker %s: attempt %s runs already", self._id, action.attempt_id)
        else:
            logger.debug("worker %s: skipping a line (%s)", self._id, action.why)

    # ---- attempts ----

    def _start(self, task: TaskAssignment) -> None:
        self._delivered[task.attempt_id] = None
        while len(self._delivered) > MAX_REMEMBERED_DELIVERIES:
            self._delivered.popitem(last=False)
        context = TaskContext(task)
        running = _Running(context)
        self._running[task.attempt_id] = running
        job = asyncio.ensure_future(self._attempt(running))
        running.job = job
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _handler_for(self, task: TaskAssignment) -> Optional[Handler]:
        return self._task_handlers.get((task.queue, task.task_id)) or self._handlers.get(task.queue)

    async def _invoke(self, handler: Handler, context: TaskContext) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(context)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, handler, context)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _attempt(self, running: _Running) -> None:
        context = running.context
        task = context.assignment
        try:
            handler = self._handler_for(task)
            if handler is None:
                message = (
                    f"worker `{self._id}` has no handler for task `{task.task_id}` of queue `{task.queue}`"
                )
                await self._complete(context, {"status": "failed", "error": message, "retryable": False})
                return
            work = asyncio.ensure_future(self._invoke(handler, context))
            cancelled = asyncio.ensure_future(context.wait_cancelled())
            try:
                while True:
                    await asyncio.wait(
                        {work, cancelled}, timeout=self._heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                    )
                    if work.done() or context.cancelled:
                        break
                    if not await self._heartbeat(context):
                        context._cancel()  # the attempt is no longer ours: stop, report nothing
                        self._running.pop(task.attempt_id, None)
                        break
            finally:
                cancelled.cancel()
            if context.cancelled or work.cancelled():
                await self._abandon(work)
                return
            await self._complete(context, _answer(work))
        finally:
            if self._running.get(task.attempt_id) is running:
                del self._running[task.attempt_id]

    @staticmethod
    async def _abandon(work: asyncio.Future[Any]) -> None:
        """A cancelled attempt's handler: given a moment to return, then left behind."""
        done, _ = await asyncio.wait({work}, timeout=ABANDON_AFTER_S)
        if work in done:
            if not work.cancelled():
                work.exception()  # retrieved: a cancelled handler's failure is nobody's news
        else:
            work.cancel()

    def _attempt_path(self, attempt_id: str, what: str) -> str:
        return f"/api/v1/workers/{segment(self._id)}/attempts/{segment(attempt_id)}/{what}"

    async def _heartbeat(self, context: TaskContext) -> bool:
        """Sends one heartbeat; ``False`` once the attempt is no longer this worker's."""
        assert self._client is not None
        logs, progress, has_progress = context._take_pending()
        body: Dict[str, Any] = {}
        if has_progress:
            try:
                size = len(_ops.encode_json(progress))
            except InvalidError:
                size = MAX_PROGRESS_BYTES + 1
            if size <= MAX_PROGRESS_BYTES:
                body["progress"] = progress
            else:
                logger.warning("worker %s: progress over %d bytes dropped", self._id, MAX_PROGRESS_BYTES)
        if logs:
            body["logs"] = logs
        request = Request.new("POST", self._attempt_path(context.attempt_id, "heartbeat"), json_body=body)
        try:
            await self._client._call(request)
        except (ConflictError, NotFoundError) as e:
            logger.warning("worker %s: lease of attempt %s lost: %s", self._id, context.attempt_id, e)
            return False
        except LinkLoomError as e:
            logger.debug("worker %s: heartbeat failed, working on: %s", self._id, e)
            context._restore(logs, body.get("progress"), "progress" in body)
        return True

    async def _complete(self, context: TaskContext, answer: Dict[str, Any]) -> None:
        logs, _, _ = context._take_pending()
        if logs:
            answer = {**answer, "logs": logs}
        await self._post_until_lease_ends(
            self._attempt_path(context.attempt_id, "complete"), answer, "completion"
        )

    async def _post_until_lease_ends(self, path: str, body: Dict[str, Any], what: str) -> None:
        """POSTs ``body`` under one idempotency key, through any node, until one lease length
        has passed; a 409 after a resend means the first try got through.
        """
        assert self._client is not None
        loop = asyncio.get_running_loop()
        request = Request.new("POST", path, json_body=body)
        deadline = loop.time() + self._lease_s
        pause = RECONNECT_PAUSE_FIRST_S
        resent = False
        while True:
            try:
                await self._client._call(request)
                return
            except LinkLoomError as e:
                status = e.status
                if status is not None and 400 <= status <= 499 and status != 429:
                    level = logging.DEBUG if resent and status == 409 else logging.WARNING
                    logger.log(level, "worker %s: %s refused: %s", self._id, what, e)
                    return
                if loop.time() >= deadline:
                    logger.warning(
                        "worker %s: %s not delivered; the lease will expire: %s", self._id, what, e
                    )
                    return
                logger.debug("worker %s: %s failed, sending again: %s", self._id, what, e)
            resent = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_PAUSE_MAX_S)
            self._client._advance()

    async def _drain(self) -> None:
        """Asks the cluster to hand this worker nothing new."""
        assert self._client is not None
        if self._session is None:
            return
        path = f"/api/v1/workers/{segment(self._id)}/drain"
        try:
            await self._client._call(Request.new("POST", path, json_body={"session": self._session}))
        except LinkLoomError as e:
            logger.debug("worker %s: drain failed: %s", self._id, e)

    async def _shut_down(self, grace_deadline: Optional[float]) -> None:
        """Waits out the grace for running attempts, then gives back what still runs."""
        loop = asyncio.get_running_loop()
        if grace_deadline is None:
            grace_deadline = loop.time() + self._grace_s
        while self._running and loop.time() < grace_deadline:  # noqa: ASYNC110 - bounded poll of a dict
            await asyncio.sleep(DRAIN_POLL_S)
        left = list(self._running.items())
        for _, running in left:
            running.context._cancel()
        self._running.clear()
        releases = [
            self._post_until_lease_ends(
                self._attempt_path(attempt_id, "release"), {"reason": "the worker shut down"}, "release"
            )
            for attempt_id, _ in left
        ]
        await asyncio.gather(*releases)
        jobs = list(self._jobs)
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=ABANDON_AFTER_S)
            for job in pending:
                job.cancel()
        logger.info("worker %s: stopped (%d attempts given back)", self._id, len(left))


def _answer(work: asyncio.Future[Any]) -> Dict[str, Any]:
    """The completion body for a handler's result."""
    error = work.exception()
    if error is None:
        output = work.result()
        if output is None:
            output = {}
        try:
            _ops.encode_json(output)
        except InvalidError as e:
            return {"status": "failed", "error": f"the handler's output is not JSON: {e}", "retryable": False}
        return {"status": "succeeded", "output": output}
    if isinstance(error, TaskFailed):
        return {"status": "failed", "error": error.message, "retryable": error.retryable}
    logger.debug("handler failed", exc_info=error)
    return {"status": "failed", "error": str(error) or type(error).__name__, "retryable": True}
