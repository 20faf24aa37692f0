"""The checks one target's candidates must pass, from its measured demand and the catalog.

`Rules` holds what any type the target may launch must carry (`Need`): busy GPUs,
accelerator memory, per-accelerator speed, and the host's vCPUs and memory where measured;
`misfit` says why a type cannot, `check_priced` runs it on every type the preview shows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aifinops import catalog
from aifinops.catalog import InstanceInfo
from aifinops.config import Capacity
from aifinops.errors import CatalogError
from aifinops.rightsizing.evidence import TargetUsage
from aifinops.rightsizing.model import (
    ARM_HOST_ACCELERATORS,
    NAMED_TYPES,
    SIBLING,
    Kind,
    Plan,
    Settings,
)
from aifinops.rightsizing.pricing import PricedTarget, Pricer
from aifinops.rightsizing.spot import Checkpointing, expected_wall_hours, hazard_of


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    index: int
    cloud: str
    region: str
    info: InstanceInfo
    nodes: int
    nodes_min: int
    capacity: str
    on_demand_base: int
    hours_per_month: float
    model_memory_gib: float | None
    uses_accelerator_form: bool


@functools.cache
def _rows(cloud: str, service: str, region: str) -> tuple[InstanceInfo, ...]:
    return tuple(catalog.offered(cloud, region, (service,)))


def lookup_type(name: str, t: Target) -> InstanceInfo | None:
    try:
        return catalog.lookup(name, t.region, cloud=t.cloud)
    except CatalogError:
        return None


def spot_overhead(info: InstanceInfo, ckpt: Checkpointing, life_hours: float) -> float:
    """Wall hours on spot per wall hour on-demand for the same work (rework + relaunch)."""
    work = ckpt.interval_hours * 8
    hazard = hazard_of(info, life_hours)
    return expected_wall_hours(work, hazard, ckpt) / expected_wall_hours(work, 0.0, ckpt)


@dataclass(frozen=True)
class Need:
    """What any type the target may launch must hold; None: not measured."""

    busy_gpus: int
    memory_gib: float | None
    speed_per_accelerator: float
    vcpus: float | None
    host_memory_gib: float | None
    min_vcpus_now: int
    min_host_memory_now: float
    min_memory_now: float
    min_speed_now: float


class Rules:
    """The rules for one target (with enough evidence)."""

    def __init__(self, t: Target, usage: TargetUsage, settings: Settings, pricer: Pricer) -> None:
        self.t, self.u, self.s, self.pricer = t, usage, settings, pricer
        self.ckpt = settings.checkpointing or Checkpointing()
        self.now = self.price({})
        now_infos = [i for i in (lookup_type(n, t) for n in self.now.instance_types) if i] or [
            t.info
        ]
        peak = usage.gpu_memory_peak_gib
        if t.model_memory_gib is not None and peak is not None:
            peak = max(peak, t.model_memory_gib / max(usage.busy_gpus_per_node, 1))
        self.memory_peak = peak
        h = settings.headroom
        min_speed_now = min(i.accelerator_info.relative_training_throughput for i in now_infos)
        demand = usage.burst_demand_v100 if t.key == "inferenceEndpoints" else usage.demand_v100
        self.little_work = usage.busy_hours < settings.min_busy_hours
        if self.little_work:
            demand = None  # too few hours of work to size a slower chip on
        self.need = Need(
            busy_gpus=usage.busy_gpus_per_node,
            memory_gib=None if peak is None else peak * (1 + h),
            # never slower than today where the demand (plus headroom) asks for more
            speed_per_accelerator=min_speed_now
            if demand is None
            else min(demand * (1 + h), min_speed_now),
            vcpus=None if usage.host_cpu_vcpus_p95 is None else usage.host_cpu_vcpus_p95 * (1 + h),
            host_memory_gib=None
            if usage.host_memory_peak_gib is None
            else usage.host_memory_peak_gib * (1 + h),
            min_vcpus_now=min(i.vcpus for i in now_infos),
            min_host_memory_now=min(i.memory_gib for i in now_infos),
            min_memory_now=min(i.accelerator_memory_gib for i in now_infos),
            min_speed_now=min_speed_now,
        )
        self.current_plan = self.plan(self.now, t.nodes, t.capacity)
        self.demand = demand
        from aifinops.rightsizing.inputbound import CPU, causes, input_bound

        self.cpu_starved = input_bound(self) is not None and CPU in causes(self)
        """The GPUs wait on a saturated CPU: no type with fewer vCPUs than it used fits."""

    # -- pricing -------------------------------------------------------------------------

    def lookup(self, name: str) -> InstanceInfo:
        return lookup_type(name, self.t) or self.t.info

    def price(self, changes: dict[str, Any]) -> PricedTarget:
        return self.pricer(self.t.key, self.t.index, changes)

    def plan(self, priced: PricedTarget, nodes: float, capacity: str) -> Plan:
        infos = [i for i in (lookup_type(n, self.t) for n in priced.instance_types) if i]
        first = infos[0] if infos else self.t.info
        return Plan(
            instance_types=priced.instance_types or (self.t.info.instance_type,),
            nodes=nodes,
            capacity=capacity,
            accelerator=first.accelerator,
            accelerator_count=first.accelerator_count,
            accelerator_memory_gib=min((i.accelerator_memory_gib for i in infos), default=0.0),
            monthly_usd=priced.monthly_usd,
        )

    # -- checks --------------------------------------------------------------------------

    def misfit(self, info: InstanceInfo) -> str | None:
        """Why `info` cannot carry the measured demand (None: it can)."""
        n, t = self.need, self.t
        chip = info.accelerator_info
        if (info.accelerator in ARM_HOST_ACCELERATORS) != (
            t.info.accelerator in ARM_HOST_ACCELERATORS
        ):
            return f"{info.instance_type} is an arm64 host"
        if info.accelerator_count < n.busy_gpus:
            return (
                f"{info.instance_type} has {info.accelerator_count:g} accelerators, "
                f"{n.busy_gpus} were busy on one node"
            )
        if n.memory_gib is None:
            if info.accelerator_memory_gib < n.min_memory_now:
                return (
                    f"{info.instance_type} has less accelerator memory and the memory peak was "
                    "not measured"
                )
        elif info.accelerator_memory_gib < n.memory_gib - 1e-9:
            return (
                f"{info.instance_type}: {info.accelerator_memory_gib:g} GiB {info.accelerator} < "
                f"memory peak {self.memory_peak:.1f} GiB + {self.s.headroom:.0%}"
            )
        speed = chip.relative_training_throughput
        if speed < n.speed_per_accelerator - 1e-9:
            if self.demand is None and self.little_work:
                return (
                    f"{info.instance_type}: a slower {info.accelerator}, and the demand was seen "
                    f"in only {self.u.busy_hours} hours of work (need {self.s.min_busy_hours:g})"
                )
            if self.demand is None:
                return (
                    f"{info.instance_type}: a slower {info.accelerator} and no time-weighted "
                    "mean to show the demand fits (the source gave only 5-minute peaks)"
                )
            return (
                f"{info.instance_type}: {info.accelerator} at {speed:g} x V100 < sustained demand "
                f"{self.demand:.2f} x V100 + {self.s.headroom:.0%}"
            )
        if info.vcpus < n.min_vcpus_now:
            if n.vcpus is None:
                return (
                    f"{info.instance_type}: {info.vcpus} vCPUs < {n.min_vcpus_now} today and host "
                    "CPU was not measured (the host may be the bottleneck)"
                )
            if info.vcpus < n.vcpus - 1e-9:
                return (
                    f"{info.instance_type}: {info.vcpus} vCPUs < host CPU p95 "
                    f"{n.vcpus / (1 + self.s.headroom):.1f} vCPUs + {self.s.headroom:.0%}"
                )
        if self.cpu_starved and n.vcpus is not None and info.vcpus < n.vcpus - 1e-9:
            return (
                f"{info.instance_type}: {info.vcpus} vCPUs, and the GPUs wait on a saturated CPU "
                f"(host CPU p95 {n.vcpus / (1 + self.s.headroom):.1f} vCPUs + "
                f"{self.s.headroom:.0%})"
            )
        if info.memory_gib < n.min_host_memory_now:
            if n.host_memory_gib is None:
                return (
                    f"{info.instance_type}: {info.memory_gib:g} GiB host memory < "
                    f"{n.min_host_memory_now:g} today and host memory was not measured"
                )
            if info.memory_gib < n.host_memory_gib - 1e-9:
                return (
                    f"{info.instance_type}: {info.memory_gib:g} GiB host memory < host peak "
                    f"{n.host_memory_gib / (1 + self.s.headroom):.1f} GiB + {self.s.headroom:.0%}"
                )
        return None

    def check_priced(self, priced: PricedTarget) -> str | None:
        """Why the preview's priced types cannot all carry the demand (None: they can)."""
        if priced.unpriced:
            return f"UNKNOWN cost: the preview could not price {priced.unpriced[0]}"
        for name in priced.instance_types:
            info = lookup_type(name, self.t)
            if info is None:
                return f"UNKNOWN: {name} is not in the catalog for {self.t.region}"
            problem = self.misfit(info)
            if problem:
                primary = priced.instance_types[0] if priced.instance_types else name
                if name != primary:
                    return f"{SIBLING} {name}: {problem}"
                return problem
        return None

    # -- candidates ----------------------------------------------------------------------

    def type_changes(self, info: InstanceInfo, names: Sequence[str] = ()) -> dict[str, Any]:
        """The edits that run the target on `info` (a fleet: on `names`, `info` first)."""
        t = self.t
        if t.key == "inferenceEndpoints":
            if t.uses_accelerator_form:
                return {"accelerator": None, "instanceType": info.instance_type}
            return {"instanceType": info.instance_type}
        listed = list(names) or [info.instance_type]
        if t.uses_accelerator_form:
            return {"accelerator": None, "acceleratorsPerNode": None, "instanceTypes": listed}
        return {"instanceTypes": listed}

    def fitting_names(self, info: InstanceInfo) -> list[str]:
        """`info` and the cheapest types with as many accelerators that carry the demand: a
        list the fleet component does not pad with types that do not."""
        siblings = [
            row
            for row in self.catalog_rows()
            if row.accelerator_count == info.accelerator_count
            and row.instance_type != info.instance_type
            and self.misfit(row) is None
        ]
        siblings.sort(key=lambda i: (self.hourly(i), i.instance_type))
        return [info.instance_type] + [i.instance_type for i in siblings[: NAMED_TYPES - 1]]

    def catalog_rows(self) -> list[InstanceInfo]:
        info = self.t.info
        kinds = {info.accelerator_info.kind}
        services = {info.service}
        if self.t.key == "inferenceEndpoints" and info.accelerator_info.kind == "gpu":
            kinds |= {"inferentia", "tpu"}
            if self.t.cloud == "gcp":
                services.add("tpu")
        rows = []
        for service in sorted(services):
            for row in _rows(self.t.cloud, service, self.t.region):
                chip = row.accelerator_info
                if chip.kind not in kinds or row.accelerator_count < 1:
                    continue
                if chip.kind == "gpu" and chip.vendor != info.accelerator_info.vendor:
                    continue
                if row.throughput_per_node <= 0 or row.instance_type == info.instance_type:
                    continue
                if (row.accelerator in ARM_HOST_ACCELERATORS) != (
                    info.accelerator in ARM_HOST_ACCELERATORS
                ):
                    continue  # arm64 hosts need other images
                if row.generation != "current" and row.accelerator != info.accelerator:
                    continue  # an older chip than the one run today: drivers, frameworks
                rows.append(row)
        return rows

    def hourly(self, info: InstanceInfo) -> float:
        spot = self.t.capacity != Capacity.ON_DEMAND.value and info.spot_usd_per_hour is not None
        return info.usd_per_hour(spot)

    def type_kind(self, info: InstanceInfo) -> Kind:
        now = self.t.info
        if info.accelerator_info.kind != now.accelerator_info.kind:
            return Kind.INFERENCE_ACCELERATOR
        if info.accelerator_count < now.accelerator_count:
            return Kind.FEWER_ACCELERATORS
        if info.accelerator == now.accelerator and info.accelerator_count == now.accelerator_count:
            return Kind.SMALLER_HOST
        return Kind.SMALLER_ACCELERATOR

    def type_summary(self, info: InstanceInfo, kind: Kind) -> str:
        now, u = self.t.info, self.u
        head = f"{now.instance_type} -> {info.instance_type}"
        if kind == Kind.FEWER_ACCELERATORS:
            return (
                f"{head}: at most {u.busy_gpus_per_node} of {now.accelerator_count:g} GPUs busy "
                "per node"
            )
        if kind == Kind.SMALLER_HOST:
            return f"{head}: the same {now.accelerator} on a smaller host"
        what = "peak demand" if self.t.key == "inferenceEndpoints" else "sustained demand"
        demand = "" if self.demand is None else f"{what} {self.demand:.2f} x V100, "
        memory = "" if self.memory_peak is None else f"memory peak {self.memory_peak:.1f} GiB "
        return (
            f"{head}: {demand}{memory}(+{self.s.headroom:.0%}) fit "
            f"{info.accelerator_count:g} x {info.accelerator_memory_gib:g} GiB {info.accelerator} "
            f"at {info.accelerator_info.relative_training_throughput:g} x V100"
        )

    def speed_ratio(self, priced: PricedTarget) -> float:
        infos = [i for i in (lookup_type(n, self.t) for n in priced.instance_types) if i]
        if not infos or self.need.min_speed_now <= 0:
            return 1.0
        slowest = min(i.accelerator_info.relative_training_throughput for i in infos)
        return slowest / self.need.min_speed_now

    def throughput_bound(self) -> str | None:
        """Why the fleet is throughput-bound (None: not shown to be)."""
        u, s = self.u, self.s
        if u.util_mean_percent is None:
            return None
        busy = max(u.busy_hours_share, u.work_hours_share)
        sm_ok = u.sm_active_mean is None or u.sm_active_mean >= s.throughput_bound_sm_mean
        if (
            u.util_mean_percent >= s.throughput_bound_mean_percent
            and busy >= s.throughput_bound_busy_share
            and sm_ok
        ):
            sm = "" if u.sm_active_mean is None else f", SM activity mean {u.sm_active_mean:.2f}"
            return (
                f"throughput-bound: time-weighted mean {u.util_mean_percent:.0f}%, busy "
                f"{busy:.0%} of hours{sm}"
            )
        return None
