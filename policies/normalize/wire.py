"""Pulumi wire-named inputs -> `Resource`.

Inputs use the providers' wire names (camelCase: `instanceType`, `tagSpecifications`,
`mixedInstancesPolicy.launchTemplate.overrides[].instanceType`). Nested objects may arrive as
an object or as a one-element list (Terraform blocks reshaped by `terraform`), and any value
may be `UNKNOWN` (not known during preview, or an unresolved reference): the field is then
named in `Resource.unknown` instead of guessed.

One reader per kind of resource that buys accelerators, keyed by Pulumi type token: the AWS
classic, AWS native (the CloudFormation shapes, also `awscc_*` Terraform types), GCP, Azure
classic (`azurerm_*` Terraform types) and Azure native providers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aifinops import tags as schema
from aifinops.catalog import gcp_attached_type
from aifinops.policies import facts
from aifinops.policies.model import (
    BUDGET,
    ENDPOINT,
    FLEET,
    INFERENCE,
    INSTANCE,
    LAUNCH_TEMPLATE,
    OTHER,
    PULUMI,
    TPU,
    TRAINING,
    Resource,
)
from aifinops.policies.values import UNKNOWN, OpenMap, contains_unknown, open_prefixes
from aifinops.taggability import TagProperty, tag_property

__all__ = ["KINDS", "UNKNOWN", "UNKNOWN_TAG_VALUE", "normalize"]

UNKNOWN_TAG_VALUE = "(unknown)"
"""A tag whose key is set but whose value cannot be read."""

KINDS = {
    "aws:ec2/instance:Instance": INSTANCE,
    "aws:ec2/launchTemplate:LaunchTemplate": LAUNCH_TEMPLATE,
    "aws:autoscaling/group:Group": FLEET,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ENDPOINT,
    "aws-native:sagemaker:EndpointConfig": ENDPOINT,
    "aws:sagemaker/notebookInstance:NotebookInstance": INSTANCE,
    "aws-native:sagemaker:NotebookInstance": INSTANCE,
    "aws-native:sagemaker:Cluster": FLEET,
    "aws:eks/nodeGroup:NodeGroup": FLEET,
    "aws-native:eks:Nodegroup": FLEET,
    "aws:batch/computeEnvironment:ComputeEnvironment": FLEET,
    "aws-native:batch:ComputeEnvironment": FLEET,
    "aws:budgets/budget:Budget": BUDGET,
    "gcp:compute/instance:Instance": INSTANCE,
    "gcp:compute/instanceTemplate:InstanceTemplate": LAUNCH_TEMPLATE,
    "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate": LAUNCH_TEMPLATE,
    "gcp:compute/instanceGroupManager:InstanceGroupManager": FLEET,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": FLEET,
    "gcp:compute/resizeRequest:ResizeRequest": FLEET,
    "gcp:compute/regionResizeRequest:RegionResizeRequest": FLEET,
    "gcp:container/cluster:Cluster": FLEET,
    "gcp:container/nodePool:NodePool": FLEET,
    "gcp:tpu/v2Vm:V2Vm": TPU,
    "gcp:tpu/node:Node": TPU,
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": ENDPOINT,
    "gcp:billing/budget:Budget": BUDGET,
    "azure-native:compute:VirtualMachine": INSTANCE,
    "azure-native:compute:VirtualMachineScaleSet": FLEET,
    "azure-native:consumption:Budget": BUDGET,
    "azure:compute/linuxVirtualMachine:LinuxVirtualMachine": INSTANCE,
    "azure:compute/windowsVirtualMachine:WindowsVirtualMachine": INSTANCE,
    "azure:compute/virtualMachine:VirtualMachine": INSTANCE,
    "azure:compute/linuxVirtualMachineScaleSet:LinuxVirtualMachineScaleSet": FLEET,
    "azure:compute/windowsVirtualMachineScaleSet:WindowsVirtualMachineScaleSet": FLEET,
    "azure:compute/orchestratedVirtualMachineScaleSet:OrchestratedVirtualMachineScaleSet": FLEET,
    "azure:containerservice/kubernetesClusterNodePool:KubernetesClusterNodePool": FLEET,
    "azure:containerservice/kubernetesCluster:KubernetesCluster": FLEET,
    "azure:machinelearning/computeCluster:ComputeCluster": FLEET,
    "azure:machinelearning/computeInstance:ComputeInstance": INSTANCE,
}
_WORKLOAD_TAG = "Workload"
_USE_REGISTRY: Any = object()


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


def first(value: Mapping[str, Any], *names: str) -> Any:
    """The first of `names` present in `value` (providers spell some fields two ways)."""
    for name in names:
        if name in value and value[name] is not None:
            return value[name]
    return None


def _number(value: Any) -> float | None:
    if value is None or value is UNKNOWN or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and math.isfinite(number) else None


def _last_segment(value: Any) -> Any:
    """GCP self-links (`zones/us-central1-a/machineTypes/a2-highgpu-1g`) -> the name."""
    return value.rsplit("/", 1)[-1] if isinstance(value, str) else value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str)]
    return []


class _Reader:
    """What one normalisation found: fields that turned out UNKNOWN, and the facts read."""

    def __init__(self, inputs: Mapping[str, Any], related: list[Mapping[str, Any]]) -> None:
        self.inputs = inputs
        self.templates = related
        self.unknown: set[str] = set()
        self.fields: dict[str, Any] = {}

    def known(self, field: str, value: Any) -> Any:
        if contains_unknown(value):
            self.unknown.add(field)
            return None
        return value

    def set(self, **fields: Any) -> None:
        self.fields.update(fields)

    def types(self, *names: Any) -> None:
        found = [str(n) for n in names if n]
        self.fields["instance_types"] = tuple(dict.fromkeys(found))


def _entries(r: _Reader, field: str, value: Any) -> list[Any]:
    """The readable entries of a list of blocks; the field is unknown when the list or one of
    its entries is (an unknown attribute inside an entry is that attribute's business)."""
    found = items(value)
    if found is UNKNOWN:
        r.unknown.add(field)
        return []
    if any(e is UNKNOWN for e in found):
        r.unknown.add(field)
    return [e for e in found if e is not UNKNOWN]


def _tag_map(value: Any, shape: str) -> dict[str, str]:
    pairs: list[tuple[Any, Any]]
    if shape == "list":  # [{key, value, propagateAtLaunch}]
        pairs = [(dig(i, "key"), dig(i, "value")) for i in items(value) if i is not UNKNOWN]
    else:
        mapping = obj(value)
        pairs = list(mapping.items()) if isinstance(mapping, Mapping) else []
    found: dict[str, str] = {}
    for key, item in pairs:
        if key is None or key is UNKNOWN or item is None:
            continue
        found[str(key)] = UNKNOWN_TAG_VALUE if item is UNKNOWN else str(item)
    return found


def _tags(
    inputs: Mapping[str, Any], where: TagProperty, reader: _Reader
) -> tuple[dict[str, str], bool, tuple[str, ...] | None]:
    """(tags, complete, prefixes of the keys not read). A list of tags whose entries cannot
    all be read, or an `OpenMap`, is incomplete: the keys read are there, others may be."""
    raw = (
        dig(inputs, *where.property.split("."))
        if "." in where.property
        else inputs.get(where.property)
    )
    if raw is UNKNOWN:
        reader.unknown.add("tags")
        return {}, True, None
    if raw is None:
        return {}, True, None
    if where.shape != "list":
        if isinstance(raw, OpenMap):
            return _tag_map(raw, "map"), False, raw.prefixes
        return _tag_map(raw, "map"), True, None
    entries = items(raw)
    if entries is UNKNOWN:
        reader.unknown.add("tags")
        return {}, True, None
    unread = [e for e in entries if e is UNKNOWN or isinstance(e, OpenMap)
              or contains_unknown(dig(e, "key"))]  # fmt: skip
    if not unread:
        return _tag_map(entries, "list"), True, None
    prefixes = open_prefixes(*[e if isinstance(e, OpenMap) else UNKNOWN for e in unread])
    readable = [e for e in entries if e not in unread]
    return _tag_map(readable, "list"), False, prefixes


# --- readers, one per kind of accelerator resource ------------------------------------------


def _aws_instance(r: _Reader) -> None:
    inputs = r.inputs
    r.types(r.known("instance_types", dig(inputs, "instanceType")))
    r.set(http_tokens=r.known("http_tokens", dig(inputs, "metadataOptions", "httpTokens")))
    if inputs.get("instanceRequirements") not in (None, [], {}):
        r.unknown.add("instance_types")  # attribute-based selection: any matching type


def _aws_launch_template(r: _Reader) -> None:
    _aws_instance(r)
    launched: dict[str, dict[str, str]] = {}
    for spec in _entries(r, "launch_tags", r.inputs.get("tagSpecifications")):
        kind, tags = r.known("launch_tags", dig(spec, "resourceType")), spec.get("tags")
        if tags is UNKNOWN or isinstance(tags, OpenMap):
            r.unknown.add("launch_tags")
        if kind:
            launched[str(kind)] = _tag_map(tags if tags is not UNKNOWN else {}, "map")
    r.set(launch_tags=launched)


def _override_types(r: _Reader, overrides: list[Any]) -> list[str]:
    found = [r.known("instance_types", dig(o, "instanceType")) for o in overrides]
    return [str(t) for t in found if t]


def _aws_group(r: _Reader) -> None:
    inputs = r.inputs
    nodes_max = _int(r.known("nodes_max", dig(inputs, "maxSize")))
    desired = r.known("nodes_desired", dig(inputs, "desiredCapacity"))
    r.set(nodes_max=nodes_max, nodes_desired=_int(desired if desired is not None
                                                  else dig(inputs, "minSize")))  # fmt: skip
    policy = obj(inputs.get("mixedInstancesPolicy"))
    if policy is UNKNOWN:
        r.unknown.update({"instance_types", "on_demand_percent_above_base"})
        return
    launch = obj(policy.get("launchTemplate")) if policy else {}
    overrides = _entries(
        r,
        "instance_types",
        UNKNOWN if launch is UNKNOWN else first(launch or {}, "overrides", "override"),
    )
    found = _override_types(r, overrides)
    found += [str(dig(t, "instanceType")) for t in r.templates if dig(t, "instanceType")]
    if not found and any(contains_unknown(dig(t, "instanceType")) for t in r.templates):
        r.unknown.add("instance_types")
    r.types(*found)
    if policy:
        distribution = obj(dig(policy, "instancesDistribution"))
        if distribution is UNKNOWN:
            r.unknown.add("on_demand_percent_above_base")
            return
        field = "on_demand_percent_above_base"
        base = r.known(field, dig(distribution, "onDemandBaseCapacity"))
        percent = _number(r.known(field, dig(distribution, "onDemandPercentageAboveBaseCapacity")))
        r.set(on_demand_base=_int(base) or 0,
              on_demand_percent_above_base=100.0 if percent is None else percent)  # fmt: skip
    else:
        spot = any(dig(t, "instanceMarketOptions", "marketType") == "spot" for t in r.templates)
        r.set(on_demand_base=0, on_demand_percent_above_base=0.0 if spot else 100.0)


def _aws_endpoint(r: _Reader) -> None:
    variants = _entries(r, "instance_types", r.inputs.get("productionVariants"))
    counts = []
    for variant in variants:
        name = r.known("instance_types", dig(variant, "instanceType"))
        count = r.known("nodes_max", dig(variant, "initialInstanceCount"))
        if name:
            counts.append((str(name), _int(count) or 1))
    r.types(*[name for name, _ in counts])
    r.set(nodes_max=max((n for _, n in counts), default=None), node_counts=tuple(counts) or None)


def _vertex_deployment(r: _Reader) -> None:
    """A Vertex AI deployment on dedicated machines: the TPU slice of its machine type, at
    most `maxReplicaCount` replicas, on demand unless `spot`."""
    resources = dig(r.inputs, "deployConfig", "dedicatedResources")
    machine = r.known("instance_types", dig(resources, "machineSpec", "machineType"))
    if machine:
        r.types(facts.GKE_TPU_MACHINES.get(str(machine), str(machine)))
    most = dig(resources, "maxReplicaCount")
    most = _int(r.known("nodes_max", dig(resources, "minReplicaCount") if most is None else most))
    r.set(nodes_max=most, nodes_desired=_int(dig(resources, "minReplicaCount")))
    spot = r.known("on_demand_percent_above_base", dig(resources, "spot"))
    if "on_demand_percent_above_base" not in r.unknown:
        r.set(on_demand_base=0, on_demand_percent_above_base=0.0 if spot else 100.0)


def _aws_notebook(r: _Reader) -> None:
    r.types(r.known("instance_types", dig(r.inputs, "instanceType")))


def _aws_hyperpod(r: _Reader) -> None:
    groups = _entries(r, "instance_types", r.inputs.get("instanceGroups"))
    counts = []
    for group in groups:
        name = r.known("instance_types", dig(group, "instanceType"))
        count = r.known("nodes_max", dig(group, "instanceCount"))
        if name:
            counts.append((str(name), _int(count) or 0))
    r.types(*[name for name, _ in counts])
    if "nodes_max" not in r.unknown:
        r.set(node_counts=tuple(counts), nodes_max=sum(n for _, n in counts),
              nodes_desired=sum(n for _, n in counts))  # fmt: skip


def _capacity_share(r: _Reader, capacity: Any, spot_values: tuple[str, ...]) -> None:
    """On-demand share from a capacity type / priority field (spot, or on demand)."""
    value = r.known("on_demand_percent_above_base", capacity)
    if "on_demand_percent_above_base" in r.unknown:
        return
    spot = str(value or "").upper() in spot_values
    r.set(on_demand_base=0, on_demand_percent_above_base=0.0 if spot else 100.0)


def _aws_node_group(r: _Reader) -> None:
    inputs = r.inputs
    listed = r.known("instance_types", first(inputs, "instanceTypes"))
    found = _strings(listed)
    if not found and listed is None:
        found = [str(dig(t, "instanceType")) for t in r.templates if dig(t, "instanceType")]
        if not found and any(contains_unknown(dig(t, "instanceType")) for t in r.templates):
            r.unknown.add("instance_types")
        if not found and "instance_types" not in r.unknown and not r.templates:
            launch = inputs.get("launchTemplate")
            if launch not in (None, [], {}):
                r.unknown.add("instance_types")  # a template this run cannot see
    r.types(*found)
    scaling = obj(inputs.get("scalingConfig"))
    r.set(
        nodes_max=_int(r.known("nodes_max", dig(scaling, "maxSize"))),
        nodes_desired=_int(r.known("nodes_desired", dig(scaling, "desiredSize"))),
    )
    _capacity_share(r, dig(inputs, "capacityType") or "ON_DEMAND", ("SPOT",))


def _aws_batch(r: _Reader) -> None:
    inputs = r.inputs
    resources = obj(inputs.get("computeResources"))
    if resources is UNKNOWN:
        r.unknown.update({"instance_types", "nodes_max"})
        return
    names = r.known("instance_types", first(resources or {}, "instanceTypes", "instanceType"))
    found: list[str] = []
    for name in _strings(names):
        if "." not in name and name != "optimal":
            name = facts.largest_of_family(name, "aws") or name  # Batch may pick any size
        found.append(name)
    found += [str(dig(t, "instanceType")) for t in r.templates if dig(t, "instanceType")]
    r.types(*found)
    r.set(max_vcpus=_int(r.known("nodes_max", first(resources, "maxVcpus", "maxvCpus"))))
    kind = r.known("on_demand_percent_above_base", dig(resources, "type"))
    if kind is not None:
        r.set(on_demand_base=0, on_demand_percent_above_base=0.0
              if str(kind).upper() in ("SPOT", "FARGATE_SPOT") else 100.0)  # fmt: skip


def _gcp_machine(inputs: Mapping[str, Any], r: _Reader) -> list[str]:
    machine = r.known("instance_types", _last_segment(dig(inputs, "machineType")))
    accelerators = _entries(r, "instance_types", first(inputs, "guestAccelerators",
                                                       "guestAccelerator"))  # fmt: skip
    if not machine:
        return []
    machine = facts.GKE_TPU_MACHINES.get(str(machine), machine)
    if str(machine).startswith("n1-") and accelerators:
        accelerator = accelerators[0]
        kind = _last_segment(r.known("instance_types", dig(accelerator, "type")))
        count = _int(r.known("instance_types", dig(accelerator, "count"))) or 1
        return [gcp_attached_type(str(machine), str(kind), count)]
    return [str(machine)]


def _gcp_spot(inputs: Mapping[str, Any]) -> Any:
    scheduling = obj(inputs.get("scheduling"))
    if scheduling is UNKNOWN:
        return UNKNOWN
    model = dig(scheduling, "provisioningModel")
    return model == "SPOT" or dig(scheduling, "preemptible") is True


def _gcp_instance(r: _Reader) -> None:
    r.types(*_gcp_machine(r.inputs, r))


def _gcp_group(r: _Reader) -> None:
    """A managed instance group, or a resize request that adds VMs to one (`resizeBy`): the
    instance types are those of the group's template."""
    size = _int(r.known("nodes_max", first(r.inputs, "targetSize", "resizeBy")))
    r.set(nodes_max=size, nodes_desired=size)
    found: list[str] = []
    spot_flags = []
    for template in r.templates:
        found += _gcp_machine(template, r)
        spot_flags.append(_gcp_spot(template))
    r.types(*found)
    if UNKNOWN in spot_flags:
        r.unknown.add("on_demand_percent_above_base")
    elif spot_flags:
        r.set(on_demand_base=0, on_demand_percent_above_base=0.0 if all(spot_flags) else 100.0)


def _gke_pool(pool: Mapping[str, Any], r: _Reader) -> None:
    config = obj(pool.get("nodeConfig"))
    if config is UNKNOWN:
        r.unknown.add("instance_types")
        return
    r.types(*_gcp_machine(config or {}, r))
    autoscaling = obj(pool.get("autoscaling"))
    per_zone = _gke_zones(pool, r)
    total = dig(autoscaling, "totalMaxNodeCount") if autoscaling else None
    if autoscaling and autoscaling is not UNKNOWN and total is None:
        total = r.known("nodes_max", dig(autoscaling, "maxNodeCount"))
        total = (_int(total) or 0) * per_zone if total is not None else None
    if total is None:
        count = r.known("nodes_max", first(pool, "nodeCount", "initialNodeCount"))
        total = (_int(count) or 0) * per_zone if count is not None else None
    desired = _int(first(pool, "nodeCount", "initialNodeCount"))
    r.set(nodes_max=_int(total), nodes_desired=desired * per_zone if desired is not None else None)
    spot = dig(config, "spot") is True or dig(config, "preemptible") is True
    if contains_unknown(dig(config, "spot")) or contains_unknown(dig(config, "preemptible")):
        r.unknown.add("on_demand_percent_above_base")
    else:
        r.set(on_demand_base=0, on_demand_percent_above_base=0.0 if spot else 100.0)


def _gke_zones(pool: Mapping[str, Any], r: _Reader) -> int:
    """How many zones a GKE pool's per-zone node counts apply to: its node locations, else
    one for a zonal cluster and three for a regional one (GKE's default spread)."""
    zones = pool.get("nodeLocations")
    if isinstance(zones, list) and zones and UNKNOWN not in zones:
        return len(zones)
    location = pool.get("location")
    if zones is UNKNOWN or (isinstance(zones, list) and UNKNOWN in zones) or location is UNKNOWN:
        r.unknown.add("nodes_max")
        return 1
    if isinstance(location, str) and location.count("-") == 1:
        return 3
    return 1


def _gke_node_pool(r: _Reader) -> None:
    _gke_pool(r.inputs, r)


def _gke_cluster(r: _Reader) -> None:
    """A cluster's default node pool (unless removed) and any inline `node_pool` blocks."""
    inputs = r.inputs
    pools = [p for p in items(inputs.get("nodePools") or inputs.get("nodePool")) or []
             if p is not UNKNOWN]  # fmt: skip
    removed = dig(inputs, "removeDefaultNodePool")
    if removed is not True and inputs.get("nodeConfig") not in (None, [], {}):
        pools.insert(0, {"nodeConfig": inputs.get("nodeConfig"),
                         "initialNodeCount": inputs.get("initialNodeCount")})  # fmt: skip
    found: list[str] = []
    for pool in pools:
        _gke_pool(pool, r)
        found += list(r.fields.get("instance_types", ()))
    r.types(*found)


def _tpu(r: _Reader) -> None:
    inputs = r.inputs
    accelerator = r.known("instance_types", dig(inputs, "acceleratorType"))
    if not accelerator:
        config = obj(inputs.get("acceleratorConfig"))
        kind = r.known("instance_types", dig(config, "type")) if config else None
        topology = r.known("instance_types", dig(config, "topology")) if config else None
        if kind and topology:
            chips = math.prod(int(p) for p in str(topology).split("x") if p.isdigit())
            prefix = facts.TPU_CONFIG_TYPES.get(str(kind).upper(), str(kind).lower())
            # v5p and earlier count TensorCores (two per chip) in the type name
            accelerator = f"{prefix}-{chips * (2 if prefix in ('v5p', 'v4', 'v3', 'v2') else 1)}"
    r.types(accelerator)


def _azure_native_vmss(r: _Reader) -> None:
    inputs = r.inputs
    r.types(r.known("instance_types", dig(inputs, "sku", "name")))
    capacity = _int(r.known("nodes_max", dig(inputs, "sku", "capacity")))
    r.set(nodes_max=capacity, nodes_desired=capacity)
    priority = r.known(
        "on_demand_percent_above_base", dig(inputs, "virtualMachineProfile", "priority")
    )
    mix = obj(inputs.get("priorityMixPolicy"))
    base = _int(dig(mix, "baseRegularPriorityCount")) or 0 if mix else 0
    if "on_demand_percent_above_base" not in r.unknown:
        regular = _number(dig(mix, "regularPriorityPercentageAboveBase")) if mix else None
        spot = str(priority or "").lower() == "spot"
        r.set(on_demand_base=base, on_demand_percent_above_base=(regular or 0.0) if spot else 100.0)


def _azure_native_vm(r: _Reader) -> None:
    r.types(r.known("instance_types", dig(r.inputs, "hardwareProfile", "vmSize")))


def _azure_vm(r: _Reader) -> None:
    r.types(r.known("instance_types", first(r.inputs, "size", "vmSize", "virtualMachineSize")))


def _azure_vmss(r: _Reader) -> None:
    inputs = r.inputs
    r.types(r.known("instance_types", first(inputs, "sku", "skuName")))
    instances = _int(r.known("nodes_max", dig(inputs, "instances")))
    r.set(nodes_max=instances, nodes_desired=instances)
    _capacity_share(r, dig(inputs, "priority") or "Regular", ("SPOT",))


def _aks_pool(r: _Reader, pool: Mapping[str, Any]) -> None:
    r.types(r.known("instance_types", first(pool, "vmSize")))
    autoscale = first(pool, "autoScalingEnabled", "enableAutoScaling")
    count = first(pool, "maxCount") if autoscale is True else first(pool, "nodeCount")
    r.set(nodes_max=_int(r.known("nodes_max", count)),
          nodes_desired=_int(first(pool, "nodeCount", "minCount")))  # fmt: skip
    _capacity_share(r, dig(pool, "priority") or "Regular", ("SPOT",))


def _aks_node_pool(r: _Reader) -> None:
    _aks_pool(r, r.inputs)


def _aks_cluster(r: _Reader) -> None:
    pool = obj(r.inputs.get("defaultNodePool"))
    if pool is UNKNOWN:
        r.unknown.add("instance_types")
        return
    _aks_pool(r, pool or {})


def _aml_cluster(r: _Reader) -> None:
    inputs = r.inputs
    r.types(r.known("instance_types", first(inputs, "vmSize")))
    r.set(nodes_max=_int(r.known("nodes_max", dig(inputs, "scaleSettings", "maxNodeCount"))))
    _capacity_share(r, dig(inputs, "vmPriority") or "Dedicated", ("LOWPRIORITY",))


READERS: dict[str, Callable[[_Reader], None]] = {
    "aws:ec2/instance:Instance": _aws_instance,
    "aws:ec2/launchTemplate:LaunchTemplate": _aws_launch_template,
    "aws:autoscaling/group:Group": _aws_group,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _aws_endpoint,
    "aws-native:sagemaker:EndpointConfig": _aws_endpoint,
    "aws:sagemaker/notebookInstance:NotebookInstance": _aws_notebook,
    "aws-native:sagemaker:NotebookInstance": _aws_notebook,
    "aws-native:sagemaker:Cluster": _aws_hyperpod,
    "aws:eks/nodeGroup:NodeGroup": _aws_node_group,
    "aws-native:eks:Nodegroup": _aws_node_group,
    "aws:batch/computeEnvironment:ComputeEnvironment": _aws_batch,
    "aws-native:batch:ComputeEnvironment": _aws_batch,
    "gcp:compute/instance:Instance": _gcp_instance,
    "gcp:compute/instanceTemplate:InstanceTemplate": _gcp_instance,
    "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate": _gcp_instance,
    "gcp:compute/instanceGroupManager:InstanceGroupManager": _gcp_group,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": _gcp_group,
    "gcp:compute/resizeRequest:ResizeRequest": _gcp_group,
    "gcp:compute/regionResizeRequest:RegionResizeRequest": _gcp_group,
    "gcp:container/cluster:Cluster": _gke_cluster,
    "gcp:container/nodePool:NodePool": _gke_node_pool,
    "gcp:tpu/v2Vm:V2Vm": _tpu,
    "gcp:tpu/node:Node": _tpu,
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": _vertex_deployment,
    "azure-native:compute:VirtualMachineScaleSet": _azure_native_vmss,
    "azure-native:compute:VirtualMachine": _azure_native_vm,
    "azure:compute/linuxVirtualMachine:LinuxVirtualMachine": _azure_vm,
    "azure:compute/windowsVirtualMachine:WindowsVirtualMachine": _azure_vm,
    "azure:compute/virtualMachine:VirtualMachine": _azure_vm,
    "azure:compute/linuxVirtualMachineScaleSet:LinuxVirtualMachineScaleSet": _azure_vmss,
    "azure:compute/windowsVirtualMachineScaleSet:WindowsVirtualMachineScaleSet": _azure_vmss,
    "azure:compute/orchestratedVirtualMachineScaleSet:OrchestratedVirtualMachineScaleSet": (
        _azure_vmss
    ),
    "azure:containerservice/kubernetesClusterNodePool:KubernetesClusterNodePool": _aks_node_pool,
    "azure:containerservice/kubernetesCluster:KubernetesCluster": _aks_cluster,
    "azure:machinelearning/computeCluster:ComputeCluster": _aml_cluster,
    "azure:machinelearning/computeInstance:ComputeInstance": _azure_vm,
}


# --- budgets --------------------------------------------------------------------------------


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


# --- the normaliser ---------------------------------------------------------------------------


def _region(inputs: Mapping[str, Any], default: str | None) -> str | None:
    for key in ("region", "location"):
        value = dig(inputs, key)
        if isinstance(value, str) and value:
            return value
    zone = dig(inputs, "zone")
    if isinstance(zone, str) and zone.count("-") >= 2:
        return zone.rsplit("-", 1)[0]
    return default


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
    tag_location: TagProperty | None = _USE_REGISTRY,
    source: str = PULUMI,
) -> Resource:
    """The `Resource` for one resource given by its Pulumi type token and wire inputs.

    region: the provider's region when the inputs name none. component: the enclosing
    component's type token. related: (type token, inputs) of resources this one uses, such as
    the launch template of an Auto Scaling group or the template of a managed instance group.
    tag_location: where its tags are (Terraform and CloudFormation adapters pass their own
    registry's answer, in wire names); by default the Pulumi registry of `type_token`.
    """
    cloud = schema.cloud_of(type_token)
    kind = KINDS.get(type_token, OTHER)
    templates = [inputs for token, inputs in related if KINDS.get(token) == LAUNCH_TEMPLATE]
    reader = _Reader(inputs, templates)
    where = tag_property(type_token) if tag_location is _USE_REGISTRY else tag_location
    tags: dict[str, str] = {}
    complete, prefixes = True, None
    if where is not None:
        tags, complete, prefixes = _tags(inputs, where, reader)
    region = _region(inputs, region)
    read = READERS.get(type_token)
    if read is not None:
        read(reader)
    fields = reader.fields
    if kind == BUDGET:
        fields["budget_projects"] = _budget_projects(type_token, inputs, reader)
        fields["budget_limit_usd"] = _budget_limit(type_token, inputs)
    instance_types = tuple(fields.pop("instance_types", ()))
    http_tokens = fields.pop("http_tokens", None)
    accelerated = any(
        facts.instance(t, region, cloud) or facts.accelerator_family(t, cloud)
        for t in instance_types
    )
    return Resource(
        name=name,
        type=type_token,
        cloud=cloud,
        kind=kind,
        urn=urn,
        taggable=where is not None,
        tags=tags,
        tags_complete=complete,
        tag_key_prefixes=prefixes,
        instance_types=instance_types,
        region=region,
        workload=_workload(kind, tags, cloud, component, accelerated),
        http_tokens=str(http_tokens) if http_tokens else None,
        unknown=frozenset(reader.unknown),
        component=component,
        source=source,
        **fields,
    )
