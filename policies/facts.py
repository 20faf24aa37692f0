"""What the rules ask the catalog, cached: instance facts and cheaper alternatives.

`aifinops.catalog` imports with the standard library only, so this works inside checkov's
virtualenv too. A type the catalog does not know is not an accelerator instance here unless
its name is of an accelerator family (`accelerator_family`): then the rules say they cannot
judge it, naming it, instead of letting it pass.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache

from aifinops import catalog
from aifinops.catalog import InstanceInfo
from aifinops.catalog import gcp as gcp_catalog
from aifinops.errors import CatalogError


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
        pass
    if instance_type.startswith("ml.") and cloud in (None, "aws"):
        # SageMaker training and HyperPod `ml.*` types run on the EC2 type of the same name:
        # the same accelerators (the price is EC2's, below SageMaker's).
        return instance(instance_type.removeprefix("ml."), region, cloud)
    return None


@lru_cache(maxsize=1024)
def unpriced(instance_type: str) -> tuple[str, float] | None:
    """(accelerator model, count) of a type the catalog knows without a price (AWS types sold
    through Capacity Blocks or UltraServers), also as SageMaker `ml.*`; else None."""
    found = catalog.unpriced(instance_type.removeprefix("ml."))
    return (found[0].model, found[1]) if found else None


@lru_cache(maxsize=4096)
def instances(
    instance_types: tuple[str, ...], region: str | None, cloud: str | None
) -> tuple[InstanceInfo, ...]:
    """The catalog rows of those of `instance_types` the catalog knows (see `instance`)."""
    found = (instance(name, region, cloud) for name in instance_types)
    return tuple(info for info in found if info is not None)


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
    return _cheapest_of(base.cloud, services, region, kinds, memory_gib)


@lru_cache(maxsize=256)
def serving_alternatives(instance_type: str, region: str, memory_gib: float) -> list[InstanceInfo]:
    """For a TPU slice: the cheapest GPU machine of the same cloud and region, and the
    cheapest SageMaker Inferentia type (in AWS's default region: the clouds price regions
    apart), each with at least `memory_gib` accelerator memory and at least the slice's
    throughput per node (the catalog's V100-relative figure: serving a model the slice holds
    on a slower chip is not the same service); cheapest first."""
    base = catalog.lookup(instance_type, region)
    options = (
        (base.cloud, "gce", region, "gpu"),
        ("aws", "sagemaker", catalog.default_region("aws"), "inferentia"),
    )
    found = []
    for cloud, service, where, kind in options:
        best = _cheapest_of(cloud, (service,), where, (kind,), memory_gib, base.throughput_per_node)
        if best is not None:
            found.append(best)
    return sorted(found, key=lambda i: (i.on_demand_usd_per_hour, i.instance_type))


def _cheapest_of(
    cloud: str,
    services: tuple[str, ...],
    region: str,
    kinds: tuple[str, ...],
    memory_gib: float,
    throughput: float | None = None,
) -> InstanceInfo | None:
    """The cheapest type of `cloud`'s `services` priced in `region` whose accelerators are of
    `kinds`, with at least `memory_gib` accelerator memory per node and, when given, at least
    `throughput` per node; None when there is none."""
    found = []
    for service in services:
        for name in catalog.instance_types(cloud, service):
            info = instance(name, region, cloud)
            if info is None or info.region != region or info.accelerator_info.kind not in kinds:
                continue
            if info.node_accelerator_memory_gib < memory_gib:
                continue
            if throughput is not None and info.throughput_per_node < throughput:
                continue
            found.append(info)
    found.sort(key=lambda i: (i.on_demand_usd_per_hour, i.instance_type))
    return found[0] if found else None


# Names of accelerator instance families by cloud, so that a type the catalog does not know
# yet (a new generation, a preview type) is reported as unknown instead of passing as a CPU
# type. AWS: every p*, g*, gr*, inf*, trn*, dl* family and the UltraServers (u-p6e...), on
# EC2 and as SageMaker `ml.*`; GCP: the accelerator-optimized A2/A3/A4/G2/G4 series and TPU
# names; Azure: the N-series (NC, ND, NV, NG...).
_ACCELERATOR_FAMILY = {
    "aws": re.compile(r"^(ml\.)?(p\d|g\d|gr\d|inf\d|trn\d|dl\d|u-p\d)", re.IGNORECASE),
    "gcp": re.compile(r"^(a\d-|g\d-|ct\d|tpu|v\d+[a-z]*-\d|v\d+litepod|v\d+p-)", re.IGNORECASE),
    "azure": re.compile(r"^(standard_)?n[a-z]*\d", re.IGNORECASE),
}


@lru_cache(maxsize=4096)
def accelerator_family(instance_type: str, cloud: str | None) -> bool:
    """True when `instance_type` names an accelerator family of `cloud` (known to the catalog
    or not)."""
    pattern = _ACCELERATOR_FAMILY.get(cloud or "")
    return bool(pattern and pattern.match(instance_type.strip()))


@lru_cache(maxsize=256)
def largest_of_family(family: str, cloud: str) -> str | None:
    """AWS Batch lets a compute environment name a family ("p4d", "g5"): Batch may launch any
    size, so the largest (most accelerators, then the highest price) stands for it."""
    members = [
        info
        for name in catalog.instance_types(cloud)
        if name.split(".", 1)[0] == family and (info := instance(name, None, cloud)) is not None
    ]
    if not members:
        return None
    members.sort(key=lambda i: (i.accelerator_count, i.on_demand_usd_per_hour))
    return members[-1].instance_type


# GKE names TPU slices by machine type; the catalog owns the mapping.
GKE_TPU_MACHINES = {machine: tpu for machine, (tpu, _) in gcp_catalog.TPU_MACHINE_TYPES.items()}
# Cloud TPU API accelerator_config types -> the accelerator-type prefix (chips = topology).
TPU_CONFIG_TYPES = {"V5LITE_POD": "v5litepod", "V5P": "v5p", "V6E": "v6e", "V4": "v4",
                    "V3": "v3", "V2": "v2"}  # fmt: skip
