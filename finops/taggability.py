"""Which resource types can carry tags (AWS, Azure) or labels (GCP), and under which property.

Three registries, each derived from a real source by `scripts/gen_taggability.py` and shipped
as data, so rules never flag a resource that cannot be tagged (checkov#6924) and never miss
one that can:

- Pulumi type tokens: the installed provider SDKs' own resource signatures;
- Terraform types: the AWS provider schema (as tflint-ruleset-aws extracts it), and the
  bridged Pulumi providers' Terraform-name tables for `google_*` and `azurerm_*`;
- CloudFormation types (and `awscc_*`): the CloudFormation resource schemas' `tagging`.

Loading one costs one JSON read; the introspection runs only when regenerating.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REGISTRY_PATH = Path(__file__).parent / "data" / "taggable_types.json"
TERRAFORM_PATH = Path(__file__).parent / "data" / "taggable_terraform.json"
CLOUDFORMATION_PATH = Path(__file__).parent / "data" / "taggable_cloudformation.json"
PROVIDER_PACKAGES = ("pulumi_aws", "pulumi_gcp", "pulumi_azure_native")

# The constructor argument that carries cost-allocation metadata, per provider package. Its
# wire name is the same word. GCP's `tags` are network tags (firewall targets), not labels.
_TAG_ARGUMENT = {"pulumi_aws": "tags", "pulumi_gcp": "labels", "pulumi_azure_native": "tags"}
# GKE keeps its billing labels elsewhere: a cluster's `resource_labels` (they reach its
# node VMs and disks), a node pool's `node_config.resource_labels` (its VMs). Both are
# provider-managed labels (`effective_labels`) that Cloud Billing exports; the Terraform
# registry reads them the same way (scripts/gen_taggability.py TERRAFORM_SPECIAL).
SPECIAL = {
    "gcp:container/cluster:Cluster": {"property": "resourceLabels", "shape": "map"},
    "gcp:container/nodePool:NodePool": {"property": "nodeConfig.resourceLabels", "shape": "map"},
}


@dataclass(frozen=True)
class TagProperty:
    """Where a taggable type keeps its tags.

    property: wire name of the input ("tags" or "labels"); dotted when nested
        (`nodeConfig.resourceLabels`).
    shape: "map" ({key: value}) or "list" ([{key, value, propagateAtLaunch}], AWS ASGs).
    """

    property: str
    shape: str


@cache
def _registry() -> dict[str, dict[str, str] | None]:
    data = json.loads(REGISTRY_PATH.read_text())
    return data["types"]


def tag_property(type_token: str) -> TagProperty | None:
    """The tag property of a Pulumi resource type token, or None when it cannot carry tags.

    Unknown tokens (components, providers, types of packages not in the registry) are None.
    """
    entry = _registry().get(type_token)
    if not entry:
        return None
    return TagProperty(property=entry["property"], shape=entry["shape"])


def is_taggable(type_token: str) -> bool:
    return tag_property(type_token) is not None


def known_type(type_token: str) -> bool:
    """True when the registry has an opinion on this type (taggable or not)."""
    return type_token in _registry()


@cache
def _terraform() -> dict[str, dict[str, str]]:
    return json.loads(TERRAFORM_PATH.read_text())["types"]


@cache
def _cloudformation() -> dict[str, dict[str, str]]:
    return json.loads(CLOUDFORMATION_PATH.read_text())["types"]


def terraform_tag_property(tf_type: str) -> TagProperty | None:
    """Where a Terraform resource type keeps its tags (snake_case attribute, dotted when
    nested), or None when it cannot carry tags or the registry does not know it."""
    entry = _terraform().get(tf_type) or {}
    if "property" not in entry:
        return None
    return TagProperty(property=entry["property"], shape=entry["shape"])


def terraform_known(tf_type: str) -> bool:
    """True when the Terraform registry has an opinion on this type (taggable or not)."""
    return tf_type in _terraform()


def terraform_token(tf_type: str) -> str | None:
    """The Pulumi type token of a `google_*`, `azurerm_*` or `awscc_*` type (from the bridged
    providers' own tables); None for `aws_*` types (their tokens follow a naming rule)."""
    return (_terraform().get(tf_type) or {}).get("token")


def cloudformation_tag_property(cfn_type: str) -> TagProperty | None:
    """Where a CloudFormation type keeps its tags (`Tags`, a Key/Value list or a map)."""
    entry = _cloudformation().get(cfn_type) or {}
    if "property" not in entry:
        return None
    return TagProperty(property=entry["property"], shape=entry["shape"])


def cloudformation_known(cfn_type: str) -> bool:
    return cfn_type in _cloudformation()


def _shape_of(annotation: object) -> str:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "list" if "Sequence" in text or "List" in text else "map"


def _resource_index(package: str) -> list[dict[str, typing.Any]]:
    module = importlib.import_module(package)
    source = Path(str(module.__file__)).read_text()
    start = source.index('resource_modules="""') + len('resource_modules="""')
    end = source.index('"""', start)
    return json.loads(source[start:end])


def introspect_package(package: str) -> tuple[str, dict[str, dict[str, str] | None]]:
    """Inspect every resource class of one provider SDK: type token -> tag property or None."""
    version = importlib.metadata.version(package.replace("_", "-"))
    types: dict[str, dict[str, str] | None] = {}
    for entry in _resource_index(package):
        module = importlib.import_module(entry["fqn"])
        for token, class_name in entry["classes"].items():
            types[token] = SPECIAL.get(token) or introspect_class(
                getattr(module, class_name), _TAG_ARGUMENT[package]
            )
    return version, types


def introspect_class(resource_class: type, argument: str) -> dict[str, str] | None:
    """Tag property of one resource class from its `_internal_init` signature.

    On GCP, `labels` is also the name of things that are not resource labels (a notification
    channel's configuration, a metric descriptor's label schema). Resource labels are the ones
    the provider manages with `effective_labels`, so that output is required as well.
    """
    params = inspect.signature(resource_class._internal_init).parameters  # type: ignore[attr-defined]
    if argument not in params:
        return None
    if argument == "labels" and not hasattr(resource_class, "effective_labels"):
        return None
    return {"property": argument, "shape": _shape_of(params[argument].annotation)}
