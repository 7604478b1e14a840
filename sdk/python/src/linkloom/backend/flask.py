"""Flask integration: read (and verify) the task request of the current request, and answer a
:class:`~linkloom.backend.TaskAnswer`.

Imported only when used, so the core SDK needs no web framework (``pip install linkloom[flask]``).

Example::

    verifier = Verifier({"default": secret})

    @app.post("/extract")
    @task_endpoint(verifier)
    def extract(task: TaskRequest) -> TaskAnswer:
        return TaskAnswer.succeeded({"rows": 3})
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

from flask import Response, abort, request

from ..errors import DecodeError
from ..signature import SignatureError
from . import TaskAnswer, TaskRequest, Verifier

__all__ = ["answer_response", "current_task", "task_endpoint"]


def current_task(verifier: Optional[Verifier], public_base_url: Optional[str] = None) -> TaskRequest:
    """The task request of the request being served; aborts with 401 (signature) or 400 (body).

    Args:
        verifier: The keys accepted; ``None`` accepts unsigned requests.
        public_base_url: Your public base URL, when a proxy in front rewrites the host.
    """
    body = request.get_data(cache=True)
    try:
        if verifier is None:
            return TaskRequest.parse(body)
        if public_base_url is None:
            url = request.url
        else:
            query = request.query_string.decode("latin-1")
            url = public_base_url.rstrip("/") + request.path + (f"?{query}" if query else "")
        return TaskRequest.from_signed(verifier, request.method, url, request.headers, body)
    except SignatureError as e:
        abort(401, description=f"{e.reason}: {e.message}")
    except DecodeError as e:
        abort(400, description=e.message)


def answer_response(answer: TaskAnswer) -> Response:
    """The response for ``answer``: its status code, JSON body and content type."""
    return Response(answer.body_bytes(), status=answer.status_code, content_type=answer.content_type)


def task_endpoint(
    verifier: Optional[Verifier], public_base_url: Optional[str] = None
) -> Callable[[Callable[[TaskRequest], TaskAnswer]], Callable[[], Response]]:
    """Decorates a view ``f(task) -> TaskAnswer``: verifies and reads the request, answers."""

    def wrap(view: Callable[[TaskRequest], TaskAnswer]) -> Callable[[], Response]:
        @functools.wraps(view)
        def endpoint() -> Response:
            return answer_response(view(current_task(verifier, public_base_url)))

        return endpoint

    return wrap
