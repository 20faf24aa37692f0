"""What a GPU did over the lookback window: the one record every source ends in.

Every source (the agent's export/spool files, Prometheus, CloudWatch) ends in `GpuUsage`:
one GPU of one host over the window. Two figures of activity are kept apart and named:

- the **time-weighted mean** utilisation (`util_mean_percent`): the share of the window's
  observed time a kernel ran, what the GPU actually did; a GPU busy 20 s of every 5 minutes
  has a mean of 6.7 %;
- the **p95 of 5-minute peaks** (`util_p95_percent`): Compute Optimizer's basis, the 95th
  percentile over intervals of each 5-minute interval's highest reading; the same GPU scores
  100 % here. It says how high bursts go, never how much work there is.

`util_mean_p95_percent` (the p95 of the 5-minute time-weighted means over the intervals in
which the GPU worked) is the sustained demand a smaller or slower GPU must carry. docs/rightsizing.md says which rule reads which.

A source builds the record from `IntervalPeak`s (one per GPU per 5-minute interval) with
`summarise`; a streaming reader can do the same interval by interval (memory bounded by the
window's 4,032 intervals per GPU, not by the number of records).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

INTERVAL_SECONDS = 300.0
"""Length of the interval whose peak and mean are taken (5 minutes, as Compute Optimizer)."""
DEFAULT_LOOKBACK_DAYS = 14.0
IDLE_UTIL_PERCENT = 5.0
"""A GPU whose peak utilisation in a whole clock hour stays under this is idle in that hour."""
GIB = 1024.0**3


@dataclass(frozen=True)
class IntervalPeak:
    """One GPU over one 5-minute interval (None: not measured in the interval)."""

    start: float
    """Unix seconds, a multiple of `INTERVAL_SECONDS`."""
    gpu_util_percent: float | None
    """Highest utilisation reading in the interval, percent."""
    memory_used_gib: float | None
    """Highest accelerator memory in use in the interval, GiB."""
    sm_active_ratio: float | None = None
    """Highest SM activity in the interval, ratio 0-1 (None before Hopper)."""
    gpu_util_mean_percent: float | None = None
    """Time-weighted mean utilisation over the observed part of the interval, percent; None
    when the source gave only the peak (then the window's mean is unknown, never guessed)."""
    sm_active_mean: float | None = None
    observed_seconds: float = INTERVAL_SECONDS
    """Seconds of the interval the readings cover (weights the mean)."""
    processes: float | None = None
    """Most compute processes on the GPU in the interval (None: the source does not say)."""

    @property
    def in_use(self) -> bool:
        """A job held the GPU: its peak reached `IDLE_UTIL_PERCENT`, or a compute process
        ran on it (a job waiting on its input is not an idle GPU)."""
        return (self.gpu_util_percent or 0.0) >= IDLE_UTIL_PERCENT or (self.processes or 0) >= 1


@dataclass(frozen=True)
class HostInterval:
    """One host over one 5-minute interval: what its CPUs and memory did."""

    start: float
    cpu_util_percent: float | None
    """Highest host CPU utilisation in the interval, percent of all vCPUs."""
    memory_used_gib: float | None
    """Highest host memory in use in the interval, GiB."""


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
    """Unix seconds: first observed interval's start, last observed interval's end."""
    intervals: int
    """5-minute intervals with a utilisation reading."""
    util_p95_percent: float
    """p95 of 5-minute PEAKS: 95th percentile over the intervals of each interval's highest
    utilisation reading, percent. How high bursts go, not how much work there is."""
    util_mean_percent: float | None
    """Time-weighted MEAN utilisation over the observed time, percent (None: the source gave
    only peaks)."""
    memory_peak_gib: float | None
    """Highest accelerator memory in use at any time in the window, GiB; None when never
    measured (then no rule may shrink accelerator memory)."""
    memory_total_gib: float | None
    sm_active_p95: float | None
    """p95 of the 5-minute peaks of SM activity, ratio 0-1 (None before Hopper)."""
    busy_hours: frozenset[int] = frozenset()
    """Clock hours (unix seconds // 3600) in which the GPU was in use: its peak reached
    `IDLE_UTIL_PERCENT` or a compute process ran on it."""
    observed_hours: frozenset[int] = frozenset()
    """Clock hours with at least one reading."""
    util_mean_p95_percent: float | None = None
    """p95 of the 5-minute time-weighted MEANS over the intervals in which the GPU worked
    (peak >= `IDLE_UTIL_PERCENT`), percent: the sustained demand while busy."""
    sm_active_mean: float | None = None
    """Time-weighted mean SM activity, ratio 0-1."""
    work_per_hour: Mapping[str, float] = field(default_factory=dict)
    """Units of work the host's job reported per observed hour (host-wide), by unit."""
    work_hours: int = 0
    """Observed clock hours in which the host's job reported work."""
    lifecycle: str = "unknown"
    source: str = ""
    host_cpu_p95_percent: float | None = None
    """p95 of the 5-minute peaks of host CPU utilisation over the intervals in which the GPU
    worked, percent of the vCPUs (None: not measured, then no rule moves to fewer vCPUs)."""
    host_memory_peak_gib: float | None = None
    """Highest host memory in use, GiB (None: not measured, then no rule cuts host memory)."""
    diagnosed_seconds: float = 0.0
    """Seconds of the window the agent gave an input verdict other than unknown
    (agents/hostload.py; 0: no diagnosis, e.g. an older agent or another source)."""
    waiting_on_data_seconds: float = 0.0
    """...of which the verdict was "GPU waiting on data"."""
    waiting_causes: Mapping[str, float] = field(default_factory=dict)
    """Seconds waiting on data by cause the agent named: "cpu", "io", "page-cache"."""

    @property
    def window_days(self) -> float:
        return (self.window_end - self.window_start) / 86400.0

    @property
    def idle_hours_share(self) -> float:
        """Share of observed clock hours in which the GPU stayed idle the whole hour."""
        if not self.observed_hours:
            return 1.0
        return 1.0 - len(self.busy_hours & self.observed_hours) / len(self.observed_hours)


def nearest_rank(values: Sequence[float], quantile: float) -> float:
    """Nearest-rank percentile: the ceil(q * n)-th smallest value (the agent's p95 rule)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(quantile * len(ordered)))
    return ordered[rank - 1]


def hour_sets(peaks: Iterable[IntervalPeak]) -> tuple[frozenset[int], frozenset[int]]:
    """(busy hours, observed hours): clock hours with a reading, and those in which the GPU
    was in use in some interval (`IntervalPeak.in_use`)."""
    observed: set[int] = set()
    busy: set[int] = set()
    for peak in peaks:
        if peak.gpu_util_percent is None:
            continue
        hour = int(peak.start // 3600)
        observed.add(hour)
        if peak.in_use:
            busy.add(hour)
    return frozenset(busy), frozenset(observed)


def _time_weighted(values: Sequence[tuple[float, float]]) -> float | None:
    """Mean of (value, seconds) pairs weighted by seconds; None when there are none."""
    seconds = math.fsum(s for _, s in values)
    if not values or seconds <= 0:
        return None
    return math.fsum(v * s for v, s in values) / seconds


def host_figures(
    intervals: Sequence[HostInterval], busy_starts: frozenset[float] = frozenset()
) -> tuple[float | None, float | None]:
    """(p95 of 5-minute CPU peaks while the GPU was busy, memory peak GiB) of a host; None
    where never measured. Idle intervals would pull a p95 down to what an idle host needs."""
    measured = [i for i in intervals if i.cpu_util_percent is not None]
    busy = [i for i in measured if i.start in busy_starts] or measured
    cpu = [i.cpu_util_percent for i in busy if i.cpu_util_percent is not None]
    memory = [i.memory_used_gib for i in intervals if i.memory_used_gib is not None]
    return (nearest_rank(cpu, 0.95) if cpu else None, max(memory) if memory else None)


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
    work_hours: int = 0,
    lifecycle: str = "unknown",
    source: str = "",
    host_intervals: Sequence[HostInterval] = (),
) -> GpuUsage:
    """Fold one GPU's 5-minute intervals into a `GpuUsage`; raises ValueError when no
    interval has a utilisation reading."""
    measured = [p for p in peaks if p.gpu_util_percent is not None]
    if not measured:
        raise ValueError(f"{host} GPU {gpu_index}: no utilisation readings in the window")
    util = [p.gpu_util_percent for p in measured if p.gpu_util_percent is not None]
    memory = [p.memory_used_gib for p in peaks if p.memory_used_gib is not None]
    sm = [p.sm_active_ratio for p in peaks if p.sm_active_ratio is not None]
    with_mean = [p for p in measured if p.gpu_util_mean_percent is not None]
    # a mean is only a mean of the window when every measured interval has one
    means_known = len(with_mean) == len(measured)
    util_means = [(p.gpu_util_mean_percent or 0.0, p.observed_seconds) for p in with_mean]
    # demand is what the GPU carries while it works: idle intervals would pull a p95 to 0
    working = [
        p.gpu_util_mean_percent or 0.0
        for p in with_mean
        if (p.gpu_util_percent or 0.0) >= IDLE_UTIL_PERCENT
    ]
    busy_starts = frozenset(p.start for p in measured if p.in_use)
    sm_means = [
        (p.sm_active_mean, p.observed_seconds) for p in peaks if p.sm_active_mean is not None
    ]
    busy, observed = hour_sets(measured)
    cpu_p95, host_memory = host_figures(host_intervals, busy_starts)
    return GpuUsage(
        host=host,
        gpu_index=gpu_index,
        instance_type=instance_type,
        region=region,
        fleet=fleet,
        window_start=min(p.start for p in measured),
        window_end=max(p.start for p in measured) + INTERVAL_SECONDS,
        intervals=len(util),
        util_p95_percent=nearest_rank(util, 0.95),
        util_mean_percent=_time_weighted(util_means) if means_known else None,
        util_mean_p95_percent=(nearest_rank(working, 0.95) if working else 0.0)
        if means_known
        else None,
        memory_peak_gib=max(memory) if memory else None,
        memory_total_gib=memory_total_gib,
        sm_active_p95=nearest_rank(sm, 0.95) if sm else None,
        sm_active_mean=_time_weighted([(v, s) for v, s in sm_means if v is not None]),
        busy_hours=busy,
        observed_hours=observed,
        work_per_hour=dict(work_per_hour or {}),
        work_hours=work_hours,
        lifecycle=lifecycle,
        source=source,
        host_cpu_p95_percent=cpu_p95,
        host_memory_peak_gib=host_memory,
    )
