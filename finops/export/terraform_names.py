"""Pulumi names <-> Terraform names: type tokens, property names and the few reshaped types.

Standard library only (the checkov checks import it inside checkov's virtualenv).

Types: `TYPE_TABLE` for the types this project creates whose Terraform name the generic rule
gets wrong, and the generic rule for bridged providers (pulumi-aws, pulumi-gcp wrap the
Terraform providers, so names correspond):
  `aws:<module>/<camelName>:<Name>` -> `aws_<module>_<snake_name>`, except module `ec2`, which
  Terraform leaves out (`aws:ec2/securityGroup:SecurityGroup` -> `aws_security_group`);
  `gcp:<module>/<camelName>:<Name>` -> `google_<module>_<snake_name>`.
Properties: camelCase -> snake_case, never inside map attributes (`tags`, `labels`, ...) whose
keys are data; `RENAMES` holds the block names the Pulumi schema pluralised
(`overrides` -> `override`, ASG `tags` -> `tag`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

TYPE_TABLE: dict[str, str] = {
    "aws:ec2/instance:Instance": "aws_instance",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:autoscaling/group:Group": "aws_autoscaling_group",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "aws_sagemaker_endpoint_configuration"
    ),
    "aws:sagemaker/endpoint:Endpoint": "aws_sagemaker_endpoint",
    "aws:sagemaker/model:Model": "aws_sagemaker_model",
    "aws:budgets/budget:Budget": "aws_budgets_budget",
    "aws:s3/bucketV2:BucketV2": "aws_s3_bucket",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2": (
        "aws_s3_bucket_lifecycle_configuration"
    ),
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
    "aws:s3/bucketVersioningV2:BucketVersioningV2": "aws_s3_bucket_versioning",
    "gcp:compute/instance:Instance": "google_compute_instance",
    "gcp:compute/instanceTemplate:InstanceTemplate": "google_compute_instance_template",
    "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate": (
        "google_compute_region_instance_template"
    ),
    "gcp:compute/instanceGroupManager:InstanceGroupManager": (
        "google_compute_instance_group_manager"
    ),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": (
        "google_compute_region_instance_group_manager"
    ),
    "gcp:tpu/v2Vm:V2Vm": "google_tpu_v2_vm",
    "gcp:billing/budget:Budget": "google_billing_budget",
    "gcp:serviceaccount/account:Account": "google_service_account",
    "azure-native:compute:VirtualMachineScaleSet": "azurerm_linux_virtual_machine_scale_set",
    "azure-native:compute:VirtualMachine": "azurerm_linux_virtual_machine",
    "azure-native:consumption:Budget": "azurerm_consumption_budget_subscription",
}
TF_TO_PULUMI: dict[str, str] = {}
for _token, _tf in TYPE_TABLE.items():
    TF_TO_PULUMI.setdefault(_tf, _token)
TF_TO_PULUMI["aws_s3_bucket"] = "aws:s3/bucketV2:BucketV2"

# Attributes whose value is a map of data (keys kept as written, not a block).
MAP_ATTRIBUTES = frozenset(
    {"tags", "tags_all", "labels", "metadata", "resource_labels", "environment", "parameters"}
)
# Per Terraform type: snake-cased Pulumi property path -> Terraform name of its last part.
RENAMES: dict[str, dict[tuple[str, ...], str]] = {
    "aws_autoscaling_group": {
        ("tags",): "tag",
        ("mixed_instances_policy", "launch_template", "overrides"): "override",
    },
    "aws_budgets_budget": {("cost_filters",): "cost_filter", ("notifications",): "notification"},
    "aws_s3_bucket_lifecycle_configuration": {("rules",): "rule"},
    "aws_s3_bucket_server_side_encryption_configuration": {("rules",): "rule"},
    "google_compute_instance_template": {
        ("guest_accelerators",): "guest_accelerator",
        ("disks",): "disk",
        ("network_interfaces",): "network_interface",
    },
    "google_compute_instance": {
        ("guest_accelerators",): "guest_accelerator",
        ("network_interfaces",): "network_interface",
    },
}
_PREFIX = {"aws": "aws", "gcp": "google"}
_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """`httpTokens` -> `http_tokens`; `v2Vm` -> `v2_vm`."""
    return _BOUNDARY.sub("_", name).lower()


def camel(name: str) -> str:
    """`http_tokens` -> `httpTokens`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def terraform_type(type_token: str) -> str | None:
    """The Terraform type of a Pulumi type token (table, then the generic rule), or None."""
    if type_token in TYPE_TABLE:
        return TYPE_TABLE[type_token]
    package, _, rest = type_token.partition(":")
    if package not in _PREFIX or "/" not in rest:
        return None
    module, _, name = rest.partition("/")
    name = name.split(":", 1)[0]
    parts = [_PREFIX[package]] + ([] if (package, module) == ("aws", "ec2") else [module])
    return "_".join([*parts, snake(name)])


def pulumi_type(tf_type: str, known: Any = None) -> str | None:
    """The Pulumi type token of a Terraform type: the table, else the generic rule's candidates
    that `known(token)` accepts (e.g. `aifinops.taggability.known_type`)."""
    if tf_type in TF_TO_PULUMI:
        return TF_TO_PULUMI[tf_type]
    prefix, _, rest = tf_type.partition("_")
    package = {"aws": "aws", "google": "gcp"}.get(prefix)
    if package is None or known is None:
        return None
    words = rest.split("_")
    candidates = [("ec2", words)] if package == "aws" else []
    candidates += [(words[0], words[1:])] if len(words) > 1 else []
    for module, name_words in candidates:
        name = camel("_".join(name_words))
        token = f"{package}:{module}/{name}:{name[:1].upper()}{name[1:]}"
        if known(token):
            return token
    return None


def to_terraform(tf_type: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Pulumi wire-named inputs -> Terraform attribute values (as in a plan's `values`)."""
    renames = RENAMES.get(tf_type, {})
    reshaped = _reshape_azure(tf_type, inputs)

    def convert(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = snake(str(key))
                child = (*path, name)
                tf_name = renames.get(child, name)
                if name in MAP_ATTRIBUTES and isinstance(item, Mapping):
                    out[tf_name] = {str(k): v for k, v in item.items()}
                elif isinstance(item, Mapping):
                    out[tf_name] = [convert(item, child)]  # a nested block
                else:
                    out[tf_name] = convert(item, child)
            return out
        if isinstance(value, list | tuple):
            return [convert(item, path) for item in value]
        return value

    return convert(reshaped, ())


def from_terraform(tf_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Terraform attribute values -> Pulumi wire names (the inverse of `to_terraform`; blocks
    stay lists, which the normaliser accepts)."""
    reverse = {
        (*path[:-1], tf_name): path[-1] for path, tf_name in RENAMES.get(tf_type, {}).items()
    }

    def convert(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = str(key)
                child = (*path, name)
                pulumi_name = reverse.get(child, name)
                if pulumi_name in MAP_ATTRIBUTES:
                    out[camel(pulumi_name)] = item
                else:
                    out[camel(pulumi_name)] = convert(item, (*path, pulumi_name))
            return out
        if isinstance(value, list | tuple):
            return [convert(item, path) for item in value]
        return value

    return _unshape_azure(tf_type, convert(values, ()))


def _reshape_azure(tf_type: str, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """azure-native shapes -> azurerm's flat attributes for the two types the rules read."""
    if tf_type == "azurerm_linux_virtual_machine_scale_set":
        sku = inputs.get("sku") or {}
        profile = inputs.get("virtualMachineProfile") or {}
        return {
            "sku": sku.get("name"),
            "instances": sku.get("capacity"),
            "priority": profile.get("priority", "Regular"),
            "location": inputs.get("location"),
            "tags": inputs.get("tags") or {},
        }
    if tf_type == "azurerm_consumption_budget_subscription":
        tag = (inputs.get("filter") or {}).get("tags")
        reshaped: dict[str, Any] = {"amount": inputs.get("amount"), "time_grain": "Monthly"}
        if tag:
            reshaped["filter"] = {"tag": {"name": tag.get("name"), "values": tag.get("values")}}
        return reshaped
    return inputs


def _unshape_azure(tf_type: str, values: dict[str, Any]) -> dict[str, Any]:
    def first(value: Any) -> Any:
        return value[0] if isinstance(value, list) and value else value

    if tf_type == "azurerm_linux_virtual_machine_scale_set":
        return {
            "sku": {"name": first(values.get("sku")), "capacity": first(values.get("instances"))},
            "virtualMachineProfile": {"priority": first(values.get("priority")) or "Regular"},
            "location": first(values.get("location")),
            "tags": first(values.get("tags")) or {},
        }
    if tf_type.startswith("azurerm_consumption_budget"):
        tag = first(first(values.get("filter") or {}).get("tag")) if values.get("filter") else None
        unshaped: dict[str, Any] = {"amount": first(values.get("amount"))}
        if tag:
            unshaped["filter"] = {"tags": {"name": first(tag.get("name")), "operator": "In",
                                           "values": tag.get("values")}}  # fmt: skip
        return unshaped
    return values
