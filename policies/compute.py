"""Accelerator rules: oversized instances and fleets, on-demand training, previous-generation
chips, and inference that a cheaper chip could serve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aifinops.catalog import InstanceInfo
from aifinops.policies import facts
from aifinops.policies.context import Context, environment_of
from aifinops.policies.model import ENDPOINT, FLEET, INFERENCE, TRAINING, Finding, Resource

OVERSIZED = "gpu-instance-oversized"
SPOT = "training-on-spot"
PREVIOUS = "previous-generation-accelerator"
CHEAPER_CHIP = "inference-on-cheaper-chip"


def accelerator_types(resource: Resource) -> list[InstanceInfo]:
    """Catalog rows of the resource's instance types that carry accelerators (others skipped)."""
    if not resource.instance_types:
        return []
    return list(facts.instances(resource.instance_types, resource.region, resource.cloud))


def _unknown(
    policy: str, resource: Resource, what: str, field: str = "instance_types"
) -> list[Finding]:
    reason = resource.unknown_reasons.get(field)
    noun = what.removesuffix(" is").removesuffix(" are")
    message = f"{noun} cannot be read: {reason}" if reason else f"{what} unknown until apply"
    return [Finding(policy, resource.name, message, resource.urn, True)]


def uncatalogued(resource: Resource) -> list[str]:
    """Instance types of an accelerator family that the catalog does not know."""
    return [
        name
        for name in resource.instance_types
        if facts.instance(name, resource.region, resource.cloud) is None
        and facts.accelerator_family(name, resource.cloud)
    ]


def _fleet_accelerators(resource: Resource, infos: list[InstanceInfo]) -> tuple[float, str] | None:
    """(most accelerators the fleet may run, how) from its node counts, vCPU limit or size."""
    by_type = {i.instance_type: i for i in infos}
    if resource.node_counts:
        parts = [(n, by_type[t]) for t, n in resource.node_counts if t in by_type]
        if not parts:
            return None
        total = sum(n * i.accelerator_count for n, i in parts)
        how = " + ".join(f"{n} x {i.instance_type}" for n, i in parts)
        return total, how
    if resource.max_vcpus:
        options = [
            ((resource.max_vcpus // max(i.vcpus, 1)) * i.accelerator_count, i) for i in infos
        ]
        total, info = max(options, key=lambda o: o[0])
        nodes = resource.max_vcpus // max(info.vcpus, 1)
        return total, f"{resource.max_vcpus} vCPUs = {nodes} x {info.instance_type}"
    if resource.nodes_max:
        biggest = max(infos, key=lambda i: i.accelerator_count)
        return biggest.accelerator_count * resource.nodes_max, (
            f"{resource.nodes_max} x {biggest.instance_type}"
        )
    return None


def _describe(info: InstanceInfo) -> str:
    return (
        f"{info.instance_type} ({info.accelerator_count:g} x {info.accelerator}, "
        f"${info.on_demand_usd_per_hour:.2f}/h)"
    )


_LIMITS: dict[tuple[int, str], tuple[Mapping[str, Any], tuple[Any, frozenset[str]]]] = {}


def _limits(config: Mapping[str, Any], env: str) -> tuple[Mapping[str, Any], frozenset[str]]:
    """(the environment's limits, its denied accelerator models in lower case), kept per
    config object (one per `evaluate` call)."""
    cached = _LIMITS.get((id(config), env))
    if cached is not None and cached[0] is config:
        return cached[1]
    limits = (config.get("limits") or {}).get(env) or {}
    found = (limits, frozenset(str(m).lower() for m in limits.get("deniedAccelerators") or []))
    if len(_LIMITS) > 64:
        _LIMITS.clear()
    _LIMITS[(id(config), env)] = (config, found)
    return found


def gpu_instance_oversized(
    resource: Resource, config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """Instance types above the environment's accelerator count, model, price or allow-list,
    and fleets whose largest size exceeds the environment's accelerator limit."""
    if "instance_types" in resource.unknown:
        return _unknown(OVERSIZED, resource, "instance type is")
    if not resource.instance_types:
        return []
    infos = accelerator_types(resource)
    unpriced = uncatalogued(resource)
    if not infos and not unpriced:
        return []
    env = environment_of(resource, context)
    limits, denied = _limits(config, env)
    max_count = limits.get("maxAcceleratorsPerInstance")
    max_price = limits.get("maxUsdPerHour")
    allowed = limits.get("allowedInstanceTypes")
    messages = []
    unjudged = []
    for name in unpriced:
        spec = facts.unpriced(name)
        if spec is None:
            unjudged.append(Finding(OVERSIZED, resource.name, f"{name} is not in the finops "
                                    "catalog: its accelerators and price are unknown",
                                    resource.urn, True))  # fmt: skip
            continue
        model, count = spec
        reasons = []
        if max_count is not None and count > max_count:
            reasons.append(f"{count:g} accelerators > {max_count:g} allowed")
        if model.lower() in denied:
            reasons.append(f"{model} is not allowed")
        if allowed is not None and not facts.matches_any(name, list(allowed)):
            reasons.append("not in the allow-list")
        if reasons:
            messages.append(f"{name} ({count:g} x {model}, no list price) in {env}: "
                            + ", ".join(reasons))  # fmt: skip
        elif max_price is not None:
            unjudged.append(Finding(OVERSIZED, resource.name, f"{name} has no list price in the "
                                    f"finops catalog: the ${max_price:.2f}/h limit cannot be "
                                    "checked", resource.urn, True))  # fmt: skip
    if not infos and not messages:
        return unjudged
    for info in infos:
        reasons = []
        if max_count is not None and info.accelerator_count > max_count:
            reasons.append(f"{info.accelerator_count:g} accelerators > {max_count:g} allowed")
        if info.accelerator.lower() in denied:
            reasons.append(f"{info.accelerator} is not allowed")
        if max_price is not None and info.on_demand_usd_per_hour > max_price:
            reasons.append(f"${info.on_demand_usd_per_hour:.2f}/h > ${max_price:.2f}/h")
        if allowed is not None and not facts.matches_any(info.instance_type, list(allowed)):
            reasons.append("not in the allow-list")
        if reasons:
            messages.append(f"{_describe(info)} in {env}: {', '.join(reasons)}")
    fleet_limit = limits.get("maxAcceleratorsPerFleet")
    fleet = (
        _fleet_accelerators(resource, infos)
        if infos and resource.kind in (FLEET, ENDPOINT)
        else None
    )
    if fleet_limit is not None and fleet is not None and resource.kind == FLEET:
        total, how = fleet
        if total > fleet_limit:
            messages.append(
                f"fleet can scale to {how} = {total:g} accelerators > {fleet_limit:g} allowed "
                f"in {env}"
            )
    if not messages and resource.kind == FLEET and "nodes_max" in resource.unknown:
        unjudged += _unknown(OVERSIZED, resource, "fleet size is", "nodes_max")
    if not messages:
        return unjudged
    return [Finding(OVERSIZED, resource.name, "; ".join(messages), resource.urn), *unjudged]


def training_on_spot(
    resource: Resource, config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """Training fleets outside the exempt environments buy capacity above the base on spot."""
    if resource.kind != FLEET or resource.workload != TRAINING:
        return []
    env = environment_of(resource, context)
    if env in (config.get("exemptEnvironments") or []):
        return []
    if "instance_types" not in resource.unknown and not accelerator_types(resource):
        return []
    if "on_demand_percent_above_base" in resource.unknown:
        return _unknown(SPOT, resource, "on-demand share is", "on_demand_percent_above_base")
    if resource.nodes_desired == 0:
        return []  # a fallback group at zero: runs only while spot cannot fill
    share = resource.on_demand_percent_above_base
    limit = float(config.get("maxOnDemandPercentAboveBase", 20.0))
    if share is None or share <= limit:
        return []
    base = resource.on_demand_base or 0
    return [
        Finding(
            SPOT,
            resource.name,
            f"{share:g}% of capacity above an on-demand base of {base} node"
            f"{'' if base == 1 else 's'} is on demand; at most {limit:g}% allowed in {env}",
            resource.urn,
        )
    ]


def previous_generation_accelerator(
    resource: Resource, config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """Previous-generation accelerators (K80, M60, V100: p2, p3, g3...), with the current type
    that does the same work for less and the monthly difference per unit of work."""
    hours = float(config.get("hoursPerMonth", 730.0))
    exclude = tuple(config.get("excludeFamilies") or ())
    messages = []
    for info in accelerator_types(resource):
        if info.generation != "previous":
            continue
        replacement = facts.current_replacement(info.instance_type, info.region, exclude)
        if replacement is None:
            messages.append(f"{_describe(info)} is a previous generation with no current match")
            continue
        old = info.usd_per_throughput_hour()
        new = replacement.usd_per_throughput_hour()
        messages.append(
            f"{_describe(info)} is a previous generation at ${old:.2f}/h per V100-equivalent; "
            f"{_describe(replacement)} does the same work at ${new:.2f}/h: "
            f"${(old - new) * hours:,.0f}/month less per V100-equivalent of throughput"
        )
    if not messages:
        return []
    return [Finding(PREVIOUS, resource.name, "; ".join(messages), resource.urn)]


def inference_on_cheaper_chip(
    resource: Resource, config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """GPU inference where an Inferentia or TPU type with enough memory costs less; TPU
    inference where a GPU machine or Inferentia with the slice's memory and throughput does;
    and, for an endpoint whose stack states its traffic, a cheaper way to serve it
    (provisioned, scale-to-zero or serverless) that fits the model, with the break-even
    traffic."""
    endpoint = _endpoint_of(resource, context)
    if resource.workload != INFERENCE and resource.kind != ENDPOINT and endpoint is None:
        return []
    hours = float(config.get("hoursPerMonth", 730.0))
    min_saving = float(config.get("minSavingPercent", 10.0))
    count = resource.nodes_max or 1
    messages = []
    for info in accelerator_types(resource):
        memory = info.node_accelerator_memory_gib
        if info.accelerator_info.kind == "tpu":
            options = facts.serving_alternatives(info.instance_type, info.region, memory)
            other = options[0] if options else None
        elif info.accelerator_info.kind == "gpu":
            other = facts.cheaper_chip(
                info.instance_type, info.region, memory, ("inferentia", "tpu")
            )
        else:
            continue
        if other is None:
            continue
        price, other_price = info.on_demand_usd_per_hour, other.on_demand_usd_per_hour
        if other_price > price * (1 - min_saving / 100):
            continue
        saving = (price - other_price) * hours * count
        messages.append(
            f"{_describe(info)} with {memory:g} GiB could be {_describe(other)}"
            f"{f' on {other.cloud} {other.region}' if other.cloud != info.cloud else ''} with "
            f"{other.node_accelerator_memory_gib:g} GiB: ${saving:,.0f}/month less for {count} "
            f"instance{'s' if count != 1 else ''} (needs the model compiled for "
            f"{other.accelerator_info.kind})"
        )
    serving = _serving_advice(resource, endpoint, config, context) if endpoint is not None else None
    if serving:
        messages.append(serving)
    if not messages:
        return []
    return [Finding(CHEAPER_CHIP, resource.name, "; ".join(messages), resource.urn)]


# The child of a finops endpoint component that carries the serving advice (one per endpoint):
# the SageMaker endpoint configuration, the Cloud Run service, the first TPU VM.
_ADVICE_ROLES = ("config", "service", "0")


def _endpoint_of(resource: Resource, context: Context) -> str | None:
    """The endpoint whose stated traffic `resource` carries the advice of (`<name>-<role>`)."""
    name, dash, role = resource.name.rpartition("-")  # no role holds a dash
    return name if dash and role in _ADVICE_ROLES and name in context.endpoint_traffic else None


def _serving_advice(
    resource: Resource, name: str, config: Mapping[str, Any], context: Context
) -> str | None:
    """Provisioned, scale-to-zero and serverless compared for the traffic the stack states
    for endpoint `name` (Pulumi stacks: `requestsPerMonth`, `meanDurationMs`), when another
    costs less."""
    from aifinops import catalog, serving  # only Pulumi stacks state traffic; checkov never here

    stated = context.endpoint_traffic[name]
    region = stated.region or resource.region or catalog.default_region(stated.cloud)
    return serving.advise(
        serving.Endpoint(
            cloud=stated.cloud,
            region=region,
            traffic=serving.Traffic(stated.requests_per_month, stated.mean_duration_ms),
            current=stated.serving,
            model_memory_gib=stated.model_memory_gib,
            instance_type=stated.instance_type,
            replicas=stated.replicas,
            memory_mb=stated.memory_mb,
            cpu=stated.cpu,
        ),
        float(config.get("minSavingPercent", 10.0)),
    )
