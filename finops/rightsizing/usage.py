"""What a GPU did over the lookback window, summarised the way Compute Optimizer looks at it.

Every source (the agent's export/spool files, Prometheus, CloudWatch) ends in the same record,
`GpuUsage`: one GPU of one host over the window. Activity figures are taken over the peak of
each 5-minute interval (Compute Optimizer's basis), so a job that bursts to 100% for a minute
in every interval counts as busy, not as 20% busy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

INTERVAL_SECONDS = 300.0
"""Length of the interval whose peak is taken (5 minutes, as Compute Optimizer)."""
DEFAULT_LOOKBACK_DAYS = 14.0
IDLE_UTIL_PERCENT = 5.0
"""A GPU whose peak utilisation in a whole clock hour stays under this is idle in that hour."""
GIB = 1024.0**3


@dataclass(frozen=True)
class IntervalPeak:
    """One GPU's peaks over one 5-minute interval (None: not measured in the interval)."""

    start: float
    """Unix seconds, a multiple of `INTERVAL_SECONDS`."""
    gpu_util_percent: float | None
    memory_used_gib: float | None
    sm_active_ratio: float | None = None


@dataclass(frozen=True)
class GpuUsage:
    """One GPU of one host over the lookback window."""

    host: str
    """Instance id (or the Prometheus `instance` label when no id is known)."""
    gpu_index: int
    instance_type: str
    region: str | None
    fleet: str | None
    """The fleet or endpoint name the host belongs to (agent tag `finops:fleet`), if known."""
    window_start: float
    window_end: float
    """Unix seconds: the span the figures cover."""
    intervals: int
    """5-minute intervals with a measurement."""
    util_p95_percent: float
    """95th percentile over the intervals of the interval's peak GPU utilisation, percent."""
    util_mean_percent: float
    memory_peak_gib: float | None
    """Highest accelerator memory in use at any time in the window, GiB; None when never
    measured (then no rule may shrink accelerator memory)."""
    memory_total_gib: float | None
    sm_active_p95: float | None
    """95th percentile of the interval peaks of SM activity, ratio 0-1 (None before Hopper)."""
    idle_hours_share: float
    """Share of the window's clock hours in which the GPU's peak utilisation stayed under
    `IDLE_UTIL_PERCENT` (idle for the whole hour)."""
    work_per_hour: Mapping[str, float] = field(default_factory=dict)
    """Units of work the host's job reported per hour of the window (host-wide), by unit."""
    lifecycle: str = "unknown"
    source: str = ""
    host_idle_hours_share: float | None = None
    """Share of clock hours in which every GPU of the host was idle (None: not known; then
    the GPU's own share stands in)."""

    @property
    def window_days(self) -> float:
        return (self.window_end - self.window_start) / 86400.0


def nearest_rank(values: Sequence[float], quantile: float) -> float:
    """Nearest-rank percentile: the ceil(q * n)-th smallest value (the agent's p95 rule)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(quantile * len(ordered)))
    return ordered[rank - 1]


def idle_hours_share(
    peaks: Iterable[IntervalPeak], idle_percent: float = IDLE_UTIL_PERCENT
) -> float:
    """Share of clock hours (with at least one measured interval) whose peak stayed idle."""
    hour_peak: dict[int, float] = {}
    for peak in peaks:
        if peak.gpu_util_percent is None:
            continue
        hour = int(peak.start // 3600)
        hour_peak[hour] = max(hour_peak.get(hour, 0.0), peak.gpu_util_percent)
    if not hour_peak:
        return 0.0
    return sum(1 for v in hour_peak.values() if v < idle_percent) / len(hour_peak)


def summarise(
    peaks: Sequence[IntervalPeak],
    *,
    host: str,
    gpu_index: int,
    instance_type: str,
    region: str | None = None,
    fleet: str | None = None,
    memory_total_gib: float | None = None,
    work_per_hour: Mapping[str, float] | None = None,
    lifecycle: str = "unknown",
    source: str = "",
    host_idle_hours_share: float | None = None,
) -> GpuUsage:
    """Fold one GPU's 5-minute interval peaks into a `GpuUsage`; raises ValueError when no
    interval has a utilisation reading."""
    util = [p.gpu_util_percent for p in peaks if p.gpu_util_percent is not None]
    if not util:
        raise ValueError(f"{host} GPU {gpu_index}: no utilisation readings in the window")
    memory = [p.memory_used_gib for p in peaks if p.memory_used_gib is not None]
    sm = [p.sm_active_ratio for p in peaks if p.sm_active_ratio is not None]
    return GpuUsage(
        host=host,
        gpu_index=gpu_index,
        instance_type=instance_type,
        region=region,
        fleet=fleet,
        window_start=min(p.start for p in peaks),
        window_end=max(p.start for p in peaks) + INTERVAL_SECONDS,
        intervals=len(util),
        util_p95_percent=nearest_rank(util, 0.95),
        util_mean_percent=sum(util) / len(util),
        memory_peak_gib=max(memory) if memory else None,
        memory_total_gib=memory_total_gib,
        sm_active_p95=nearest_rank(sm, 0.95) if sm else None,
        idle_hours_share=idle_hours_share(peaks),
        work_per_hour=dict(work_per_hour or {}),
        lifecycle=lifecycle,
        source=source,
        host_idle_hours_share=host_idle_hours_share,
    )
