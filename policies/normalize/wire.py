"""Pulumi wire-named inputs -> `Resource`.

Inputs use the providers' wire names (camelCase: `instanceType`, `tagSpecifications`,
`mixedInstancesPolicy.launchTemplate.overrides[].instanceType`). Nested objects may arrive as
an object or as a one-element list (Terraform blocks reshaped by `terraform`), and any value
may be `UNKNOWN` (not known during preview, or an unresolved reference): the field is then
named in `Resource.unknown` instead of guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from finops import tags as schema
from finops.catalog import gcp_attached_type
from finops.taggability import tag_property
from policies import facts
from policies.model import (
    BUDGET,
    ENDPOINT,
    FLEET,
    INFERENCE,
    INSTANCE,
    LAUNCH_TEMPLATE,
    OTHER,
    TPU,
    TRAINING,
    Resource,
)


class _Unknown:
    """A value that cannot be known yet (preview) or read (an unresolved reference)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

KINDS = {
    "aws:ec2/instance:Instance": INSTANCE,
    "aws:ec2/launchTemplate:LaunchTemplate": LAUNCH_TEMPLATE,
    "aws:autoscaling/group:Group": FLEET,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ENDPOINT,
    "aws:budgets/budget:Budget": BUDGET,
    "gcp:compute/instance:Instance": INSTANCE,
    "gcp:compute/instanceTemplate:InstanceTemplate": LAUNCH_TEMPLATE,
    "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate": LAUNCH_TEMPLATE,
    "gcp:compute/instanceGroupManager:InstanceGroupManager": FLEET,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": FLEET,
    "gcp:tpu/v2Vm:V2Vm": TPU,
    "gcp:billing/budget:Budget": BUDGET,
    "azure-native:compute:VirtualMachine": INSTANCE,
    "azure-native:compute:VirtualMachineScaleSet": FLEET,
    "azure-native:consumption:Budget": BUDGET,
}
_WORKLOAD_TAG = "Workload"


def obj(value: Any) -> Any:
    """A nested object: a dict as is, a one-element list's dict, UNKNOWN, else {}."""
    if value is UNKNOWN:
        return UNKNOWN
    if isinstance(value, Mapping):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        return obj(value[0])
    return {}


def items(value: Any) -> Any:
    """A list of objects: a list as is, a single dict as [dict], UNKNOWN, else []."""
    if value is UNKNOWN:
        return UNKNOWN
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [obj(v) if not isinstance(v, Mapping) and v is not UNKNOWN else v for v in value]
    return []


def dig(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]...` through objects; UNKNOWN propagates, a gap is None."""
    for key in path:
        value = obj(value)
        if value is UNKNOWN:
            return UNKNOWN
        value = value.get(key)
        if value is None:
            return None
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], Mapping):
        return value[0]  # a Terraform attribute wrapped in a list
    return value


def _number(value: Any) -> float | None:
    if value is None or value is UNKNOWN or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _last_segment(value: Any) -> Any:
    """GCP self-links (`zones/us-central1-a/machineTypes/a2-highgpu-1g`) -> the name."""
    return value.rsplit("/", 1)[-1] if isinstance(value, str) else value


class _Reader:
    """Collects the names of fields that turned out UNKNOWN."""

    def __init__(self) -> None:
        self.unknown: set[str] = set()

    def known(self, field: str, value: Any) -> Any:
        if value is UNKNOWN or _contains_unknown(value):
            self.unknown.add(field)
            return None
        return value


def _contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_unknown(v) for v in value)
    return False


def _tag_map(value: Any, shape: str) -> dict[str, str]:
    if shape == "list":  # [{key, value, propagateAtLaunch}]
        return {str(i.get("key")): str(i.get("value")) for i in items(value) if i.get("key")}
    value = obj(value)
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _region(inputs: Mapping[str, Any], default: str | None) -> str | None:
    for key in ("region", "location"):
        value = dig(inputs, key)
        if isinstance(value, str) and value:
            return value
    zone = dig(inputs, "zone")
    if isinstance(zone, str) and zone.count("-") >= 2:
        return zone.rsplit("-", 1)[0]
    return default


def _gcp_machine(inputs: Mapping[str, Any], reader: _Reader) -> tuple[str, ...]:
    machine = reader.known("instance_types", _last_segment(dig(inputs, "machineType")))
    accelerators = reader.known("instance_types", items(inputs.get("guestAccelerators")))
    if not machine:
        return ()
    if machine.startswith("n1-") and accelerators:
        first = accelerators[0]
        kind = _last_segment(dig(first, "type"))
        count = _int(dig(first, "count")) or 1
        return (gcp_attached_type(machine, str(kind), count),)
    return (str(machine),)


def _gcp_spot(inputs: Mapping[str, Any]) -> Any:
    scheduling = obj(inputs.get("scheduling"))
    if scheduling is UNKNOWN:
        return UNKNOWN
    model = dig(scheduling, "provisioningModel")
    return model == "SPOT" or dig(scheduling, "preemptible") is True


def _budget_projects(type_token: str, inputs: Mapping[str, Any], reader: _Reader) -> Any:
    """Project values a budget's filter covers; () = account-wide; None = no project."""
    if type_token.startswith("aws:"):
        filters = reader.known("budget_projects", items(inputs.get("costFilters")))
        if filters is None:
            return None
        if not filters:
            return ()
        projects = []
        for item in filters:
            if dig(item, "name") != "TagKeyValue":
                continue
            values = dig(item, "values")
            for value in [values] if isinstance(values, str) else values or []:
                key, _, project = str(value).partition("$")
                if key.removeprefix("user:") == "Project" and project:
                    projects.append(project)
        return tuple(projects) if projects else None
    if type_token.startswith("gcp:"):
        labels = reader.known("budget_projects", dig(inputs, "budgetFilter", "labels"))
        if not labels:
            return ()
        value = obj(labels).get(schema.spell_key("Project", "gcp"))
        values = value if isinstance(value, list) else [value] if value else []
        return tuple(str(v) for v in values) or None
    tag_filter = reader.known("budget_projects", dig(inputs, "filter", "tags"))
    if not tag_filter:
        return ()
    tag_filter = obj(tag_filter)
    if tag_filter.get("name") != "Project":
        return None
    values = tag_filter.get("values") or []
    return tuple(str(v) for v in ([values] if isinstance(values, str) else values)) or None


def _budget_limit(type_token: str, inputs: Mapping[str, Any]) -> float | None:
    if type_token.startswith("aws:"):
        return _number(dig(inputs, "limitAmount"))
    if type_token.startswith("gcp:"):
        return _number(dig(inputs, "amount", "specifiedAmount", "units"))
    return _number(dig(inputs, "amount"))


def _workload(
    kind: str, tags: Mapping[str, str], cloud: str | None, component: str, accelerated: bool
) -> str | None:
    declared = str(tags.get(schema.spell_key(_WORKLOAD_TAG, cloud or "aws")) or "").lower()
    if declared in (TRAINING, INFERENCE):
        return declared
    if "Inference" in component or kind == ENDPOINT:
        return INFERENCE
    if "Training" in component or (accelerated and kind in (INSTANCE, LAUNCH_TEMPLATE, FLEET, TPU)):
        return TRAINING
    return None


def normalize(
    type_token: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    urn: str = "",
    region: str | None = None,
    component: str = "",
    related: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> Resource:
    """The `Resource` for one Pulumi resource.

    region: the provider's region when the inputs name none. component: the enclosing
    component's type token. related: (type token, inputs) of resources this one uses, such as
    the launch template of an Auto Scaling group or the template of a managed instance group.
    """
    cloud = schema.cloud_of(type_token)
    kind = KINDS.get(type_token, OTHER)
    reader = _Reader()
    where = tag_property(type_token)
    tags: dict[str, str] = {}
    if where is not None:
        raw = reader.known("tags", inputs.get(where.property))
        tags = _tag_map(raw, where.shape) if raw is not None else {}
    region = _region(inputs, region)
    instance_types: tuple[str, ...] = ()
    launch_tags: dict[str, dict[str, str]] | None = None
    http_tokens = None
    nodes_max = nodes_desired = on_demand_base = None
    on_demand_percent: float | None = None
    budget_projects = None
    budget_limit = None

    templates = [inputs for token, inputs in related if KINDS.get(token) == LAUNCH_TEMPLATE]
    if type_token in ("aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate"):
        instance_type = reader.known("instance_types", dig(inputs, "instanceType"))
        instance_types = (str(instance_type),) if instance_type else ()
        http_tokens = reader.known("http_tokens", dig(inputs, "metadataOptions", "httpTokens"))
        if kind == LAUNCH_TEMPLATE:
            specs = reader.known("launch_tags", items(inputs.get("tagSpecifications")))
            launch_tags = {
                str(dig(spec, "resourceType")): _tag_map(spec.get("tags"), "map")
                for spec in specs or []
            }
    elif type_token == "aws:autoscaling/group:Group":
        nodes_max = _int(reader.known("nodes_max", dig(inputs, "maxSize")))
        desired = reader.known("nodes_desired", dig(inputs, "desiredCapacity"))
        nodes_desired = _int(desired if desired is not None else dig(inputs, "minSize"))
        policy = obj(inputs.get("mixedInstancesPolicy"))
        overrides = reader.known(
            "instance_types", items(dig(policy, "launchTemplate", "overrides"))
        )
        found = [str(dig(o, "instanceType")) for o in overrides or [] if dig(o, "instanceType")]
        found += [str(dig(t, "instanceType")) for t in templates if dig(t, "instanceType")]
        instance_types = tuple(dict.fromkeys(found))
        if policy:
            distribution = reader.known(
                "on_demand_percent_above_base", obj(dig(policy, "instancesDistribution"))
            )
            on_demand_base = _int(dig(distribution or {}, "onDemandBaseCapacity")) or 0
            percent = _number(dig(distribution or {}, "onDemandPercentageAboveBaseCapacity"))
            on_demand_percent = (
                None if distribution is None else 100.0 if percent is None else percent
            )
        else:
            spot = any(dig(t, "instanceMarketOptions", "marketType") == "spot" for t in templates)
            on_demand_base, on_demand_percent = 0, 0.0 if spot else 100.0
    elif type_token == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        variants = reader.known("instance_types", items(inputs.get("productionVariants")))
        instance_types = tuple(
            str(dig(v, "instanceType")) for v in variants or [] if dig(v, "instanceType")
        )
        counts = [_int(dig(v, "initialInstanceCount")) or 1 for v in variants or []]
        nodes_max = max(counts) if counts else None
    elif type_token.startswith("gcp:compute/") and kind in (INSTANCE, LAUNCH_TEMPLATE):
        instance_types = _gcp_machine(inputs, reader)
    elif type_token.startswith("gcp:compute/") and kind == FLEET:
        nodes_max = nodes_desired = _int(reader.known("nodes_max", dig(inputs, "targetSize")))
        found_types: list[str] = []
        spot_flags = []
        for template in templates:
            found_types += _gcp_machine(template, reader)
            spot_flags.append(_gcp_spot(template))
        instance_types = tuple(dict.fromkeys(found_types))
        if UNKNOWN in spot_flags:
            reader.unknown.add("on_demand_percent_above_base")
        elif spot_flags:
            on_demand_base, on_demand_percent = 0, 0.0 if all(spot_flags) else 100.0
    elif type_token == "gcp:tpu/v2Vm:V2Vm":
        accelerator_type = reader.known("instance_types", dig(inputs, "acceleratorType"))
        instance_types = (str(accelerator_type),) if accelerator_type else ()
    elif type_token == "azure-native:compute:VirtualMachineScaleSet":
        size = reader.known("instance_types", dig(inputs, "sku", "name"))
        instance_types = (str(size),) if size else ()
        nodes_max = nodes_desired = _int(reader.known("nodes_max", dig(inputs, "sku", "capacity")))
        priority = reader.known(
            "on_demand_percent_above_base", dig(inputs, "virtualMachineProfile", "priority")
        )
        mix = obj(inputs.get("priorityMixPolicy"))
        on_demand_base = _int(dig(mix, "baseRegularPriorityCount")) or 0 if mix else 0
        if "on_demand_percent_above_base" not in reader.unknown:
            regular = _number(dig(mix, "regularPriorityPercentageAboveBase")) if mix else None
            spot = str(priority or "").lower() == "spot"
            on_demand_percent = (regular or 0.0) if spot else 100.0
    elif type_token == "azure-native:compute:VirtualMachine":
        size = reader.known("instance_types", dig(inputs, "hardwareProfile", "vmSize"))
        instance_types = (str(size),) if size else ()
    elif kind == BUDGET:
        budget_projects = _budget_projects(type_token, inputs, reader)
        budget_limit = _budget_limit(type_token, inputs)

    accelerated = any(facts.instance(t, region, cloud) for t in instance_types)
    return Resource(
        name=name,
        type=type_token,
        cloud=cloud,
        kind=kind,
        urn=urn,
        taggable=where is not None,
        tags=tags,
        launch_tags=launch_tags,
        instance_types=instance_types,
        region=region,
        workload=_workload(kind, tags, cloud, component, accelerated),
        nodes_max=nodes_max,
        nodes_desired=nodes_desired,
        on_demand_base=on_demand_base,
        on_demand_percent_above_base=on_demand_percent,
        http_tokens=str(http_tokens) if http_tokens else None,
        budget_projects=budget_projects,
        budget_limit_usd=budget_limit,
        unknown=frozenset(reader.unknown),
        component=component,
    )
