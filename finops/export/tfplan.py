"""A stack run as Terraform plan JSON, so checkov scans a Pulumi stack (`--framework
terraform_plan`) with its built-in checks and ours (Infracost and checkov have no Pulumi
support: infracost#187, checkov#7601).

The document follows Terraform's JSON output format (`terraform show -json`): `format_version`,
`planned_values.root_module.resources[]` (`address`, `mode`, `type`, `name`, `provider_name`,
`values`) and `resource_changes[]` (every resource a `create`). Type tokens and property names
map through `finops.export.terraform_names`; tag keys are never rewritten. Resources with no
Terraform counterpart (azure-native types outside the table, components) are listed in
`finops_skipped` rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from finops.export.terraform_names import terraform_type, to_terraform

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


def plan_document(resources: Iterable[Any], stack: str = "") -> dict[str, Any]:
    """Terraform plan JSON for engine resources (objects with `type`, `name`, `urn`, `custom`,
    `inputs`, as `finops.engine.EngineResource`)."""
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    taken_by_type: dict[str, set[str]] = {}
    for resource in resources:
        if not resource.custom:
            continue
        tf_type = terraform_type(resource.type)
        if tf_type is None or tf_type.startswith("pulumi_"):
            skipped.append({"urn": resource.urn, "type": resource.type})
            continue
        name = _resource_name(resource.name, taken_by_type.setdefault(tf_type, set()))
        address = f"{tf_type}.{name}"
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
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"root_module": {}},
        "finops_stack": stack,
        "finops_skipped": skipped,
    }
