"""The cost model: monthly USD per resource, in total, and by Project/Team/Environment/ModelVersion.

Prices come from the catalog (USD per hour, per region). A resource's monthly cost is its
expected node count x blended hourly price x hours per month. What is assumed is said in the
`basis` of each figure and in `CostReport.assumptions`, and printed with the figures:

- Hours: 730 per month unless the stack config gives a fleet's or endpoint's `hoursPerMonth`.
- Auto Scaling groups run at `desiredCapacity` (else `minSize`). The on-demand part is
  `onDemandBaseCapacity` plus `onDemandPercentageAboveBaseCapacity` of the rest (AWS's default
  for the percentage is 100). Spot nodes are priced at the mean spot price over every
  instance-type override (price-capacity-optimized spreads over the cheap pools that have
  capacity; the mean is the conservative figure); on-demand nodes at the first override
  (`prioritized`, the default) or the cheapest (`lowest-price`). `weightedCapacity` divides
  the nodes an override needs.
- An on-demand fallback group at zero costs nothing until spot runs short.
- SageMaker serverless endpoints and Cloud Run services are priced for the traffic the stack
  states (`requestsPerMonth`, `meanDurationMs`; `aifinops.serving` says how); without it they
  are unpriced, never $0.
- SageMaker endpoints are priced on their endpoint configuration's production variants at
  `initialInstanceCount`, or at the managed-instance-scaling floor when inference components
  scale it (a floor of 0 costs $0 at rest: the cost then follows traffic). GCP managed instance groups at `targetSize` with their template's
  machine type, attached GPUs and provisioning model; TPU VMs by accelerator type and spot
  flag; Vertex AI TPU deployments at their floor (`minReplicaCount`), the basis showing the
  month at `maxReplicaCount` (Cloud TPU list prices: Vertex's own may be higher); GKE node
  pools at `nodeCount` or the autoscaler's minimum (TPU machine types at their slice's Cloud
  TPU price), the basis showing the autoscaler's maximum, and the cluster fee; Azure scale sets by `sku.capacity` with their priority and priority-mix policy.
- KMS keys and CloudWatch alarms at their flat monthly list price.
- Egress (finops/catalog/data/network_prices.csv): a public IPv4 address per node of an Auto
  Scaling group whose launch template asks for one and per VM of a scale set with a public IP
  configuration ($0.005/h), Elastic IPs and Azure public IPs, NAT gateways by the hour, Cloud
  NAT per VM behind it (its instance groups' target sizes) plus its address. Data processed
  per GB is not estimated (the basis says so).
- Charges besides instances (`aifinops.charges`): each a line of its own under the component
  that adds it: a fleet's volumes and agent telemetry, an endpoint's ML storage, functions'
  invocations, interface endpoints, log groups, buckets, NAT data processed; the usage-based ones from the usage file
  (`aifinops.usage`), whose keys still at 0 are listed.
- Everything else (IAM, budgets, topics) is free or not modelled and shown at $0 with "not
  priced" as its basis.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aifinops import catalog, serving
from aifinops import charges as extra_charges
from aifinops import tags as tag_schema
from aifinops.catalog import charges as catalog_charges
from aifinops.charges.base import GCP_TEMPLATE, get, group_template, related_inputs
from aifinops.config import HOURS_PER_MONTH, Capacity, Cloud
from aifinops.errors import CatalogError
from aifinops.taggability import tag_property
from aifinops.usage import Usage

if TYPE_CHECKING:
    from aifinops.config import StackConfig
    from aifinops.engine import EngineResource, StackRun

REPORT_TAG_KEYS = ("Project", "Team", "Environment", "ModelVersion")
UNTAGGED = "(untagged)"
VERTEX_DEPLOYMENT = (
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
)
FREE_OR_USAGE_BASED = "not priced: free or usage-based"
"""The basis of a resource type the model does not price (IAM, buckets, functions...)."""
Related = Mapping[str, tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class PricedResource:
    """What one resource is expected to cost at its planned size."""

    hourly_usd: float
    monthly_usd: float
    basis: str
    instance_types: tuple[str, ...] = ()
    nodes: float = 0.0
    spot_share: float = 0.0
    unpriced_reason: str | None = None


@dataclass(frozen=True)
class ResourceCost:
    urn: str
    type: str
    name: str
    monthly_usd: float
    hourly_usd: float
    basis: str
    tags: dict[str, str]
    component: str | None
    priced: bool
    instance_types: tuple[str, ...] = ()
    """Every instance type the resource may run on (Auto Scaling overrides, variants), as
    priced; rightsizing checks each against the measured demand."""
    charge: str | None = None
    """For a charge line that a resource adds besides its own price (its `name` is
    `resource/what`): what it is ("volumes", "telemetry"...); None for a resource."""


@dataclass
class CostReport:
    resources: list[ResourceCost]
    total_monthly_usd: float
    by_tag: dict[str, dict[str, float]]
    assumptions: list[str] = field(default_factory=list)
    usage_file: str = ""
    """The usage file read ("" when none)."""
    usage_zero_keys: list[str] = field(default_factory=list)
    """`resource.key` of every usage figure a line read that is still 0."""


def _num(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _unpriced(reason: str) -> PricedResource:
    return PricedResource(0.0, 0.0, f"not priced: {reason}", unpriced_reason=reason)


def _info(instance_type: str, region: str, cloud: str) -> catalog.InstanceInfo:
    return catalog.lookup(instance_type, region, cloud=cloud)


def _spot_price(info: catalog.InstanceInfo) -> float:
    return (
        info.spot_usd_per_hour
        if info.spot_usd_per_hour is not None
        else info.on_demand_usd_per_hour
    )


def _mixed(
    types: Sequence[tuple[str, float]],
    nodes: float,
    on_demand_nodes: float,
    on_demand_strategy: str,
    region: str,
    cloud: str,
    hours: float,
    what: str,
) -> PricedResource:
    """Blend spot and on-demand prices over instance types [(type, weight)]."""
    infos = [(_info(t, region, cloud), max(w, 1e-9)) for t, w in types]
    spot_nodes = max(nodes - on_demand_nodes, 0.0)
    spot_hourly = sum(_spot_price(i) / w for i, w in infos) / len(infos)
    if on_demand_strategy == "lowest-price":
        od_info, od_weight = min(infos, key=lambda iw: iw[0].on_demand_usd_per_hour / iw[1])
    else:
        od_info, od_weight = infos[0]
    od_hourly = od_info.on_demand_usd_per_hour / od_weight
    hourly = spot_nodes * spot_hourly + on_demand_nodes * od_hourly
    names = "/".join(i.instance_type for i, _ in infos)
    basis = (
        f"{nodes:g} {what} x {hours:g} h: {spot_nodes:g} spot at ${spot_hourly:.3f}/h "
        f"(mean over {names}), {on_demand_nodes:g} on-demand at ${od_hourly:.3f}/h "
        f"({od_info.instance_type})"
    )
    if nodes == 0:
        basis = f"0 {what} at steady state ({names}): $0 until scaled up"
    return PricedResource(
        hourly_usd=hourly,
        monthly_usd=hourly * hours,
        basis=basis,
        instance_types=tuple(i.instance_type for i, _ in infos),
        nodes=nodes,
        spot_share=(spot_nodes / nodes) if nodes else 0.0,
    )


def _network_hourly(cloud: str, item: str, region: str) -> float:
    return catalog.network_price(cloud, item, region).usd


def _plus_public_ips(
    priced: PricedResource, cloud: str, region: str, hours: float
) -> PricedResource:
    """`priced` plus one public IPv4 address per node."""
    if priced.unpriced_reason is not None:
        return priced
    rate = _network_hourly(cloud, "public-ipv4", region)
    extra = priced.nodes * rate
    return replace(
        priced,
        hourly_usd=priced.hourly_usd + extra,
        monthly_usd=priced.monthly_usd + extra * hours,
        basis=f"{priced.basis}; + {priced.nodes:g} public IPv4 at ${rate:.3f}/h",
    )


Pricer = Callable[[Mapping[str, Any], str, float, Related | None], PricedResource]
"""A resource type's pricer: (inputs, region, hours a month, related inputs) -> its price."""


def _flat_network(cloud: str, item: str, what: str, per_gb: str | None = None) -> Pricer:
    """The pricer of a resource billed by the hour at one network list price (a NAT gateway,
    a public IPv4 address); its basis names the per-GB price it does not estimate."""

    def price(
        inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
    ) -> PricedResource:
        hourly = _network_hourly(cloud, item, region)
        basis = f"{what} at ${hourly:.3f}/h x {hours:g} h"
        if per_gb:
            gb = catalog.network_price(cloud, per_gb, region).usd
            basis += f" (+ ${gb:.3f}/GB processed, not estimated)"
        return PricedResource(hourly, hourly * hours, basis)

    return price


def _gcp_router_nat(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    """Cloud NAT: per VM-hour of the VMs it serves (up to a cap), plus one NAT address."""
    served = {
        id(found)
        for subnet in inputs.get("subnetworks") or []
        if (found := (related or {}).get(str(subnet.get("name"))))
    }
    vms = 0.0
    seen: set[int] = set()
    for entry in (related or {}).values():
        if entry[0] not in _GCP_GROUPS or id(entry) in seen:
            continue
        seen.add(id(entry))
        group = entry[1]
        for version in group.get("versions") or []:
            template = related_inputs(related, version.get("instanceTemplate"), GCP_TEMPLATE)
            interfaces = (template or {}).get("networkInterfaces") or []
            subnet = interfaces[0].get("subnetwork") if interfaces else None
            found = (related or {}).get(str(subnet)) if subnet else None
            if found is not None and id(found) in served:
                vms += _num(group.get("targetSize"), 0.0)
                break
    per_vm = _network_hourly("gcp", "cloud-nat-per-vm", region)
    cap = _network_hourly("gcp", "cloud-nat-cap", region)
    address = _network_hourly("gcp", "external-ipv4", region)
    gateway = min(vms * per_vm, cap)
    hourly = gateway + address
    gb = catalog.network_price("gcp", "cloud-nat-data", region).usd
    basis = (
        f"Cloud NAT for {vms:g} VMs at ${per_vm:.4f}/VM-h (at most ${cap:.3f}/h) + 1 NAT "
        f"address at ${address:.3f}/h, x {hours:g} h (+ ${gb:.3f}/GB processed, not estimated)"
    )
    return PricedResource(hourly, hourly * hours, basis, nodes=vms)


def _aws_asg(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    nodes = _num(inputs.get("desiredCapacity"), _num(inputs.get("minSize"), 0.0))
    policy = inputs.get("mixedInstancesPolicy")
    template_ref = None
    types: list[tuple[str, float]] = []
    spot_only_template = False
    if policy:
        spec = get(policy, "launchTemplate", "launchTemplateSpecification") or {}
        template_ref = spec.get("launchTemplateId") or spec.get("launchTemplateName")
        for override in get(policy, "launchTemplate", "overrides") or []:
            if override.get("instanceType"):
                types.append(
                    (override["instanceType"], _num(override.get("weightedCapacity"), 1.0))
                )
        distribution = policy.get("instancesDistribution") or {}
        base = _num(distribution.get("onDemandBaseCapacity"), 0.0)
        percent = _num(distribution.get("onDemandPercentageAboveBaseCapacity"), 100.0)
        strategy = str(distribution.get("onDemandAllocationStrategy") or "prioritized")
    else:
        template_ref = get(inputs, "launchTemplate", "id") or get(inputs, "launchTemplate", "name")
        base, percent, strategy = 0.0, 100.0, "prioritized"
    template = related_inputs(related, template_ref, "aws:ec2/launchTemplate:LaunchTemplate")
    if not types and template and template.get("instanceType"):
        types = [(str(template["instanceType"]), 1.0)]
        spot_only_template = get(template, "instanceMarketOptions", "marketType") == "spot"
    if not types:
        return _unpriced("Auto Scaling group with no resolvable instance type")
    on_demand = min(nodes, base) + max(nodes - base, 0.0) * percent / 100.0
    if spot_only_template:
        on_demand = 0.0
    priced = _mixed(types, nodes, on_demand, strategy, region, "aws", hours, "nodes")
    interfaces = (template or {}).get("networkInterfaces") or []
    if any(str(i.get("associatePublicIpAddress")).lower() == "true" for i in interfaces):
        priced = _plus_public_ips(priced, "aws", region, hours)
    return priced


def _aws_instance(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    instance_type = inputs.get("instanceType")
    if not instance_type:
        return _unpriced("instance with no instanceType")
    spot = get(inputs, "instanceMarketOptions", "marketType") == "spot"
    return _mixed(
        [(str(instance_type), 1.0)],
        1.0,
        0.0 if spot else 1.0,
        "prioritized",
        region,
        "aws",
        hours,
        "node",
    )


def _sagemaker_config(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    variants = [v for v in inputs.get("productionVariants") or [] if v.get("instanceType")]
    if not variants:
        return _unpriced(
            "endpoint configuration with no instance-backed variant (serverless is per request)"
        )
    hourly = 0.0
    parts = []
    types = []
    nodes = 0.0
    for variant in variants:
        info = _info(str(variant["instanceType"]), region, "aws")
        count = _num(variant.get("initialInstanceCount"), 1.0)
        scaling = variant.get("managedInstanceScaling") or {}
        at_rest = ""
        if scaling.get("status") == "ENABLED" and scaling.get("minInstanceCount") is not None:
            # inference components on managed instance scaling: the floor is what runs at rest
            count = _num(scaling.get("minInstanceCount"), count)
            at_rest = (
                " (managed scaling floor; each active instance adds the same)" if count == 0 else ""
            )
        hourly += count * info.on_demand_usd_per_hour
        nodes += count
        types.append(info.instance_type)
        parts.append(
            f"{count:g} x {info.instance_type} at ${info.on_demand_usd_per_hour:.3f}/h{at_rest}"
        )
    return PricedResource(
        hourly, hourly * hours, f"{'; '.join(parts)} x {hours:g} h", tuple(types), nodes, 0.0
    )


def _traffic_or_unpriced(
    traffic: tuple[float, float] | None, what: str
) -> serving.Traffic | PricedResource:
    if traffic is None:
        return _unpriced(
            f"{what} is billed per request and duration: state requestsPerMonth and "
            "meanDurationMs on the endpoint to price it"
        )
    return serving.Traffic(*traffic)


def _sagemaker_serverless(
    inputs: Mapping[str, Any], region: str, traffic: tuple[float, float] | None
) -> PricedResource | None:
    """A serverless endpoint configuration for the stated traffic; None when no variant is
    serverless."""
    configs = [
        v["serverlessConfig"]
        for v in inputs.get("productionVariants") or []
        if isinstance(v, Mapping) and isinstance(v.get("serverlessConfig"), Mapping)
    ]
    if not configs:
        return None
    stated = _traffic_or_unpriced(traffic, "a SageMaker serverless endpoint")
    if isinstance(stated, PricedResource):
        return stated
    monthly, parts = 0.0, []
    for config in configs:
        memory = int(_num(config.get("memorySizeInMb"), 0))
        if memory not in serving.SAGEMAKER_MEMORY_SIZES_MB:
            return _unpriced(f"serverless memorySizeInMb {config.get('memorySizeInMb')!r}")
        quote = serving.sagemaker_serverless(
            memory, stated, region, int(_num(config.get("provisionedConcurrency"), 0))
        )
        monthly += quote.monthly_usd
        parts.append(quote.basis)
    return PricedResource(monthly / HOURS_PER_MONTH, monthly, "; ".join(parts))


_QUANTITY = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<suffix>m|Mi|Gi|M|G)?$")
_QUANTITY_SCALE: dict[str, dict[str | None, float]] = {
    "cpu": {None: 1.0, "m": 0.001},
    "memory": {"Mi": 1 / 1024, "Gi": 1.0, "M": 1e6 / 2**30, "G": 1e9 / 2**30},
}


def _cloud_run_quantity(text: Any, unit: str) -> float | None:
    """A Cloud Run limit (Kubernetes quantity: `"4"`, `"1000m"`, `"16Gi"`, `"512Mi"`) in vCPU
    or GiB; None when it cannot be read."""
    match = _QUANTITY.match(str(text or "").strip())
    if not match or match["suffix"] not in _QUANTITY_SCALE[unit]:
        return None
    return float(match["number"]) * _QUANTITY_SCALE[unit][match["suffix"]]


def _cloud_run_service(
    inputs: Mapping[str, Any], region: str, traffic: tuple[float, float] | None
) -> PricedResource:
    """A Cloud Run service from its template (vCPU, memory, GPU, minimum instances) for the
    stated traffic."""
    stated = _traffic_or_unpriced(traffic, "a Cloud Run service")
    if isinstance(stated, PricedResource):
        return stated
    limits = get(inputs, "template", "containers", 0, "resources", "limits") or {}
    cpu = _cloud_run_quantity(limits.get("cpu", "1"), "cpu")
    memory = _cloud_run_quantity(limits.get("memory", "512Mi"), "memory")
    if cpu is None or memory is None:
        return _unpriced(
            f"Cloud Run limits cpu={limits.get('cpu')!r} memory={limits.get('memory')!r}"
        )
    accelerator = get(inputs, "template", "nodeSelector", "accelerator")
    gpu = None
    if accelerator:
        gpu = next(
            (k for k, v in serving.CLOUD_RUN_GPUS.items() if v.accelerator == accelerator), None
        )
        if gpu is None:
            return _unpriced(f"Cloud Run accelerator {accelerator!r} has no price in the catalog")
    min_instances = int(
        _num(get(inputs, "template", "scaling", "minInstanceCount"), 0)
        or _num(get(inputs, "scaling", "minInstanceCount"), 0)
    )
    zonal = get(inputs, "template", "gpuZonalRedundancyDisabled") is not True
    quote = serving.cloud_run(
        cpu, memory, stated, region, gpu=gpu, min_instances=min_instances,
        zonal_redundancy=bool(gpu) and zonal,
    )  # fmt: skip
    return PricedResource(
        quote.monthly_usd / HOURS_PER_MONTH, quote.monthly_usd, quote.basis, (), 0.0, 0.0
    )


def _gcp_machine(template: Mapping[str, Any]) -> tuple[str, bool]:
    """(catalog type, spot?) of a GCP instance template's or instance's inputs."""
    machine = str(template.get("machineType") or "")
    accelerators = template.get("guestAccelerators") or []
    if accelerators:
        first = accelerators[0]
        machine = catalog.gcp_attached_type(
            machine, str(first.get("type")), int(_num(first.get("count"), 1))
        )
    scheduling = template.get("scheduling") or {}
    spot = scheduling.get("provisioningModel") == "SPOT" or bool(scheduling.get("preemptible"))
    return machine, spot


def _gcp_mig(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    nodes = _num(inputs.get("targetSize"), 0.0)
    template = group_template(related, inputs) or related_inputs(
        related, inputs.get("instanceTemplate"), GCP_TEMPLATE
    )
    if template is None:
        return _unpriced("instance group whose template is not in this stack")
    machine, spot = _gcp_machine(template)
    return _mixed(
        [(machine, 1.0)], nodes, 0.0 if spot else nodes, "prioritized", region, "gcp", hours, "VMs"
    )


def _gcp_instance(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    machine, spot = _gcp_machine(inputs)
    return _mixed(
        [(machine, 1.0)], 1.0, 0.0 if spot else 1.0, "prioritized", region, "gcp", hours, "VM"
    )


_TPU_CONFIG_PREFIX = {"V5LITE_POD": "v5litepod", "V5P": "v5p", "V6E": "v6e"}


def _gcp_tpu(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    accelerator_type = inputs.get("acceleratorType")
    config = inputs.get("acceleratorConfig")
    if not accelerator_type and config:
        chips = 1
        for part in str(config.get("topology") or "1").split("x"):
            chips *= int(part)
        accelerator_type = f"{_TPU_CONFIG_PREFIX.get(str(config.get('type')), str(config.get('type')).lower())}-{chips}"
    if not accelerator_type:
        return _unpriced("TPU VM with no accelerator type")
    scheduling = inputs.get("schedulingConfig") or {}
    spot = bool(scheduling.get("spot") or scheduling.get("preemptible"))
    return _mixed(
        [(str(accelerator_type), 1.0)],
        1.0,
        0.0 if spot else 1.0,
        "prioritized",
        region,
        "gcp",
        hours,
        "TPU VM",
    )


VERTEX_PRICE_NOTE = (
    "Cloud TPU list price per chip-hour; Vertex AI's prediction price for the machine type "
    "is not in the catalog and may be higher"
)


def _vertex_tpu(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    """A Vertex AI deployment on TPUs: priced at its floor (`minReplicaCount`, what runs at
    rest); the basis shows the month at `maxReplicaCount`, the most the autoscaler adds."""
    resources = get(inputs, "deployConfig", "dedicatedResources") or {}
    machine = get(resources, "machineSpec", "machineType")
    if not machine:
        return _unpriced("Vertex AI deployment with no dedicated machine type")
    tpu = catalog.tpu_type_of_machine(str(machine))
    if tpu is None:
        return _unpriced(f"Vertex AI machine type {machine} is not a TPU type of the catalog")
    floor = _num(resources.get("minReplicaCount"), 1.0)
    most = max(_num(resources.get("maxReplicaCount"), floor), floor)
    spot = bool(resources.get("spot"))
    info = _info(tpu, region, "gcp")
    price = _spot_price(info) if spot else info.on_demand_usd_per_hour
    kind = "spot" if spot else "on-demand"
    basis = (
        f"floor {floor:g} replica{'s' if floor != 1 else ''} of {machine} ({tpu}) x {hours:g} h "
        f"at ${price:.3f}/h {kind}; at maxReplicaCount {most:g}: "
        f"${most * price * hours:,.2f}/month ({VERTEX_PRICE_NOTE})"
    )
    return PricedResource(
        hourly_usd=floor * price,
        monthly_usd=floor * price * hours,
        basis=basis,
        instance_types=(tpu,),
        nodes=floor,
        spot_share=1.0 if spot else 0.0,
    )


GKE_FREE_TIER_NOTE = (
    "the GKE free tier credits $74.40/month, one zonal or Autopilot cluster per billing "
    "account, not subtracted here"
)


def _gke_cluster(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    """A GKE Standard cluster's management fee, per cluster-hour (its nodes are priced on
    their node pools)."""
    fee = catalog_charges.unit_price("gcp", region, "gke-cluster-management")
    if fee is None:
        return _unpriced(f"no GKE cluster management fee for {region} in the catalog")
    basis = f"cluster management fee ${fee.usd:.2f}/h x {hours:g} h ({GKE_FREE_TIER_NOTE})"
    return PricedResource(fee.usd, fee.usd * hours, basis)


def _gke_zones(inputs: Mapping[str, Any]) -> int:
    """How many zones a node pool's counts apply in: its `nodeLocations`, else one for a
    zonal location and GKE's default of three for a regional one."""
    locations = inputs.get("nodeLocations")
    if isinstance(locations, list) and locations:
        return len(locations)
    location = str(inputs.get("location") or "")
    return 3 if location.count("-") == 1 else 1


def _gke_node_pool(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    """A GKE node pool at its floor: `nodeCount`, or the autoscaler's minimum, per zone; the
    basis shows the month at the autoscaler's maximum. TPU machine types (`ct5lp-hightpu-4t`)
    at the catalog's Cloud TPU price of their slice, N1 machines at theirs."""
    config = inputs.get("nodeConfig") or {}
    machine = str(config.get("machineType") or "")
    if not machine:
        return _unpriced("node pool with no nodeConfig.machineType")
    spot = bool(config.get("spot") or config.get("preemptible"))
    tpu = catalog.tpu_type_of_machine(machine)
    if tpu is not None:
        info = _info(tpu, region, "gcp")
        price = _spot_price(info) if spot else info.on_demand_usd_per_hour
        what = f"{machine} ({tpu})"
        types: tuple[str, ...] = (tpu,)
    else:
        on_demand, spot_price = catalog.cpu_machine_usd_per_hour(machine, region)
        price = spot_price if spot else on_demand
        what = machine
        types = ()
    zones = _gke_zones(inputs)
    scaling = inputs.get("autoscaling") or {}
    if scaling:
        total_min, total_max = scaling.get("totalMinNodeCount"), scaling.get("totalMaxNodeCount")
        floor = (
            _num(total_min, 0.0)
            if total_min is not None
            else _num(scaling.get("minNodeCount"), 0.0) * zones
        )
        most = (
            _num(total_max, floor)
            if total_max is not None
            else _num(scaling.get("maxNodeCount"), 0.0) * zones
        )
    else:
        floor = _num(inputs.get("nodeCount"), _num(inputs.get("initialNodeCount"), 1.0)) * zones
        most = floor
    kind = "spot" if spot else "on-demand"
    basis = f"{floor:g} node{'s' if floor != 1 else ''} of {what} x {hours:g} h at ${price:.3f}/h {kind}"
    if most > floor:
        basis += f"; at the autoscaler's maximum {most:g}: ${most * price * hours:,.2f}/month"
    if floor == 0:
        basis += " ($0 until the autoscaler adds nodes)"
    return PricedResource(
        hourly_usd=floor * price,
        monthly_usd=floor * price * hours,
        basis=basis,
        instance_types=types,
        nodes=floor,
        spot_share=1.0 if spot else 0.0,
    )


def _azure_vmss(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    sku = inputs.get("sku") or {}
    size = sku.get("name")
    if not size:
        return _unpriced("scale set with no sku.name")
    nodes = _num(sku.get("capacity"), 0.0)
    spot = get(inputs, "virtualMachineProfile", "priority") in ("Spot", "Low")
    mix = inputs.get("priorityMixPolicy")
    if spot and mix:
        base = _num(mix.get("baseRegularPriorityCount"), 0.0)
        percent = _num(mix.get("regularPriorityPercentageAboveBase"), 50.0)
        regular = min(nodes, base) + max(nodes - base, 0.0) * percent / 100.0
    else:
        regular = 0.0 if spot else nodes
    priced = _mixed(
        [(str(size), 1.0)], nodes, regular, "prioritized", region, "azure", hours, "VMs"
    )
    configurations = get(
        inputs, "virtualMachineProfile", "networkProfile", "networkInterfaceConfigurations"
    )
    if any(
        ip.get("publicIPAddressConfiguration")
        for nic in configurations or []
        for ip in nic.get("ipConfigurations") or []
    ):
        priced = _plus_public_ips(priced, "azure", region, hours)
    return priced


def _azure_vm(
    inputs: Mapping[str, Any], region: str, hours: float, related: Related | None
) -> PricedResource:
    size = get(inputs, "hardwareProfile", "vmSize")
    if not size:
        return _unpriced("VM with no hardwareProfile.vmSize")
    spot = inputs.get("priority") in ("Spot", "Low")
    return _mixed(
        [(str(size), 1.0)], 1.0, 0.0 if spot else 1.0, "prioritized", region, "azure", hours, "VM"
    )


_PRICERS: dict[str, Pricer] = {
    "aws:autoscaling/group:Group": _aws_asg,
    "aws:ec2/instance:Instance": _aws_instance,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _sagemaker_config,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": _gcp_mig,
    "gcp:compute/instanceGroupManager:InstanceGroupManager": _gcp_mig,
    "gcp:compute/instance:Instance": _gcp_instance,
    "gcp:tpu/v2Vm:V2Vm": _gcp_tpu,
    VERTEX_DEPLOYMENT: _vertex_tpu,
    "gcp:container/cluster:Cluster": _gke_cluster,
    "gcp:container/nodePool:NodePool": _gke_node_pool,
    "azure-native:compute:VirtualMachineScaleSet": _azure_vmss,
    "azure-native:compute:VirtualMachine": _azure_vm,
    "aws:ec2/natGateway:NatGateway": _flat_network(
        "aws", "nat-gateway", "NAT gateway", "nat-gateway-data"
    ),
    "aws:ec2/eip:Eip": _flat_network("aws", "public-ipv4", "public IPv4 address (Elastic IP)"),
    "azure-native:network:NatGateway": _flat_network(
        "azure", "nat-gateway", "NAT gateway", "nat-gateway-data"
    ),
    "azure-native:network:PublicIPAddress": _flat_network(
        "azure", "public-ipv4", "Standard public IPv4 address"
    ),
    "gcp:compute/routerNat:RouterNat": _gcp_router_nat,
}
# Resources with a fixed monthly list price (AWS, us-east-1 list prices; the same in most
# regions): a customer-managed KMS key, a standard-resolution CloudWatch alarm.
FLAT_MONTHLY_USD = {
    "aws:kms/key:Key": (1.00, "customer-managed KMS key: $1.00/month (requests extra)"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (0.10, "standard-resolution alarm: $0.10/month"),
}


def region_of(type_token: str, inputs: Mapping[str, Any], default_region: str) -> str:
    """A resource's own region/location input when it has one, else the stack's."""
    for key in ("region", "location"):
        value = inputs.get(key)
        if isinstance(value, str) and value:
            if type_token.startswith("gcp:") and value.count("-") >= 2:
                return value.rsplit("-", 1)[0]  # a zonal location (GKE us-central1-a)
            return value
    zone = inputs.get("zone")
    if isinstance(zone, str) and zone.count("-") >= 2:
        return zone.rsplit("-", 1)[0]
    return default_region


def price_resource(
    type_token: str,
    inputs: Mapping[str, Any],
    *,
    region: str,
    hours_per_month: float = HOURS_PER_MONTH,
    related: Related | None = None,
    traffic: tuple[float, float] | None = None,
) -> PricedResource | None:
    """Expected cost of one resource from its inputs (wire names), or None when the type is
    not priced (free or usage-based). An instance type missing from the catalog gives an
    unpriced result whose reason names it, never an exception. `traffic` (requests a month,
    mean duration in ms) prices serverless endpoints; without it they are unpriced, not $0."""
    flat = FLAT_MONTHLY_USD.get(type_token)
    if flat is not None:
        monthly, basis = flat
        return PricedResource(monthly / HOURS_PER_MONTH, monthly, basis)
    where = region_of(type_token, inputs, region)
    try:
        if type_token == "gcp:cloudrunv2/service:Service":
            return _cloud_run_service(inputs, where, traffic)
        if type_token == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
            serverless = _sagemaker_serverless(inputs, where, traffic)
            if serverless is not None:
                return serverless
        pricer = _PRICERS.get(type_token)
        if pricer is None:
            return None
        return pricer(inputs, where, hours_per_month, related)
    except CatalogError as exc:
        return _unpriced(str(exc))


def canonical_tags(type_token: str, inputs: Mapping[str, Any]) -> dict[str, str]:
    """A resource's tags under canonical keys (GCP's `model-version` -> `ModelVersion`)."""
    where = tag_property(type_token)
    cloud = tag_schema.cloud_of(type_token)
    if where is None or cloud is None:
        return {}
    raw: Any = inputs
    for key in where.property.split("."):  # nested: a GKE node pool's nodeConfig.resourceLabels
        raw = raw.get(key) if isinstance(raw, Mapping) else None
    if where.shape == "list":
        items = {
            str(i.get("key")): str(i.get("value")) for i in raw or [] if isinstance(i, Mapping)
        }
    elif isinstance(raw, Mapping):
        items = {str(k): str(v) for k, v in raw.items()}
    else:
        items = {}
    spelled_to_canonical = {tag_schema.spell_key(key, cloud): key for key in tag_schema.ALL_KEYS}
    return {spelled_to_canonical.get(key, key): value for key, value in items.items()}


_GCP_GROUPS = (
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager",
    "gcp:compute/instanceGroupManager:InstanceGroupManager",
)


def _tags_for_report(
    type_token: str, inputs: Mapping[str, Any], related: Related
) -> dict[str, str]:
    """A resource's tags; a GCP instance group (which carries no labels) reports its template's."""
    tags = canonical_tags(type_token, inputs)
    if tags or type_token not in _GCP_GROUPS:
        return tags
    template = group_template(related, inputs)
    return canonical_tags(GCP_TEMPLATE, template) if template else {}


def _related_index(run: StackRun) -> dict[str, tuple[str, Mapping[str, Any]]]:
    index: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for resource in run.custom_resources():
        entry = (resource.type, resource.inputs)
        for key in (
            resource.id,
            resource.outputs.get("arn"),
            resource.outputs.get("selfLink"),
            resource.outputs.get("selfLinkUnique"),
            resource.outputs.get("name"),
            resource.name,
        ):
            if isinstance(key, str) and key:
                index.setdefault(key, entry)
    return index


ASSUMED_CHECKPOINT_INTERVAL_MINUTES = 30.0
"""Periodic checkpoint interval assumed for the work an unwarned removal would lose."""


def reversion_assumptions(costs: list[ResourceCost], config: StackConfig) -> list[str]:
    """One line per spot-with-fallback fleet: what waiting for spot to be stable costs per
    return (on-demand kept longer) against the work a removal without warning would lose.

    USD, at the catalog's prices of the first instance type the fleet's groups are priced at;
    a fleet whose type the catalog does not know reads UNKNOWN.
    """
    lines = []
    for fleet in config.training_fleets:
        # Azure's scale set mixes priorities itself: no controller drains on-demand nodes
        if fleet.capacity != Capacity.SPOT_WITH_FALLBACK or fleet.cloud == Cloud.AZURE:
            continue
        types = [t for c in costs if c.component == fleet.name for t in c.instance_types]
        nodes = max(0, fleet.nodes.desired - fleet.on_demand_base)
        head = (
            f"fleet {fleet.name}: back to spot only after {fleet.spot_stable_minutes} min of "
            f"stable spot, one on-demand node at a time, each with up to "
            f"{fleet.checkpoint_grace_seconds} s to checkpoint"
        )
        try:
            info = catalog.lookup(types[0], config.region(fleet.cloud, fleet.region))
            od, spot = info.usd_per_hour(spot=False), _spot_price(info)
        except (IndexError, CatalogError):
            lines.append(f"{head}; UNKNOWN cost: no catalog price for the fleet's instance type")
            continue
        held = nodes * (od - spot) * fleet.spot_stable_minutes / 60
        grace = nodes * od * fleet.checkpoint_grace_seconds / 3600
        at_risk = fleet.nodes.desired * od * ASSUMED_CHECKPOINT_INTERVAL_MINUTES / 2 / 60
        lines.append(
            f"{head}: up to ${held:,.2f} per return of {nodes} node(s) on {types[0]} "
            f"(on-demand ${od:.3f}/h vs spot ${spot:.3f}/h held {fleet.spot_stable_minutes} "
            f"min) + at most ${grace:,.2f} of checkpoint grace, against ${at_risk:,.2f} of work "
            f"a removal without warning loses on average (the whole job rolls back half of an "
            f"assumed {ASSUMED_CHECKPOINT_INTERVAL_MINUTES:g}-min checkpoint interval)"
        )
    return lines


def estimate(run: StackRun, config: StackConfig, usage: Usage | None = None) -> CostReport:
    """Monthly cost of every resource of a stack run, and of the charges besides instances
    that its resources add (usage-based ones from `usage`), in total and by tag."""
    usage = usage if usage is not None else Usage()
    related = _related_index(run)
    hours_by_name = config.hours_by_name()
    traffic_by_name = {e.name: e.traffic for e in config.inference_endpoints}
    costs: list[ResourceCost] = []
    groups: dict[str, extra_charges.NodeGroup] = {}
    tags_by_urn: dict[str, dict[str, str]] = {}

    def hours_of(resource: EngineResource) -> float:
        component = run.component_of(resource)
        return hours_by_name.get(component.name if component else "", HOURS_PER_MONTH)

    def region_for(resource: EngineResource) -> str:
        cloud = tag_schema.cloud_of(resource.type) or "aws"
        return region_of(resource.type, resource.inputs, config.region(cloud))

    for resource in run.custom_resources():
        component = run.component_of(resource)
        component_name = component.name if component else None
        hours = hours_of(resource)
        cloud = tag_schema.cloud_of(resource.type) or "aws"
        priced = price_resource(
            resource.type,
            resource.inputs,
            region=config.region(cloud),
            hours_per_month=hours,
            related=related,
            traffic=traffic_by_name.get(component_name or ""),
        )
        if priced and priced.instance_types and priced.unpriced_reason is None:
            groups[resource.urn] = extra_charges.NodeGroup(
                priced.nodes, priced.spot_share, priced.instance_types, hours
            )
        tags = _tags_for_report(resource.type, resource.inputs, related)
        tags_by_urn[resource.urn] = tags
        costs.append(
            ResourceCost(
                urn=resource.urn,
                type=resource.type,
                name=resource.name,
                monthly_usd=priced.monthly_usd if priced else 0.0,
                hourly_usd=priced.hourly_usd if priced else 0.0,
                basis=priced.basis if priced else FREE_OR_USAGE_BASED,
                tags=tags,
                component=component_name,
                priced=bool(priced and priced.unpriced_reason is None),
                instance_types=priced.instance_types if priced else (),
            )
        )
    context = extra_charges.ChargeContext(run, related, region_for, hours_of, usage, groups)
    for charge in extra_charges.charges(context):
        component = run.component_of(charge.resource)
        costs.append(
            ResourceCost(
                urn=f"{charge.resource.urn}#{charge.what}",
                type=charge.type,
                name=charge.name,
                monthly_usd=charge.monthly_usd,
                hourly_usd=charge.monthly_usd / HOURS_PER_MONTH,
                basis=charge.basis,
                tags=tags_by_urn.get(charge.resource.urn, {}),
                component=component.name if component else None,
                priced=charge.priced,
                charge=charge.what,
            )
        )
    by_tag: dict[str, dict[str, float]] = {key: defaultdict(float) for key in REPORT_TAG_KEYS}
    for cost in costs:
        if cost.monthly_usd == 0:
            continue
        for key in REPORT_TAG_KEYS:
            by_tag[key][cost.tags.get(key) or UNTAGGED] += cost.monthly_usd
    assumptions = [
        f"{HOURS_PER_MONTH:g} hours per month unless a fleet or endpoint sets hoursPerMonth",
        "Auto Scaling groups at desiredCapacity; spot nodes at the mean spot price over all "
        "overrides, on-demand nodes at the first (prioritized) or cheapest (lowest-price) override",
        "on-demand fallback groups at 0 nodes cost $0 until spot runs short",
        f"catalog snapshot {catalog.SNAPSHOT_DATE}; spot prices move (run `finops catalog refresh`)",
        f"charges besides instances at list prices of {catalog_charges.CHARGES_SNAPSHOT_DATE} "
        "(finops/catalog/data/SOURCES.md), free tiers not subtracted",
        (
            f"usage-based lines from {usage.source}"
            if usage.source
            else "no usage file: usage-based lines at 0 (`finops usage init` writes one)"
        ),
    ]
    queued = [f.name for f in config.training_fleets if f.scale_on is not None]
    if queued:
        # their cost follows the queue: what the preview shows is a size, not a saving
        assumptions.append(
            f"queue-scaled fleets ({', '.join(queued)}) at nodes.desired; they run what their "
            "queue asks for, up to nodes.max"
        )
    assumptions += reversion_assumptions(costs, config)
    assumptions += [
        f"{e.name} ({e.hosting.value}): {serving.Traffic(*e.traffic).describe()} as stated; "
        + (
            "used by the serving advice only"
            if e.hosting.value != "serverless"
            else "billed for each instance's lifetime: every request keeps one up its duration "
            f"+ {serving.SCALE_IN_IDLE_SECONDS / 60:g} min idle (GPU: instance-based billing)"
            if e.accelerator
            else "billed busy time only (no free tier, payload or cold-start time)"
        )
        for e in config.inference_endpoints
        if e.traffic is not None
    ]
    zero = usage.zero_keys()
    return CostReport(
        resources=costs,
        total_monthly_usd=sum(c.monthly_usd for c in costs),
        by_tag={key: dict(values) for key, values in by_tag.items()},
        assumptions=assumptions,
        usage_file=usage.source,
        usage_zero_keys=zero,
    )
