"""Read the agent's window records (export file or spool segments; agents/SPOOL_FORMAT.md).

The reference reader: the records of `aifinops.agentfiles` (standard library only: deduplicated
on `record_id`, a torn last line skipped, a line that is not JSON skipped and counted as a
`SkippedLinesWarning`, a file that is not window records refused in one line), folded here.

Records are folded as they are read, per GPU and 5-minute interval (`_Series`), but the
record ids seen and the Python objects per interval grow with the data: a fleet's files go
through `aifinops.rightsizing.stream` (DuckDB, bounded memory), which is tested to give the
same `GpuUsage` as this reader and asks it (`check_files`) to explain a file it cannot read.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aifinops.agentfiles import (
    AGENT_FILE_NAMES,
    PARQUET_GLOB,
    REQUIRED,
    SCHEMA_VERSION,
    SEGMENT_GLOB,
    SkippedLinesWarning,
    SourceError,
    host_of,
    iter_records,
    record_files,
)
from aifinops.rightsizing.usage import (
    GIB,
    INTERVAL_SECONDS,
    GpuUsage,
    HostInterval,
    IntervalPeak,
    summarise,
)

FLEET_TAG = "finops:fleet"
HOST_CPU = "host_cpu_util_percent"
"""Optional stats field: host CPU utilisation, percent of all vCPUs (read when present)."""
HOST_MEMORY = "host_memory_used_bytes"
"""Optional stats field: host memory in use, bytes (read when present)."""
WAITING_ON_DATA = "waiting-on-data"
"""The agent's `input_verdict` for a GPU starved by its input pipeline (agents/hostload.py)."""

__all__ = [  # the file reader lives in finops.agentfiles; its names are read from here too
    "AGENT_FILE_NAMES",
    "FLEET_TAG",
    "HOST_CPU",
    "HOST_MEMORY",
    "PARQUET_GLOB",
    "REQUIRED",
    "SCHEMA_VERSION",
    "SEGMENT_GLOB",
    "WAITING_ON_DATA",
    "SkippedLinesWarning",
    "SourceError",
    "check_files",
    "host_of",
    "iter_records",
    "read_usage",
    "record_files",
]


def _stat(record: dict[str, Any], name: str, stat: str = "max") -> float | None:
    stats = record.get(name)
    if not isinstance(stats, dict) or stats.get(stat) is None:
        return None
    return float(stats[stat])


def _max(old: float | None, new: float | None) -> float | None:
    if new is None:
        return old
    return new if old is None else max(old, new)


@dataclass
class _Slot:
    """One GPU's readings in one 5-minute interval, folded as records arrive."""

    util_peak: float | None = None
    util_weighted: float = 0.0
    util_seconds: float = 0.0
    util_windows_without_mean: int = 0
    memory_peak: float | None = None
    sm_peak: float | None = None
    sm_weighted: float = 0.0
    sm_seconds: float = 0.0
    processes: float | None = None
    diagnosed_seconds: float = 0.0
    waiting_seconds: float = 0.0
    causes: dict[str, float] = field(default_factory=dict)

    def peak(self, start: float) -> IntervalPeak:
        mean = None
        if self.util_seconds > 0 and not self.util_windows_without_mean:
            mean = self.util_weighted / self.util_seconds
        return IntervalPeak(
            start=start,
            gpu_util_percent=self.util_peak,
            memory_used_gib=self.memory_peak,
            sm_active_ratio=self.sm_peak,
            gpu_util_mean_percent=mean,
            sm_active_mean=self.sm_weighted / self.sm_seconds if self.sm_seconds else None,
            observed_seconds=min(self.util_seconds, INTERVAL_SECONDS) or INTERVAL_SECONDS,
            processes=self.processes,
        )


@dataclass
class _Series:
    instance_type: str
    region: str | None
    fleet: str | None
    lifecycle: str
    memory_total_gib: float | None = None
    slots: dict[int, _Slot] = field(default_factory=dict)


@dataclass
class _Host:
    cpu: dict[int, float] = field(default_factory=dict)
    memory: dict[int, float] = field(default_factory=dict)
    work: dict[float, dict[str, float]] = field(default_factory=dict)
    seconds: dict[float, float] = field(default_factory=dict)


def _add(
    record: dict[str, Any], series: dict[tuple[str, int], _Series], hosts: dict[str, _Host]
) -> None:
    start, stop = float(record["window_start"]), float(record["window_end"])
    host_name = host_of(record)
    key = (host_name, int(record["gpu_index"]))
    tags = record.get("tags") or {}
    gpu = series.get(key)
    if gpu is None:
        region = record.get("region")
        gpu = series[key] = _Series(
            instance_type=str(record.get("instance_type")),
            region=str(region) if region and region != "unknown" else None,
            fleet=tags.get(FLEET_TAG) if isinstance(tags, dict) else None,
            lifecycle=str(record.get("lifecycle", "unknown")),
        )
    if record.get("memory_total_bytes"):
        gpu.memory_total_gib = float(record["memory_total_bytes"]) / GIB
    interval = int(start // INTERVAL_SECONDS)
    slot = gpu.slots.setdefault(interval, _Slot())
    seconds = max(stop - start, 0.0)
    peak = _stat(record, "gpu_util_percent")
    mean = _stat(record, "gpu_util_percent", "mean")
    slot.util_peak = _max(slot.util_peak, peak)
    if peak is not None:
        if mean is None:
            slot.util_windows_without_mean += 1
        else:
            slot.util_weighted += mean * seconds
            slot.util_seconds += seconds
    memory = _stat(record, "memory_used_bytes")
    slot.memory_peak = _max(slot.memory_peak, None if memory is None else memory / GIB)
    slot.sm_peak = _max(slot.sm_peak, _stat(record, "sm_active_ratio"))
    slot.processes = _max(slot.processes, _stat(record, "process_count"))
    sm_mean = _stat(record, "sm_active_ratio", "mean")
    if sm_mean is not None:
        slot.sm_weighted += sm_mean * seconds
        slot.sm_seconds += seconds
    verdict = record.get("input_verdict")  # agents/hostload.py, absent in older records
    if isinstance(verdict, str) and verdict != "unknown":
        slot.diagnosed_seconds += seconds
        if verdict == WAITING_ON_DATA:
            slot.waiting_seconds += seconds
            for cause in record.get("input_causes") or ():
                slot.causes[str(cause)] = slot.causes.get(str(cause), 0.0) + seconds
    host = hosts[host_name]
    host.seconds[start] = seconds
    cpu = _stat(record, HOST_CPU)
    if cpu is not None:
        host.cpu[interval] = max(host.cpu.get(interval, 0.0), cpu)
    host_memory = _stat(record, HOST_MEMORY)
    if host_memory is not None:
        host.memory[interval] = max(host.memory.get(interval, 0.0), host_memory / GIB)
    units = record.get("work_units")
    if units:
        # host-wide: the same object is in every GPU's record of a window; count it once
        host.work[start] = {str(k): float(v) for k, v in units.items()}


def _fold(
    where: str,
    record: dict[str, Any],
    end: float | None,
    series: dict[tuple[str, int], _Series],
    hosts: dict[str, _Host],
) -> float:
    """Fold one record (unless it ends after `end` or has no samples); its window end."""
    try:
        window_end = float(record["window_end"])
        if (end is None or window_end <= end) and record.get("sample_count"):
            _add(record, series, hosts)
    except (TypeError, ValueError, AttributeError) as exc:
        raise SourceError(f"{where}: a window record with a malformed field: {exc}") from None
    return window_end


def check_files(
    files: Iterable[Path], *, end: float | None = None, first_skip: bool = False
) -> str | None:
    """Read `files` as `read_usage` does, keeping nothing: raises the `SourceError` it would
    raise; returns the first skipped line's `path:line: reason` (None: none skipped), at
    once with `first_skip`. How `stream` explains a file it cannot read."""
    skipped: list[str] = []
    for where, record in iter_records(files, skipped, dedupe=False):
        if first_skip and skipped:
            return skipped[0]
        _fold(where, record, end, {}, defaultdict(_Host))
    return skipped[0] if skipped else None


def read_usage(
    paths: Iterable[Path],
    *,
    lookback_days: float | None = None,
    end: float | None = None,
) -> list[GpuUsage]:
    """One `GpuUsage` per (host, GPU) found in the agent's files.

    `end` (unix seconds; default the newest window's end) and `lookback_days` (default: all)
    bound the window. Records of a lost GPU with no samples are skipped.
    """
    series: dict[tuple[str, int], _Series] = {}
    hosts: dict[str, _Host] = defaultdict(_Host)
    newest = float("-inf")
    skipped: list[str] = []
    for where, record in iter_records(paths, skipped):
        newest = max(newest, _fold(where, record, end, series, hosts))
    if skipped:
        warnings.warn(
            f"{len(skipped)} unreadable line(s) skipped in the agent's files, first: {skipped[0]}",
            SkippedLinesWarning,
            stacklevel=2,
        )
    if not series:
        return []
    window_end = end if end is not None else newest
    first = window_end - lookback_days * 86400.0 if lookback_days else float("-inf")
    first_interval = first / INTERVAL_SECONDS
    usages = []
    for (host_name, index), gpu in sorted(series.items()):
        host = hosts[host_name]
        peaks = [
            slot.peak(interval * INTERVAL_SECONDS)
            for interval, slot in sorted(gpu.slots.items())
            if interval >= first_interval
        ]
        if not any(p.gpu_util_percent is not None for p in peaks):
            continue
        starts = [s for s in host.seconds if s >= first]
        hours = sum(host.seconds[s] for s in starts) / 3600.0
        totals: dict[str, float] = defaultdict(float)
        work_hours = set()
        for start in starts:
            for unit, amount in host.work.get(start, {}).items():
                totals[unit] += amount
                if amount > 0:
                    work_hours.add(int(start // 3600))
        host_intervals = [
            HostInterval(i * INTERVAL_SECONDS, host.cpu.get(i), host.memory.get(i))
            for i in sorted(set(host.cpu) | set(host.memory))
            if i >= first_interval
        ]
        slots = [slot for interval, slot in gpu.slots.items() if interval >= first_interval]
        causes: dict[str, float] = defaultdict(float)
        for slot in slots:
            for cause, seconds in slot.causes.items():
                causes[cause] += seconds
        usage = summarise(
            peaks,
            host=host_name,
            gpu_index=index,
            instance_type=gpu.instance_type,
            region=gpu.region,
            fleet=gpu.fleet,
            memory_total_gib=gpu.memory_total_gib,
            work_per_hour={u: t / hours for u, t in totals.items()} if hours else {},
            work_hours=len(work_hours),
            lifecycle=gpu.lifecycle,
            source="agent files",
            host_intervals=host_intervals,
        )
        usages.append(
            replace(
                usage,
                diagnosed_seconds=sum(slot.diagnosed_seconds for slot in slots),
                waiting_on_data_seconds=sum(slot.waiting_seconds for slot in slots),
                waiting_causes=dict(causes),
            )
        )
    return usages
