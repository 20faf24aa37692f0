"""What every charge module shares: the `Charge` line, the context it reads, helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aifinops.config import HOURS_PER_MONTH
from aifinops.usage import Usage

if TYPE_CHECKING:
    from aifinops.engine import EngineResource, StackRun

DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class Charge:
    """One priced line that a resource adds besides its own price."""

    resource: EngineResource
    """The resource that adds the charge (the line is listed under its component)."""
    what: str
    """Short name of the line: "volumes", "telemetry", "invocations", "storage"..."""
    type: str
    """A type token for the line (`aws:charge:EbsVolumes`), its cloud first."""
    monthly_usd: float
    basis: str
    priced: bool = True

    @property
    def name(self) -> str:
        return f"{self.resource.name}/{self.what}"


def unknown(resource: EngineResource, what: str, type_: str, reason: str) -> Charge:
    return Charge(resource, what, type_, 0.0, f"not priced: {reason}", priced=False)


def get(data: Any, *path: str | int) -> Any:
    """`data[path[0]][path[1]]...` through mappings and list indexes; None at a gap."""
    for key in path:
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def related_inputs(
    related: Mapping[str, tuple[str, Mapping[str, Any]]] | None, reference: Any, type_token: str
) -> Mapping[str, Any] | None:
    """The inputs of the resource `reference` names (its id, ARN, self link or name) in
    `related`, when it is of `type_token`; else None."""
    if not related or reference is None:
        return None
    found = related.get(str(reference))
    return found[1] if found and found[0] == type_token else None


def num(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


GCP_TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"


def group_template(
    related: Mapping[str, tuple[str, Mapping[str, Any]]] | None, group: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The inputs of the first of a GCP instance group's `versions` templates that `related`
    holds, or None."""
    for version in group.get("versions") or []:
        template = related_inputs(related, version.get("instanceTemplate"), GCP_TEMPLATE)
        if template:
            return template
    return None


def money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


@dataclass(frozen=True)
class NodeGroup:
    """What the instance pricer found about a group of nodes (PricedResource's fields)."""

    nodes: float
    spot_share: float
    instance_types: tuple[str, ...]
    hours: float


class ChargeContext:
    """What every charge reads: the run, related inputs, regions, hours and usage, and each
    resource's component."""

    def __init__(
        self,
        run: StackRun,
        related: Mapping[str, tuple[str, Mapping[str, Any]]],
        region_of: Callable[[EngineResource], str],
        hours_of: Callable[[EngineResource], float],
        usage: Usage,
        groups: Mapping[str, NodeGroup],
    ) -> None:
        self.run = run
        self.related = related
        self.region_of = region_of
        self.hours_of = hours_of
        self.usage = usage
        self.groups = groups

    def component_of(self, resource: EngineResource) -> EngineResource | None:
        return self.run.component_of(resource)

    def related_inputs(self, reference: Any, type_token: str) -> Mapping[str, Any] | None:
        return related_inputs(self.related, reference, type_token)

    def usage_note(self, resource: EngineResource, key: str) -> tuple[float, str]:
        value = self.usage.get(resource.name, key)
        return value, ("" if value else f" (usage key {key} still 0)")
