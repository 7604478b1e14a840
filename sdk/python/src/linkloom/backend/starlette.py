"""Starlette and FastAPI integration: a dependency that verifies and reads the task request,
and a response for a :class:`~linkloom.backend.TaskAnswer`.

Imported only when used, so the core SDK needs no web framework (``pip install linkloom[fastapi]``).

Example (FastAPI)::

    verify = TaskDependency(Verifier({"default": secret}), public_base_url="https://backend.example")

    @app.post("/extract")
    async def extract(task: TaskRequest = Depends(verify)) -> Response:
        return answer_response(TaskAnswer.succeeded({"rows": 3}))
"""

# No `from __future__ import annotations` here: FastAPI reads `__call__`'s annotations at run
# time, and a callable instance gives it no globals to resolve strings in.
from typing import Optional

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import DecodeError
from ..signature import SignatureError
from . import TaskAnswer, TaskRequest, Verifier

__all__ = ["TaskDependency", "answer_response", "public_url"]


def public_url(request: Request, public_base_url: Optional[str]) -> str:
    """The URL the node called: ``public_base_url`` + the path and query, or the request's own
    URL when no public base is given (right only without a proxy that rewrites it).
    """
    if public_base_url is None:
        return str(request.url)
    query = request.url.query
    return public_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


class TaskDependency:
    """Verifies (with ``verifier``; ``None`` skips the check) and reads the task request.

    Refuses with 401 a request whose signature does not verify, and with 400 a body that is not
    a task request; the handler then never runs.

    Args:
        verifier: The keys accepted; ``None`` accepts unsigned requests (a cluster without a
            signing key).
        public_base_url: Your public base URL (``https://backend.example``), as the workflow's
            ``url`` reads, when a proxy in front rewrites the host.
    """

    def __init__(self, verifier: Optional[Verifier], public_base_url: Optional[str] = None) -> None:
        self.verifier = verifier
        self.public_base_url = public_base_url

    async def __call__(self, request: Request) -> TaskRequest:
        """The verified task request of ``request`` (FastAPI calls this as a dependency)."""
        body = await request.body()
        try:
            if self.verifier is None:
                return TaskRequest.parse(body)
            url = public_url(request, self.public_base_url)
            return TaskRequest.from_signed(self.verifier, request.method, url, request.headers, body)
        except SignatureError as e:
            raise HTTPException(401, detail=f"{e.reason}: {e.message}") from e
        except DecodeError as e:
            raise HTTPException(400, detail=e.message) from e


def answer_response(answer: TaskAnswer) -> Response:
    """The response for ``answer``: its status code, JSON body and content type."""
    return Response(answer.body_bytes(), status_code=answer.status_code, media_type=answer.content_type)
