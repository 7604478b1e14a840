"""Both clients' failover, retries, idempotency keys and typed errors, against scripted
transports (httpx.MockTransport) and a closed port."""

from __future__ import annotations

import inspect
import json
import socket
from typing import Callable, Dict, List, Optional, Tuple

import httpx
import pytest

import linkloom
from linkloom import errors
from linkloom._failover import Fail, Failover, Resend, Succeed

Seen = List[Tuple[str, str, str, Dict[str, str], bytes]]


def scripted(
    answers: Dict[str, List[httpx.Response]], seen: Seen
) -> Callable[[httpx.Request], httpx.Response]:
    """Answers per host, in order; a host with no answers left refuses the connection."""

    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        seen.append((host, request.method, request.url.path, dict(request.headers), request.content))
        queue = answers.get(host)
        if not queue:
            raise httpx.ConnectError("connection refused", request=request)
        answer = queue.pop(0)
        if answer.status_code == 599:  # the connection breaks after the request was sent
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return answer

    return handle


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": f"{code}!", "details": None}})


CLUSTER = {
    "node_id": 2,
    "leader_id": 1,
    "term": 3,
    "state": "Leader",
    "members": [],
    "log_entries_on_disk": 0,
}


def clients(
    answers: Dict[str, List[httpx.Response]], servers: str = "http://a,http://b", **kw: object
) -> Tuple[linkloom.Client, Seen]:
    seen: Seen = []
    client = linkloom.Client(servers, transport=httpx.MockTransport(scripted(answers, seen)), **kw)  # type: ignore[arg-type]
    return client, seen


def test_refused_moves_to_the_next_server_and_it_is_remembered() -> None:
    client, seen = clients({"b": [httpx.Response(200, json=CLUSTER), httpx.Response(200, json=CLUSTER)]})
    assert client.cluster().node_id == 2
    assert client.current_server == "http://b"
    client.cluster()
    assert [s[0] for s in seen] == ["a", "b", "b"], "the server that answered is tried first"


def test_every_server_refusing_is_a_connect_error_naming_them() -> None:
    client, _ = clients({})
    with pytest.raises(linkloom.ConnectError, match="http://a, http://b"):
        client.cluster()


def test_503_fails_over_with_the_same_key_and_answers_are_final() -> None:
    client, seen = clients(
        {"a": [error(503, "unavailable")], "b": [httpx.Response(202, json={"execution_id": "wf:1"})]}
    )
    assert client.trigger("wf", {"x": 1}) == "wf:1"
    keys = [s[3]["idempotency-key"] for s in seen]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 32
    assert json.loads(seen[0][4]) == {"params": {"x": 1}}
    assert seen[0][3]["content-type"] == "application/json"

    client, seen = clients({"a": [error(404, "not_found")], "b": [httpx.Response(200, json=CLUSTER)]})
    with pytest.raises(linkloom.NotFoundError) as raised:
        client.cluster()
    assert (raised.value.status, raised.value.code, raised.value.kind) == (404, "not_found", "not_found")
    assert len(seen) == 1, "an answer is the cluster's: not asked elsewhere"


def test_a_new_call_gets_a_new_key_and_a_given_key_is_kept() -> None:
    ok = [httpx.Response(202, json={"execution_id": "x"}) for _ in range(3)]
    client, seen = clients({"a": ok})
    client.trigger("wf")
    client.trigger("wf")
    client.trigger("wf", idempotency_key="order-42")
    keys = [s[3]["idempotency-key"] for s in seen]
    assert keys[0] != keys[1] and keys[2] == "order-42"
    assert "idempotency-key" not in clients({"a": [httpx.Response(200, json=CLUSTER)]})[0]._http.headers


def test_reads_carry_no_key() -> None:
    client, seen = clients({"a": [httpx.Response(200, json=CLUSTER)]})
    client.cluster()
    assert "idempotency-key" not in seen[0][3]


def test_a_reset_post_is_resent_with_its_key_elsewhere() -> None:
    drop = httpx.Response(599)
    client, seen = clients({"a": [drop], "b": [httpx.Response(200, json={"id": "e", "status": "cancelled"})]})
    assert client.cancel_execution("e").status == "cancelled"
    assert [s[0] for s in seen] == ["a", "b"]
    assert seen[0][3]["idempotency-key"] == seen[1][3]["idempotency-key"]


def test_rate_limited_waits_and_sends_again_to_the_same_server() -> None:
    client, seen = clients(
        {"a": [error(429, "rate_limited"), httpx.Response(200, json=CLUSTER)]}, servers="http://a"
    )
    assert client.cluster().node_id == 2
    assert [s[0] for s in seen] == ["a", "a"]
    always, _ = clients({"a": [error(429, "rate_limited")] * 5}, servers="http://a", max_attempts=2)
    with pytest.raises(linkloom.RateLimitedError):
        always.cluster()


def test_bounded_attempts_on_503() -> None:
    client, seen = clients({"a": [error(503, "unavailable")] * 9, "b": [error(503, "unavailable")] * 9})
    with pytest.raises(linkloom.UnavailableError):
        client.cluster()
    assert len(seen) == 4, "max(3, 2 × servers) sends"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "unauthenticated", linkloom.UnauthorizedError),
        (403, "forbidden", linkloom.ForbiddenError),
        (409, "stale_attempt", linkloom.StaleAttemptError),
        (409, "execution_finished", linkloom.ConflictError),
        (413, "too_large", linkloom.TooLargeError),
        (422, "invalid_spec", linkloom.InvalidError),
        (500, "internal", linkloom.ServerError),
    ],
)
def test_typed_errors(status: int, code: str, cls: type) -> None:
    client, seen = clients({"a": [error(status, code)]})
    with pytest.raises(cls) as raised:
        client.get_execution("e")
    assert raised.value.code == code and raised.value.status == status
    assert len(seen) == 1


def test_invalid_spec_problems_are_readable() -> None:
    body = {
        "error": {
            "code": "invalid_spec",
            "message": "tasks: required",
            "details": {"problems": [{"path": "tasks", "message": "required"}]},
        }
    }
    client, _ = clients({"a": [httpx.Response(422, json=body)]})
    with pytest.raises(linkloom.InvalidError) as raised:
        client.put_workflow({"id": "x", "tasks": []})
    assert raised.value.problems == [{"path": "tasks", "message": "required"}]


def test_a_closed_port_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        linkloom.Client(f"http://127.0.0.1:{port}", connect_timeout=1) as client,
        pytest.raises(linkloom.ConnectError),
    ):
        client.cluster()


def test_settings_are_checked_and_the_token_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    client = linkloom.Client(" http://a:1/ , https://b:2/loom/,,http://a:1", token="s3cret")
    assert client.servers == ["http://a:1", "https://b:2/loom"]
    assert "s3cret" not in repr(client) and "s3cret" not in repr(client.settings)
    for bad in ["", "a:1", "ftp://a", "http://a:1/?x=1", "http://"]:
        with pytest.raises(linkloom.InvalidError):
            linkloom.Client(bad)
    with pytest.raises(linkloom.InvalidError):
        linkloom.Client("http://a", max_attempts=0)
    with pytest.raises(linkloom.InvalidError):
        linkloom.Client(",".join(f"http://h{i}" for i in range(65)))
    monkeypatch.setenv("LOOM_TOKEN", "from-env")
    assert linkloom.Client("http://a").settings.token == "from-env"
    assert linkloom.Client("http://a", token="explicit").settings.token == "explicit"


def test_the_token_is_sent() -> None:
    seen: Seen = []
    transport = httpx.MockTransport(scripted({"a": [httpx.Response(200, json=CLUSTER)]}, seen))
    linkloom.Client("http://a", token="t0k", transport=transport).cluster()
    assert seen[0][3]["authorization"] == "Bearer t0k"


def test_list_executions_query_and_page() -> None:
    page = {
        "items": [{"id": "e1", "workflow_id": "wf", "status": "running", "future": 1}],
        "next_cursor": "c2",
    }
    client, seen = clients({"a": [httpx.Response(200, json=page)]})
    got = client.list_executions(workflow="wf", status="running", limit=10, newest_first=True, cursor="c1")
    assert got.next_cursor == "c2" and got.items[0].id == "e1" and got.items[0].status == "running"
    request = httpx.Request("GET", "http://x" + seen[0][2])
    assert request.url.path == "/api/v1/executions"


EVENT = {
    "name": "order.created",
    "id": "ord-7",
    "source": "api",
    "webhook": None,
    "upstream_execution_id": None,
    "received_at": "2026-12-01T10:00:00Z",
    "by": "shop",
    "payload_sha256": "ab" * 32,
    "payload_bytes": 12,
    "outcomes": [
        {"workflow_id": "bill", "execution_id": "bill:ev-ord-7", "skipped": None},
        {"workflow_id": "ship", "execution_id": None, "skipped": "the workflow is paused"},
    ],
    "more_outcomes": 0,
    "repeated": False,
}


def test_an_event_without_an_id_keeps_the_one_drawn_across_resends() -> None:
    client, seen = clients({"a": [error(503, "unavailable")], "b": [httpx.Response(202, json=EVENT)]})
    event = client.send_event("order.created", {"order": 7})
    assert event.execution_ids == ["bill:ev-ord-7"] and event.outcomes[1].skipped == "the workflow is paused"
    first, second = (json.loads(s[4]) for s in seen)
    assert first == second and first["name"] == "order.created" and first["payload"] == {"order": 7}
    assert len(first["id"]) == 32, "an id is drawn for the call"
    assert seen[0][3]["idempotency-key"] == seen[1][3]["idempotency-key"]
    # A second call is another event: another id.
    client, seen = clients({"a": [httpx.Response(202, json=EVENT)]})
    client.send_event("order.created", {"order": 7})
    assert json.loads(seen[0][4])["id"] != first["id"]


def test_an_event_id_given_is_sent_and_a_reused_one_is_invalid() -> None:
    client, seen = clients({"a": [httpx.Response(200, json={**EVENT, "repeated": True})]})
    assert client.send_event("order.created", {"order": 7}, event_id="ord-7").repeated
    assert json.loads(seen[0][4])["id"] == "ord-7"
    client, _ = clients({"a": [error(422, "event_id_reused")]})
    with pytest.raises(errors.InvalidError) as raised:
        client.send_event("order.created", {"order": 8}, event_id="ord-7")
    assert raised.value.code == "event_id_reused"
    with pytest.raises(errors.InvalidError):
        client.send_event("", None)


def test_list_events_query_and_an_execution_s_event() -> None:
    page = {"items": [EVENT], "next_cursor": None}
    execution = {
        "id": "bill:ev-ord-7",
        "workflow_id": "bill",
        "status": "running",
        "trigger": "event",
        "event": {"name": "order.created", "id": "ord-7", "payload": {"order": 7}},
    }
    answers = {"a": [httpx.Response(200, json=page), httpx.Response(200, json=execution)]}
    transport_seen: List[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        transport_seen.append(request)
        return answers["a"].pop(0)

    client = linkloom.Client("http://a", transport=httpx.MockTransport(handle))
    got = client.list_events(name="order.created", limit=20)
    assert got.items[0].id == "ord-7" and got.next_cursor is None
    assert dict(transport_seen[0].url.params) == {"name": "order.created", "limit": "20"}
    started = client.get_execution("bill:ev-ord-7")
    assert started.event is not None and started.event.payload == {"order": 7}


async def test_the_async_client_fails_over_the_same_way() -> None:
    seen: Seen = []
    answers = {"a": [error(503, "unavailable")], "b": [httpx.Response(202, json={"execution_id": "wf:9"})]}

    async def handle(request: httpx.Request) -> httpx.Response:
        return scripted(answers, seen)(request)

    async with linkloom.AsyncClient("http://a,http://b", transport=httpx.MockTransport(handle)) as client:
        assert await client.trigger("wf") == "wf:9"
        assert client.current_server == "http://b"
    assert seen[0][3]["idempotency-key"] == seen[1][3]["idempotency-key"]


async def test_follow_logs_reads_events_until_end() -> None:
    stream = (
        b": keep-alive\n\ndata: --- t attempt 1 ---\ndata: hello\n\n"
        b"data: --- t attempt 1 ---\ndata: hello\ndata: world\n\nevent: end\ndata: done\n\n"
    )

    async def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.params["follow"] == "true"
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    async with linkloom.AsyncClient("http://a", transport=httpx.MockTransport(handle)) as client:
        pieces = [p async for p in client.follow_logs("e", task="t")]
    assert pieces == ["--- t attempt 1 ---\nhello", "--- t attempt 1 ---\nhello\nworld"]


def test_wait_for_execution_polls_until_it_ends() -> None:
    running = {"id": "e", "workflow_id": "wf", "status": "running"}
    done = {
        "id": "e",
        "workflow_id": "wf",
        "status": "succeeded",
        "tasks": [{"id": "t", "status": "succeeded"}],
    }
    client, seen = clients({"a": [httpx.Response(200, json=running), httpx.Response(200, json=done)]})
    execution = client.wait_for_execution("e", timeout=5)
    assert execution.finished and execution.task("t") is not None and len(seen) == 2
    slow, _ = clients({"a": [httpx.Response(200, json=running)] * 50})
    with pytest.raises(errors.TimeoutError):
        slow.wait_for_execution("e", timeout=0.3)


def test_the_twins_have_the_same_methods() -> None:
    def public(cls: type) -> Dict[str, List[str]]:
        return {
            name: list(inspect.signature(getattr(cls, name)).parameters)
            for name in dir(cls)
            if not name.startswith("_") and callable(getattr(cls, name))
        }

    sync, asynchronous = public(linkloom.Client), public(linkloom.AsyncClient)
    sync.pop("close")
    asynchronous.pop("aclose")
    assert sync == asynchronous


def test_failover_policy_pauses() -> None:
    policy = Failover(["a", "b"], 0, 6, "GET", False)
    step = policy.after(errors.Answer(503, b""))
    assert isinstance(step, Resend) and (step.server, step.pause_s) == (1, 0.1)
    step = policy.after(errors.Answer(503, b""))
    assert isinstance(step, Resend) and (step.server, step.pause_s) == (0, 0.2)
    step = policy.after(errors.Answer(429, b"", "3"))
    assert isinstance(step, Resend) and (step.server, step.pause_s) == (0, 3.0)
    step = policy.after(errors.Answer(429, b"", "3600"))
    assert isinstance(step, Resend) and step.pause_s == 10.0, "Retry-After is bounded"
    assert isinstance(policy.after(errors.Answer(200, b"{}")), Succeed)
    post = Failover(["a"], 0, 3, "POST", False)
    step2: Optional[object] = post.after(errors.TransportFailure("reset"))
    assert isinstance(step2, Fail) and step2.classification.disposition == "fatal"
