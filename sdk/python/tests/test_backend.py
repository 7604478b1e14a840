"""HTTP-task backend helpers: signatures, requests, answers, callbacks, and the framework
integrations through the frameworks' own test clients."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Dict, Iterator, List, Tuple

import pytest

import linkloom
from linkloom.backend import (
    MissingSignature,
    SignatureMismatch,
    StaleSignature,
    TaskAnswer,
    TaskRequest,
    Verifier,
    complete_callback,
    complete_callback_async,
    heartbeat_callback,
    sign,
)

URL = "https://backend.example/extract"
BODY = json.dumps(
    {
        "execution_id": "e:1",
        "workflow_id": "e",
        "task_id": "extract",
        "attempt": 2,
        "input": {"rows": 3},
        "params": {},
        "callback_url": "http://127.0.0.1:1/api/v1/tasks/42/callback",
        "callback_token": "loomcb_secret",
        "deadline": None,
    }
).encode()


def signed_headers(secret: str = "s3cret", kid: str = "default", at: int = 0) -> Dict[str, str]:
    now = at or int(time.time())
    return {
        "X-Loom-Signature": sign(kid, secret, now, "POST", URL, "e:1/extract/2", BODY),
        "Idempotency-Key": "e:1/extract/2",
    }


def test_published_vectors_of_docs_signatures_md() -> None:
    header = sign(
        "default",
        "whsec_test",
        1798761600,
        "POST",
        "https://reports.internal:9000/api/tasks/extract",
        "daily-report:20270101T000000Z/extract/1",
        b'{"execution_id":"daily-report:20270101T000000Z","task_id":"extract","attempt":1}',
    )
    assert header.endswith("v1=5afabefdd1b5f56068d95784468e09d530e07360ca8280a45f0248059511921d")


def test_from_signed_verifies_then_reads() -> None:
    verifier = Verifier({"default": "s3cret"})
    request = TaskRequest.from_signed(verifier, "POST", URL, signed_headers(), BODY)
    assert (request.attempt, request.attempt_id, request.idempotency_key) == (2, "42", "e:1/extract/2")
    assert "loomcb_secret" not in repr(request)
    with pytest.raises(SignatureMismatch):
        TaskRequest.from_signed(verifier, "POST", URL + "?x=1", signed_headers(), BODY)
    with pytest.raises(MissingSignature):
        TaskRequest.from_signed(verifier, "POST", URL, {}, BODY)
    with pytest.raises(StaleSignature):
        TaskRequest.from_signed(verifier, "POST", URL, signed_headers(at=1000), BODY)
    rotating = Verifier({"default": ["old", "s3cret"]})
    assert TaskRequest.from_signed(rotating, "POST", URL, signed_headers(), BODY).task_id == "extract"
    assert "s3cret" not in repr(rotating)


def test_fastapi_dependency() -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient
    from starlette.responses import Response

    from linkloom.backend.fastapi import TaskDependency, answer_response

    app = FastAPI()
    verify = TaskDependency(Verifier({"default": "s3cret"}), public_base_url="https://backend.example")

    @app.post("/extract")
    async def extract(task: TaskRequest = Depends(verify)) -> Response:  # noqa: B008
        return answer_response(TaskAnswer.succeeded({"rows": task.input["rows"]}, logs="ok\n"))

    client = TestClient(app)
    answer = client.post("/extract", content=BODY, headers=signed_headers())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "succeeded", "output": {"rows": 3}, "logs": "ok\n"}
    assert answer.headers["content-type"] == "application/json"
    forged = client.post("/extract", content=BODY, headers=signed_headers(secret="wrong"))
    assert forged.status_code == 401 and "mismatch" in forged.text
    unsigned = client.post("/extract", content=BODY)
    assert unsigned.status_code == 401 and "missing" in unsigned.text


def test_flask_endpoint() -> None:
    from flask import Flask

    from linkloom.backend.flask import task_endpoint

    app = Flask(__name__)

    @app.post("/extract")
    @task_endpoint(Verifier({"default": "s3cret"}), public_base_url="https://backend.example")
    def extract(task: TaskRequest) -> TaskAnswer:
        if task.attempt > 5:
            return TaskAnswer.failed("too many", retryable=False)
        return TaskAnswer.accepted()

    client = app.test_client()
    answer = client.post("/extract", data=BODY, headers=signed_headers())
    assert answer.status_code == 202 and answer.get_json() == {"status": "accepted"}
    assert client.post("/extract", data=BODY, headers=signed_headers(secret="x")).status_code == 401
    garbage_headers = {
        "X-Loom-Signature": sign("default", "s3cret", int(time.time()), "POST", URL, "", b"nope"),
    }
    assert client.post("/extract", data=b"nope", headers=garbage_headers).status_code == 400


class _Node(BaseHTTPRequestHandler):
    seen: ClassVar[List[Tuple[str, str, Dict[str, Any]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.seen.append((self.path, self.headers.get("authorization", ""), body))
        attempt = self.path.split("/")[4]
        if self.headers.get("authorization") != f"Bearer cb-{attempt}" or attempt == "7":
            payload = {"error": {"code": "stale_attempt", "message": "not current", "details": None}}
            status = 409
        elif self.path.endswith("/heartbeat"):
            status, payload = 200, {"attempt_id": attempt}
        else:
            status, payload = (
                200,
                {"attempt_id": attempt, "task_status": "succeeded", "execution_status": "running"},
            )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Node.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_callbacks_complete_and_heartbeat(node: str) -> None:
    done = complete_callback(f"{node}/api/v1/tasks/42/callback", "cb-42", TaskAnswer.succeeded({"rows": 1}))
    assert (done.attempt_id, done.task_status) == ("42", "succeeded")
    path, auth, body = _Node.seen[-1]
    assert (path, auth, body) == (
        "/api/v1/tasks/42/callback",
        "Bearer cb-42",
        {"status": "succeeded", "output": {"rows": 1}},
    )
    heartbeat_callback(f"{node}/api/v1/tasks/42/callback", "cb-42")
    assert _Node.seen[-1][0] == "/api/v1/tasks/42/heartbeat"
    with pytest.raises(linkloom.StaleAttemptError):
        complete_callback(f"{node}/api/v1/tasks/7/callback", "cb-7", TaskAnswer.failed("x"))
    with pytest.raises(linkloom.InvalidError):
        complete_callback(f"{node}/api/v1/tasks/42/callback", "cb-42", TaskAnswer.accepted())
    with pytest.raises(linkloom.InvalidError):
        complete_callback("http://x/y", "t", TaskAnswer.failed("x"))


async def test_a_dead_callback_node_falls_back_to_the_clients_servers(node: str) -> None:
    async with linkloom.AsyncClient(node) as client:
        done = await complete_callback_async(
            "http://127.0.0.1:1/api/v1/tasks/43/callback", "cb-43", TaskAnswer.failed("boom"), client=client
        )
    assert done.attempt_id == "43"
    assert _Node.seen[-1][1] == "Bearer cb-43", "the attempt's token, not the client's"
