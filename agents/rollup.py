"""The export file rolled up: one summary per GPU per 5 minutes instead of one record per window.

With `[export] rollup_seconds = 300` the export sink folds each GPU's window records into a
summary per 5-minute interval (agents/SPOOL_FORMAT.md, "Rolled-up records") holding only
what rightsizing reads: peaks, time-weighted means, memory, processes, host CPU and memory,
the input verdict and work. The summaries of a host's GPUs that cover the same seconds are
written as one line (`schema_version` 2): the host's fields once, then one array of numbers
per GPU (`GPU_COLUMNS`). A fleet's files shrink about forty-fold at the default 60 s
windows; the spool, CloudWatch and Prometheus keep every window.

A rolled-up record is a run of one GPU's windows inside one interval that follow each other
without a gap, measure the same metrics and share an input verdict, so `window_end - window_start` is the seconds its
means are weighted by, exactly as the windows would be. A window that cannot be rolled (no
samples, longer than the interval, not a window record) is written as it is.

Open runs and the end of the last window folded per GPU are kept in a small state file next
to the export file, written after each delivery: after a crash, the spool delivers again
what was not acknowledged and windows already folded are recognised and skipped; a run
completed twice is written twice, and readers count a GPU's summary once per host, GPU and
`window_start`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aifinops.agents.spool import write_json_atomically

log = logging.getLogger("finops_agent.rollup")

ROLLUP_SECONDS = 300
SCHEMA_VERSION = 2
"""Of a rolled-up line (window records are version 1; readers of version 1 only refuse it)."""
GPU_COLUMNS = (
    "gpu_index",
    "sample_count",
    "memory_total_bytes",
    "gpu_util_percent_max",
    "gpu_util_percent_mean",
    "sm_active_ratio_max",
    "sm_active_ratio_mean",
    "memory_used_bytes_max",
    "process_count_max",
)
"""The numbers of each GPU's summary in a rolled-up line's `gpus`, in this order (`null` where
unknown; the readers hold the same list: tests/agents/test_agent_records.py)."""
MEANS = ("gpu_util_percent", "sm_active_ratio")
"""Stats kept as peak and time-weighted mean."""
PEAKS = ("memory_used_bytes", "process_count", "host_cpu_util_percent", "host_memory_used_bytes")
"""Stats kept as peak only (the host ones when a record has them)."""
IDENTITY = (
    "cloud",
    "instance_id",
    "instance_type",
    "region",
    "lifecycle",
    "hostname",
    "tags",
    "gpu_index",
    "gpu_uuid",
)


def _shape(record: dict[str, Any]) -> list[Any]:
    """Which time-weighted means the window has, and its input verdict and causes
    (agents/hostload.py): a run has one shape, so its seconds weigh each alike."""
    means = [isinstance(record.get(name), dict) for name in MEANS]
    return [*means, record.get("input_verdict"), list(record.get("input_causes") or ())]


def _rollable(record: dict[str, Any], seconds: int) -> bool:
    try:
        start, end = float(record["window_start"]), float(record["window_end"])
        return (
            bool(record.get("sample_count"))
            and 0 < end - start <= seconds
            and all(key in record for key in IDENTITY)
        )
    except (KeyError, TypeError, ValueError):
        return False


HOST_FIELDS = IDENTITY[:7]
"""What a rolled-up line says once for all its GPUs."""


def _number(value: float | None) -> float | int | None:
    """A whole number written without `.0` (memory bytes, sample counts): shorter lines."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


def pack(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """The lines of closed runs (`Rollup._close`): one per host and span of seconds (same
    start, end, windows, work, input verdict and host figures), its GPUs in index order."""
    groups: dict[str, tuple[dict[str, Any], list[list[Any]]]] = {}
    for summary in summaries:
        host = {
            "schema_version": SCHEMA_VERSION,
            "rollup_seconds": summary["rollup_seconds"],
            "window_start": summary["window_start"],
            "window_end": summary["window_end"],
            "windows": summary["windows"],
            **{key: summary["identity"][key] for key in HOST_FIELDS},
            "work_units": summary["work_units"],
            "input_verdict": summary["input_verdict"],
            "input_causes": summary["input_causes"],
            "host_cpu_util_percent_max": _number(summary["host_cpu_util_percent_max"]),
            "host_memory_used_bytes_max": _number(summary["host_memory_used_bytes_max"]),
        }
        key = json.dumps(host, sort_keys=True)
        groups.setdefault(key, (host, []))[1].append(
            [_number(summary[column]) for column in GPU_COLUMNS]
        )
    lines = []
    for host, gpus in groups.values():
        host["gpus"] = sorted(gpus, key=lambda gpu: gpu[0])
        lines.append(json.dumps(host, separators=(",", ":"), allow_nan=False) + "\n")
    return lines


class Rollup:
    """Folds window records into per-GPU interval summaries: `add` each window, `take` the
    lines now complete (`flush` when stopping)."""

    def __init__(self, seconds: int = ROLLUP_SECONDS, state_path: Path | None = None) -> None:
        self.seconds = seconds
        self.state_path = state_path
        self.runs: dict[str, dict[str, Any]] = {}
        """GPU UUID -> the open run (JSON-ready)."""
        self.folded_until: dict[str, float] = {}
        """GPU UUID -> end of the last window folded (later deliveries of it are skipped)."""
        self._closed: list[dict[str, Any]] = []
        self._as_is: list[str] = []
        if state_path is not None and state_path.exists():
            try:
                state = json.loads(state_path.read_text())
                self.runs = dict(state["runs"])
                self.folded_until = {k: float(v) for k, v in state["folded_until"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning(
                    "export roll-up state unreadable, starting afresh",
                    extra={"file": str(state_path), "error": str(exc)[:200]},
                )

    def add(self, record: dict[str, Any], line: str) -> None:
        """Fold one window record (`line` is its JSON line)."""
        if not _rollable(record, self.seconds):
            self._as_is.append(line if line.endswith("\n") else line + "\n")
            return
        gpu = str(record["gpu_uuid"])
        start, end = float(record["window_start"]), float(record["window_end"])
        if start < self.folded_until.get(gpu, -math.inf):
            return  # delivered again after a crash: already folded
        self.folded_until[gpu] = end
        run = self.runs.get(gpu)
        interval = math.floor(start / self.seconds)
        if run is not None and (
            run["interval"] != interval
            or run["window_end"] != start
            or run["shape"] != _shape(record)
        ):
            self._close(gpu)
            run = None
        if run is None:
            run = self.runs[gpu] = self._open(record, interval)
        self._fold(run, record, end - start)
        if end >= (interval + 1) * self.seconds:  # the interval is over: no window can join
            self._close(gpu)

    def take(self) -> list[str]:
        """The lines complete since the last `take`: windows that could not be rolled up as
        they are, then the closed runs, packed (`pack`)."""
        lines = self._as_is + pack(self._closed)
        self._as_is, self._closed = [], []
        return lines

    def flush(self) -> list[str]:
        """Close every open run (the agent is stopping); the lines to write."""
        for gpu in list(self.runs):
            self._close(gpu)
        return self.take()

    def save(self, *, fsync: bool) -> None:
        if self.state_path is not None:
            write_json_atomically(
                self.state_path,
                {"runs": self.runs, "folded_until": self.folded_until},
                fsync=fsync,
            )

    def _open(self, record: dict[str, Any], interval: int) -> dict[str, Any]:
        return {
            "interval": interval,
            "shape": _shape(record),
            "identity": {key: record[key] for key in IDENTITY},
            "window_start": float(record["window_start"]),
            "window_end": float(record["window_start"]),
            "windows": 0,
            "sample_count": 0,
            "memory_total_bytes": None,
            "peaks": {},
            "weighted": {},
            "work_units": {},
        }

    @staticmethod
    def _fold(run: dict[str, Any], record: dict[str, Any], seconds: float) -> None:
        run["window_end"] = float(record["window_end"])
        run["windows"] += 1
        run["sample_count"] += int(record["sample_count"])
        if record.get("memory_total_bytes"):
            run["memory_total_bytes"] = record["memory_total_bytes"]
        for name in MEANS + PEAKS:
            stats = record.get(name)
            if not isinstance(stats, dict) or stats.get("max") is None:
                continue
            old = run["peaks"].get(name)
            run["peaks"][name] = (
                float(stats["max"]) if old is None else max(old, float(stats["max"]))
            )
            if name in MEANS and stats.get("mean") is not None:
                run["weighted"][name] = (
                    run["weighted"].get(name, 0.0) + float(stats["mean"]) * seconds
                )
        for unit, amount in (record.get("work_units") or {}).items():
            run["work_units"][str(unit)] = run["work_units"].get(str(unit), 0.0) + float(amount)

    def _close(self, gpu: str) -> None:
        """The run's summary: its peaks (`<name>_max`) and time-weighted means
        (`<name>_mean`), `None` where the windows had none."""
        run = self.runs.pop(gpu)
        start, end = run["window_start"], run["window_end"]
        summary: dict[str, Any] = {
            "rollup_seconds": self.seconds,
            "window_start": start,
            "window_end": end,
            "identity": run["identity"],
            "gpu_index": run["identity"]["gpu_index"],
            "windows": run["windows"],
            "sample_count": run["sample_count"],
            "memory_total_bytes": run["memory_total_bytes"],
            "work_units": run["work_units"],
        }
        for name in MEANS + PEAKS:
            summary[f"{name}_max"] = run["peaks"].get(name)
            if name in MEANS:
                weighted = run["weighted"].get(name)
                summary[f"{name}_mean"] = None if weighted is None else weighted / (end - start)
        summary["input_verdict"], summary["input_causes"] = run["shape"][len(MEANS) :]
        self._closed.append(summary)


class RolledExport:
    """The export sink with a roll-up in front: `deliver` as `ExportFile.deliver`."""

    def __init__(
        self,
        write: Callable[[list[dict[str, Any]], list[str]], None],
        rollup: Rollup,
        *,
        fsync: bool,
    ) -> None:
        self.write = write
        self.rollup = rollup
        self.fsync = fsync
        self._lock = threading.Lock()  # the shipper thread delivers, `close` flushes

    def deliver(self, records: Sequence[dict[str, Any]], lines: Sequence[str]) -> None:
        with self._lock:
            for record, line in zip(records, lines, strict=True):
                self.rollup.add(record, line)
            out = self.rollup.take()  # a delivery's GPUs of one interval: one line
            if out:
                self.write([], out)
            self.rollup.save(fsync=self.fsync)

    def close(self) -> None:
        """Write the open runs (the agent is stopping; windows after a restart start anew)."""
        with self._lock:
            out = self.rollup.flush()
            if out:
                self.write([], out)
            self.rollup.save(fsync=self.fsync)
