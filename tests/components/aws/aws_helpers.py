"""Helpers of the AWS component tests (imported by module name: this folder is on sys.path
under pytest's default import mode)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aifinops import tags as tag_schema
from aifinops.engine import EngineResource, StackRun, run_program
from aifinops.taggability import tag_property

STACK_TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}
REGION = "us-east-1"


def run_components(program: Callable[[], object]) -> StackRun:
    """Run `program` (which constructs components) under the offline engine, no transforms:
    what it shows is what the components themselves write."""

    def body() -> None:
        program()

    return run_program(body, "test", {"aws:region": REGION}, {"aws": REGION})


def only(run: StackRun, type_token: str, name: str | None = None) -> EngineResource:
    found = [r for r in run.of_type(type_token) if name is None or r.name == name]
    assert len(found) == 1, f"{type_token} {name}: {[r.name for r in found]}"
    return found[0]


def policy_statements(resource: EngineResource, key: str = "policy") -> dict[str, dict[str, Any]]:
    """A policy document's statements by Sid."""
    document = json.loads(resource.inputs[key])
    assert document["Version"] == "2012-10-17"
    return {statement["Sid"]: statement for statement in document["Statement"]}


def untagged(run: StackRun, workload: bool) -> list[str]:
    """Taggable AWS resources missing a required key (list-shaped ASG tags included)."""
    problems = []
    for resource in run.custom_resources():
        where = tag_property(resource.type)
        if where is None:
            continue
        value = resource.inputs.get(where.property)
        if where.shape == "list":
            present = {t["key"]: t["value"] for t in value or [] if t.get("propagateAtLaunch")}
        else:
            present = dict(value or {})
        missing = tag_schema.missing_keys(present, "aws", workload)
        if missing:
            problems.append(f"{resource.type} {resource.name}: {missing}")
    return problems
