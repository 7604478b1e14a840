"""Every case of sdk/conformance/vectors/*.json, run through the SDK's own functions."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from conftest import CONFORMANCE, case_ids
from linkloom import errors
from linkloom.backend import TaskAnswer, TaskRequest, Verifier
from linkloom.errors import Answer, DecodeError, TransportFailure, classify
from linkloom.signature import (
    MalformedSignature,
    MissingSignature,
    SignatureError,
    SignatureMismatch,
    StaleSignature,
    UnknownKey,
)
from linkloom.stream import AlreadyRunning, Cancel, Ignore, Reconnect, Run, Welcome, decode_chunks


def _cases(name: str) -> List[Dict[str, Any]]:
    # Loaded at collection; a missing file becomes one failing test, never a skip.
    path = CONFORMANCE / "vectors" / name
    if not path.is_file():
        return [{"name": f"MISSING {path}", "missing": str(path)}]
    return list(json.loads(Path(path).read_text(encoding="utf-8"))["cases"])


def _check_file(case: Dict[str, Any]) -> None:
    if "missing" in case:
        pytest.fail(f"{case['missing']} is missing: the conformance vectors are part of the repository")


SIGNATURES = _cases("signatures.json")
ERRORS = _cases("errors.json")
STREAM = _cases("stream.json")
TASK_ANSWERS = _cases("task_answers.json")

SIGNATURE_ERRORS = {
    "missing": MissingSignature,
    "malformed": MalformedSignature,
    "stale": StaleSignature,
    "unknown_key": UnknownKey,
    "mismatch": SignatureMismatch,
}


def test_every_vector_file_has_cases() -> None:
    for name, cases in (
        ("signatures", SIGNATURES),
        ("errors", ERRORS),
        ("stream", STREAM),
        ("task_answers", TASK_ANSWERS),
    ):
        assert cases, name
        for case in cases:
            _check_file(case)


@pytest.mark.parametrize("case", SIGNATURES, ids=case_ids(SIGNATURES))
def test_signature_vector(case: Dict[str, Any]) -> None:
    _check_file(case)
    verifier = Verifier([(k["kid"], k["secret"]) for k in case["keys"]], tolerance=case["tolerance_secs"])
    body = base64.b64decode(case["body_base64"])
    args = (case["header"], case["method"], case["url"], case["idempotency_key"], body)
    expect = case["expect"]
    if expect["valid"]:
        assert verifier.verify(*args, now=case["now"]) == expect["timestamp"]
        return
    with pytest.raises(SignatureError) as raised:
        verifier.verify(*args, now=case["now"])
    assert type(raised.value) is SIGNATURE_ERRORS[expect["error"]], raised.value
    assert raised.value.reason == expect["error"]
    assert "s3cret" not in str(raised.value), "no secret in messages"


def _outcome(outcome: Dict[str, Any]) -> errors.Outcome:
    if "transport" in outcome:
        return TransportFailure(outcome["transport"])
    return Answer(outcome["status"], outcome["body"].encode(), outcome.get("retry_after"))


KIND_TYPES = {
    "unauthorized": errors.UnauthorizedError,
    "forbidden": errors.ForbiddenError,
    "not_found": errors.NotFoundError,
    "conflict": errors.ConflictError,
    "stale_attempt": errors.StaleAttemptError,
    "invalid": errors.InvalidError,
    "too_large": errors.TooLargeError,
    "rate_limited": errors.RateLimitedError,
    "unavailable": errors.UnavailableError,
    "server": errors.ServerError,
    "connect": errors.ConnectError,
    "transport": errors.TransportError,
    "timeout": errors.TimeoutError,
}


@pytest.mark.parametrize("case", ERRORS, ids=case_ids(ERRORS))
def test_error_vector(case: Dict[str, Any]) -> None:
    _check_file(case)
    request = case["request"]
    c = classify(
        request["method"],
        request["idempotency_key"],
        _outcome(case["outcome"]),
        attempt_call=request.get("attempt_call", False),
    )
    expect = case["expect"]
    assert (c.disposition, c.kind, c.code, c.status) == (
        expect["disposition"],
        expect["kind"],
        expect["code"],
        expect["status"],
    )
    if expect["kind"] is None:
        return
    error = c.error()
    assert type(error) is KIND_TYPES[expect["kind"]]
    assert (error.kind, error.status, error.code) == (expect["kind"], expect["status"], expect["code"])


def _action_json(action: Any) -> Dict[str, Any]:
    if isinstance(action, Welcome):
        return {
            "action": "welcome",
            "session": action.session,
            "node_id": action.node_id,
            "heartbeat_interval_ms": action.heartbeat_interval_ms,
            "lease_ms": action.lease_ms,
        }
    if isinstance(action, Run):
        return {
            "action": "run",
            "attempt_id": action.task.attempt_id,
            "task_id": action.task.task_id,
            "input": action.task.input,
        }
    if isinstance(action, AlreadyRunning):
        return {"action": "already_running", "attempt_id": action.attempt_id}
    if isinstance(action, Cancel):
        return {"action": "cancel", "attempt_id": action.attempt_id}
    if isinstance(action, Ignore):
        return {"action": "ignore", "why": action.why}
    assert isinstance(action, Reconnect)
    return {"action": "reconnect", "why": action.why}


@pytest.mark.parametrize("case", STREAM, ids=case_ids(STREAM))
def test_stream_vector(case: Dict[str, Any]) -> None:
    _check_file(case)
    chunks = [base64.b64decode(c) for c in case["chunks_base64"]]
    actions = decode_chunks(chunks, case["running"], case["max_line_bytes"], case["end"])
    assert [_action_json(a) for a in actions] == case["expect"]


@pytest.mark.parametrize("case", TASK_ANSWERS, ids=case_ids(TASK_ANSWERS))
def test_task_answer_vector(case: Dict[str, Any]) -> None:
    _check_file(case)
    expect = case["expect"]
    if "answer" in case:
        a = case["answer"]
        if a["outcome"] == "succeeded":
            answer = TaskAnswer.succeeded(a.get("output"), logs=a.get("logs"))
        elif a["outcome"] == "failed":
            answer = TaskAnswer.failed(a["error"], retryable=a.get("retryable", True), logs=a.get("logs"))
        else:
            assert a["outcome"] == "accepted"
            answer = TaskAnswer.accepted()
        assert answer.status_code == expect["status_code"]
        assert answer.content_type == expect["content_type"]
        assert answer.body() == expect["body"]
        assert json.loads(answer.body_bytes()) == expect["body"]
        return
    body = case["request_body"].encode()
    if "error" in expect:
        assert expect["error"] == "decode"
        with pytest.raises(DecodeError):
            TaskRequest.parse(body)
        return
    request = TaskRequest.parse(body)
    got = {
        "execution_id": request.execution_id,
        "workflow_id": request.workflow_id,
        "task_id": request.task_id,
        "attempt": request.attempt,
        "attempt_id": request.attempt_id,
        "input": request.input,
        "params": request.params,
        "callback_url": request.callback_url,
        "deadline": request.deadline,
        "idempotency_key": request.idempotency_key,
    }
    assert got == expect
    assert "callback_token" not in repr(request) or "loomcb" not in repr(request)
