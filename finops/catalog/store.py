"""The catalog API: one lazily built, cached index over every cloud's rows.

Data is read once, on first use, from the package's `data/` files plus the optional refresh
overlay (see `aifinops.catalog.overlay`); `reload()` drops the cache.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from aifinops.catalog import aws, azure, gcp
from aifinops.catalog.accelerators import ALIASES, load_accelerators
from aifinops.catalog.models import AcceleratorInfo, InstanceInfo
from aifinops.catalog.overlay import apply_overlay
from aifinops.catalog.sources import SNAPSHOT_DATE
from aifinops.errors import CatalogError, did_you_mean

DEFAULT_REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
CLOUDS = tuple(DEFAULT_REGIONS)


@dataclass
class _Index:
    accelerators: dict[str, AcceleratorInfo]
    rows: list[InstanceInfo]
    by_key: dict[tuple[str, str], InstanceInfo] = field(default_factory=dict)
    regions_by_type: dict[str, list[str]] = field(default_factory=dict)
    cloud_of_type: dict[str, str] = field(default_factory=dict)
    type_by_folded_name: dict[str, str] = field(default_factory=dict)
    rows_by_accelerator: dict[str, list[InstanceInfo]] = field(default_factory=dict)
    unpriced: dict[str, tuple[AcceleratorInfo, float]] = field(default_factory=dict)
    regions_by_cloud: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        regions: dict[str, set[str]] = defaultdict(set)
        by_accelerator: dict[str, list[InstanceInfo]] = defaultdict(list)
        by_cloud: dict[str, set[str]] = defaultdict(set)
        for info in self.rows:
            self.by_key[(info.instance_type, info.region)] = info
            regions[info.instance_type].add(info.region)
            self.cloud_of_type[info.instance_type] = info.cloud
            self.type_by_folded_name[_fold(info.instance_type)] = info.instance_type
            by_accelerator[info.accelerator].append(info)
            by_cloud[info.cloud].add(info.region)
        self.regions_by_type = {name: sorted(found) for name, found in regions.items()}
        self.rows_by_accelerator = dict(by_accelerator)
        self.regions_by_cloud = dict(by_cloud)

    def add(self, info: InstanceInfo) -> None:
        """Index one row built on demand (an N1 + GPU combination not pre-listed)."""
        self.rows.append(info)
        self.by_key[(info.instance_type, info.region)] = info
        self.regions_by_type[info.instance_type] = sorted(
            {*self.regions_by_type.get(info.instance_type, []), info.region}
        )
        self.cloud_of_type[info.instance_type] = info.cloud
        self.type_by_folded_name[_fold(info.instance_type)] = info.instance_type
        self.rows_by_accelerator.setdefault(info.accelerator, []).append(info)


def _fold(name: str) -> str:
    """Case-insensitive key; Azure names also match without the 'Standard_' prefix."""
    folded = name.lower()
    return folded.removeprefix("standard_")


@functools.cache
def _index() -> _Index:
    accelerators = load_accelerators()
    ec2 = list(aws.load_ec2(accelerators))
    rows = [
        *ec2,
        *aws.load_sagemaker(ec2),
        *gcp.load_gcp(accelerators),
        *azure.load_azure(accelerators),
    ]
    priced = apply_overlay(rows)
    known = {info.instance_type for info in priced}
    unpriced = {
        name: (chip, count)
        for name, chip, count in aws.load_unpriced_ec2(accelerators)
        if name not in known
    }
    return _Index(accelerators=accelerators, rows=priced, unpriced=unpriced)


def reload() -> None:
    """Forget the cached catalog; the next call re-reads the data files and the overlay."""
    _index.cache_clear()


def _check_cloud(cloud: str | None) -> None:
    if cloud is not None and cloud not in DEFAULT_REGIONS:
        raise CatalogError(
            f"unknown cloud {cloud!r}{did_you_mean(cloud, CLOUDS)}; known: {', '.join(CLOUDS)}"
        )


def default_region(cloud: str) -> str:
    """The region `lookup` uses when none is given: aws us-east-1, gcp us-central1,
    azure eastus."""
    _check_cloud(cloud)
    return DEFAULT_REGIONS[cloud]


def _resolve_type(index: _Index, instance_type: str, cloud: str | None) -> str:
    """The catalog's spelling of `instance_type`, building GCP N1+GPU names on demand."""
    name = instance_type.strip()
    if name not in index.cloud_of_type:
        name = index.type_by_folded_name.get(_fold(name), name)
    if name not in index.cloud_of_type and gcp.is_attached_type(name):
        for info in gcp.build_attached(name, index.accelerators):
            index.add(info)
    if name not in index.cloud_of_type:
        known: Iterable[str] = index.cloud_of_type
        if cloud is not None:
            known = [t for t, c in index.cloud_of_type.items() if c == cloud]
        raise CatalogError(f"unknown instance type {instance_type!r}{did_you_mean(name, known)}")
    if cloud is not None and index.cloud_of_type[name] != cloud:
        raise CatalogError(
            f"instance type {name!r} belongs to {index.cloud_of_type[name]}, not {cloud}"
        )
    return name


def lookup(
    instance_type: str, region: str | None = None, *, cloud: str | None = None
) -> InstanceInfo:
    """The catalog row of `instance_type` in `region` (None: the cloud's default region).

    Names are matched case-insensitively (Azure also without 'Standard_'); GCP N1 machines with
    attached GPUs use `gcp_attached_type()` names such as 'n1-standard-8+nvidia-tesla-t4:1'.
    Raises `CatalogError` naming close matches when the type or region is unknown.
    """
    _check_cloud(cloud)
    index = _index()
    name = _resolve_type(index, instance_type, cloud)
    type_cloud = index.cloud_of_type[name]
    where = region or DEFAULT_REGIONS[type_cloud]
    info = index.by_key.get((name, where))
    if info is None:
        check_region(where, type_cloud)
        priced = index.regions_by_type[name]
        raise CatalogError(
            f"the catalog has no price for {name} in {where} (snapshot {SNAPSHOT_DATE}; the "
            f"type may not be sold there); priced in: {_some(priced, 20)}"
        )
    return info


def unpriced(instance_type: str) -> tuple[AcceleratorInfo, float] | None:
    """(accelerator, count per node) of a type the catalog knows only without a price (AWS
    types sold through Capacity Blocks or UltraServers: p5e, trn2, p6e-gb200...), else None."""
    return _index().unpriced.get(instance_type.strip())


def cloud_regions(cloud: str | None = None) -> list[str]:
    """Sorted regions the catalog has any price in, of one cloud or of all."""
    _check_cloud(cloud)
    index = _index()
    clouds = [cloud] if cloud else list(CLOUDS)
    return sorted(set().union(*(index.regions_by_cloud.get(c, set()) for c in clouds)))


def _some(names: list[str], shown: int = 12) -> str:
    """`names` joined, the first `shown` of them and a count of the rest."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def check_region(region: str, cloud: str | None = None) -> str:
    """`region` when the catalog prices anything there (in `cloud`, if given); else
    `CatalogError` saying that the catalog lacks it, with close matches and the known ones
    (`finops catalog regions` lists them all)."""
    known = cloud_regions(cloud)
    if region in known:
        return region
    elsewhere = [c for c in CLOUDS if region in _index().regions_by_cloud.get(c, set())]
    whose = f"{cloud} " if cloud else ""
    listing = f"{whose}regions in the catalog: {_some(known, 8)}"
    if len(known) > 8:
        listing += " (finops catalog regions lists them)"
    if elsewhere:
        raise CatalogError(f"region {region!r} is in {elsewhere[0]}, not {cloud}; {listing}")
    close = [r for r in difflib.get_close_matches(region, known, n=3, cutoff=0.6)]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise CatalogError(f"region {region!r} is not in the catalog{hint}; {listing}")


def instance_types(cloud: str | None = None, service: str | None = None) -> list[str]:
    """Sorted instance type names, optionally only one cloud's and/or one service's."""
    _check_cloud(cloud)
    return sorted(
        {
            info.instance_type
            for info in _index().rows
            if (cloud is None or info.cloud == cloud)
            and (service is None or info.service == service)
        }
    )


def offered(cloud: str, region: str, services: Iterable[str]) -> list[InstanceInfo]:
    """The rows of `cloud`'s types of each of `services` (in that order, by name) that have a
    price in `region`; types not sold there are left out."""
    index = _index()
    return [
        index.by_key[(name, region)]
        for service in services
        for name in instance_types(cloud, service)
        if (name, region) in index.by_key
    ]


def regions(instance_type: str) -> list[str]:
    """Sorted regions where `instance_type` has a price; `CatalogError` if the type is unknown."""
    index = _index()
    return list(index.regions_by_type[_resolve_type(index, instance_type, None)])


def accelerator(model: str) -> AcceleratorInfo:
    """The accelerator `model`, case-insensitive, also under common aliases ("A100-40GB",
    GCP's "nvidia-tesla-t4"...); `CatalogError` with close matches on a miss."""
    return _find_accelerator(model)


def _find_accelerator(model: str) -> AcceleratorInfo:
    table = _index().accelerators
    if model in table:
        return table[model]
    folded = {key.lower(): key for key in table}
    key = folded.get(model.lower()) or ALIASES.get(model.lower())
    if key is None:
        raise CatalogError(f"unknown accelerator {model!r}{did_you_mean(model, table)}")
    return table[key]


_MEMORY_VARIANT = re.compile(r"^(?P<model>.+)-\d+GB$")


def accelerator_family(name: str) -> list[AcceleratorInfo]:
    """The accelerator models `name` stands for, as people write it: a bare model name also
    covers its memory variants ("A100" -> A100 40 GB and A100-80GB, "V100" -> V100 and
    V100-32GB); a specific name ("A100-40GB", "A100-80GB", GCP's "nvidia-tesla-a100") is that
    model only. `CatalogError` with close matches on a miss."""
    chip = _find_accelerator(name)
    if name.strip().lower() != chip.model.lower():
        return [chip]
    table = _index().accelerators
    variants = [
        info
        for model, info in table.items()
        if (match := _MEMORY_VARIANT.match(model)) and match["model"] == chip.model
    ]
    return [chip, *variants]


def accelerators() -> list[AcceleratorInfo]:
    """Every accelerator model, in the order of the table (oldest first within a vendor)."""
    return list(_index().accelerators.values())


def equivalents(
    instance_type: str, region: str | None = None, *, spot: bool = False
) -> list[InstanceInfo]:
    """Types that can take over `instance_type`'s work, cheapest per unit of throughput first.

    Candidates share the cloud, service and region, the accelerator vendor and kind (an
    NVIDIA GPU job is not moved to Inferentia), and have at least as much accelerator memory
    per node. Whole-GPU types only get whole-GPU candidates; a fractional type also gets the
    other fractional sizes. The type itself is included, ranked like the others. With
    `spot=True` types without a spot price are left out. Sorted by
    `usd_per_throughput_hour(spot)`, ties by hourly price then name.
    """
    base = lookup(instance_type, region)
    chip = _find_accelerator(base.accelerator)
    need_gib = base.node_accelerator_memory_gib
    whole_only = base.accelerator_count >= 1
    found = []
    for info in _index().rows:
        if (info.cloud, info.service, info.region) != (base.cloud, base.service, base.region):
            continue
        other = _find_accelerator(info.accelerator)
        if (other.vendor, other.kind) != (chip.vendor, chip.kind):
            continue
        if info.node_accelerator_memory_gib < need_gib:
            continue
        if whole_only and info.accelerator_count < 1:
            continue
        if spot and info.spot_usd_per_hour is None:
            continue
        found.append(info)
    return sorted(
        found,
        key=lambda i: (i.usd_per_throughput_hour(spot), i.usd_per_hour(spot), i.instance_type),
    )


def cheapest(
    accelerator: str,
    count: int,
    *,
    spot: bool = False,
    cloud: str | None = None,
    region: str | None = None,
    service: str | None = None,
) -> list[InstanceInfo]:
    """Types with at least `count` of `accelerator`, cheapest hourly price first.

    `accelerator` is read as `accelerator_family` reads it ("A100" covers the 40 and 80 GB
    models). `region=None` searches every region (each row carries its region); `spot=True`
    prices at spot and leaves out rows without a spot price. An unknown accelerator raises
    `CatalogError`.
    """
    _check_cloud(cloud)
    index = _index()
    candidates = [
        info
        for chip in accelerator_family(accelerator)
        for info in index.rows_by_accelerator.get(chip.model, [])
    ]
    found = [
        info
        for info in candidates
        if info.accelerator_count >= count
        and (cloud is None or info.cloud == cloud)
        and (region is None or info.region == region)
        and (service is None or info.service == service)
        and (not spot or info.spot_usd_per_hour is not None)
    ]
    return sorted(found, key=lambda i: (i.usd_per_hour(spot), i.instance_type, i.region))
