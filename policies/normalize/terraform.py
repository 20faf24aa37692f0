"""Terraform resources -> `Resource`.

Two inputs, one result:

- `from_loaded`: a resource instance read by `aifinops.policies.terraform.load` (values are literals
  or UNKNOWN; provider `default_tags` known; `count`/`for_each` applied). The main path.
- `normalize_terraform`: checkov's rendered conf (every attribute wrapped in a list, nested
  blocks as lists). checkov leaves what it cannot evaluate as expression text
  (`var.instance_type`, `try(...)`, `each.value`, `None`): those are UNKNOWN here, never
  values. The checkov checks use it only for files the loader could not place.

Either way the attributes are renamed to Pulumi wire names (`aifinops.export.terraform_names`)
and read by the wire normaliser, so Terraform and Pulumi resources meet the same rules; where
tags are comes from the Terraform taggability registry (`aifinops.taggability`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from aifinops.export.terraform_names import TF_TO_PULUMI, camel, from_terraform, pulumi_type
from aifinops.policies.model import LAUNCH_TEMPLATE, TERRAFORM, Resource
from aifinops.policies.normalize.wire import KINDS, normalize
from aifinops.policies.values import UNKNOWN, OpenMap, open_prefixes
from aifinops.taggability import (
    TagProperty,
    known_type,
    terraform_known,
    terraform_tag_property,
    terraform_token,
)

# checkov's leftovers of expressions it could not evaluate.
_EXPRESSION = re.compile(
    r"^(var|local|module|data|each|count|self|path|terraform)\.|^[a-z_][a-z0-9_]*\(.*\)$"
    r"|^[a-z_][a-z0-9_]*\.(value|key)\b|\$\{|^None$",
    re.DOTALL,
)
_PROVIDER_PREFIXES = ("aws_", "google_", "azurerm_", "awscc_")
# azurerm types `aifinops.export.terraform_names` reshapes to azure-native's inputs (the
# finops components' stacks export them so); every other azurerm type reads as pulumi-azure.
_AZURE_RESHAPED = frozenset({"azurerm_linux_virtual_machine_scale_set",
                             "azurerm_consumption_budget_subscription",
                             "azurerm_consumption_budget_resource_group"})  # fmt: skip
# The Terraform types whose instances the compute policies read (each maps to a `KINDS`
# token; tests/policies/test_iac_coverage.py keeps the two in step), and the budgets.
COMPUTE_TERRAFORM = (
    "aws_instance",
    "aws_launch_template",
    "aws_autoscaling_group",
    "aws_eks_node_group",
    "aws_batch_compute_environment",
    "aws_sagemaker_endpoint_configuration",
    "aws_sagemaker_notebook_instance",
    "awscc_sagemaker_cluster",
    "awscc_sagemaker_endpoint_config",
    "awscc_sagemaker_notebook_instance",
    "awscc_eks_nodegroup",
    "awscc_batch_compute_environment",
    "google_compute_instance",
    "google_compute_instance_template",
    "google_compute_region_instance_template",
    "google_compute_instance_group_manager",
    "google_compute_region_instance_group_manager",
    "google_compute_resize_request",
    "google_compute_region_resize_request",
    "google_container_cluster",
    "google_container_node_pool",
    "google_tpu_v2_vm",
    "google_tpu_node",
    "google_vertex_ai_endpoint_with_model_garden_deployment",
    "azurerm_linux_virtual_machine",
    "azurerm_windows_virtual_machine",
    "azurerm_virtual_machine",
    "azurerm_linux_virtual_machine_scale_set",
    "azurerm_windows_virtual_machine_scale_set",
    "azurerm_orchestrated_virtual_machine_scale_set",
    "azurerm_kubernetes_cluster",
    "azurerm_kubernetes_cluster_node_pool",
    "azurerm_machine_learning_compute_cluster",
    "azurerm_machine_learning_compute_instance",
)
BUDGET_TERRAFORM = (
    "aws_budgets_budget",
    "google_billing_budget",
    "azurerm_consumption_budget_subscription",
    "azurerm_consumption_budget_resource_group",
)
# Which Terraform attributes feed which `Resource` field (for "why unknown" messages).
_FIELD_ATTRIBUTES = {
    "instance_types": {
        "instance_type", "instance_types", "size", "vm_size", "sku", "sku_name", "machine_type",
        "accelerator_type", "accelerator_config", "guest_accelerator", "instance_groups",
        "production_variants", "compute_resources", "node_config", "default_node_pool",
        "mixed_instances_policy", "override", "launch_template", "instance_requirements",
        "virtual_machine_size", "node_pool", "deploy_config", "dedicated_resources",
        "machine_spec",
    },
    "tags": {"tags", "labels", "resource_labels", "tag", "default_tags", "default_labels"},
    "nodes_max": {
        "max_size", "desired_capacity", "scaling_config", "autoscaling", "node_count",
        "max_count", "instances", "instance_count", "max_vcpus", "target_size",
        "scale_settings", "initial_node_count", "instance_groups", "compute_resources",
        "deploy_config", "dedicated_resources", "max_replica_count", "min_replica_count",
    },
    "nodes_desired": {"desired_capacity", "desired_size", "scaling_config", "node_count"},
    "http_tokens": {"metadata_options", "http_tokens"},
    "launch_tags": {"tag_specifications"},
    "on_demand_percent_above_base": {
        "instances_distribution", "capacity_type", "priority", "scheduling", "spot",
        "preemptible", "type", "on_demand_percentage_above_base_capacity", "vm_priority",
        "mixed_instances_policy", "compute_resources", "node_config",
    },
}  # fmt: skip


def terraform_pulumi_type(tf_type: str) -> str | None:
    """The Pulumi type token whose reader understands `tf_type`: the export table, then the
    bridged providers' own Terraform-name tables, then the AWS naming rule."""
    if tf_type.startswith("azurerm_") and tf_type not in _AZURE_RESHAPED:
        return terraform_token(tf_type)  # pulumi-azure (classic) is azurerm, bridged
    if tf_type in TF_TO_PULUMI:
        return TF_TO_PULUMI[tf_type]
    return terraform_token(tf_type) or pulumi_type(tf_type, known_type)


def _wire_path(tf_type: str, dotted: str) -> str:
    """A Terraform attribute path as the wire normaliser names it (`node_config.resource_labels`
    -> `nodeConfig.resourceLabels`, ASG `tag` -> `tags`)."""
    parts = dotted.split(".")
    probe: Any = {}
    for part in reversed(parts):
        probe = {part: [probe] if probe else None}
    renamed = from_terraform(tf_type, probe)
    path = []
    node: Any = renamed
    while isinstance(node, Mapping) and node:
        key = next(iter(node))
        path.append(key)
        node = node[key]
        node = node[0] if isinstance(node, list) and node else node
    return ".".join(path) if len(path) == len(parts) else ".".join(camel(p) for p in parts)


def tag_location(tf_type: str) -> TagProperty | None:
    where = terraform_tag_property(tf_type)
    if where is None:
        return None
    return TagProperty(property=_wire_path(tf_type, where.property), shape=where.shape)


def _merged_tags(default: Any, own: Any) -> Any:
    """Terraform's `tags_all`: the provider's default tags, then the resource's own."""
    if default is None:
        return own
    if default is UNKNOWN:
        known = own if isinstance(own, Mapping) else {}
        return OpenMap(known)
    if own is UNKNOWN:
        return OpenMap(default)
    merged = {**default, **(own or {})}
    if isinstance(default, OpenMap) or isinstance(own, OpenMap):
        return OpenMap(merged, prefixes=open_prefixes(default, own))
    return merged


def _reasons(unknown: frozenset[str], sources: Mapping[str, str]) -> dict[str, str]:
    reasons = {}
    for field in unknown:
        names = _FIELD_ATTRIBUTES.get(field, set())
        for path, text in sources.items():
            if set(path.split(".")) & names:
                reasons[field] = " ".join(text.split())
                break
    return reasons


def _mentions(value: Any, key: str) -> bool:
    """True when a non-empty `key` is set anywhere in nested attributes."""
    if isinstance(value, Mapping):
        return any((k == key and v not in (None, [], {})) or _mentions(v, key)
                   for k, v in value.items())  # fmt: skip
    if isinstance(value, list):
        return any(_mentions(v, key) for v in value)
    return False


def _relative(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def from_loaded(
    loaded: Any,
    related: Callable[[Sequence[str]], list[Any]] = lambda addresses: [],
) -> Resource | None:
    """The `Resource` of one `aifinops.policies.terraform.load.TerraformResource`; None for a type of
    another provider (kubernetes, helm, null...). related: loaded resources by address."""
    tf_type = loaded.type
    token = terraform_pulumi_type(tf_type)
    location = f"{_relative(loaded.file)}:{loaded.line}"
    if token is None:
        if not tf_type.startswith(_PROVIDER_PREFIXES) or terraform_known(tf_type):
            return None
        return Resource(  # newer than the registry: say so instead of passing it
            name=loaded.address, type=tf_type, cloud=None, urn=loaded.address, taggable=True,
            unknown=frozenset({"tags"}), source=TERRAFORM, location=location,
            unknown_reasons={"tags": f"{tf_type} is not in the taggability registry"},
        )  # fmt: skip
    attributes = dict(loaded.attributes)
    where = tag_location(tf_type)
    raw_where = terraform_tag_property(tf_type)
    provider = loaded.provider
    sources = dict(loaded.unknown_sources)
    defaults = provider.default_tags if provider is not None else None
    if raw_where is not None and raw_where.property in ("tags", "labels") and defaults is not None:
        # Terraform's tags_all: the provider's default_tags (google: default_labels), then own
        attributes[raw_where.property] = _merged_tags(defaults, attributes.get(raw_where.property))
        if defaults is UNKNOWN or isinstance(defaults, OpenMap):
            sources.setdefault("default_tags", f"default_tags in {provider.source}")
    inputs = from_terraform(tf_type, attributes)
    templates = [
        (terraform_pulumi_type(t.type) or "", from_terraform(t.type, t.attributes))
        for t in related(loaded.references)
    ]
    templates = [(tok, attrs) for tok, attrs in templates if KINDS.get(tok) == LAUNCH_TEMPLATE]
    for t in related(loaded.references):
        if KINDS.get(terraform_pulumi_type(t.type) or "") == LAUNCH_TEMPLATE:
            sources.update({f"launch_template.{k}": v for k, v in t.unknown_sources.items()})
    region = provider.region if provider is not None and isinstance(provider.region, str) else None
    resource = normalize(
        token,
        loaded.address,
        inputs,
        urn=loaded.address,
        region=region,
        related=templates,
        tag_location=where,
        source=TERRAFORM,
    )
    reasons = _reasons(
        resource.unknown | ({"tags"} if not resource.tags_complete else set()), sources
    )
    if (
        "instance_types" in resource.unknown
        and "instance_types" not in reasons
        and any(_mentions(a, "instance_requirements")
                for a in [attributes, *(t.attributes for t in related(loaded.references))])
    ):  # fmt: skip
        reasons["instance_types"] = "chosen at launch by instance_requirements (attributes)"
    if loaded.created is None:
        reasons["created"] = loaded.created_source
    return replace(
        resource, type=tf_type, location=location, unknown_reasons=reasons, created=loaded.created
    )


# --- checkov's conf ---------------------------------------------------------------------------


def unwrap(value: Any) -> Any:
    """checkov conf -> plain values: one-element wrappers dropped, `__x__` keys dropped, text
    left from an expression checkov could not evaluate -> UNKNOWN; an unrendered dynamic block
    makes its block UNKNOWN."""
    if isinstance(value, list):
        if len(value) == 1 and not isinstance(value[0], Mapping):
            return unwrap(value[0])
        return [unwrap(item) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if key.startswith("__") and key.endswith("__"):
                continue
            if key == "dynamic":
                for block in v if isinstance(v, list) else [v]:
                    for name in block if isinstance(block, Mapping) else ():
                        out[str(name)] = UNKNOWN
                continue
            out[key] = unwrap(v)
        return out
    if isinstance(value, str) and _EXPRESSION.search(value.strip()):
        return UNKNOWN
    return value


def normalize_terraform(
    tf_type: str, conf: Mapping[str, Any], name: str | None = None
) -> Resource | None:
    """The `Resource` for one resource as checkov hands it over (see the module doc), or None
    for a type of another provider."""
    token = terraform_pulumi_type(tf_type)
    if token is None:
        return None
    address = str(conf.get("__address__") or name or tf_type)
    attributes = unwrap(conf)
    for meta in ("count", "for_each", "provider", "depends_on", "lifecycle"):
        attributes.pop(meta, None)
    resource = normalize(
        token,
        address,
        from_terraform(tf_type, attributes),
        urn=address,
        tag_location=tag_location(tf_type),
        source=TERRAFORM,
    )
    line = conf.get("__start_line__")
    return replace(resource, type=tf_type, location=f":{line}" if line else "")
