"""A monthly estimate of a normalised resource, for adapters without the cost model.

The offline engine's stacks are priced by `aifinops.cost`; the CrossGuard pack (which sees
only resource inputs) and the checkov checks use this: catalog on-demand and spot prices x
nodes x hours, with a fleet's nodes split by its on-demand share.
"""

from __future__ import annotations

from dataclasses import replace

from aifinops.policies.compute import accelerator_types
from aifinops.policies.model import ENDPOINT, FLEET, INSTANCE, TPU, Resource

HOURS_PER_MONTH = 730.0  # as the clouds price a month (aifinops.config says the same)


def monthly_usd(resource: Resource, hours_per_month: float = HOURS_PER_MONTH) -> float | None:
    """USD per month of the resource's accelerator nodes, or None when it has none."""
    infos = accelerator_types(resource)
    if not infos or resource.kind not in (INSTANCE, FLEET, ENDPOINT, TPU):
        return None
    info = infos[0]
    if resource.kind == ENDPOINT:
        return info.on_demand_usd_per_hour * (resource.nodes_max or 1) * hours_per_month
    if resource.kind != FLEET:
        return info.on_demand_usd_per_hour * hours_per_month
    nodes = resource.nodes_desired or 0
    base = min(resource.on_demand_base or 0, nodes)
    share = (resource.on_demand_percent_above_base or 0.0) / 100.0
    on_demand_nodes = base + (nodes - base) * share
    spot_price = info.spot_usd_per_hour or info.on_demand_usd_per_hour
    hourly = on_demand_nodes * info.on_demand_usd_per_hour + (nodes - on_demand_nodes) * spot_price
    return hourly * hours_per_month


def priced(resource: Resource) -> Resource:
    """The resource with `monthly_usd` filled in by `monthly_usd` (unchanged when unpriced)."""
    cost = monthly_usd(resource)
    return resource if cost is None else replace(resource, monthly_usd=cost)
