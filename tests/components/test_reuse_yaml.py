"""examples/reuse/yaml: a Pulumi YAML program using the components through `pulumi package
add`. Every resource type, input and output it names must be what the component host serves
(GetSchema of the real plugin over gRPC), and its inputs, as YAML would send them, must build
the components (Construct) with tagged children.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from provider_host import HostedComponents
from ruamel.yaml import YAML

from aifinops.engine.contracts import check_resources
from aifinops.taggability import is_taggable

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "reuse" / "yaml"
PROJECT = YAML(typ="safe").load((EXAMPLE / "Pulumi.yaml").read_text())
STACK = YAML(typ="safe").load((EXAMPLE / "Pulumi.dev.yaml").read_text())["config"]
CLI_SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "pulumi_cli" / "project.json").read_text())
REFERENCE = re.compile(r"\$\{([^}]+)\}")
WHEEL = ROOT / ".cache" / "reuse-yaml" / "aifinops-0.1.0-py3-none-any.whl"  # built by `host`


@pytest.fixture(scope="module")
def host() -> Iterator[HostedComponents]:
    # the fleet bundles the agent from the wheel the program names: this tree's, built now
    shutil.rmtree(WHEEL.parent, ignore_errors=True)
    WHEEL.parent.mkdir(parents=True)
    spec = importlib.util.spec_from_file_location(
        "build_agent_bundle", ROOT / "bench" / "build_agent_bundle.py"
    )
    assert spec and spec.loader
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    built, _ = bundle.project_wheel(WHEEL.parent)
    assert built == WHEEL
    hosted = HostedComponents({"aws": STACK["aws:region"]})
    try:
        yield hosted
    finally:
        hosted.close()


@pytest.fixture(scope="module")
def schema(host: HostedComponents) -> dict[str, Any]:
    return host.schema()


def resolve(value: Any, scope: dict[str, Any]) -> Any:
    """`${name}` interpolation as Pulumi YAML does it, for the names this program uses."""
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return scope[whole.group(1)]
        return REFERENCE.sub(lambda m: str(scope[m.group(1)]), value)
    return value


def program_inputs() -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (type, properties with variables and config resolved)."""
    scope: dict[str, Any] = {
        "pulumi.stack": "dev",
        "team": STACK["gpu-platform-yaml:team"],
        "agentWheel": str(WHEEL),
    }
    scope["tags"] = resolve(PROJECT["variables"]["tags"], scope)
    return {
        name: (spec["type"], resolve(spec.get("properties", {}), scope))
        for name, spec in PROJECT["resources"].items()
    }


def test_the_project_file_is_one_the_pulumi_cli_accepts() -> None:
    errors = [e.message for e in Draft202012Validator(CLI_SCHEMA).iter_errors(PROJECT)]
    assert errors == []
    assert PROJECT["runtime"] == "yaml"
    plugin = EXAMPLE / PROJECT["packages"]["finops"]
    assert (plugin / "PulumiPlugin.yaml").exists()
    assert "aifinops[components]==" in (plugin / "requirements.txt").read_text()


def test_every_type_input_and_output_is_in_the_served_schema(schema: dict[str, Any]) -> None:
    assert set(PROJECT["packages"]) == {schema["name"]}
    served = schema["resources"]
    for name, (type_token, properties) in program_inputs().items():
        assert type_token in served, f"{name}: {type_token} not served ({sorted(served)})"
        resource = served[type_token]
        unknown = set(properties) - set(resource["inputProperties"])
        assert not unknown, f"{name}: inputs {sorted(unknown)} not in the schema"
        missing = set(resource.get("requiredInputs", [])) - set(properties)
        assert not missing, f"{name}: required inputs {sorted(missing)} not set"
    for output, expression in PROJECT["outputs"].items():
        resource_name, _, prop = REFERENCE.fullmatch(expression).group(1).partition(".")
        type_token = PROJECT["resources"][resource_name]["type"]
        assert prop in served[type_token].get("properties", {}), f"output {output}: {prop}"


@pytest.mark.parametrize("name", sorted(PROJECT["resources"]))
def test_the_program_inputs_build_the_components_tagged(host: HostedComponents, name: str) -> None:
    type_token, properties = program_inputs()[name]
    reply, registered = host.construct(type_token, name, properties, {"aws:region": "us-east-1"})
    (component,) = [r for r in registered if r.urn == reply.urn]
    assert component.type == type_token
    children = [r for r in registered if r.custom]
    assert children
    assert check_resources(registered) == []
    tags = properties["tags"]
    for child in children:
        if not is_taggable(child.type) or child.type.startswith("aws:autoscaling/"):
            continue  # an Auto Scaling group carries its tags as a list (propagate_at_launch)
        assert child.inputs.get("tags", {}).items() >= tags.items(), child.name
