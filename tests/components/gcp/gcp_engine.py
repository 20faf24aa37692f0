"""Test helpers for the tests beside this file: run GCP components under the offline engine
with the stack tags transform registered as infra/__main__.py registers it, and read back
what they created."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable

import pulumi

from aifinops import tags as tag_schema
from aifinops.engine import EngineResource, StackRun, run_program
from aifinops.taggability import tag_property
from aifinops.tagging import tagging_transform

STACK_TAGS = {"Project": "Vision", "Team": "ML-Platform", "Environment": "dev"}
REGIONS = {"gcp": "us-central1"}
CONFIG = {"gcp:project": "finops-test", "gcp:region": "us-central1"}


def run_components(body: Callable[[], object]) -> StackRun:
    def program() -> None:
        pulumi.runtime.register_resource_transform(tagging_transform(STACK_TAGS))
        body()

    return run_program(program, "test", CONFIG, REGIONS)


def one(run: StackRun, name: str) -> EngineResource:
    found = [r for r in run.resources if r.name == name]
    assert len(found) == 1, f"{name}: {[r.name for r in run.resources]}"
    return found[0]


def names_of(run: StackRun, type_token: str) -> list[str]:
    return sorted(r.name for r in run.of_type(type_token))


def gcp_labels_of(resource: EngineResource) -> dict[str, str] | None:
    """The cost labels of a taggable GCP resource, None when its type carries none."""
    where = tag_property(resource.type)
    if where is None:
        return None
    found: object = resource.inputs
    for key in where.property.split("."):  # nested: nodeConfig.resourceLabels
        found = found.get(key) if isinstance(found, dict) else None
    return found or {}  # type: ignore[return-value]


def assert_gcp_labels(run: StackRun, workload: bool) -> int:
    """Every taggable GCP resource has the stack's and (workloads) the model version label,
    spelled as GCP wants them. Returns how many resources were checked."""
    checked = 0
    for resource in run.custom_resources():
        labels = gcp_labels_of(resource)
        if labels is None:
            continue
        missing = tag_schema.missing_keys(labels, "gcp", workload)
        assert not missing, f"{resource.type} {resource.name}: missing {missing} in {labels}"
        assert tag_schema.invalid_values(labels, "gcp") == [], (resource.name, labels)
        assert labels["project"] == "vision" and labels["team"] == "ml-platform"
        checked += 1
    return checked


def toml_in_script(script: str) -> dict:
    """The agent config a startup script writes (between its heredoc markers)."""
    match = re.search(r"<<'FINOPS_AGENT_TOML'\n(.*?)\nFINOPS_AGENT_TOML\n", script, re.S)
    assert match, script
    return tomllib.loads(match.group(1))
