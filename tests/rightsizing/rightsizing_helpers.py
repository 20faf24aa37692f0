"""Builders for synthetic usage and stack configs (one changed field per case)."""

from __future__ import annotations

from typing import Any

from finops.config import StackConfig, parse
from finops.rightsizing.usage import GpuUsage

DAYS14 = 14 * 86400.0
TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}


def fleet(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "train-a",
        "cloud": "aws",
        "instanceTypes": ["p3.2xlarge"],
        "nodes": {"min": 1, "max": 4, "desired": 2},
        "capacity": "on-demand",
        "modelVersion": "v1",
    }
    entry.update(changes)
    return entry


def endpoint(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "serve-a",
        "cloud": "aws",
        "instanceType": "ml.g5.xlarge",
        "replicas": {"min": 1, "max": 2},
        "modelVersion": "v1",
    }
    entry.update(changes)
    return entry


def stack(fleets: list[dict[str, Any]] = (), endpoints: list[dict[str, Any]] = ()) -> StackConfig:  # type: ignore[assignment]
    raw: dict[str, Any] = {"finops:tags": TAGS, "aws:region": "us-east-1"}
    if fleets:
        raw["finops:trainingFleets"] = list(fleets)
    if endpoints:
        raw["finops:inferenceEndpoints"] = list(endpoints)
    return parse(raw)


def gpu(
    host: str = "i-1",
    index: int = 0,
    *,
    util: float = 80.0,
    memory: float | None = 10.0,
    instance_type: str = "p3.2xlarge",
    fleet_name: str | None = "train-a",
    sm: float | None = None,
    idle: float = 0.0,
    work: dict[str, float] | None = None,
) -> GpuUsage:
    return GpuUsage(
        host=host,
        gpu_index=index,
        instance_type=instance_type,
        region="us-east-1",
        fleet=fleet_name,
        window_start=0.0,
        window_end=DAYS14,
        intervals=4032,
        util_p95_percent=util,
        util_mean_percent=util / 2,
        memory_peak_gib=memory,
        memory_total_gib=None,
        sm_active_p95=sm,
        idle_hours_share=idle,
        work_per_hour=work or {},
    )


def window_record(
    *,
    instance_id: str,
    instance_type: str,
    fleet_name: str,
    gpu_index: int,
    start: float,
    util: float,
    memory_gib: float,
    work: dict[str, float] | None = None,
    seconds: float = 60.0,
) -> dict[str, Any]:
    """One agent window record (agents/SPOOL_FORMAT.md, schema_version 1)."""
    memory = memory_gib * 1024**3

    def stats(value: float, low: float | None = None) -> dict[str, float]:
        return {"min": value if low is None else low, "mean": value, "p95": value, "max": value}

    return {
        "schema_version": 1,
        "record_id": f"{instance_id}/GPU-{gpu_index}/{start:.3f}",
        "window_start": start,
        "window_end": start + seconds,
        "cloud": "aws",
        "instance_id": instance_id,
        "instance_type": instance_type,
        "region": "us-east-1",
        "lifecycle": "on-demand",
        "hostname": "ip-10-0-0-5",
        "tags": {"finops:fleet": fleet_name},
        "gpu_index": gpu_index,
        "gpu_uuid": f"GPU-{gpu_index}",
        "gpu_name": "Tesla V100-SXM2-16GB",
        "lost": False,
        "sample_count": 60,
        "memory_total_bytes": 16 * 1024**3,
        "gpu_util_percent": stats(util, 0.0),
        "mem_util_percent": stats(util / 2),
        "memory_used_bytes": stats(memory),
        "power_watts": stats(100.0),
        "temperature_celsius": stats(50.0),
        "sm_clock_mhz": stats(1300.0),
        "sm_active_ratio": None,
        "tensor_active_ratio": None,
        "process_count": stats(1.0),
        "idle": util == 0,
        "idle_sample_ratio": 1.0 if util == 0 else 0.0,
        "ecc_corrected_volatile": 0,
        "ecc_uncorrected_volatile": 0,
        "xid_error_count": 0,
        "xid_last": None,
        "work_units": work or {},
        "interruption_action": None,
        "a_future_field": "ignored",
    }
