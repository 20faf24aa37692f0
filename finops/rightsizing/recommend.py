"""Measured usage + stack config -> priced, safe recommendations per fleet and endpoint.

Rules (thresholds in `Settings`), evaluated per training fleet and inference endpoint:

* `larger-type` when accelerator memory runs near full or the GPUs are saturated; then no
  downsizing rule is tried (rightsizing is not only down);
* `fewer-accelerators` when some GPUs of every node sit idle;
* `smaller-accelerator` when activity is low and a cheaper accelerator covers the observed
  demand with headroom;
* `inference-accelerator` (Inferentia, TPU) for an endpoint whose model fits and is cheaper;
* `spot-with-fallback` for an on-demand training fleet whose jobs checkpoint, when the type's
  Spot Advisor range is acceptable;
* `scale-to-zero` when the fleet's hosts sit idle for long stretches.

Whatever the rule, no recommendation puts less accelerator memory per accelerator than the
observed peak plus headroom (`is_memory_safe` checks it, and every rule goes through it).
Money is USD per month at the config's hours per month, at the same work done.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from finops import catalog
from finops.catalog import InstanceInfo
from finops.config import Capacity, InferenceEndpoint, StackConfig, TrainingFleet
from finops.errors import CatalogError
from finops.rightsizing.spot import Checkpointing, expected_wall_hours, hazard_of
from finops.rightsizing.usage import GpuUsage

ARM_HOST_ACCELERATORS = frozenset({"T4G"})
"""Accelerators sold only on arm64 hosts (g5g: Graviton): not a drop-in move for x86 images."""


class Kind(StrEnum):
    SMALLER_ACCELERATOR = "smaller-accelerator"
    FEWER_ACCELERATORS = "fewer-accelerators"
    SPOT_WITH_FALLBACK = "spot-with-fallback"
    INFERENCE_ACCELERATOR = "inference-accelerator"
    SCALE_TO_ZERO = "scale-to-zero"
    LARGER_TYPE = "larger-type"


@dataclass(frozen=True)
class Settings:
    """Thresholds of the rules; percentages 0-100, ratios 0-1."""

    memory_headroom: float = 0.20
    """Accelerator memory kept free above the observed peak, and throughput above p95 demand."""
    low_util_percent: float = 40.0
    """p95 of 5-minute peak GPU utilisation under this is low activity."""
    low_sm_active: float = 0.40
    """...and p95 SM activity under this, where measured."""
    saturated_util_percent: float = 90.0
    saturated_sm_active: float = 0.80
    memory_full_share: float = 0.90
    """Peak memory at or above this share of the accelerator's memory is near full."""
    busy_gpu_util_percent: float = 5.0
    """A GPU whose p95 utilisation stays under this is unused."""
    scale_to_zero_idle_share: float = 0.30
    """Hosts idle for at least this share of the window's hours (whole idle hours)."""
    max_interruption_index: int = 2
    """Highest acceptable Spot Advisor range index (2: 10-15% interrupted per month)."""
    checkpointing: Checkpointing | None = field(default_factory=Checkpointing)
    """How training jobs checkpoint; None: they do not, so no spot recommendation."""
    min_saving_share: float = 0.05
    """Ignore a downsizing that saves less than this share."""


@dataclass(frozen=True)
class Plan:
    """How a fleet or endpoint is bought: per-node facts and the month's bill."""

    instance_type: str
    nodes: float
    capacity: str
    accelerator: str
    accelerator_count: float
    accelerator_memory_gib: float
    usd_per_node_hour: float
    """Blended price of one node (spot share at spot price times its rework overhead)."""
    monthly_usd: float


@dataclass(frozen=True)
class Evidence:
    """What the recommendation stands on."""

    source: str
    window_start: float
    window_end: float
    hosts: int
    gpus: int
    metrics: dict[str, float | None]
    """Name -> value; units in the names."""


@dataclass(frozen=True)
class Recommendation:
    target_kind: str
    """"trainingFleets" or "inferenceEndpoints" (the stack-config key)."""
    target: str
    index: int
    """Position of the target in its stack-config list."""
    kind: Kind
    summary: str
    current: Plan
    proposed: Plan
    monthly_saving_usd: float
    """Negative when the change costs more (a larger type)."""
    work_unit: str
    usd_per_work_before: float | None
    usd_per_work_after: float | None
    memory_needed_gib: float | None
    """Per accelerator: observed peak plus headroom (None when memory was not measured)."""
    headroom: float
    evidence: Evidence
    changes: dict[str, Any] = field(default_factory=dict)
    """Stack-config keys (camelCase, under the target's entry) -> new value."""

    @property
    def ref(self) -> str:
        return f"{self.target}:{self.kind.value}"


@dataclass(frozen=True)
class TargetUsage:
    """A fleet's or endpoint's GPUs folded into the figures the rules read."""

    hosts: int
    gpus: int
    window_start: float
    window_end: float
    source: str
    util_p95_percent: float
    util_mean_percent: float
    sm_active_p95: float | None
    gpu_memory_peak_gib: float | None
    busy_gpus_per_node: int
    idle_hours_share: float
    work_per_hour: dict[str, float]
    instance_types: tuple[str, ...]


def fold(usages: Sequence[GpuUsage], busy_percent: float) -> TargetUsage:
    """Fold one target's GPUs: the busiest GPU decides activity, the fullest decides memory."""
    by_host: dict[str, list[GpuUsage]] = defaultdict(list)
    for usage in usages:
        by_host[usage.host].append(usage)
    memory = [u.memory_peak_gib for u in usages]
    sm = [u.sm_active_p95 for u in usages if u.sm_active_p95 is not None]
    idle_shares = []
    work: dict[str, float] = defaultdict(float)
    for gpus in by_host.values():
        host_share = gpus[0].host_idle_hours_share
        idle_shares.append(
            host_share if host_share is not None else min(g.idle_hours_share for g in gpus)
        )
        for unit, rate in gpus[0].work_per_hour.items():
            work[unit] += rate / len(by_host)
    return TargetUsage(
        hosts=len(by_host),
        gpus=len(usages),
        window_start=min(u.window_start for u in usages),
        window_end=max(u.window_end for u in usages),
        source=", ".join(sorted({u.source for u in usages if u.source})),
        util_p95_percent=max(u.util_p95_percent for u in usages),
        util_mean_percent=sum(u.util_mean_percent for u in usages) / len(usages),
        sm_active_p95=max(sm) if sm else None,
        gpu_memory_peak_gib=None
        if any(m is None for m in memory)
        else max(m for m in memory if m is not None),
        busy_gpus_per_node=max(
            max(1, sum(1 for g in gpus if g.util_p95_percent >= busy_percent))
            for gpus in by_host.values()
        ),
        idle_hours_share=sum(idle_shares) / len(idle_shares),
        work_per_hour=dict(work),
        instance_types=tuple(sorted({u.instance_type for u in usages})),
    )


def is_memory_safe(info: InstanceInfo, usage: TargetUsage, headroom: float) -> bool:
    """True when `info` keeps the observed per-accelerator peak plus headroom in memory, and
    the node's memory covers every busy GPU's peak plus headroom; unknown peaks are unsafe."""
    peak = usage.gpu_memory_peak_gib
    if peak is None:
        return False
    need = peak * (1 + headroom)
    if info.accelerator_count >= 1 and info.accelerator_count >= usage.busy_gpus_per_node:
        return info.accelerator_memory_gib >= need
    # a different layout (fewer, larger chips): the node must hold every busy GPU's peak
    return info.node_accelerator_memory_gib >= need * usage.busy_gpus_per_node


@functools.cache
def _rows(cloud: str, service: str, region: str) -> tuple[InstanceInfo, ...]:
    rows = []
    for name in catalog.instance_types(cloud, service):
        try:
            rows.append(catalog.lookup(name, region, cloud=cloud))
        except CatalogError:
            continue
    return tuple(rows)


def _spot_overhead(info: InstanceInfo, ckpt: Checkpointing) -> float:
    """Wall hours on spot per wall hour on-demand for the same work (rework + relaunch)."""
    work = ckpt.interval_hours * 8
    return expected_wall_hours(work, hazard_of(info), ckpt) / expected_wall_hours(work, 0.0, ckpt)


def node_hour_usd(
    info: InstanceInfo, capacity: str, nodes: float, on_demand_base: int, ckpt: Checkpointing
) -> float:
    """Blended USD per node-hour: the on-demand base at on-demand, the rest at spot times the
    rework overhead (spot-with-fallback, spot-only); on-demand when no spot price is known."""
    if capacity == Capacity.ON_DEMAND.value or info.spot_usd_per_hour is None or nodes <= 0:
        return info.on_demand_usd_per_hour
    base = min(float(on_demand_base), nodes)
    spot = info.spot_usd_per_hour * _spot_overhead(info, ckpt)
    return (base * info.on_demand_usd_per_hour + (nodes - base) * spot) / nodes


@dataclass(frozen=True)
class _Target:
    key: str
    name: str
    index: int
    cloud: str
    region: str
    info: InstanceInfo
    nodes: float
    capacity: str
    on_demand_base: int
    hours_per_month: float
    model_memory_gib: float | None
    uses_accelerator_form: bool
    instance_types: tuple[str, ...]


def _plan(
    t: _Target, info: InstanceInfo, nodes: float, capacity: str, base: int, ckpt: Checkpointing
) -> Plan:
    hourly = node_hour_usd(info, capacity, nodes, base, ckpt)
    return Plan(
        instance_type=info.instance_type,
        nodes=nodes,
        capacity=capacity,
        accelerator=info.accelerator,
        accelerator_count=info.accelerator_count,
        accelerator_memory_gib=info.accelerator_memory_gib,
        usd_per_node_hour=hourly,
        monthly_usd=hourly * nodes * t.hours_per_month,
    )


def _fleet_target(
    config: StackConfig, index: int, fleet: TrainingFleet, observed: Iterable[str]
) -> _Target:
    region = config.region(fleet.cloud, fleet.region)
    cloud = fleet.cloud.value
    if fleet.instance_types:
        seen = [t for t in observed if t in fleet.instance_types]
        name = seen[0] if seen else fleet.instance_types[0]
        info = catalog.lookup(name, region, cloud=cloud)
    else:
        assert fleet.accelerator is not None
        found = catalog.cheapest(
            fleet.accelerator,
            fleet.accelerators_per_node or 1,
            cloud=cloud,
            region=region,
            service={"aws": "ec2", "gcp": "gce", "azure": "azure-vm"}[cloud],
        )
        if not found:
            raise CatalogError(
                f"trainingFleets[{index}] {fleet.name}: no {fleet.accelerator} type in {region}"
            )
        info = found[0]
    return _Target(
        key="trainingFleets",
        name=fleet.name,
        index=index,
        cloud=cloud,
        region=region,
        info=info,
        nodes=float(fleet.nodes.desired),
        capacity=fleet.capacity.value,
        on_demand_base=fleet.on_demand_base,
        hours_per_month=fleet.hours_per_month,
        model_memory_gib=None,
        uses_accelerator_form=fleet.accelerator is not None,
        instance_types=tuple(fleet.instance_types or ()),
    )


def _endpoint_target(config: StackConfig, index: int, endpoint: InferenceEndpoint) -> _Target:
    region = config.region(endpoint.cloud, endpoint.region)
    cloud = endpoint.cloud.value
    if endpoint.instance_type:
        info = catalog.lookup(endpoint.instance_type, region, cloud=cloud)
    else:
        assert endpoint.accelerator is not None
        service = "sagemaker" if cloud == "aws" else "gce"
        found = catalog.cheapest(
            endpoint.accelerator, 1, cloud=cloud, region=region, service=service
        )
        if not found:
            raise CatalogError(
                f"inferenceEndpoints[{index}] {endpoint.name}: no {endpoint.accelerator} type in {region}"
            )
        info = found[0]
    return _Target(
        key="inferenceEndpoints",
        name=endpoint.name,
        index=index,
        cloud=cloud,
        region=region,
        info=info,
        nodes=float(max(endpoint.replicas.min, 1)),
        capacity=Capacity.ON_DEMAND.value,
        on_demand_base=0,
        hours_per_month=endpoint.hours_per_month,
        model_memory_gib=endpoint.model_memory_gib,
        uses_accelerator_form=endpoint.accelerator is not None,
        instance_types=(),
    )


class _Builder:
    """Builds the rules' recommendations for one target."""

    def __init__(self, t: _Target, usage: TargetUsage, settings: Settings) -> None:
        self.t = t
        self.u = usage
        self.s = settings
        self.ckpt = settings.checkpointing or Checkpointing()
        self.current = _plan(t, t.info, t.nodes, t.capacity, t.on_demand_base, self.ckpt)
        peak = usage.gpu_memory_peak_gib
        if t.model_memory_gib is not None and peak is not None:
            peak = max(peak, t.model_memory_gib / max(usage.busy_gpus_per_node, 1))
        self.u = replace(usage, gpu_memory_peak_gib=peak)
        self.memory_needed = None if peak is None else peak * (1 + settings.memory_headroom)
        if usage.work_per_hour:
            self.work_unit = sorted(usage.work_per_hour)[0]
            self.work_per_node_hour = usage.work_per_hour[self.work_unit]
        else:
            self.work_unit = "V100-hour used"
            self.work_per_node_hour = t.info.throughput_per_node * usage.util_mean_percent / 100

    def evidence(self) -> Evidence:
        u = self.u
        return Evidence(
            source=u.source,
            window_start=u.window_start,
            window_end=u.window_end,
            hosts=u.hosts,
            gpus=u.gpus,
            metrics={
                "gpu_util_p95_of_5min_peaks_percent": round(u.util_p95_percent, 2),
                "gpu_util_mean_percent": round(u.util_mean_percent, 2),
                "sm_active_p95_ratio": None
                if u.sm_active_p95 is None
                else round(u.sm_active_p95, 3),
                "gpu_memory_peak_gib": None
                if u.gpu_memory_peak_gib is None
                else round(u.gpu_memory_peak_gib, 2),
                "gpu_memory_gib": self.t.info.accelerator_memory_gib,
                "busy_gpus_per_node": float(u.busy_gpus_per_node),
                "gpus_per_node": self.t.info.accelerator_count,
                "idle_hours_share": round(u.idle_hours_share, 3),
                **{f"work_{k}_per_hour": round(v, 3) for k, v in u.work_per_hour.items()},
            },
        )

    def make(
        self,
        kind: Kind,
        proposed: Plan,
        summary: str,
        changes: dict[str, Any],
        work_ratio: float = 1.0,
    ) -> Recommendation:
        before_work = self.work_per_node_hour * self.t.nodes * self.t.hours_per_month
        after_work = before_work * work_ratio
        return Recommendation(
            target_kind=self.t.key,
            target=self.t.name,
            index=self.t.index,
            kind=kind,
            summary=summary,
            current=self.current,
            proposed=proposed,
            monthly_saving_usd=self.current.monthly_usd - proposed.monthly_usd,
            work_unit=self.work_unit,
            usd_per_work_before=self.current.monthly_usd / before_work if before_work > 0 else None,
            usd_per_work_after=proposed.monthly_usd / after_work if after_work > 0 else None,
            memory_needed_gib=self.memory_needed,
            headroom=self.s.memory_headroom,
            evidence=self.evidence(),
            changes=changes,
        )

    def type_changes(self, info: InstanceInfo) -> dict[str, Any]:
        t = self.t
        if t.key == "inferenceEndpoints":
            if t.uses_accelerator_form:
                return {"accelerator": None, "instanceType": info.instance_type}
            return {"instanceType": info.instance_type}
        if t.uses_accelerator_form and catalog.cheapest(
            info.accelerator,
            int(info.accelerator_count),
            cloud=t.cloud,
            region=t.region,
            service=info.service,
        )[:1] == [info]:
            return {
                "accelerator": info.accelerator,
                "acceleratorsPerNode": int(info.accelerator_count),
            }
        if t.uses_accelerator_form:
            return {
                "accelerator": None,
                "acceleratorsPerNode": None,
                "instanceTypes": [info.instance_type],
            }
        return {"instanceTypes": [info.instance_type]}

    def candidates(self, kinds: tuple[str, ...]) -> list[InstanceInfo]:
        info = self.t.info
        services = {info.service} | ({"tpu"} if "tpu" in kinds else set())
        vendor = info.accelerator_info.vendor
        found = []
        for service in sorted(services):
            for row in _rows(info.cloud, service, info.region):
                chip = row.accelerator_info
                if chip.kind not in kinds:
                    continue
                if chip.kind == "gpu" and chip.vendor != vendor:
                    continue
                if row.accelerator_count < 1 or row.throughput_per_node <= 0:
                    continue
                if (row.accelerator in ARM_HOST_ACCELERATORS) != (
                    info.accelerator in ARM_HOST_ACCELERATORS
                ):
                    continue
                found.append(row)
        return found

    def hourly(self, info: InstanceInfo) -> float:
        return node_hour_usd(info, self.t.capacity, self.t.nodes, self.t.on_demand_base, self.ckpt)

    def larger(self) -> Recommendation | None:
        u, s, info = self.u, self.s, self.t.info
        peak = u.gpu_memory_peak_gib
        memory_full = peak is not None and peak >= s.memory_full_share * info.accelerator_memory_gib
        # a job that leaves GPUs of its node unused is not short of GPUs: fewer first
        saturated = (
            u.busy_gpus_per_node >= info.accelerator_count
            and u.util_p95_percent >= s.saturated_util_percent
            and (u.sm_active_p95 is None or u.sm_active_p95 >= s.saturated_sm_active)
        )
        if not (memory_full or saturated):
            return None
        need_memory = self.memory_needed if memory_full else info.accelerator_memory_gib
        need_throughput = info.throughput_per_node * ((1 + s.memory_headroom) if saturated else 1.0)
        options = [
            row
            for row in self.candidates((info.accelerator_info.kind,))
            if row.accelerator_count == info.accelerator_count
            and row.accelerator_memory_gib >= (need_memory or 0)
            and row.throughput_per_node >= need_throughput
            and row.instance_type != info.instance_type
            and (row.accelerator_memory_gib > info.accelerator_memory_gib or not memory_full)
        ]
        if not options:
            return None
        best = min(
            options,
            key=lambda r: (self.hourly(r) / r.throughput_per_node, self.hourly(r), r.instance_type),
        )
        why = []
        if memory_full:
            why.append(f"memory peak {peak:.1f} of {info.accelerator_memory_gib:g} GiB")
        if saturated:
            why.append(f"GPU p95 {u.util_p95_percent:.0f}%")
        proposed = _plan(
            self.t, best, self.t.nodes, self.t.capacity, self.t.on_demand_base, self.ckpt
        )
        if saturated:
            # the same work takes fewer node-hours on the faster type (money at the same work)
            speedup = best.throughput_per_node / info.throughput_per_node
            proposed = replace(proposed, monthly_usd=proposed.monthly_usd / speedup)
            why.append(f"priced at the same work ({speedup:.2f}x faster)")
        return self.make(
            Kind.LARGER_TYPE,
            proposed,
            f"{info.instance_type} -> {best.instance_type}: {', '.join(why)}",
            self.type_changes(best),
        )

    def downsize(self) -> Recommendation | None:
        u, s, info = self.u, self.s, self.t.info
        if self.memory_needed is None:
            return None
        low = u.util_p95_percent < s.low_util_percent and (
            u.sm_active_p95 is None or u.sm_active_p95 < s.low_sm_active
        )
        busy = u.busy_gpus_per_node
        per_gpu = info.accelerator_info.relative_training_throughput
        demand = min(u.util_p95_percent, 100.0) / 100 if low else 1.0
        need_throughput = per_gpu * busy * demand * ((1 + s.memory_headroom) if low else 1.0)
        if not low and busy >= info.accelerator_count:
            return None
        # each busy GPU's share of work must fit one accelerator of the new type
        need_per_accelerator = per_gpu * demand * ((1 + s.memory_headroom) if low else 1.0)
        options = [
            row
            for row in self.candidates((info.accelerator_info.kind,))
            if row.accelerator_count >= busy
            and row.accelerator_info.relative_training_throughput >= need_per_accelerator
            and is_memory_safe(row, u, s.memory_headroom)
            and row.throughput_per_node >= need_throughput
        ]
        if not options:
            return None
        best = min(options, key=lambda r: (self.hourly(r), -r.throughput_per_node, r.instance_type))
        current = self.hourly(info)
        if best.instance_type == info.instance_type or self.hourly(best) > current * (
            1 - s.min_saving_share
        ):
            return None
        proposed = _plan(
            self.t, best, self.t.nodes, self.t.capacity, self.t.on_demand_base, self.ckpt
        )
        fewer = best.accelerator_count < info.accelerator_count
        if fewer and (best.accelerator == info.accelerator or not low):
            kind = Kind.FEWER_ACCELERATORS
            summary = (
                f"{info.instance_type} -> {best.instance_type}: at most {busy} of "
                f"{info.accelerator_count:g} GPUs busy per node"
            )
            if best.accelerator != info.accelerator:
                summary += (
                    f" ({best.accelerator_count:g} x {best.accelerator} at least as fast each)"
                )
        else:
            kind = Kind.SMALLER_ACCELERATOR
            summary = (
                f"{info.instance_type} -> {best.instance_type}: GPU p95 {u.util_p95_percent:.0f}%, "
                f"memory peak {u.gpu_memory_peak_gib:.1f} GiB (+{s.memory_headroom:.0%}) fits "
                f"{best.accelerator_memory_gib:g} GiB {best.accelerator}"
            )
        return self.make(kind, proposed, summary, self.type_changes(best))

    def inference_accelerator(self) -> Recommendation | None:
        u, s, info = self.u, self.s, self.t.info
        if (
            self.t.key != "inferenceEndpoints"
            or info.accelerator_info.kind != "gpu"
            or self.memory_needed is None
        ):
            return None
        demand = per_node = info.throughput_per_node * min(u.util_p95_percent, 100.0) / 100
        need_throughput = demand * (1 + s.memory_headroom)
        del per_node
        options = [
            row
            for row in self.candidates(("inferentia", "tpu"))
            if is_memory_safe(row, u, s.memory_headroom)
            and row.throughput_per_node >= need_throughput
            and self.hourly(row) < self.hourly(info) * (1 - s.min_saving_share)
        ]
        if not options:
            return None
        best = min(options, key=lambda r: (self.hourly(r), r.instance_type))
        proposed = _plan(
            self.t, best, self.t.nodes, self.t.capacity, self.t.on_demand_base, self.ckpt
        )
        return self.make(
            Kind.INFERENCE_ACCELERATOR,
            proposed,
            f"{info.instance_type} -> {best.instance_type}: model peak {u.gpu_memory_peak_gib:.1f} GiB "
            f"(+{s.memory_headroom:.0%}) fits {best.node_accelerator_memory_gib:g} GiB {best.accelerator}",
            self.type_changes(best),
        )

    def spot(self) -> Recommendation | None:
        t, s, info = self.t, self.s, self.t.info
        if t.key != "trainingFleets" or s.checkpointing is None or info.spot_usd_per_hour is None:
            return None
        if t.capacity != Capacity.ON_DEMAND.value and t.on_demand_base == 0:
            return None
        index = info.interruption_index
        if index is None or index > s.max_interruption_index:
            return None
        proposed = _plan(t, info, t.nodes, Capacity.SPOT_WITH_FALLBACK.value, 0, self.ckpt)
        if proposed.monthly_usd >= self.current.monthly_usd:
            return None
        overhead = _spot_overhead(info, self.ckpt)
        return self.make(
            Kind.SPOT_WITH_FALLBACK,
            proposed,
            f"{info.instance_type} on spot with on-demand fallback: interrupted {info.interruption_range} "
            f"a month, checkpoints every {self.ckpt.interval_hours * 60:.0f} min "
            f"(expected rework +{overhead - 1:.2%})",
            {"capacity": Capacity.SPOT_WITH_FALLBACK.value, "onDemandBase": 0},
            work_ratio=1.0,
        )

    def scale_to_zero(self) -> Recommendation | None:
        t, u, s = self.t, self.u, self.s
        if u.idle_hours_share < s.scale_to_zero_idle_share or self.current.monthly_usd <= 0:
            return None
        busy_share = 1 - u.idle_hours_share
        proposed = replace(
            self.current,
            nodes=t.nodes * busy_share,
            monthly_usd=self.current.monthly_usd * busy_share,
        )
        if t.key == "trainingFleets":
            changes: dict[str, Any] = {"nodes": {"min": 0, "desired": 0}}
        else:
            changes = {"replicas": {"min": 0}}
        return self.make(
            Kind.SCALE_TO_ZERO,
            proposed,
            f"idle {u.idle_hours_share:.0%} of hours: scale to zero when idle (min 0)",
            changes,
        )


def recommend_target(t: _Target, usage: TargetUsage, settings: Settings) -> list[Recommendation]:
    """Every rule's recommendation for one target, the one to apply first.

    A bottleneck comes first: a larger type, unless a cheaper downsizing also clears it (a
    downsizing always holds the memory peak plus headroom, so it cures memory running full;
    saturated GPUs get no downsizing). Otherwise the biggest saving first.
    """
    b = _Builder(t, usage, settings)
    larger = b.larger()
    down = b.downsize()
    found: list[Recommendation | None]
    if larger is not None and down is None:
        found = [larger, b.spot()]
    else:
        found = [b.inference_accelerator(), down, b.spot(), b.scale_to_zero()]
    recs = [r for r in found if r is not None]
    if larger is not None and down is None:
        return recs
    return sorted(recs, key=lambda r: -r.monthly_saving_usd)


def _group(
    config: StackConfig, usages: Sequence[GpuUsage]
) -> dict[tuple[str, int], list[GpuUsage]]:
    """Usage per target: by fleet tag, else by the instance type the target is configured with."""
    names = {("trainingFleets", f.name): i for i, f in enumerate(config.training_fleets)}
    names.update(
        {("inferenceEndpoints", e.name): i for i, e in enumerate(config.inference_endpoints)}
    )
    by_type: dict[str, tuple[str, int]] = {}
    for i, fleet in enumerate(config.training_fleets):
        for name in fleet.instance_types or ():
            by_type.setdefault(name, ("trainingFleets", i))
    for i, endpoint in enumerate(config.inference_endpoints):
        if endpoint.instance_type:
            by_type.setdefault(endpoint.instance_type, ("inferenceEndpoints", i))
    grouped: dict[tuple[str, int], list[GpuUsage]] = defaultdict(list)
    for usage in usages:
        key = None
        if usage.fleet is not None:
            for kind in ("trainingFleets", "inferenceEndpoints"):
                if (kind, usage.fleet) in names:
                    key = (kind, names[(kind, usage.fleet)])
        if key is None:
            key = by_type.get(usage.instance_type)
        if key is not None:
            grouped[key].append(usage)
    return grouped


def recommend(
    config: StackConfig, usages: Sequence[GpuUsage], settings: Settings = Settings()
) -> list[Recommendation]:
    """Recommendations for every fleet and endpoint of `config` that has usage, best first
    within a target (a `larger-type` first of all: it fixes a bottleneck)."""
    out: list[Recommendation] = []
    grouped = _group(config, usages)
    for (key, index), gpus in sorted(grouped.items()):
        usage = fold(gpus, settings.busy_gpu_util_percent)
        if key == "trainingFleets":
            fleet = config.training_fleets[index]
            target = _fleet_target(config, index, fleet, usage.instance_types)
        else:
            target = _endpoint_target(config, index, config.inference_endpoints[index])
        out.extend(recommend_target(target, usage, settings))
    return out


def recommend_host(
    instance_type: str,
    usages: Sequence[GpuUsage],
    settings: Settings = Settings(),
    *,
    region: str | None = None,
    capacity: str = Capacity.ON_DEMAND.value,
    hours_per_month: float = 730.0,
    name: str = "host",
) -> list[Recommendation]:
    """Recommendations for one stand-alone host (or group of identical hosts) with no stack
    config: the fleet replay's entry point."""
    info = catalog.lookup(instance_type, region)
    usage = fold(usages, settings.busy_gpu_util_percent)
    target = _Target(
        key="trainingFleets",
        name=name,
        index=0,
        cloud=info.cloud,
        region=info.region,
        info=info,
        nodes=float(usage.hosts),
        capacity=capacity,
        on_demand_base=0,
        hours_per_month=hours_per_month,
        model_memory_gib=None,
        uses_accelerator_form=False,
        instance_types=(instance_type,),
    )
    return recommend_target(target, usage, settings)
