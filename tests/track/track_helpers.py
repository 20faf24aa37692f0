"""Agent export files for the tracking tests, written by the agent's own record writer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aifinops.agents.records import STAT_METRICS, HostInfo, Stats, WindowRecord

T0 = 1_800_000.0  # a multiple of the 600 s windows used here
WINDOW = 600.0


def flat(value: float) -> Stats:
    return Stats(min=value, mean=value, p95=value, max=value)


def host_records(
    *,
    instance_id: str,
    instance_type: str,
    lifecycle: str,
    gpus: int,
    windows: int,
    util: float,
    first: float = T0,
    region: str = "us-east-1",
    steps_per_window: float = 0.0,
    verdicts: dict[int, str] | None = None,
    interrupted: Iterable[int] = (),
    sm_ratio: float | None = None,
) -> list[WindowRecord]:
    """`windows` consecutive 600 s windows from `first`, one record per GPU each."""
    host = HostInfo(instance_id, instance_type, region, lifecycle, "aws", f"host-{instance_id}")
    out = []
    for w in range(windows):
        start = first + w * WINDOW
        for gpu in range(gpus):
            stats: dict[str, Stats | None] = {name: None for name in STAT_METRICS}
            stats["gpu_util_percent"] = flat(util)
            stats["process_count"] = flat(1.0)
            if sm_ratio is not None:
                stats["sm_active_ratio"] = flat(sm_ratio)
            out.append(
                WindowRecord(
                    window_start=start,
                    window_end=start + WINDOW,
                    host=host,
                    gpu_index=gpu,
                    gpu_uuid=f"GPU-{instance_id}-{gpu}",
                    gpu_name="NVIDIA A10G",
                    lost=False,
                    sample_count=600,
                    stats=stats,
                    memory_total_bytes=24 * 1024**3,
                    memory_reserved_bytes=None,
                    idle=False,
                    idle_sample_ratio=0.0,
                    ecc_corrected_volatile=0,
                    ecc_uncorrected_volatile=0,
                    xid_error_count=0,
                    xid_last=None,
                    work_units={"steps": steps_per_window} if steps_per_window else {},
                    interruption_action="terminate" if w in set(interrupted) else None,
                    input_verdict=(verdicts or {}).get(w, "gpu-busy"),
                )
            )
    return out


def write(path: Path, records: Iterable[WindowRecord], tail: str = "") -> Path:
    path.write_text("".join(r.to_line() for r in records) + tail)
    return path
