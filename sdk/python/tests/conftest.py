"""Shared test helpers: where the conformance kit lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

#: sdk/conformance, located from this file so the tests run from any directory.
CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
#: The repository root (docs/openapi.json lives there).
REPO = Path(__file__).resolve().parents[3]


def load_vector_cases(name: str) -> List[Dict[str, Any]]:
    """The cases of ``vectors/NAME``; fails (never skips) when the file is missing."""
    path = CONFORMANCE / "vectors" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the conformance vectors are part of the repository")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["version"] == 1, f"{name}: unknown version {document['version']}"
    cases: List[Dict[str, Any]] = document["cases"]
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), f"{name}: case names are not unique"
    assert cases, f"{name}: no cases"
    return cases


def case_ids(cases: List[Dict[str, Any]]) -> List[str]:
    return [c["name"] for c in cases]
