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
