"""The models and the builder against docs/openapi.json: a field renamed or missing on either
side fails here, and built workflows validate against the WorkflowSpec schema."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List

import jsonschema
import pytest

import linkloom.models as models
from conftest import REPO
from linkloom import InvalidError, Retry, TaskBuilder, WorkflowBuilder

OPENAPI = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
SCHEMAS: Dict[str, Any] = OPENAPI["components"]["schemas"]
MODELS: List[type] = [
    cls
    for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, models.Model) and cls is not models.Model
]


def test_every_answer_model_is_checked() -> None:
    assert len(MODELS) >= 20
    for cls in MODELS:
        assert cls.__schema__ in SCHEMAS, f"{cls.__name__} names no schema of docs/openapi.json"


@pytest.mark.parametrize("cls", MODELS, ids=[c.__name__ for c in MODELS])
def test_model_fields_match_the_schema(cls: type) -> None:
    schema = SCHEMAS[cls.__schema__]
    properties = set(schema.get("properties", {}))
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields - properties == set(), f"{cls.__name__}: fields the schema does not have"
    assert properties - fields == set(), f"{cls.__name__}: schema properties the model lacks"
    # A field the model requires must be one the server always sends.
    required_by_model = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert required_by_model <= set(schema.get("required", [])), cls.__name__


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    )


def test_built_workflows_match_the_spec_schema() -> None:
    spec = (
        WorkflowBuilder("daily-report")
        .description("one report a day")
        .schedule("0 6 * * *")
        .timezone("Europe/Paris")
        .concurrency("forbid")
        .catchup("none")
        .param("region", "us")
        .default_retry(Retry(3, backoff=2, max_backoff=60, multiplier=2.0))
        .default_timeout(300)
        .execution_timeout(3600)
        .task(
            TaskBuilder.http("extract", "https://reports.internal:9000/extract", method="post")
            .input({"region": "{{ params.region }}"})
            .header("X-Team", "data")
            .timeout(30)
        )
        .task(
            TaskBuilder.shell("transform", ["python3", "transform.py"])
            .depends_on("extract")
            .env("MODE", "fast")
            .workdir("/tmp")
        )
        .task(TaskBuilder.script("notify", "echo done").depends_on("transform").when("all_done"))
        .task(TaskBuilder.worker("load", "loaders").depends_on("transform").retry(Retry(5)))
        .to_json()
    )
    errors = sorted(_validator("WorkflowSpec").iter_errors(spec), key=str)
    assert not errors, [e.message for e in errors]
    assert spec["defaults"] == {
        "retry": {"max_attempts": 3, "backoff": "2s", "max_backoff": "1m", "multiplier": 2.0},
        "timeout": "5m",
    }
    assert spec["tasks"][0]["method"] == "POST" and spec["execution_timeout"] == "1h"


def test_the_schema_check_itself_refuses_a_bad_spec() -> None:
    assert list(_validator("WorkflowSpec").iter_errors({"id": "x", "tasks": [], "surprise": 1}))


def test_local_checks_name_every_problem() -> None:
    builder = (
        WorkflowBuilder("Bad Id!")
        .concurrency("sometimes")
        .task(TaskBuilder.worker("a", "Not A Queue").depends_on("b"))
        .task(TaskBuilder.worker("b", "q").depends_on("a"))
        .task(TaskBuilder.worker("b", "q"))
        .task(TaskBuilder.http("c", "").depends_on("nowhere").timeout(-1))
    )
    problems = builder.check()
    text = "; ".join(problems)
    for expected in (
        "id: must be",
        "concurrency: `sometimes`",
        "tasks[0].queue:",
        "tasks[2].id: `b` is used by another task",
        "tasks[3].url: required",
        "tasks[3].depends_on: no task `nowhere`",
        "tasks[3].timeout:",
        "dependency cycle among a, b",
    ):
        assert expected in text, (expected, problems)
    with pytest.raises(InvalidError, match=r"tasks\[3\]\.url"):
        builder.to_json()
    assert WorkflowBuilder("x").check() == ["tasks: a workflow needs at least one task"]
