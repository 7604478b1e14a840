"""The worker against a small in-process node (an httpx transport): tasks, heartbeats, fencing,
drain and release. The byte-for-byte conversations are test_transcripts.py's job."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

import httpx
import pytest

import linkloom
from linkloom.stream import Welcome

WELCOME = {"type": "welcome", "session": "77", "node_id": 1, "heartbeat_interval_ms": 50, "lease_ms": 500}


def task_line(attempt_id: str, input: Any, task_id: str = "t", queue: str = "demo") -> Dict[str, Any]:
    return {
        "type": "task",
        "attempt_id": attempt_id,
        "attempt": 1,
        "execution_id": "wf:1",
        "workflow_id": "wf",
        "task_id": task_id,
        "queue": queue,
        "input": input,
        "params": {"p": 1},
        "lease_expires_at": None,
        "deadline": None,
    }


class Events(httpx.AsyncByteStream):
    """A connection's stream: the given lines, then pings until closed."""

    def __init__(self, lines: List[Dict[str, Any]]) -> None:
        self.lines = lines

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in self.lines:
            yield (json.dumps(line) + "\n").encode()
        while True:
            await asyncio.sleep(0.05)
            yield b'{"type":"ping"}\n'


Rule = Callable[[str, Dict[str, Any]], Optional[Tuple[int, Dict[str, Any]]]]


class FakeNode(httpx.AsyncBaseTransport):
    """Answers a worker: the connect stream, then every other POST by ``rule`` (else 200 {})."""

    def __init__(self, lines: List[Dict[str, Any]], rule: Optional[Rule] = None) -> None:
        self.lines = lines
        self.rule = rule
        self.requests: List[Tuple[str, str, Dict[str, Any], Dict[str, str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = await request.aread()
        body = json.loads(raw) if raw else {}
        self.requests.append((request.method, request.url.path, body, dict(request.headers)))
        if request.url.path.endswith("/workers/connect"):
            return httpx.Response(
                200, headers={"content-type": "application/x-ndjson"}, stream=Events(self.lines)
            )
        answer = self.rule(request.url.path, body) if self.rule else None
        status, payload = answer or (200, {})
        return httpx.Response(status, json=payload)

    def posts(self, suffix: str) -> List[Tuple[Dict[str, Any], Dict[str, str]]]:
        return [(b, h) for m, p, b, h in self.requests if m == "POST" and p.endswith(suffix)]


async def run_worker(worker: linkloom.Worker, until: Callable[[], bool], timeout_s: float = 5.0) -> None:
    stop = asyncio.Event()

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while not until() and loop.time() < end:
            await asyncio.sleep(0.01)
        stop.set()

    watcher = asyncio.ensure_future(watch())
    await asyncio.wait_for(worker.run_until(stop), timeout_s + 5)
    await watcher


async def test_a_task_succeeds_with_its_logs_and_progress() -> None:
    node = FakeNode([WELCOME, task_line("41", {"x": 1})])
    client = linkloom.AsyncClient("http://node.test", transport=node)
    welcomes: List[Welcome] = []
    worker = linkloom.Worker(client, id="w-1", concurrency=2, shutdown_grace=1, on_welcome=welcomes.append)

    @worker.task("demo")
    async def echo(task: linkloom.TaskContext) -> Dict[str, Any]:
        task.log("working")
        task.progress({"done": 1})
        await asyncio.sleep(0.12)  # long enough for a heartbeat to carry the progress
        assert (task.execution_id, task.task_id, task.attempt, task.params) == ("wf:1", "t", 1, {"p": 1})
        return dict(task.input)

    await run_worker(worker, lambda: bool(node.posts("/attempts/41/complete")))
    [(hello, _)] = node.posts("/workers/connect")
    assert hello == {"id": "w-1", "queues": ["demo"], "concurrency": 2, "running": []}
    assert welcomes and welcomes[0].session == "77"
    [(done, headers)] = node.posts("/attempts/41/complete")
    assert done["status"] == "succeeded" and done["output"] == {"x": 1}
    beats = node.posts("/attempts/41/heartbeat")
    assert beats, "a heartbeat while the handler ran"
    assert beats[0][0] == {"progress": {"done": 1}, "logs": "working\n"}
    assert len(headers["idempotency-key"]) == 32 and headers["content-type"] == "application/json"
    assert node.posts("/drain") and node.posts("/drain")[0][0] == {"session": "77"}
    assert not node.posts("/release")


async def test_sync_handlers_run_in_threads_and_fail_as_told() -> None:
    node = FakeNode([WELCOME, task_line("1", {"n": 1}), task_line("2", {"n": 2}, task_id="special")])
    worker = linkloom.Worker(linkloom.AsyncClient("http://node.test", transport=node), id="w-2")
    threads: List[str] = []

    @worker.task("demo")
    def plain(task: linkloom.TaskContext) -> None:
        threads.append(threading.current_thread().name)
        raise linkloom.TaskFailed("bad input", retryable=False)

    @worker.task("demo", task_id="special")
    def special(task: linkloom.TaskContext) -> Dict[str, Any]:
        raise RuntimeError("disk full")

    await run_worker(worker, lambda: len(node.posts("/complete")) == 2)
    [(first, _)] = node.posts("/attempts/1/complete")
    assert first == {"status": "failed", "error": "bad input", "retryable": False}
    [(second, _)] = node.posts("/attempts/2/complete")
    assert second == {"status": "failed", "error": "disk full", "retryable": True}
    assert threads and threads[0].startswith("linkloom-w-2")


async def test_a_stale_heartbeat_stops_the_handler_and_reports_nothing() -> None:
    def stale(path: str, body: Dict[str, Any]) -> Optional[Tuple[int, Dict[str, Any]]]:
        if path.endswith("/heartbeat"):
            return 409, {"error": {"code": "stale_attempt", "message": "not current", "details": None}}
        return None

    node = FakeNode([WELCOME, task_line("41", {})], stale)
    worker = linkloom.Worker(linkloom.AsyncClient("http://node.test", transport=node), id="w-3")
    seen = asyncio.Event()

    @worker.task("demo")
    async def forever(task: linkloom.TaskContext) -> None:
        await task.wait_cancelled()
        seen.set()

    await run_worker(worker, seen.is_set)
    assert seen.is_set()
    assert len(node.posts("/heartbeat")) == 1
    assert not node.posts("/complete") and not node.posts("/release")


async def test_shutdown_drains_then_releases_what_still_runs() -> None:
    node = FakeNode([WELCOME, task_line("41", {})])
    worker = linkloom.Worker(
        linkloom.AsyncClient("http://node.test", transport=node), id="w-4", shutdown_grace=0.2
    )
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @worker.task("demo")
    async def slow(task: linkloom.TaskContext) -> None:
        started.set()
        await task.wait_cancelled()
        cancelled.set()

    await run_worker(worker, started.is_set)
    assert [b for b, _ in node.posts("/drain")] == [{"session": "77"}]
    [(release, _)] = node.posts("/attempts/41/release")
    assert release == {"reason": "the worker shut down"}
    assert cancelled.is_set() and not node.posts("/complete")


async def test_a_cancel_event_reaches_the_handler() -> None:
    lines = [WELCOME, task_line("41", {}), {"type": "cancel", "attempt_id": "41", "reason": "cancelled"}]
    node = FakeNode(lines)
    worker = linkloom.Worker(linkloom.AsyncClient("http://node.test", transport=node), id="w-5")
    cancelled = asyncio.Event()

    @worker.task("demo")
    async def waits(task: linkloom.TaskContext) -> None:
        await task.wait_cancelled()
        assert task.is_cancelled() and task.cancelled
        cancelled.set()

    await run_worker(worker, cancelled.is_set)
    assert cancelled.is_set()
    assert not node.posts("/complete") and not node.posts("/release")


def test_worker_settings_are_checked() -> None:
    client = linkloom.Client("http://127.0.0.1:9")
    with pytest.raises(linkloom.InvalidError):
        linkloom.Worker(client, id="has space")
    with pytest.raises(linkloom.InvalidError):
        linkloom.Worker(client, concurrency=0)
    worker = linkloom.Worker(client, id="w")
    with pytest.raises(linkloom.InvalidError):
        worker.handle("Bad Queue", lambda task: None)

    async def run() -> None:
        await worker.run_until(asyncio.Event())

    with pytest.raises(linkloom.InvalidError, match="at least one queue"):
        asyncio.run(run())
    assert "w" in repr(worker)
