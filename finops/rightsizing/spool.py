"""Read the agent's window records (export file or spool segments; agents/SPOOL_FORMAT.md).

Parsed with the standard library only. Records are deduplicated on `record_id` (delivery is
at least once), an unterminated last line is skipped (the writer was killed mid-line), a
line that is not JSON is skipped and counted (`SkippedLinesWarning`), and unknown fields are
ignored.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finops.errors import FinopsError
from finops.rightsizing.usage import (
    GIB,
    INTERVAL_SECONDS,
    GpuUsage,
    IntervalPeak,
    idle_hours_share,
    summarise,
)

FLEET_TAG = "finops:fleet"


class SourceError(FinopsError):
    """A metrics source could not be read: names the source, what failed and what to do."""


def record_files(path: Path) -> list[Path]:
    """The files to read for `path`: a file as is; a folder's `windows.jsonl.1`,
    `windows.jsonl` and `seg-*.jsonl` segments, oldest first."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SourceError(f"{path}: no such file or folder (give an export file or a spool dir)")
    files = [p for p in (path / "windows.jsonl.1", path / "windows.jsonl") if p.is_file()]
    files += sorted(path.glob("seg-*.jsonl"))
    if not files:
        raise SourceError(f"{path}: no windows.jsonl or seg-*.jsonl files in the folder")
    return files


class SkippedLinesWarning(UserWarning):
    """Some lines of the agent's files could not be read and were skipped."""


def iter_records(
    paths: Iterable[Path], skipped: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Every complete, distinct window record in `paths` (files or folders).

    A line that is not a JSON object (a disk error, a torn write) is skipped, never fatal:
    its `path:line: reason` is appended to `skipped` when given.
    """
    seen: set[str] = set()
    for given in paths:
        for path in record_files(given):
            lines = path.read_bytes().split(b"\n")
            # The last element is b"" when the file ends in a newline, else an incomplete line.
            for number, raw in enumerate(lines[:-1], start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    if skipped is not None:
                        skipped.append(f"{path}:{number}: not a JSON window record: {exc}")
                    continue
                if not isinstance(record, dict):
                    if skipped is not None:
                        skipped.append(f"{path}:{number}: not a JSON object")
                    continue
                record_id = str(record.get("record_id", ""))
                if record_id in seen:
                    continue
                seen.add(record_id)
                yield record


def _stat(record: dict[str, Any], name: str, stat: str = "max") -> float | None:
    stats = record.get(name)
    if not isinstance(stats, dict) or stats.get(stat) is None:
        return None
    return float(stats[stat])


@dataclass
class _GpuSeries:
    instance_type: str
    region: str | None
    fleet: str | None
    lifecycle: str
    memory_total_gib: float | None = None
    peaks: dict[int, dict[str, float | None]] = field(default_factory=dict)


def _fold(old: float | None, new: float | None) -> float | None:
    if new is None:
        return old
    return new if old is None else max(old, new)


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
    skipped: list[str] = []
    records = list(iter_records(paths, skipped))
    if skipped:
        warnings.warn(
            f"{len(skipped)} unreadable line(s) skipped in the agent's files, first: {skipped[0]}",
            SkippedLinesWarning,
            stacklevel=2,
        )
    if not records:
        return []
    newest = max(float(r["window_end"]) for r in records)
    window_end = end if end is not None else newest
    window_start = window_end - lookback_days * 86400.0 if lookback_days else float("-inf")
    series: dict[tuple[str, int], _GpuSeries] = {}
    # work is host-wide: the same object is in every GPU's record of a window; count it once
    work: dict[str, dict[float, dict[str, float]]] = defaultdict(dict)
    host_seconds: dict[str, dict[float, float]] = defaultdict(dict)
    for r in records:
        start, stop = float(r["window_start"]), float(r["window_end"])
        if start < window_start or stop > window_end:
            continue
        if not r.get("sample_count"):
            continue
        host = str(r.get("instance_id") or r.get("hostname"))
        key = (host, int(r["gpu_index"]))
        tags = r.get("tags") or {}
        gpu = series.get(key)
        if gpu is None:
            gpu = series[key] = _GpuSeries(
                instance_type=str(r.get("instance_type")),
                region=r.get("region") if r.get("region") != "unknown" else None,
                fleet=tags.get(FLEET_TAG),
                lifecycle=str(r.get("lifecycle", "unknown")),
            )
        if r.get("memory_total_bytes"):
            gpu.memory_total_gib = float(r["memory_total_bytes"]) / GIB
        interval = int(start // INTERVAL_SECONDS)
        slot = gpu.peaks.setdefault(interval, {"util": None, "memory": None, "sm": None})
        memory = _stat(r, "memory_used_bytes")
        slot["util"] = _fold(slot["util"], _stat(r, "gpu_util_percent"))
        slot["memory"] = _fold(slot["memory"], None if memory is None else memory / GIB)
        slot["sm"] = _fold(slot["sm"], _stat(r, "sm_active_ratio"))
        host_seconds[host][start] = stop - start
        if r.get("work_units"):
            work[host][start] = {str(k): float(v) for k, v in r["work_units"].items()}
    host_peaks: dict[str, list[IntervalPeak]] = defaultdict(list)
    for (host, _index), gpu in series.items():
        host_peaks[host] += [
            IntervalPeak(i * INTERVAL_SECONDS, slot["util"], None) for i, slot in gpu.peaks.items()
        ]
    usages = []
    for (host, index), gpu in sorted(series.items()):
        hours = sum(host_seconds[host].values()) / 3600.0
        totals: dict[str, float] = defaultdict(float)
        for units in work[host].values():
            for unit, amount in units.items():
                totals[unit] += amount
        peaks = [
            IntervalPeak(
                start=interval * INTERVAL_SECONDS,
                gpu_util_percent=slot["util"],
                memory_used_gib=slot["memory"],
                sm_active_ratio=slot["sm"],
            )
            for interval, slot in sorted(gpu.peaks.items())
        ]
        if not any(p.gpu_util_percent is not None for p in peaks):
            continue
        usages.append(
            summarise(
                peaks,
                host=host,
                gpu_index=index,
                instance_type=gpu.instance_type,
                region=gpu.region,
                fleet=gpu.fleet,
                memory_total_gib=gpu.memory_total_gib,
                work_per_hour={u: t / hours for u, t in totals.items()} if hours else {},
                lifecycle=gpu.lifecycle,
                source="agent files",
                host_idle_hours_share=idle_hours_share(host_peaks[host]),
            )
        )
    return usages
