"""`Pulumi.yaml` and the stack files pass the Pulumi CLI's own checks, which run before any
program: the project schema the CLI embeds (tests/fixtures/pulumi_cli/project.json), the Go
rules of `(*Project).Validate`, and the merge of project config into each stack
(`mergeConfig`). Sources and commits: tests/fixtures/pulumi_cli/SOURCES.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "fixtures" / "pulumi_cli" / "project.json"
STACK_FILES = [ROOT / "Pulumi.dev.yaml", *sorted((ROOT / "examples").glob("Pulumi.*.yaml"))]


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def schema_errors(project: Any) -> list[str]:
    validator = Draft202012Validator(json.loads(SCHEMA.read_text()))
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(project)
    )


def is_value_of(type_name: str | None, items: dict[str, Any] | None, value: Any) -> bool:
    """`ValidateConfigValue` (sdk/go/common/workspace/project.go:771): whole floats and
    integer strings are integers, "true"/"false" are booleans, an array needs `items`."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return math.isfinite(value) and value == math.trunc(value)
        if isinstance(value, str):
            try:
                int(value)
            except ValueError:
                return False
            return True
        return False
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(is_value_of(items.get("type"), items.get("items"), item) for item in value)


def project_rule_errors(project: dict[str, Any]) -> list[str]:
    """`(*Project).Validate` (project.go:837) for keys namespaced by the project."""
    errors = []
    name = project["name"]
    for key, declaration in (project.get("config") or {}).items():
        if not isinstance(declaration, dict):
            continue  # shorthand `key: value` is rewritten to {value: ...} by the CLI
        if ":" in key and not key.startswith(f"{name}:"):
            continue
        type_name = declaration.get("type")
        if type_name == "array" and declaration.get("items") is None:
            errors.append(
                f"The configuration key '{key}' declares an array but does not specify the "
                "underlying type via the 'items' attribute"
            )
        default = declaration.get("default")
        if (
            type_name is not None
            and default is not None
            and not is_value_of(type_name, declaration.get("items"), default)
        ):
            errors.append(
                f"The default value specified for configuration key '{key}' is not of the "
                f"expected type '{type_name}'"
            )
    return errors


def as_the_cli_reads(value: Any) -> Any:
    """A stack value as `validateStackConfigValue` (pkg/workspace/config.go:119) sees it:
    objects and lists parsed back from JSON, scalars as their text."""
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stack_errors(project: dict[str, Any], stack_file: Path) -> list[str]:
    """`mergeConfig` (pkg/workspace/config.go:255) with validation on, as `pulumi up` runs it."""
    stack = stack_file.stem.removeprefix("Pulumi.")
    values = (load_yaml(stack_file) or {}).get("config") or {}
    missing, errors = [], []
    for key, declaration in sorted((project.get("config") or {}).items()):
        full_key = key if ":" in key else f"{project['name']}:{key}"
        if full_key not in values:
            if "default" not in declaration and "value" not in declaration:
                missing.append(full_key)
            continue
        value = values[full_key]
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue  # encrypted: checked by the CLI after decryption, not here
        type_name = declaration.get("type")
        if type_name and not is_value_of(
            type_name, declaration.get("items"), as_the_cli_reads(value)
        ):
            errors.append(
                f"Stack '{stack}' with configuration key '{full_key}' must be of type '{type_name}'"
            )
    if missing:
        errors.append(f"Stack '{stack}' is missing configuration values {', '.join(missing)}")
    return errors


def test_pulumi_yaml_matches_the_cli_project_schema() -> None:
    assert schema_errors(load_yaml(ROOT / "Pulumi.yaml")) == []


def test_pulumi_yaml_passes_the_cli_project_rules() -> None:
    assert project_rule_errors(load_yaml(ROOT / "Pulumi.yaml")) == []


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_file_passes_the_cli_config_merge(stack_file: Path) -> None:
    assert stack_errors(load_yaml(ROOT / "Pulumi.yaml"), stack_file) == []


# --- the checks themselves catch what the CLI refuses ---------------------------------------


def test_the_schema_refuses_number_as_a_config_type() -> None:
    project = {
        "name": "p",
        "runtime": "python",
        "config": {"p:ceiling": {"type": "number", "description": "USD"}},
    }
    assert any("config/p:ceiling" in error for error in schema_errors(project))


def test_an_array_without_items_is_refused() -> None:
    project = {"name": "p", "runtime": "python", "config": {"p:fleets": {"type": "array"}}}
    assert project_rule_errors(project) == [
        "The configuration key 'p:fleets' declares an array but does not specify the "
        "underlying type via the 'items' attribute"
    ]


def test_a_declared_key_without_default_must_be_in_every_stack(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text("config:\n  p:fleets: []\n  p:limit: 12.5\n")
    project = {
        "name": "p",
        "runtime": "python",
        "config": {
            "p:account": {"type": "string"},
            "p:fleets": {"type": "array", "items": {"type": "object"}, "default": []},
            "p:limit": {"type": "integer"},
        },
    }
    assert stack_errors(project, stack) == [
        "Stack 'dev' with configuration key 'p:limit' must be of type 'integer'",
        "Stack 'dev' is missing configuration values p:account",
    ]


def test_config_values_are_typed_as_the_cli_types_them() -> None:
    assert is_value_of("integer", None, "4") and is_value_of("integer", None, 4.0)
    assert not is_value_of("integer", None, "4.5")
    assert is_value_of("boolean", None, "true") and not is_value_of("boolean", None, "yes")
    assert is_value_of("array", {"type": "object"}, [{"a": 1}])
    assert not is_value_of("array", {"type": "object"}, [1])
    assert not is_value_of("array", None, [])
