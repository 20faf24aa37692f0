"""The agent's data records: one GPU reading, and one GPU's aggregate over a window.

`WindowRecord` is a published contract (agents/SPOOL_FORMAT.md): the rightsizing engine
reads the spool and export files without importing this package, so a field is never
renamed or re-typed without bumping `SCHEMA_VERSION` and the document together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

SCHEMA_VERSION = 1

# Metrics aggregated per window as {min, mean, p95, max}; order is the JSON order.
STAT_METRICS: tuple[str, ...] = (
    "gpu_util_percent",
    "mem_util_percent",
    "memory_used_bytes",
    "power_watts",
    "temperature_celsius",
    "sm_clock_mhz",
    "sm_active_ratio",
    "tensor_active_ratio",
    "process_count",
)

# A CUDA context holds a few hundred MiB of framebuffer as soon as it exists, so a GPU whose
# used memory (nvmlMemory_v2, driver reservation excluded) is below this holds no context:
# no process, even where the process list needs privileges the agent does not have.
NO_CONTEXT_MEMORY_BYTES = 64 * 1024 * 1024


class MigInstance(NamedTuple):
    """One MIG GPU instance of a MIG-enabled GPU, read through its own device handle."""

    gpu_instance_id: int
    uuid: str
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    process_count: int | None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One reading of one GPU. A metric the GPU cannot report is None, never 0."""

    timestamp: float  # unix seconds
    gpu_index: int
    gpu_uuid: str
    gpu_name: str
    lost: bool = False
    gpu_util_percent: float | None = None
    mem_util_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_watts: float | None = None
    temperature_celsius: float | None = None
    sm_clock_mhz: float | None = None
    sm_active_ratio: float | None = None
    tensor_active_ratio: float | None = None
    process_count: int | None = None
    process_memory_bytes: tuple[tuple[int, int], ...] = ()  # (pid, used bytes)
    ecc_corrected_volatile: int | None = None
    ecc_uncorrected_volatile: int | None = None
    xid_events: tuple[int, ...] = ()  # XID codes seen since the previous sample
    pci_bus_id: str = ""  # "00000000:3B:00.0", as nvidia-smi and dcgm-exporter print it
    memory_reserved_bytes: int | None = None  # driver reservation (nvmlMemory_v2); None on v1
    mig_enabled: bool | None = None  # None: the GPU cannot tell (no MIG support)
    mig_instances: tuple[MigInstance, ...] = ()
    unsupported: tuple[tuple[str, str], ...] = ()  # (field, why) for values this GPU cannot give

    @property
    def activity_percent(self) -> float | None:
        """Best available 'is the GPU doing work' figure, in percent.

        SM activity (GPM) when the GPU has it, because plain utilisation reads 100% for a
        kernel that merely waits (a stalled NCCL collective); otherwise utilisation.
        """
        if self.sm_active_ratio is not None:
            return self.sm_active_ratio * 100.0
        return self.gpu_util_percent


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of the samples of one metric in one window (same unit as the metric)."""

    min: float
    mean: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats | None:
        """Stats of the present values; None when there are none (metric unsupported)."""
        if not values:
            return None
        ordered = sorted(values)
        return cls(
            min=ordered[0],
            mean=math.fsum(ordered) / len(ordered),
            p95=nearest_rank(ordered, 0.95),
            max=ordered[-1],
        )

    def to_json(self) -> dict[str, float]:
        return {"min": self.min, "mean": self.mean, "p95": self.p95, "max": self.max}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Stats | None:
        if raw is None:
            return None
        return cls(
            min=float(raw["min"]),
            mean=float(raw["mean"]),
            p95=float(raw["p95"]),
            max=float(raw["max"]),
        )


def nearest_rank(ordered: Sequence[float], quantile: float) -> float:
    """The nearest-rank quantile of sorted values: the ceil(q*n)-th smallest (1-based)."""
    rank = max(1, math.ceil(quantile * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class HostInfo:
    """Where the samples come from; filled from instance metadata and the config tags."""

    instance_id: str = "unknown"
    instance_type: str = "unknown"
    region: str = "unknown"
    lifecycle: str = "unknown"  # "spot" | "on-demand" | "unknown"
    cloud: str = "none"  # "aws" | "gcp" | "azure" | "none"
    hostname: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One GPU's aggregate over one window: the line written to the spool and export file."""

    window_start: float  # unix seconds, inclusive
    window_end: float  # unix seconds, exclusive
    host: HostInfo
    gpu_index: int
    gpu_uuid: str
    gpu_name: str
    lost: bool
    sample_count: int
    stats: Mapping[str, Stats | None]  # keys: STAT_METRICS
    memory_total_bytes: int | None
    memory_reserved_bytes: int | None
    idle: bool
    idle_sample_ratio: float
    ecc_corrected_volatile: int | None
    ecc_uncorrected_volatile: int | None
    xid_error_count: int
    xid_last: int | None
    work_units: Mapping[str, float]  # host-wide units of work reported in the window
    interruption_action: str | None
    mig_enabled: bool | None = None
    mig_instances: tuple[Mapping[str, Any], ...] = ()  # per GPU instance, see SPOOL_FORMAT.md
    unsupported: Mapping[str, str] = field(default_factory=dict)  # field -> why it is null
    # the host's load over the window (agents/hostload.py `HostLoad.to_json`); None: not read
    host_load: Mapping[str, Any] | None = None
    input_verdict: str | None = None  # agents/hostload.py `Verdict`; None: no diagnosis
    input_causes: tuple[str, ...] = ()  # "cpu", "io", "page-cache" when waiting on data
    host_cpu_util_percent: Stats | None = None  # busy share of all CPUs, per tick (percent)
    host_memory_used_bytes: Stats | None = None  # MemTotal - MemAvailable, per tick (bytes)

    @property
    def record_id(self) -> str:
        """Stable identity of the record; a consumer dedupes at-least-once delivery on it."""
        return f"{self.host.instance_id}/{self.gpu_uuid}/{self.window_start:.3f}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "record_id": self.record_id,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "cloud": self.host.cloud,
            "instance_id": self.host.instance_id,
            "instance_type": self.host.instance_type,
            "region": self.host.region,
            "lifecycle": self.host.lifecycle,
            "hostname": self.host.hostname,
            "tags": dict(self.host.tags),
            "gpu_index": self.gpu_index,
            "gpu_uuid": self.gpu_uuid,
            "gpu_name": self.gpu_name,
            "lost": self.lost,
            "sample_count": self.sample_count,
            "memory_total_bytes": self.memory_total_bytes,
            "memory_reserved_bytes": self.memory_reserved_bytes,
        }
        for name in STAT_METRICS:
            stat = self.stats.get(name)
            out[name] = None if stat is None else stat.to_json()
        out.update(
            {
                "idle": self.idle,
                "idle_sample_ratio": self.idle_sample_ratio,
                "ecc_corrected_volatile": self.ecc_corrected_volatile,
                "ecc_uncorrected_volatile": self.ecc_uncorrected_volatile,
                "xid_error_count": self.xid_error_count,
                "xid_last": self.xid_last,
                "work_units": dict(self.work_units),
                "interruption_action": self.interruption_action,
                "mig_enabled": self.mig_enabled,
                "mig_instances": [dict(m) for m in self.mig_instances],
                "unsupported": dict(self.unsupported),
                "host_load": None if self.host_load is None else dict(self.host_load),
                "input_verdict": self.input_verdict,
                "input_causes": list(self.input_causes),
                "host_cpu_util_percent": None
                if self.host_cpu_util_percent is None
                else self.host_cpu_util_percent.to_json(),
                "host_memory_used_bytes": None
                if self.host_memory_used_bytes is None
                else self.host_memory_used_bytes.to_json(),
            }
        )
        return out

    def to_line(self) -> str:
        """The JSON Lines form: one line, no trailing spaces, ending in a newline."""
        return json.dumps(self.to_json(), separators=(",", ":"), allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> WindowRecord:
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"window record schema_version {version!r} is not {SCHEMA_VERSION}; "
                "read it with the matching agent version"
            )
        host = HostInfo(
            instance_id=raw["instance_id"],
            instance_type=raw["instance_type"],
            region=raw["region"],
            lifecycle=raw["lifecycle"],
            cloud=raw["cloud"],
            hostname=raw.get("hostname", ""),
            tags=dict(raw.get("tags", {})),
        )
        return cls(
            window_start=float(raw["window_start"]),
            window_end=float(raw["window_end"]),
            host=host,
            gpu_index=int(raw["gpu_index"]),
            gpu_uuid=raw["gpu_uuid"],
            gpu_name=raw["gpu_name"],
            lost=bool(raw["lost"]),
            sample_count=int(raw["sample_count"]),
            stats={name: Stats.from_json(raw.get(name)) for name in STAT_METRICS},
            memory_total_bytes=raw.get("memory_total_bytes"),
            memory_reserved_bytes=raw.get("memory_reserved_bytes"),
            idle=bool(raw["idle"]),
            idle_sample_ratio=float(raw["idle_sample_ratio"]),
            ecc_corrected_volatile=raw.get("ecc_corrected_volatile"),
            ecc_uncorrected_volatile=raw.get("ecc_uncorrected_volatile"),
            xid_error_count=int(raw.get("xid_error_count", 0)),
            xid_last=raw.get("xid_last"),
            work_units={k: float(v) for k, v in raw.get("work_units", {}).items()},
            interruption_action=raw.get("interruption_action"),
            mig_enabled=raw.get("mig_enabled"),
            mig_instances=tuple(dict(m) for m in raw.get("mig_instances") or ()),
            unsupported={str(k): str(v) for k, v in (raw.get("unsupported") or {}).items()},
            host_load=None if raw.get("host_load") is None else dict(raw["host_load"]),
            input_verdict=raw.get("input_verdict"),
            input_causes=tuple(str(c) for c in raw.get("input_causes") or ()),
            host_cpu_util_percent=Stats.from_json(raw.get("host_cpu_util_percent")),
            host_memory_used_bytes=Stats.from_json(raw.get("host_memory_used_bytes")),
        )

    @classmethod
    def from_line(cls, line: str) -> WindowRecord:
        return cls.from_json(json.loads(line))


def aggregate(
    samples: Sequence[GpuSample],
    *,
    window_start: float,
    window_end: float,
    host: HostInfo,
    idle: bool,
    idle_threshold_percent: float,
    work_units: Mapping[str, float],
    interruption_action: str | None,
) -> WindowRecord:
    """Fold one GPU's samples of one window into its record (samples must be non-empty)."""
    if not samples:
        raise ValueError("aggregate() needs at least one sample")
    last = samples[-1]
    stats: dict[str, Stats | None] = {}
    for name in STAT_METRICS:
        values = [float(v) for s in samples if (v := getattr(s, name)) is not None]
        stats[name] = Stats.of(values)
    idle_samples = sum(1 for s in samples if is_idle_sample(s, idle_threshold_percent))
    xids = [code for s in samples for code in s.xid_events]
    total = next(
        (s.memory_total_bytes for s in reversed(samples) if s.memory_total_bytes is not None),
        None,
    )
    reserved = next(
        (s.memory_reserved_bytes for s in reversed(samples) if s.memory_reserved_bytes is not None),
        None,
    )
    return WindowRecord(
        window_start=window_start,
        window_end=window_end,
        host=host,
        gpu_index=last.gpu_index,
        gpu_uuid=last.gpu_uuid,
        gpu_name=last.gpu_name,
        lost=any(s.lost for s in samples),
        sample_count=sum(1 for s in samples if not s.lost),
        stats=stats,
        memory_total_bytes=total,
        memory_reserved_bytes=reserved,
        idle=idle,
        idle_sample_ratio=idle_samples / len(samples),
        ecc_corrected_volatile=last.ecc_corrected_volatile,
        ecc_uncorrected_volatile=last.ecc_uncorrected_volatile,
        xid_error_count=len(xids),
        xid_last=xids[-1] if xids else None,
        work_units=dict(work_units),
        interruption_action=interruption_action,
        mig_enabled=last.mig_enabled,
        mig_instances=_mig_summary(samples),
        unsupported=dict(last.unsupported),
    )


def _mig_summary(samples: Sequence[GpuSample]) -> tuple[dict[str, Any], ...]:
    """Per MIG instance of the window: its size, peak memory used and peak process count."""
    by_id: dict[int, dict[str, Any]] = {}
    for s in samples:
        for m in s.mig_instances:
            row = by_id.setdefault(
                m.gpu_instance_id,
                {
                    "gpu_instance_id": m.gpu_instance_id,
                    "uuid": m.uuid,
                    "memory_total_bytes": m.memory_total_bytes,
                    "memory_used_bytes_max": None,
                    "process_count_max": None,
                },
            )
            for key, value in (
                ("memory_used_bytes_max", m.memory_used_bytes),
                ("process_count_max", m.process_count),
            ):
                if value is not None:
                    row[key] = value if row[key] is None else max(row[key], value)
    return tuple(by_id[k] for k in sorted(by_id))


def is_idle_sample(sample: GpuSample, threshold_percent: float) -> bool:
    """No compute process and activity under the threshold.

    Unknown activity is not idle, except on a MIG-enabled GPU with no process in any
    instance (NVML gives no utilisation under MIG, and nothing can run without a process).
    Where the process list needs privileges, a GPU holding no CUDA context's worth of
    memory (`NO_CONTEXT_MEMORY_BYTES`, v2 reading) counts as having no process.
    """
    if sample.lost:
        return False
    processes = sample.process_count
    if processes is None:
        used = sample.memory_used_bytes
        if sample.memory_reserved_bytes is None or used is None or used >= NO_CONTEXT_MEMORY_BYTES:
            return False
        processes = 0
    if processes > 0:
        return False
    activity = sample.activity_percent
    if activity is None:
        return sample.mig_enabled is True
    return activity < threshold_percent
