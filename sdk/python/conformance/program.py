"""The Python SDK's conformance program (sdk/conformance/README.md, section 3).

    program.py worker --server URL[,URL...] --queue Q[,Q...] --id ID --concurrency N --grace-ms MS [--token T]
    program.py client --server URL[,URL...] [--token T] CALL_JSON

``worker`` runs the conformance handler and prints one JSON event per line on stdout;
``client`` makes one call and prints exactly one line. Logs go to stderr. ``LOOM_TOKEN`` in the
environment works like ``--token``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any, Dict, List, Optional

import linkloom
from linkloom.errors import LinkLoomError
from linkloom.stream import Welcome

#: Pages of executions a `list` call reads at most (500 each).
MAX_LIST_PAGES = 20


def emit(event: Dict[str, Any]) -> None:
    """One JSON object on stdout, flushed at once."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run_worker(args: argparse.Namespace) -> int:
    client = linkloom.AsyncClient(args.server, token=args.token)
    ready = False

    def on_welcome(_: Welcome) -> None:
        nonlocal ready
        if not ready:
            ready = True
            emit({"event": "ready"})

    worker = linkloom.Worker(
        client,
        id=args.id,
        concurrency=args.concurrency,
        shutdown_grace=args.grace_ms / 1000,
        on_welcome=on_welcome,
    )
    running = 0

    async def handler(task: linkloom.TaskContext) -> Any:
        nonlocal running
        running += 1
        emit(
            {
                "event": "started",
                "attempt_id": task.attempt_id,
                "execution_id": task.execution_id,
                "task_id": task.task_id,
                "attempt": task.attempt,
                "running": running,
                "received_at_ms": int(time.time() * 1000),
            }
        )
        try:
            data = task.input if isinstance(task.input, dict) else {}
            if isinstance(data.get("log"), str):
                task.log(data["log"])
            if "progress" in data:
                task.progress(data["progress"])
            sleep_ms = data.get("sleep_ms")
            if isinstance(sleep_ms, int) and not isinstance(sleep_ms, bool) and sleep_ms > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task.wait_cancelled(), sleep_ms / 1000)
            if data.get("wait_for_cancel") is True:
                await task.wait_cancelled()
            if task.cancelled:
                emit({"event": "cancelled", "attempt_id": task.attempt_id})
                return None
            if data.get("fail") is True:
                emit({"event": "finished", "attempt_id": task.attempt_id, "outcome": "failed"})
                message = data.get("message")
                raise linkloom.TaskFailed(
                    message if isinstance(message, str) else "asked to fail",
                    retryable=data.get("retryable", True) is not False,
                )
            emit({"event": "finished", "attempt_id": task.attempt_id, "outcome": "succeeded"})
            return data
        finally:
            running -= 1

    for queue in args.queue.split(","):
        if queue.strip():
            worker.handle(queue.strip(), handler)
    worker.run()
    emit({"event": "stopped"})
    return 0


def _error(e: LinkLoomError) -> Dict[str, Any]:
    return {"error": {"kind": e.kind, "status": e.status, "code": e.code, "message": e.message}}


def call(client: linkloom.Client, op: Dict[str, Any]) -> Any:
    name = op.get("op")
    if name == "register":
        stored = client.put_workflow(op["spec"])
        return {"workflow_id": stored.id, "version": stored.version}
    if name == "trigger":
        return {"execution_id": client.trigger(op["workflow"], op.get("params"))}
    if name == "trigger_many":
        return {"execution_ids": [client.trigger(op["workflow"]) for _ in range(int(op["count"]))]}
    if name == "wait":
        execution = client.wait_for_execution(op["execution_id"], timeout=op["timeout_ms"] / 1000)
        tasks = {t.id: {"status": t.status, "output": t.output} for t in execution.tasks}
        return {"execution_id": execution.id, "status": execution.status, "tasks": tasks}
    if name == "list":
        ids: List[str] = []
        cursor: Optional[str] = None
        for _ in range(MAX_LIST_PAGES):
            page = client.list_executions(
                workflow=op["workflow"], newest_first=True, limit=500, cursor=cursor
            )
            ids.extend(e.id for e in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        return {"execution_ids": ids}
    if name == "logs":
        if op.get("follow"):
            return {"text": "".join(client.follow_logs(op["execution_id"], op.get("task")))}
        return {"text": client.logs(op["execution_id"], op.get("task"))}
    if name == "cancel":
        return {"status": client.cancel_execution(op["execution_id"]).status}
    if name == "retry":
        return {"tasks_reset": client.retry_execution(op["execution_id"]).tasks_reset}
    raise ValueError(f"unknown op {name!r}")


def run_client(args: argparse.Namespace) -> int:
    try:
        op = json.loads(args.call)
    except ValueError as e:
        print(f"CALL_JSON is not JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(op, dict):
        print("CALL_JSON must be an object", file=sys.stderr)
        return 2
    try:
        with linkloom.Client(args.server, token=args.token) as client:
            emit({"ok": call(client, op)})
    except LinkLoomError as e:
        emit(_error(e))
    except (KeyError, ValueError, TypeError) as e:
        print(f"bad call: {e!r}", file=sys.stderr)
        return 2
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="program.py")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--server", required=True)
    worker.add_argument("--queue", required=True)
    worker.add_argument("--id", required=True)
    worker.add_argument("--concurrency", type=int, required=True)
    worker.add_argument("--grace-ms", type=int, required=True)
    worker.add_argument("--token")
    client = sub.add_parser("client")
    client.add_argument("--server", required=True)
    client.add_argument("--token")
    client.add_argument("call")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "worker":
        return run_worker(args)
    return run_client(args)


if __name__ == "__main__":
    sys.exit(main())
