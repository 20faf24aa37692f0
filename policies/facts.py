"""What the rules ask the catalog, cached: instance facts and cheaper alternatives.

`finops.catalog` imports with the standard library only, so this works inside checkov's
virtualenv too. A type the catalog does not know (a CPU instance, a typo) is simply not an
accelerator instance here: the rules stay quiet rather than guess.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache

from finops import catalog
from finops.catalog import InstanceInfo
from finops.errors import CatalogError


@lru_cache(maxsize=4096)
def instance(instance_type: str, region: str | None, cloud: str | None) -> InstanceInfo | None:
    """The catalog row of `instance_type` in `region`, else in the cloud's default region, else in
    the first region offering it; None when the catalog does not know the type."""
    for where in (region, None) if region else (None,):
        try:
            return catalog.lookup(instance_type, where, cloud=cloud)
        except CatalogError:
            continue
    try:  # offered elsewhere only (TPU v5p): its specs hold, its price is the first region's
        offered = catalog.regions(instance_type)
        return catalog.lookup(instance_type, offered[0], cloud=cloud) if offered else None
    except CatalogError:
        return None


def matches_any(instance_type: str, patterns: list[str]) -> bool:
    """True when `instance_type` matches one of the glob `patterns` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(instance_type, pattern) for pattern in patterns)


@lru_cache(maxsize=1024)
def current_replacement(
    instance_type: str, region: str, exclude_families: tuple[str, ...]
) -> InstanceInfo | None:
    """The current-generation type doing the same work cheapest per unit of training throughput.

    Candidates are `catalog.equivalents` (same cloud, service and region, same accelerator vendor
    and kind, at least as much accelerator memory); the same accelerator count is preferred so
    the job keeps its parallel layout.
    """
    base = catalog.lookup(instance_type, region)
    candidates = [
        info
        for info in catalog.equivalents(instance_type, region)
        if info.generation == "current" and info.family not in exclude_families
    ]
    same_count = [c for c in candidates if c.accelerator_count == base.accelerator_count]
    ranked = same_count or candidates
    return ranked[0] if ranked else None


@lru_cache(maxsize=1024)
def cheaper_chip(
    instance_type: str, region: str, memory_gib: float, kinds: tuple[str, ...]
) -> InstanceInfo | None:
    """The cheapest type of the same cloud, service (GCE GPUs: also TPU VMs) and region whose
    accelerators are of `kinds` (Inferentia, TPU...) with at least `memory_gib` accelerator
    memory per node, or None."""
    base = catalog.lookup(instance_type, region)
    # GCP serves models on TPU VMs (service "tpu") as well as on GCE GPU machines
    services = (base.service, "tpu") if base.cloud == "gcp" else (base.service,)
    names = [n for service in services for n in catalog.instance_types(base.cloud, service)]
    found = []
    for name in names:
        info = instance(name, region, base.cloud)
        if info is None or info.region != region:
            continue
        if info.accelerator_info.kind not in kinds:
            continue
        if info.node_accelerator_memory_gib < memory_gib:
            continue
        found.append(info)
    found.sort(key=lambda i: (i.on_demand_usd_per_hour, i.instance_type))
    return found[0] if found else None
