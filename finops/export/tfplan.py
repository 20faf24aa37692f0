"""A stack run as Terraform plan JSON, so checkov scans a Pulumi stack (`--framework
terraform_plan`) with its built-in checks and ours (Infracost and checkov have no Pulumi
support: infracost#187, checkov#7601).

The document follows Terraform's JSON output format (`terraform show -json`): `format_version`,
`planned_values.root_module.resources[]` (`address`, `mode`, `type`, `name`, `provider_name`,
`values`) and `resource_changes[]` (every resource a `create`). Type tokens and property names
map through `aifinops.export.terraform_names`; tag keys are never rewritten. Resources with no
Terraform counterpart (azure-native types outside the table, components) are listed in
`finops_skipped` rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from aifinops.export.terraform_names import snake, terraform_type, to_terraform

FORMAT_VERSION = "1.2"
TERRAFORM_VERSION = "1.9.8"
_PROVIDERS = {
    "aws": "registry.terraform.io/hashicorp/aws",
    "google": "registry.terraform.io/hashicorp/google",
    "azurerm": "registry.terraform.io/hashicorp/azurerm",
}
_INVALID_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _resource_name(name: str, taken: set[str]) -> str:
    """A valid Terraform resource name (letters, digits, `_`, `-`; not starting with a digit)."""
    base = _INVALID_NAME.sub("_", name) or "resource"
    if base[0].isdigit():
        base = f"r_{base}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _clean(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inputs.items() if not str(k).startswith("__")}


def _identities(resource: Any) -> list[tuple[str, str]]:
    """(value, attribute) pairs by which other resources refer to this one: its id, and the
    name/ARN/self link the provider computes."""
    found = [(str(getattr(resource, "id", "") or ""), "id")]
    outputs = getattr(resource, "outputs", None) or {}
    for attribute in ("arn", "name", "selfLink"):
        value = outputs.get(attribute)
        if isinstance(value, str):
            found.append((value, snake(attribute)))
    return [(value, attribute) for value, attribute in found if value]


def _expressions(values: Any, identities: Mapping[str, tuple[str, str]], own: str) -> Any:
    """Terraform `configuration` expressions for plan `values`: an attribute (at any depth,
    blocks included) whose value is another resource's identity becomes a reference, so
    checkov's graph connects the two (a bucket and its public-access block, a launch template
    and its security group). None when nothing refers to another resource."""
    if isinstance(values, Mapping):
        nested = {key: _expressions(item, identities, own) for key, item in values.items()}
        return {key: item for key, item in nested.items() if item is not None} or None
    items = values if isinstance(values, list) else [values]
    if any(isinstance(item, Mapping) for item in items):
        blocks = [_expressions(item, identities, own) or {} for item in items]
        return blocks if any(blocks) else None
    references: list[str] = []
    for item in items:
        if isinstance(item, str) and item in identities and identities[item][0] != own:
            target, attribute = identities[item]
            references += [f"{target}.{attribute}", target]
    return {"references": references} if references else None


def plan_document(resources: Iterable[Any], stack: str = "") -> dict[str, Any]:
    """Terraform plan JSON for engine resources (objects with `type`, `name`, `urn`, `custom`,
    `inputs`, and optionally `id`/`outputs`, as `aifinops.engine.EngineResource`)."""
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    configured: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    taken_by_type: dict[str, set[str]] = {}
    addressed: list[tuple[Any, str, str, str]] = []
    identities: dict[str, tuple[str, str]] = {}
    for resource in resources:
        if not resource.custom:
            continue
        tf_type = terraform_type(resource.type)
        if tf_type is None or tf_type.startswith("pulumi_"):
            skipped.append({"urn": resource.urn, "type": resource.type})
            continue
        name = _resource_name(resource.name, taken_by_type.setdefault(tf_type, set()))
        address = f"{tf_type}.{name}"
        addressed.append((resource, tf_type, name, address))
        for value, attribute in _identities(resource):
            identities.setdefault(value, (address, attribute))
    for resource, tf_type, name, address in addressed:
        provider = _PROVIDERS.get(tf_type.split("_", 1)[0], "")
        values = to_terraform(tf_type, _clean(resource.inputs))
        common = {"address": address, "mode": "managed", "type": tf_type, "name": name}
        planned.append(
            {**common, "provider_name": provider, "schema_version": 0, "values": values,
             "sensitive_values": {}}
        )  # fmt: skip
        changes.append(
            {
                **common,
                "provider_name": provider,
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": {},
                    "before_sensitive": False,
                    "after_sensitive": {},
                },
                "finops_urn": resource.urn,
            }
        )
        configured.append(
            {
                "address": address,
                "mode": "managed",
                "type": tf_type,
                "name": name,
                "provider_config_key": tf_type.split("_", 1)[0],
                "expressions": _expressions(values, identities, address) or {},
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": configured}},
        "finops_stack": stack,
        "finops_skipped": skipped,
    }
