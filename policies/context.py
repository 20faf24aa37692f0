"""What a rule may know beyond one resource: the stack's environment, tags and ceiling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aifinops.policies.model import Resource
from aifinops.tags import ENVIRONMENTS


@dataclass(frozen=True)
class EndpointTraffic:
    """What a stack states of one inference endpoint (`finops:inferenceEndpoints`) that the
    serving advice needs: its traffic, how it is served now and what the model needs."""

    cloud: str
    region: str | None
    requests_per_month: float
    mean_duration_ms: float
    serving: str
    """"provisioned", "scale-to-zero" or "serverless"."""
    model_memory_gib: float | None = None
    instance_type: str | None = None
    replicas: int = 1
    memory_mb: int | None = None
    cpu: int | None = None


@dataclass(frozen=True)
class Context:
    """environment: used when a resource carries no valid Environment tag (strictest: dev).
    cost_ceiling_usd: the stack's `finops:costCeilingUsd`, USD per month.
    endpoint_traffic: endpoint name -> its stated traffic (Pulumi stacks only)."""

    environment: str = "dev"
    stack_tags: Mapping[str, str] = field(default_factory=dict)
    cost_ceiling_usd: float | None = None
    endpoint_traffic: Mapping[str, EndpointTraffic] = field(default_factory=dict)


def endpoint_traffic(entries: Any, regions: Mapping[str, str]) -> dict[str, EndpointTraffic]:
    """`finops:inferenceEndpoints` as the stack file writes it (camelCase) -> the endpoints
    that state their traffic. Entries that cannot be read are left out (the stack-config
    schema reports them)."""
    found: dict[str, EndpointTraffic] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        try:
            requests = float(entry["requestsPerMonth"])
            duration = float(entry["meanDurationMs"])
            name, cloud = str(entry["name"]), str(entry["cloud"])
        except (KeyError, TypeError, ValueError):
            continue
        given = entry.get("replicas")
        replicas: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        least = int(replicas.get("min", 1) or 0)
        if entry.get("hosting") == "serverless" and not entry.get("accelerator"):
            serving = "serverless"
        elif entry.get("hosting") == "serverless":  # Cloud Run with a GPU: instance billing
            serving = "scale-to-zero" if int(replicas.get("min", 0) or 0) == 0 else "provisioned"
        else:
            serving = "scale-to-zero" if least == 0 else "provisioned"
        memory = entry.get("modelMemoryGib")
        found[name] = EndpointTraffic(
            cloud=cloud,
            region=entry.get("region") or regions.get(cloud),
            requests_per_month=requests,
            mean_duration_ms=duration,
            serving=serving,
            model_memory_gib=float(memory) if isinstance(memory, int | float) else None,
            instance_type=entry.get("instanceType"),
            replicas=max(1, least),
            memory_mb=entry.get("memoryMb"),
            cpu=entry.get("cpu"),
        )
    return found


def environment_of(resource: Resource, context: Context) -> str:
    """The resource's Environment tag when valid, else the stack's."""
    tagged = resource.tag("Environment")
    return tagged if tagged in ENVIRONMENTS else context.environment
