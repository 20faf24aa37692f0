"""Builders for synthetic usage and stack configs (one changed field per case)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aifinops.config import StackConfig, parse
from aifinops.rightsizing import PreviewPricer, PricedTarget, Settings, TargetReport, recommend
from aifinops.rightsizing.usage import GpuUsage

DAYS14 = 14 * 86400.0
TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}


def fleet_charges_usd(nodes: int, gpus_per_node: int, types_in_use: int = 2) -> float:
    """What an AWS fleet of on-demand nodes adds to its instances in the preview, by hand
    from the public us-east-1 prices: a 200 GB gp3 root volume per node at $0.08/GB-month;
    the agent's CloudWatch metrics at $0.30 (20 per GPU: 12 finops + 8 CloudWatch-agent set;
    12 per-fleet copies per instance type in use); one PutMetricData request per node and
    60 s window at $0.01 per 1,000."""
    volumes = nodes * 200 * 0.08
    metrics = (20 * gpus_per_node * nodes + 12 * types_in_use) * 0.30
    requests = nodes * 730 * 60 * 0.01 / 1000
    return volumes + metrics + requests


ROOT = Path(__file__).resolve().parents[2]
PRICES: dict[str, PricedTarget] = {}
"""Prices shared by every test of the session (a price is a pure function of the config)."""
H0 = 491_000
"""First clock hour (unix seconds // 3600) of the synthetic usage."""


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
        "serving": "model-archive",
        "modelDataUrl": "s3://vision-models/serve-a/model.tar.gz",
    }
    entry.update(changes)
    return entry


def raw_stack(
    fleets: Sequence[dict[str, Any]] = (), endpoints: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    raw: dict[str, Any] = {"finops:tags": TAGS, "aws:region": "us-east-1"}
    if fleets:
        raw["finops:trainingFleets"] = list(fleets)
    if endpoints:
        raw["finops:inferenceEndpoints"] = list(endpoints)
    return raw


def stack(
    fleets: Sequence[dict[str, Any]] = (), endpoints: Sequence[dict[str, Any]] = ()
) -> StackConfig:
    return parse(raw_stack(fleets, endpoints))


def pricer(
    fleets: Sequence[dict[str, Any]] = (), endpoints: Sequence[dict[str, Any]] = ()
) -> PreviewPricer:
    """The preview's pricer over the same stack (the real program, offline)."""
    return PreviewPricer(raw_stack(fleets, endpoints), ROOT, cache=PRICES)


def run(
    fleets: Sequence[dict[str, Any]] = (),
    endpoints: Sequence[dict[str, Any]] = (),
    usages: Sequence[GpuUsage] = (),
    settings: Settings | None = None,
) -> list[TargetReport]:
    """`recommend` on a stack of these entries, priced by the preview."""
    return recommend(
        stack(fleets, endpoints), usages, pricer(fleets, endpoints), settings or Settings()
    )


def gpu(
    host: str = "i-1",
    index: int = 0,
    *,
    util: float = 80.0,
    mean: float | None = -1.0,
    mean_p95: float | None = -1.0,
    memory: float | None = 10.0,
    instance_type: str = "p3.2xlarge",
    fleet_name: str | None = "train-a",
    sm: float | None = None,
    sm_mean: float | None = None,
    idle: float = 0.0,
    work: dict[str, float] | None = None,
    days: float = 14.0,
    observed_share: float = 1.0,
    cpu: float | None = None,
    host_memory: float | None = None,
) -> GpuUsage:
    """One GPU over `days`: p95 of 5-minute peaks `util`, time-weighted mean `mean` (default
    util / 2), p95 of 5-minute means `mean_p95` (default the mean); busy in the first
    (1 - idle) of the observed hours (none when util < 5)."""
    hours = int(days * 24)
    step = 1.0 / observed_share
    observed = sorted({H0 + int(k * step) for k in range(int(hours * observed_share))})
    busy_count = 0 if util < 5 else round(len(observed) * (1 - idle))
    mean_value = util / 2 if mean == -1.0 else mean
    return GpuUsage(
        host=host,
        gpu_index=index,
        instance_type=instance_type,
        region="us-east-1",
        fleet=fleet_name,
        window_start=H0 * 3600.0,
        window_end=(H0 + hours) * 3600.0,
        intervals=len(observed) * 12,
        util_p95_percent=util,
        util_mean_percent=mean_value,
        util_mean_p95_percent=mean_value if mean_p95 == -1.0 else mean_p95,
        memory_peak_gib=memory,
        memory_total_gib=None,
        sm_active_p95=sm,
        sm_active_mean=sm_mean,
        busy_hours=frozenset(observed[:busy_count]),
        observed_hours=frozenset(observed),
        work_per_hour=work or {},
        work_hours=len(observed) if work else 0,
        host_cpu_p95_percent=cpu,
        host_memory_peak_gib=host_memory,
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
    util_peak: float | None = None,
    host_cpu: float | None = None,
    host_memory_gib: float | None = None,
) -> dict[str, Any]:
    """One agent window record (agents/SPOOL_FORMAT.md, schema_version 1): utilisation with
    mean `util` and peak `util_peak` (default the mean)."""
    memory = memory_gib * 1024**3

    def stats(
        value: float, low: float | None = None, high: float | None = None
    ) -> dict[str, float]:
        top = value if high is None else high
        return {"min": value if low is None else low, "mean": value, "p95": top, "max": top}

    record: dict[str, Any] = {
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
        "gpu_util_percent": stats(util, 0.0, util_peak),
        "mem_util_percent": stats(util / 2),
        "memory_used_bytes": stats(memory),
        "power_watts": stats(100.0),
        "temperature_celsius": stats(50.0),
        "sm_clock_mhz": stats(1300.0),
        "sm_active_ratio": None,
        "tensor_active_ratio": None,
        "process_count": stats(1.0 if util or util_peak else 0.0),
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
    if host_cpu is not None:
        record["host_cpu_util_percent"] = stats(host_cpu)
    if host_memory_gib is not None:
        record["host_memory_used_bytes"] = stats(host_memory_gib * 1024**3)
    return record
