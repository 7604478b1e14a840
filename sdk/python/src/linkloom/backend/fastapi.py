"""FastAPI integration: the same dependency and response as :mod:`linkloom.backend.starlette`
(FastAPI is built on Starlette). Use ``Depends(TaskDependency(verifier))``.
"""

from __future__ import annotations

from .starlette import TaskDependency, answer_response, public_url

__all__ = ["TaskDependency", "answer_response", "public_url"]
