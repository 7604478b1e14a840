"""The connection to a Link Loom cluster: :class:`AsyncClient` (asyncio) and :class:`Client`
(blocking), twins with the same methods.

Every node serves the whole API and forwards writes to the leader, so a client needs one live
node. It keeps the list of all of them, starts with the one that answered last and moves on when
one cannot be reached or has no leader (503). Every write carries a fresh ``Idempotency-Key``
reused on each resend, so a write whose connection broke is sent again safely, through any node.
The decisions are :class:`linkloom._failover.Failover`'s; this module only sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import (
    Any,
    AsyncIterator,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import urlsplit

import httpx

from . import _ops, errors
from ._failover import Fail, Failover, Resend, Succeed, default_max_attempts
from ._ops import FOLLOW_IDLE_TIMEOUT_S, Op, Request
from .errors import (
    Answer,
    ConnectError,
    DecodeError,
    InvalidError,
    LinkLoomError,
    Outcome,
    TransportFailure,
    UnavailableError,
)
from .models import (
    AttemptFinished,
    Cancelled,
    Cluster,
    Event,
    Execution,
    Page,
    Paused,
    Queue,
    Retried,
    StoredWorkflow,
    WorkerInfo,
    Workflow,
)
from .sse import LogFollow

__all__ = ["AsyncClient", "Client", "ClientSettings"]

logger = logging.getLogger("linkloom")

T = TypeVar("T")

#: Longest wait for one read of an answer, unless configured.
DEFAULT_TIMEOUT_S = 30.0
#: Longest a connection may take to open, unless configured; past it the next server is tried.
DEFAULT_CONNECT_TIMEOUT_S = 3.0
#: Most bytes read from one answer; a full page of executions is far smaller.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Most servers one client takes.
MAX_SERVERS = 64
#: Following logs: reconnects per follow at most.
MAX_FOLLOW_RESUMES = 10
#: Waiting for an execution: polls start this far apart and slow down to the maximum.
WAIT_POLL_FIRST_S = 0.1
WAIT_POLL_MAX_S = 1.0

Servers = Union[str, Sequence[str]]


def _normalize_servers(servers: Servers) -> List[str]:
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    out: List[str] = []
    for raw in items:
        url = raw.strip().rstrip("/")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InvalidError(f"server URL `{raw}` must start with http:// or https://")
        if not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
            raise InvalidError(f"server URL `{raw}` must be scheme://host[:port][/path], nothing more")
        if url not in out:
            out.append(url)
    if not out:
        raise InvalidError("no server URL given")
    if len(out) > MAX_SERVERS:
        raise InvalidError(f"{len(out)} servers given; at most {MAX_SERVERS} are allowed")
    return out


class ClientSettings:
    """The settings both clients share (and a worker copies).

    Args:
        servers: Base URLs of the cluster's nodes, as a list or a comma-separated string.
        token: API token sent as ``Authorization: Bearer``; ``None`` reads ``LOOM_TOKEN``.
        timeout: Longest wait for each read of an answer, in seconds.
        connect_timeout: Longest wait for a connection to open, in seconds.
        max_attempts: Sends per call at most (default ``max(3, 2 × servers)``).
        stale_reads: Reads answer from the node asked without checking with the leader.
    """

    def __init__(
        self,
        servers: Servers,
        *,
        token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_attempts: Optional[int] = None,
        stale_reads: bool = False,
    ) -> None:
        self.servers = _normalize_servers(servers)
        if token is None:
            token = os.environ.get("LOOM_TOKEN") or None
        if token is not None and (not token or any(ord(c) < 0x21 or ord(c) == 0x7F for c in token)):
            raise InvalidError("the token is empty or contains spaces or control characters")
        self.token = token
        if timeout <= 0 or connect_timeout <= 0:
            raise InvalidError("timeouts must be positive")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        if max_attempts is not None and max_attempts < 1:
            raise InvalidError("max_attempts must be at least 1")
        self.max_attempts = max_attempts or default_max_attempts(len(self.servers))
        self.stale_reads = stale_reads

    def __repr__(self) -> str:
        token = None if self.token is None else "<redacted>"
        return (
            f"ClientSettings(servers={self.servers!r}, token={token!r}, timeout={self.timeout!r}, "
            f"max_attempts={self.max_attempts!r})"
        )

    def httpx_timeout(self, request: Request) -> httpx.Timeout:
        """Per-phase timeouts; a streaming answer's reads are bounded by the request's own."""
        read = request.read_timeout_s if request.streaming else self.timeout
        return httpx.Timeout(self.timeout, connect=self.connect_timeout, read=read)


def _url_and_headers(
    settings: ClientSettings, base: str, request: Request
) -> Tuple[str, List[Tuple[str, str]], List[Tuple[str, str]]]:
    query = list(request.query)
    if request.read and settings.stale_reads:
        query.append(("consistency", "stale"))
    headers: List[Tuple[str, str]] = [("User-Agent", f"linkloom-python/{_version()}")]
    token = request.bearer if request.bearer is not None else settings.token
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    if request.accept:
        headers.append(("Accept", request.accept))
    if request.idempotency_key:
        headers.append(("Idempotency-Key", request.idempotency_key))
    if request.content_type:
        headers.append(("Content-Type", request.content_type))
    return base + request.path, query, headers


def _version() -> str:
    from . import __version__

    return __version__


def _failure(e: httpx.HTTPError) -> TransportFailure:
    """What a transport exception means for failover."""
    if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
        return TransportFailure("refused", str(e) or type(e).__name__)
    if isinstance(e, httpx.TimeoutException):
        return TransportFailure("timeout", str(e) or type(e).__name__)
    return TransportFailure("reset", str(e) or type(e).__name__)


class _Shared:
    """What the two clients share: settings and the memory of the server that answered last."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._current = 0

    @property
    def servers(self) -> List[str]:
        """Every server, normalized, in the order given."""
        return list(self.settings.servers)

    @property
    def current_server(self) -> str:
        """The server the next call tries first: the one that answered last."""
        return self.settings.servers[self._current]

    def _advance(self) -> None:
        """Makes the next server the first one tried (a worker leaving a node)."""
        self._current = (self._current + 1) % len(self.settings.servers)

    def _failover(self, request: Request) -> Failover:
        return Failover(
            self.settings.servers,
            self._current,
            self.settings.max_attempts,
            request.method,
            request.idempotency_key is not None,
        )

    def __repr__(self) -> str:
        token = None if self.settings.token is None else "<redacted>"
        return (
            f"{type(self).__name__}(servers={self.settings.servers!r}, "
            f"current={self.current_server!r}, token={token!r})"
        )


class AsyncClient(_Shared):
    """A client for one Link Loom cluster, for asyncio programs.

    Args:
        servers: Base URLs of the cluster's nodes, as a list or a comma-separated string.
        token: API token; ``None`` reads ``LOOM_TOKEN`` from the environment.
        timeout: Longest wait for each read of an answer, in seconds (default 30).
        connect_timeout: Longest wait for a connection to open, in seconds (default 3).
        max_attempts: Sends per call at most, every server counted (default ``max(3, 2 × servers)``).
        stale_reads: Reads answer from the node asked without checking with the leader.

    Example::

        async with linkloom.AsyncClient("http://127.0.0.1:8081,http://127.0.0.1:8082") as client:
            execution_id = await client.trigger("daily-report", {"region": "eu"})
            execution = await client.wait_for_execution(execution_id, timeout=60)
    """

    def __init__(
        self,
        servers: Servers,
        *,
        token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_attempts: Optional[int] = None,
        stale_reads: bool = False,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        super().__init__(
            ClientSettings(
                servers,
                token=token,
                timeout=timeout,
                connect_timeout=connect_timeout,
                max_attempts=max_attempts,
                stale_reads=stale_reads,
            )
        )
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)

    @classmethod
    def from_settings(
        cls, settings: ClientSettings, transport: Optional[httpx.AsyncBaseTransport] = None
    ) -> AsyncClient:
        """A client with ``settings`` (e.g. those of a :class:`Client`)."""
        client = cls.__new__(cls)
        _Shared.__init__(client, settings)
        client._http = httpx.AsyncClient(transport=transport, follow_redirects=False)
        return client

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- sending ----

    async def _send_once(self, base: str, request: Request) -> Tuple[Outcome, Optional[httpx.Response]]:
        url, query, headers = _url_and_headers(self.settings, base, request)
        try:
            built = self._http.build_request(
                request.method,
                url,
                params=tuple(query),
                headers=headers,
                content=request.body,
                timeout=self.settings.httpx_timeout(request),
            )
            response = await self._http.send(built, stream=True)
        except httpx.HTTPError as e:
            return _failure(e), None
        status = response.status_code
        if request.streaming and 200 <= status <= 299:
            return Answer(status), response
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_ANSWER_BYTES:
                    raise DecodeError(f"an answer larger than {MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as e:
            return _failure(e), None
        finally:
            await response.aclose()
        return Answer(status, bytes(body), response.headers.get("retry-after")), None

    async def _send(self, request: Request) -> Tuple[Answer, Optional[httpx.Response]]:
        failover = self._failover(request)
        while True:
            base = self.settings.servers[failover.server]
            outcome, response = await self._send_once(base, request)
            step = failover.after(outcome)
            if isinstance(step, Succeed):
                self._current = step.server
                assert isinstance(outcome, Answer)
                return outcome, response
            if isinstance(step, Fail):
                if step.answered:
                    self._current = failover.server
                raise step.error
            assert isinstance(step, Resend)
            logger.debug("%s %s%s: %s; sending again", request.method, base, request.path, outcome)
            if step.pause_s > 0:
                await asyncio.sleep(step.pause_s)

    async def _call(self, request: Request) -> bytes:
        answer, _ = await self._send(request)
        return answer.body

    async def _run(self, op: Op[T]) -> T:
        return op.decode(await self._call(op.request))

    async def _open(self, request: Request) -> httpx.Response:
        """Sends a streaming request; answers the open 2xx response."""
        _, response = await self._send(request)
        assert response is not None
        return response

    # ---- workflows ----

    async def put_workflow(self, spec: Any) -> StoredWorkflow:
        """Registers a workflow (a mapping, or a :class:`~linkloom.WorkflowBuilder`); the same id
        again stores a new version.
        """
        return await self._run(_ops.put_workflow(spec))

    async def put_workflow_yaml(self, text: str) -> StoredWorkflow:
        """Registers a workflow written in YAML, as the CLI would."""
        return await self._run(_ops.put_workflow_yaml(text))

    async def get_workflow(self, workflow_id: str) -> Workflow:
        """One workflow, with its active spec."""
        return await self._run(_ops.get_workflow(workflow_id))

    async def list_workflows(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Workflow]:
        """One page of workflows, in id order."""
        return await self._run(_ops.list_workflows(limit, cursor))

    async def delete_workflow(self, workflow_id: str) -> None:
        """Deletes a workflow; its unfinished executions are cancelled."""
        await self._run(_ops.delete_workflow(workflow_id))

    async def pause_workflow(self, workflow_id: str) -> Paused:
        """Stops firing a workflow's scheduled ticks."""
        return await self._run(_ops.pause_workflow(workflow_id, True))

    async def resume_workflow(self, workflow_id: str) -> Paused:
        """Fires a paused workflow's scheduled ticks again."""
        return await self._run(_ops.pause_workflow(workflow_id, False))

    # ---- executions ----

    async def trigger(
        self,
        workflow_id: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> str:
        """Starts an execution; answers its id.

        Args:
            workflow_id: The workflow to run.
            params: Overrides of the workflow's default params.
            idempotency_key: Your own key for this trigger (the same key from a restarted
                program still starts one execution); a fresh one by default.
        """
        return await self._run(_ops.trigger(workflow_id, params, idempotency_key))

    async def send_event(self, name: str, payload: Any = None, *, event_id: Optional[str] = None) -> Event:
        """Sends an event; every workflow whose ``event`` trigger matches starts one execution.

        Args:
            name: The event's name, as ``event:`` triggers name it (``order.created``).
            payload: Any JSON; filters and templates (``{{ event.payload.FIELD }}``) read it.
            event_id: Makes the send idempotent: the same id again within the event window
                (24 h) starts nothing and answers the first outcome with ``repeated`` set. Give
                your own (an order id, a message id) so a restarted program does not send the
                event twice; by default one is drawn for this call and kept across its resends.

        Raises:
            InvalidError: a bad name or id (code ``invalid_event``), or an id already used for
                an event with another name or payload (code ``event_id_reused``).
        """
        return await self._run(_ops.send_event(name, event_id, payload))

    async def list_events(
        self, *, name: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Event]:
        """One page of the events the cluster remembers, newest first, with what each started."""
        return await self._run(_ops.list_events(name, limit, cursor))

    async def get_execution(self, execution_id: str) -> Execution:
        """One execution, with its tasks and their attempts."""
        return await self._run(_ops.get_execution(execution_id))

    async def list_executions(
        self,
        *,
        workflow: Optional[str] = None,
        status: Optional[str] = None,
        trigger: Optional[str] = None,
        limit: Optional[int] = None,
        newest_first: bool = False,
        cursor: Optional[str] = None,
    ) -> Page[Execution]:
        """One page of executions, filtered; ``newest_first`` orders by creation, newest first."""
        return await self._run(_ops.list_executions(workflow, status, trigger, limit, newest_first, cursor))

    async def wait_for_execution(self, execution_id: str, timeout: float = 60.0) -> Execution:
        """Polls an execution until it ends; answers it.

        Raises:
            TimeoutError: it had not ended after ``timeout`` seconds (or the cluster stayed
                unreachable, which raises the last such error instead).
        """
        deadline = time.monotonic() + timeout
        pause = WAIT_POLL_FIRST_S
        last: Optional[LinkLoomError] = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                execution = await asyncio.wait_for(self.get_execution(execution_id), remaining)
            except asyncio.TimeoutError:
                break
            except (ConnectError, UnavailableError, errors.TimeoutError) as e:
                last = e
            else:
                if execution.finished:
                    return execution
                last = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, WAIT_POLL_MAX_S)
        raise last or errors.TimeoutError(f"execution `{execution_id}`: not finished within {timeout} s")

    async def cancel_execution(self, execution_id: str) -> Cancelled:
        """Cancels an unfinished execution (409 ``execution_finished`` if it ended)."""
        return await self._run(_ops.cancel_execution(execution_id))

    async def retry_execution(self, execution_id: str) -> Retried:
        """Re-runs the failed, cancelled and skipped tasks of a failed or cancelled execution."""
        return await self._run(_ops.retry_execution(execution_id))

    async def logs(self, execution_id: str, task: Optional[str] = None) -> str:
        """An execution's log so far (one task's with ``task``)."""
        return await self._run(_ops.logs(execution_id, task))

    async def follow_logs(self, execution_id: str, task: Optional[str] = None) -> AsyncIterator[str]:
        """The log as it grows, piece by piece, until the task (or the execution) ends.

        A broken stream resumes on the next server without repeating text. Use as
        ``async for text in client.follow_logs(id): ...``.
        """
        request = _ops.follow_logs(execution_id, task)
        follow = LogFollow()
        resumes = 0
        while not follow.done:
            response = await self._open(request)
            server = self._current
            broken: Optional[str] = None
            try:
                chunks = response.aiter_bytes()
                while not follow.done:
                    try:
                        chunk = await asyncio.wait_for(chunks.__anext__(), FOLLOW_IDLE_TIMEOUT_S)
                    except StopAsyncIteration:
                        broken = "the stream ended before the task did"
                        break
                    except (asyncio.TimeoutError, httpx.TimeoutException):
                        broken = f"nothing received for {FOLLOW_IDLE_TIMEOUT_S} s"
                        break
                    except httpx.HTTPError as e:
                        broken = str(e) or type(e).__name__
                        break
                    for text in follow.feed(chunk):
                        yield text
            finally:
                await response.aclose()
            if broken is None:
                return
            resumes += 1
            if resumes > MAX_FOLLOW_RESUMES:
                raise DecodeError(f"the log stream broke {resumes} times (last: {broken})")
            logger.debug("log stream broken (%s); resuming on the next server", broken)
            if self._current == server:
                self._advance()
            follow.reconnected()

    # ---- cluster ----

    async def cluster(self) -> Cluster:
        """The cluster as the answering node sees it."""
        return await self._run(_ops.cluster())

    async def workers(self) -> List[WorkerInfo]:
        """Live workers, on any node."""
        return await self._run(_ops.workers())

    async def queues(self) -> List[Queue]:
        """Per queue: tasks waiting, workers, capacity."""
        return await self._run(_ops.queues())

    async def request_json(self, method: str, path: str, body: Any = None) -> Any:
        """Any API call, with the same failover (for endpoints not wrapped yet); answers JSON."""
        return await self._run(_ops.request_json(method, path, body))

    # ---- HTTP-task callbacks ----

    async def complete_callback(self, callback_url: str, token: str, answer: Any) -> AttemptFinished:
        """Completes an attempt a backend accepted with 202 (see :mod:`linkloom.backend`).

        Tries the callback URL's node first, then this client's servers; authenticates with the
        attempt's own ``token``.
        """
        op = _callback_op(callback_url, token, answer)
        base, _ = _ops.callback_base_and_attempt(callback_url)
        direct = AsyncClient.from_settings(_direct_settings(self.settings, base))
        try:
            return await direct._run(op)
        except (ConnectError, UnavailableError):
            return await self._run(op)
        finally:
            await direct.aclose()

    async def heartbeat_callback(self, callback_url: str, token: str) -> None:
        """Tells the cluster a backend still works on an accepted attempt.

        Raises:
            StaleAttemptError: the attempt is no longer current: stop working on it.
        """
        _, attempt_id = _ops.callback_base_and_attempt(callback_url)
        await self._run(_ops.callback_heartbeat(attempt_id, token))


def _callback_op(callback_url: str, token: str, answer: Any) -> Op[AttemptFinished]:
    _, attempt_id = _ops.callback_base_and_attempt(callback_url)
    if getattr(answer, "is_accepted", False):
        raise InvalidError("a callback completes an attempt: `accepted` is not a completion")
    body_of = getattr(answer, "body", None)
    body = body_of() if callable(body_of) else answer
    return _ops.complete_callback(attempt_id, token, _ops.encode_json(body))


def _direct_settings(settings: ClientSettings, base: str) -> ClientSettings:
    return ClientSettings(
        [base],
        token=settings.token,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        max_attempts=1,
    )


class Client(_Shared):
    """The blocking twin of :class:`AsyncClient`: the same methods, the same failover.

    Args:
        servers: Base URLs of the cluster's nodes, as a list or a comma-separated string.
        token: API token; ``None`` reads ``LOOM_TOKEN`` from the environment.
        timeout: Longest wait for each read of an answer, in seconds (default 30).
        connect_timeout: Longest wait for a connection to open, in seconds (default 3).
        max_attempts: Sends per call at most, every server counted (default ``max(3, 2 × servers)``).
        stale_reads: Reads answer from the node asked without checking with the leader.

    Example::

        with linkloom.Client(["http://127.0.0.1:8081"]) as client:
            print(client.get_execution(client.trigger("nightly")).status)
    """

    def __init__(
        self,
        servers: Servers,
        *,
        token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_attempts: Optional[int] = None,
        stale_reads: bool = False,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        super().__init__(
            ClientSettings(
                servers,
                token=token,
                timeout=timeout,
                connect_timeout=connect_timeout,
                max_attempts=max_attempts,
                stale_reads=stale_reads,
            )
        )
        self._http = httpx.Client(transport=transport, follow_redirects=False)

    @classmethod
    def from_settings(
        cls, settings: ClientSettings, transport: Optional[httpx.BaseTransport] = None
    ) -> Client:
        """A client with ``settings`` (e.g. those of an :class:`AsyncClient`)."""
        client = cls.__new__(cls)
        _Shared.__init__(client, settings)
        client._http = httpx.Client(transport=transport, follow_redirects=False)
        return client

    def close(self) -> None:
        """Closes the pooled connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sending ----

    def _send_once(self, base: str, request: Request) -> Tuple[Outcome, Optional[httpx.Response]]:
        url, query, headers = _url_and_headers(self.settings, base, request)
        try:
            built = self._http.build_request(
                request.method,
                url,
                params=tuple(query),
                headers=headers,
                content=request.body,
                timeout=self.settings.httpx_timeout(request),
            )
            response = self._http.send(built, stream=True)
        except httpx.HTTPError as e:
            return _failure(e), None
        status = response.status_code
        if request.streaming and 200 <= status <= 299:
            return Answer(status), response
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_ANSWER_BYTES:
                    raise DecodeError(f"an answer larger than {MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as e:
            return _failure(e), None
        finally:
            response.close()
        return Answer(status, bytes(body), response.headers.get("retry-after")), None

    def _send(self, request: Request) -> Tuple[Answer, Optional[httpx.Response]]:
        failover = self._failover(request)
        while True:
            base = self.settings.servers[failover.server]
            outcome, response = self._send_once(base, request)
            step = failover.after(outcome)
            if isinstance(step, Succeed):
                self._current = step.server
                assert isinstance(outcome, Answer)
                return outcome, response
            if isinstance(step, Fail):
                if step.answered:
                    self._current = failover.server
                raise step.error
            assert isinstance(step, Resend)
            logger.debug("%s %s%s: %s; sending again", request.method, base, request.path, outcome)
            if step.pause_s > 0:
                time.sleep(step.pause_s)

    def _call(self, request: Request) -> bytes:
        answer, _ = self._send(request)
        return answer.body

    def _run(self, op: Op[T]) -> T:
        return op.decode(self._call(op.request))

    def _open(self, request: Request) -> httpx.Response:
        _, response = self._send(request)
        assert response is not None
        return response

    # ---- workflows ----

    def put_workflow(self, spec: Any) -> StoredWorkflow:
        """Registers a workflow (a mapping, or a :class:`~linkloom.WorkflowBuilder`); the same id
        again stores a new version.
        """
        return self._run(_ops.put_workflow(spec))

    def put_workflow_yaml(self, text: str) -> StoredWorkflow:
        """Registers a workflow written in YAML, as the CLI would."""
        return self._run(_ops.put_workflow_yaml(text))

    def get_workflow(self, workflow_id: str) -> Workflow:
        """One workflow, with its active spec."""
        return self._run(_ops.get_workflow(workflow_id))

    def list_workflows(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[Workflow]:
        """One page of workflows, in id order."""
        return self._run(_ops.list_workflows(limit, cursor))

    def delete_workflow(self, workflow_id: str) -> None:
        """Deletes a workflow; its unfinished executions are cancelled."""
        self._run(_ops.delete_workflow(workflow_id))

    def pause_workflow(self, workflow_id: str) -> Paused:
        """Stops firing a workflow's scheduled ticks."""
        return self._run(_ops.pause_workflow(workflow_id, True))

    def resume_workflow(self, workflow_id: str) -> Paused:
        """Fires a paused workflow's scheduled ticks again."""
        return self._run(_ops.pause_workflow(workflow_id, False))

    # ---- executions ----

    def trigger(
        self,
        workflow_id: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> str:
        """Starts an execution; answers its id (see :meth:`AsyncClient.trigger`)."""
        return self._run(_ops.trigger(workflow_id, params, idempotency_key))

    def send_event(self, name: str, payload: Any = None, *, event_id: Optional[str] = None) -> Event:
        """Sends an event; answers what it started (see :meth:`AsyncClient.send_event`)."""
        return self._run(_ops.send_event(name, event_id, payload))

    def list_events(
        self, *, name: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Event]:
        """One page of the events the cluster remembers, newest first, with what each started."""
        return self._run(_ops.list_events(name, limit, cursor))

    def get_execution(self, execution_id: str) -> Execution:
        """One execution, with its tasks and their attempts."""
        return self._run(_ops.get_execution(execution_id))

    def list_executions(
        self,
        *,
        workflow: Optional[str] = None,
        status: Optional[str] = None,
        trigger: Optional[str] = None,
        limit: Optional[int] = None,
        newest_first: bool = False,
        cursor: Optional[str] = None,
    ) -> Page[Execution]:
        """One page of executions, filtered; ``newest_first`` orders by creation, newest first."""
        return self._run(_ops.list_executions(workflow, status, trigger, limit, newest_first, cursor))

    def wait_for_execution(self, execution_id: str, timeout: float = 60.0) -> Execution:
        """Polls an execution until it ends; answers it (see :meth:`AsyncClient.wait_for_execution`)."""
        deadline = time.monotonic() + timeout
        pause = WAIT_POLL_FIRST_S
        last: Optional[LinkLoomError] = None
        while time.monotonic() < deadline:
            try:
                execution = self.get_execution(execution_id)
            except (ConnectError, UnavailableError, errors.TimeoutError) as e:
                last = e
            else:
                if execution.finished:
                    return execution
                last = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, WAIT_POLL_MAX_S)
        raise last or errors.TimeoutError(f"execution `{execution_id}`: not finished within {timeout} s")

    def cancel_execution(self, execution_id: str) -> Cancelled:
        """Cancels an unfinished execution (409 ``execution_finished`` if it ended)."""
        return self._run(_ops.cancel_execution(execution_id))

    def retry_execution(self, execution_id: str) -> Retried:
        """Re-runs the failed, cancelled and skipped tasks of a failed or cancelled execution."""
        return self._run(_ops.retry_execution(execution_id))

    def logs(self, execution_id: str, task: Optional[str] = None) -> str:
        """An execution's log so far (one task's with ``task``)."""
        return self._run(_ops.logs(execution_id, task))

    def follow_logs(self, execution_id: str, task: Optional[str] = None) -> Iterator[str]:
        """The log as it grows, until the task (or the execution) ends
        (see :meth:`AsyncClient.follow_logs`); the idle limit is the client's read timeout.
        """
        request = _ops.follow_logs(execution_id, task)
        follow = LogFollow()
        resumes = 0
        while not follow.done:
            response = self._open(request)
            server = self._current
            broken: Optional[str] = "the stream ended before the task did"
            try:
                for chunk in response.iter_bytes():
                    yield from follow.feed(chunk)
                    if follow.done:
                        broken = None
                        break
            except httpx.HTTPError as e:
                broken = str(e) or type(e).__name__
            finally:
                response.close()
            if broken is None:
                return
            resumes += 1
            if resumes > MAX_FOLLOW_RESUMES:
                raise DecodeError(f"the log stream broke {resumes} times (last: {broken})")
            logger.debug("log stream broken (%s); resuming on the next server", broken)
            if self._current == server:
                self._advance()
            follow.reconnected()

    # ---- cluster ----

    def cluster(self) -> Cluster:
        """The cluster as the answering node sees it."""
        return self._run(_ops.cluster())

    def workers(self) -> List[WorkerInfo]:
        """Live workers, on any node."""
        return self._run(_ops.workers())

    def queues(self) -> List[Queue]:
        """Per queue: tasks waiting, workers, capacity."""
        return self._run(_ops.queues())

    def request_json(self, method: str, path: str, body: Any = None) -> Any:
        """Any API call, with the same failover (for endpoints not wrapped yet); answers JSON."""
        return self._run(_ops.request_json(method, path, body))

    # ---- HTTP-task callbacks ----

    def complete_callback(self, callback_url: str, token: str, answer: Any) -> AttemptFinished:
        """Completes an attempt a backend accepted with 202 (see :meth:`AsyncClient.complete_callback`)."""
        op = _callback_op(callback_url, token, answer)
        base, _ = _ops.callback_base_and_attempt(callback_url)
        with Client.from_settings(_direct_settings(self.settings, base)) as direct:
            try:
                return direct._run(op)
            except (ConnectError, UnavailableError):
                return self._run(op)

    def heartbeat_callback(self, callback_url: str, token: str) -> None:
        """Tells the cluster a backend still works on an accepted attempt.

        Raises:
            StaleAttemptError: the attempt is no longer current: stop working on it.
        """
        _, attempt_id = _ops.callback_base_and_attempt(callback_url)
        self._run(_ops.callback_heartbeat(attempt_id, token))
