"""A demo worker: answers each task with its input as output.

    python -m linkloom.examples.worker --server URL[,URL...] --queue demo \\
        [--id ID] [--concurrency N] [--token T]

It sleeps first for ``{"sleep_ms": N}`` (a cancellation ends the sleep), fails for
``{"fail": true}``, and prints one JSON line per finished task. Ctrl-C or SIGTERM drains it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any, List, Optional

import linkloom


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m linkloom.examples.worker")
    parser.add_argument("--server", required=True, help="URL[,URL...] of the cluster's nodes")
    parser.add_argument("--queue", required=True, help="queue[,queue...] to serve")
    parser.add_argument("--id", help="worker id (default: <hostname>-<pid>)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--token", help="API token (default: $LOOM_TOKEN)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    worker = linkloom.Worker(
        linkloom.AsyncClient(args.server, token=args.token), id=args.id, concurrency=args.concurrency
    )

    async def echo(task: linkloom.TaskContext) -> Any:
        data = task.input if isinstance(task.input, dict) else {}
        sleep_ms = data.get("sleep_ms")
        if isinstance(sleep_ms, int) and sleep_ms > 0:
            try:
                await asyncio.wait_for(task.wait_cancelled(), sleep_ms / 1000)
                return None  # cancelled: nothing is reported
            except asyncio.TimeoutError:
                pass
        outcome = "failed" if data.get("fail") is True else "succeeded"
        line = {"attempt_id": task.attempt_id, "execution_id": task.execution_id, "task_id": task.task_id}
        print(json.dumps({**line, "outcome": outcome}), flush=True)
        if outcome == "failed":
            raise linkloom.TaskFailed("asked to fail")
        return task.input

    for queue in args.queue.split(","):
        worker.handle(queue.strip(), echo)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
