"""Every sdk/conformance/transcripts/*.json against ``loom-fake-node`` (README section 2).

For each script: start the fake node, run the conformance program's worker against it (a real
process, so signals and stdout are exercised too), ask for a graceful shutdown at
``shutdown_after_ms`` if set, poll the verdict until satisfied or ``timeout_ms``, stop the worker
gracefully, wait two heartbeat intervals, and assert the final verdict passed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest

from conftest import CONFORMANCE

PROGRAM = Path(__file__).resolve().parents[1] / "conformance" / "program.py"
TRANSCRIPTS = sorted((CONFORMANCE / "transcripts").glob("*.json"))
BUILD_HINT = "cargo build --release -p linkloom-conformance"
#: Longest a worker may take to stop after SIGTERM beyond its grace.
STOP_MARGIN_S = 10.0


def fake_node_binary() -> Path:
    """LOOM_FAKE_NODE, else $CARGO_TARGET_DIR/release, else ~/.cache/linkloom/target/release."""
    candidates: List[Path] = []
    if os.environ.get("LOOM_FAKE_NODE"):
        candidates.append(Path(os.environ["LOOM_FAKE_NODE"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "loom-fake-node")
    candidates.append(Path.home() / ".cache" / "linkloom" / "target" / "release" / "loom-fake-node")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    pytest.fail(
        f"loom-fake-node not found (looked at {', '.join(map(str, candidates))}); "
        f"build it with `{BUILD_HINT}` or set LOOM_FAKE_NODE"
    )


def _heartbeat_ms(script: Dict[str, Any]) -> int:
    for connection in script.get("connections", []):
        for event in connection.get("events", []):
            found = re.search(r'"heartbeat_interval_ms"\s*:\s*(\d+)', event.get("chunk") or "")
            if found:
                return max(50, int(found.group(1)))
    return 1000


@pytest.fixture
def fake_node(request: pytest.FixtureRequest) -> Iterator[str]:
    script: Path = request.param
    process = subprocess.Popen(
        [str(fake_node_binary()), "--script", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1"):
            process.kill()
            _, err = process.communicate(timeout=5)
            pytest.fail(f"loom-fake-node did not print its URL: {url!r}\n{err}")
        yield url
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the fake node exits when its stdin closes
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _verdict(url: str) -> Dict[str, Any]:
    answer = httpx.get(f"{url}/_fake/verdict", timeout=5)
    answer.raise_for_status()
    verdict: Dict[str, Any] = answer.json()
    return verdict


def _stop(worker: subprocess.Popen[str], grace_s: float, signalled: bool) -> Optional[int]:
    # One SIGTERM only: a second one may land after the worker restored the default handler.
    if not signalled and worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=grace_s + STOP_MARGIN_S)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=5)
        return None


@pytest.mark.parametrize("fake_node", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS], indirect=True)
def test_transcript(fake_node: str, request: pytest.FixtureRequest) -> None:
    script_path: Path = request.node.callspec.params["fake_node"]
    script = json.loads(script_path.read_text(encoding="utf-8"))
    w = script["worker"]
    grace_s = w["grace_ms"] / 1000
    env = {k: v for k, v in os.environ.items() if k != "LOOM_TOKEN"}
    worker = subprocess.Popen(
        [
            sys.executable,
            str(PROGRAM),
            "worker",
            "--server",
            fake_node,
            "--queue",
            ",".join(w["queues"]),
            "--id",
            w["id"],
            "--concurrency",
            str(w["concurrency"]),
            "--grace-ms",
            str(w["grace_ms"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        started = time.monotonic()
        shutdown_at = script.get("shutdown_after_ms")
        shut_down = False
        deadline = started + script["timeout_ms"] / 1000
        verdict = _verdict(fake_node)
        while time.monotonic() < deadline:
            if shutdown_at is not None and not shut_down and time.monotonic() - started >= shutdown_at / 1000:
                worker.send_signal(signal.SIGTERM)
                shut_down = True
            verdict = _verdict(fake_node)
            if verdict["satisfied"] and (shutdown_at is None or shut_down):
                break
            time.sleep(0.05)
        code = _stop(worker, grace_s, signalled=shut_down)
        time.sleep(2 * _heartbeat_ms(script) / 1000)
        verdict = _verdict(fake_node)
    finally:
        if worker.poll() is None:
            worker.kill()
        out, err = worker.communicate(timeout=10)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert verdict["passed"], (
        f"{script['name']}: {script['about']}\nproblems: {json.dumps(verdict['problems'], indent=1)}\n"
        f"requests: {json.dumps(verdict.get('requests'), indent=1)[:4000]}\nworker stderr:\n{err[-4000:]}"
    )
    assert code == 0, f"the worker exited with {code}\n{err[-4000:]}"
    assert events and events[0] == {"event": "ready"}, events
    assert events[-1] == {"event": "stopped"}, events


EXAMPLE = Path(__file__).resolve().parent / "data" / "example-worker.json"


@pytest.mark.parametrize("fake_node", [EXAMPLE], ids=["example-worker"], indirect=True)
def test_the_example_worker_echoes_sleeps_and_fails_as_documented(fake_node: str) -> None:
    script = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k != "LOOM_TOKEN"}
    command = [sys.executable, "-m", "linkloom.examples.worker", "--server", fake_node, "--queue", "demo"]
    worker = subprocess.Popen(
        [*command, "--id", script["worker"]["id"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + script["timeout_ms"] / 1000
        verdict = _verdict(fake_node)
        while time.monotonic() < deadline and not verdict["satisfied"]:
            time.sleep(0.05)
            verdict = _verdict(fake_node)
        code = _stop(worker, grace_s=2.0, signalled=False)
        verdict = _verdict(fake_node)
    finally:
        if worker.poll() is None:
            worker.kill()
        out, err = worker.communicate(timeout=10)
    assert verdict["passed"], f"problems: {json.dumps(verdict['problems'], indent=1)}\nstderr:\n{err[-4000:]}"
    assert code == 0, f"the example exited with {code}\n{err[-4000:]}"
    outcomes = sorted((e["attempt_id"], e["outcome"]) for e in map(json.loads, out.splitlines()))
    assert outcomes == [("1", "succeeded"), ("2", "failed"), ("3", "succeeded")], out
