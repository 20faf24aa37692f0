"""One target's GPUs folded into the figures the rules read, and whether they are enough.

A fleet's hosts come and go (spot replacements get new instance ids), so coverage is judged
on the fleet: the clock hours in which any of its hosts reported, over the span from the
first reading to the last. Below `Settings.min_days_covered` days or
`Settings.min_observed_share` of hours observed, no rule runs and the target is reported as
"insufficient data" with what is missing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from aifinops import catalog
from aifinops.errors import CatalogError
from aifinops.rightsizing.usage import GpuUsage


@dataclass(frozen=True)
class TargetUsage:
    """A fleet's or endpoint's GPUs over the window; units in the names."""

    hosts: int
    gpus: int
    window_start: float
    window_end: float
    observed_hours: int
    """Clock hours in which at least one GPU of the target reported."""
    source: str
    instance_types: tuple[str, ...]
    """The types the hosts reported running on."""
    util_p95_percent: float
    """p95 of 5-minute PEAKS, the busiest GPU's (how high bursts go)."""
    util_mean_percent: float | None
    """Time-weighted MEAN utilisation per GPU, averaged over the GPUs that did any work;
    None when a source gave only peaks."""
    util_mean_p95_percent: float | None
    """p95 of 5-minute MEANS, the busiest GPU's: the sustained demand."""
    demand_v100: float | None
    """Sustained demand of the busiest GPU in V100-equivalents: its p95 of 5-minute means
    times the relative throughput of the type it ran on (None: no means)."""
    burst_demand_v100: float
    """The same from the p95 of 5-minute peaks (what a latency-bound endpoint must carry)."""
    sm_active_p95: float | None
    sm_active_mean: float | None
    gpu_memory_peak_gib: float | None
    """Highest accelerator memory any GPU used; None when any GPU never reported memory."""
    busy_gpus_per_node: int
    """Most GPUs of one host that were busy in any hour of the window (at least 1)."""
    busy_hours_share: float
    """Share of the busy GPUs' observed hours in which they were busy (averaged per GPU)."""
    busy_hours: int
    """Clock hours in which any GPU of the target was in use: how much work the demand
    figures rest on."""
    peak_busy_hosts: int
    """Most hosts busy in the same clock hour (0: the target was idle the whole window)."""
    peak_busy_hosts_halves: tuple[int, int]
    """The same in the first and in the second half of the window (a rising peak is demand
    that grows, not hosts to cut)."""
    host_cpu_vcpus_p95: float | None
    """Host CPU in use, vCPUs: the p95 of 5-minute peaks of the busiest host times its
    vCPUs. None when any host did not report host CPU (the rule then keeps the vCPUs)."""
    host_memory_peak_gib: float | None
    """Highest host memory in use on any host, GiB (None: not measured on every host)."""
    work_per_hour: dict[str, float]
    work_hours_share: float
    """Share of observed hours in which the hosts reported work units."""
    waiting_on_data_share: float | None = None
    """Share of the GPUs' diagnosed time the agent judged "GPU waiting on data"
    (agents/hostload.py); None when no source gave a verdict."""
    waiting_causes: dict[str, float] = field(default_factory=dict)
    """Share of that waiting time in which each cause was on: "cpu", "io", "page-cache"."""

    @property
    def days_covered(self) -> float:
        return (self.window_end - self.window_start) / 86400.0

    @property
    def observed_share(self) -> float:
        span_hours = math.ceil((self.window_end - self.window_start) / 3600.0 - 1e-9)
        return self.observed_hours / span_hours if span_hours > 0 else 0.0

    @property
    def idle_all_window(self) -> bool:
        return self.peak_busy_hosts == 0


def _speed(instance_type: str, region: str | None) -> float | None:
    try:
        return catalog.lookup(instance_type, region).accelerator_info.relative_training_throughput
    except CatalogError:
        return None


def _vcpus(instance_type: str, region: str | None) -> int | None:
    try:
        return catalog.lookup(instance_type, region).vcpus
    except CatalogError:
        return None


def fold(usages: Sequence[GpuUsage], region: str | None = None) -> TargetUsage:
    """Fold one target's GPUs: the busiest GPU decides activity, the fullest decides memory,
    the fleet's clock hours decide coverage and concurrency."""
    by_host: dict[str, list[GpuUsage]] = defaultdict(list)
    for usage in usages:
        by_host[usage.host].append(usage)
    memory = [u.memory_peak_gib for u in usages]
    sm = [u.sm_active_p95 for u in usages if u.sm_active_p95 is not None]
    sm_means = [u.sm_active_mean for u in usages if u.sm_active_mean is not None and u.busy_hours]
    busy_gpus = [u for u in usages if u.busy_hours]
    means_known = all(u.util_mean_percent is not None for u in usages)
    observed: set[int] = set()
    busy_hosts_by_hour: dict[int, set[str]] = defaultdict(set)
    work: dict[str, float] = defaultdict(float)
    work_hours = 0
    host_cpu: list[float | None] = []
    host_memory: list[float | None] = []
    for host, gpus in by_host.items():
        for gpu in gpus:
            observed |= gpu.observed_hours
            for hour in gpu.busy_hours:
                busy_hosts_by_hour[hour].add(host)
        for unit, rate in gpus[0].work_per_hour.items():
            work[unit] += rate / len(by_host)
        work_hours += gpus[0].work_hours
        vcpus = _vcpus(gpus[0].instance_type, gpus[0].region or region)
        cpu = gpus[0].host_cpu_p95_percent
        host_cpu.append(None if cpu is None or vcpus is None else cpu / 100.0 * vcpus)
        host_memory.append(gpus[0].host_memory_peak_gib)
    demand: list[float] = []
    burst: list[float] = []
    for u in usages:
        speed = _speed(u.instance_type, u.region or region) or 0.0
        burst.append(u.util_p95_percent / 100.0 * speed)
        if u.util_mean_p95_percent is not None:
            demand.append(min(u.util_mean_p95_percent, 100.0) / 100.0 * speed)
    host_observed = sum(len(g[0].observed_hours) for g in by_host.values())
    diagnosed = sum(u.diagnosed_seconds for u in usages)
    waiting = sum(u.waiting_on_data_seconds for u in usages)
    causes: dict[str, float] = defaultdict(float)
    for u in usages:
        for cause, seconds in u.waiting_causes.items():
            causes[cause] += seconds
    start, end = min(u.window_start for u in usages), max(u.window_end for u in usages)
    middle = int((start + end) / 2 // 3600)
    return TargetUsage(
        hosts=len(by_host),
        gpus=len(usages),
        window_start=start,
        window_end=end,
        observed_hours=len(observed),
        source=", ".join(sorted({u.source for u in usages if u.source})),
        instance_types=tuple(sorted({u.instance_type for u in usages})),
        util_p95_percent=max(u.util_p95_percent for u in usages),
        util_mean_percent=(
            sum(u.util_mean_percent or 0.0 for u in busy_gpus) / len(busy_gpus)
            if busy_gpus
            else 0.0
        )
        if means_known
        else None,
        util_mean_p95_percent=max(u.util_mean_p95_percent or 0.0 for u in usages)
        if means_known
        else None,
        demand_v100=max(demand) if means_known and demand else None,
        burst_demand_v100=max(burst) if burst else 0.0,
        sm_active_p95=max(sm) if sm else None,
        sm_active_mean=sum(sm_means) / len(sm_means) if sm_means else None,
        gpu_memory_peak_gib=None
        if any(m is None for m in memory)
        else max(m for m in memory if m is not None),
        busy_gpus_per_node=max(
            max(1, sum(1 for g in gpus if g.busy_hours)) for gpus in by_host.values()
        ),
        busy_hours_share=sum(1 - u.idle_hours_share for u in busy_gpus) / len(busy_gpus)
        if busy_gpus
        else 0.0,
        busy_hours=len(busy_hosts_by_hour),
        peak_busy_hosts=max((len(h) for h in busy_hosts_by_hour.values()), default=0),
        peak_busy_hosts_halves=(
            max((len(h) for t, h in busy_hosts_by_hour.items() if t < middle), default=0),
            max((len(h) for t, h in busy_hosts_by_hour.items() if t >= middle), default=0),
        ),
        host_cpu_vcpus_p95=None
        if any(c is None for c in host_cpu)
        else max(c for c in host_cpu if c is not None),
        host_memory_peak_gib=None
        if any(m is None for m in host_memory)
        else max(m for m in host_memory if m is not None),
        work_per_hour=dict(work),
        work_hours_share=work_hours / host_observed if host_observed else 0.0,
        waiting_on_data_share=waiting / diagnosed if diagnosed else None,
        waiting_causes={c: v / waiting for c, v in sorted(causes.items())} if waiting else {},
    )


def gaps(usage: TargetUsage, min_days_covered: float, min_observed_share: float) -> list[str]:
    """What is missing for a recommendation (empty: enough evidence)."""
    missing = []
    if usage.days_covered < min_days_covered:
        missing.append(
            f"{usage.days_covered:.1f} days covered (need at least {min_days_covered:g})"
        )
    if usage.observed_share < min_observed_share:
        missing.append(
            f"{usage.observed_share:.0%} of the hours observed (need at least "
            f"{min_observed_share:.0%})"
        )
    return missing
