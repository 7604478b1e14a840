"""A FastAPI backend for ``type: http`` tasks: verifies the node's signature, then answers.

    LOOM_SIGNING_SECRET=... uvicorn linkloom.examples.fastapi_backend:app --port 9000

with a workflow task ``{type: http, url: "http://127.0.0.1:9000/extract"}``. Short work is
answered at once; ``{"slow": true}`` is accepted (202) and completed later through the callback.
"""

from __future__ import annotations

import asyncio
import os
from typing import Set

from fastapi import Depends, FastAPI
from starlette.responses import Response

from linkloom.backend import TaskAnswer, TaskRequest, Verifier, complete_callback_async
from linkloom.backend.fastapi import TaskDependency, answer_response

app = FastAPI()
verify = TaskDependency(
    Verifier({"default": os.environ.get("LOOM_SIGNING_SECRET", "")}),
    public_base_url=os.environ.get("PUBLIC_BASE_URL"),
)
_later: Set[asyncio.Task[None]] = set()


async def _finish_later(task: TaskRequest) -> None:
    await asyncio.sleep(1)
    if task.callback_url and task.callback_token:
        await complete_callback_async(
            task.callback_url, task.callback_token, TaskAnswer.succeeded({"late": True})
        )


@app.post("/extract")
async def extract(task: TaskRequest = Depends(verify)) -> Response:  # noqa: B008 - FastAPI's idiom
    data = task.input if isinstance(task.input, dict) else {}
    if data.get("slow"):
        job = asyncio.ensure_future(_finish_later(task))
        _later.add(job)
        job.add_done_callback(_later.discard)
        return answer_response(TaskAnswer.accepted())
    if "region" not in data:
        return answer_response(TaskAnswer.failed("no region in the input", retryable=False))
    return answer_response(TaskAnswer.succeeded({"region": data["region"], "rows": 3}, logs="read 3 rows\n"))
