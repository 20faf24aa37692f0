"""Is a running GPU instance idle? Hourly peaks of GPU utilisation, else of CPU, over N hours.

- GPU metrics first: the agent's (or the CloudWatch agent's) `CWAgent`
  `nvidia_smi_utilization_gpu`, one series per GPU, or the agent's `DCGM_FI_DEV_GPU_UTIL` in
  Prometheus. Idle: every GPU's peak stayed under `IDLE_UTIL_PERCENT` (5 %, rightsizing's
  idle hour) in every hour.
- Without GPU metrics, CloudWatch's own `AWS/EC2 CPUUtilization`: idle when the hourly peak
  stayed under half of one vCPU (`50 / vCPUs` percent). A process that drives a GPU keeps at
  least one core busy launching kernels and waiting on them, so a host below half a core has
  no GPU job. The evidence says the verdict is by CPU.
- Fewer than `COVERAGE` of the hours measured, or CPU busy with no GPU metric: UNKNOWN.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aifinops.rightsizing.usage import IDLE_UTIL_PERCENT

COVERAGE = 0.9
GPU_NAMESPACE = "CWAgent"
GPU_METRIC = "nvidia_smi_utilization_gpu"
MAX_QUERIES = 500
IDLE, BUSY, UNKNOWN = "idle", "busy", "unknown"


@dataclass(frozen=True)
class IdleVerdict:
    state: str
    evidence: str


@dataclass(frozen=True)
class HostFacts:
    instance_id: str
    vcpus: int


def _window(now: float, hours: int) -> tuple[dt.datetime, dt.datetime]:
    end = int(now // 3600) * 3600
    return (
        dt.datetime.fromtimestamp(end - hours * 3600, dt.UTC),
        dt.datetime.fromtimestamp(end, dt.UTC),
    )


def _gpu_series(cloudwatch: Any, wanted: set[str]) -> dict[str, dict[str, list[dict[str, str]]]]:
    """instance id -> GPU index -> the dimensions of one utilisation series of that GPU.

    The agent publishes `InstanceId, index` (plus any `extra_dimensions`) and can publish the
    CloudWatch agent's `host, index, name, InstanceId` as well; the CloudWatch agent itself
    only the latter. Any set with `InstanceId` and `index` is read, one per GPU.
    """
    found: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(dict)
    for page in cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=GPU_NAMESPACE, MetricName=GPU_METRIC
    ):
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            instance, index = dims.get("InstanceId"), dims.get("index")
            if instance in wanted and index is not None:
                # the shortest set first: the finops set when both are published
                known = found[instance].get(index)
                if known is None or len(metric["Dimensions"]) < len(known):
                    found[instance][index] = metric["Dimensions"]
    return found


def _query(n: int, namespace: str, metric: str, dims: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Id": f"q{n}",
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
            "Period": 3600,
            "Stat": "Maximum",
        },
        "ReturnData": True,
    }


def _fetch(
    cloudwatch: Any, queries: list[dict[str, Any]], start: dt.datetime, end: dt.datetime
) -> dict[str, list[float]]:
    values: dict[str, list[float]] = defaultdict(list)
    for first in range(0, len(queries), MAX_QUERIES):
        request: dict[str, Any] = {
            "MetricDataQueries": queries[first : first + MAX_QUERIES],
            "StartTime": start,
            "EndTime": end,
        }
        while True:
            answer = cloudwatch.get_metric_data(**request)
            for result in answer["MetricDataResults"]:
                values[result["Id"]] += [float(v) for v in result["Values"]]
            if not answer.get("NextToken"):
                break
            request["NextToken"] = answer["NextToken"]
    return values


def cloudwatch_verdicts(
    cloudwatch: Any, hosts: Iterable[HostFacts], hours: int, now: float
) -> dict[str, IdleVerdict]:
    """A verdict for every host, from CloudWatch (GPU series where published, else CPU)."""
    hosts = list(hosts)
    if not hosts:
        return {}
    start, end = _window(now, hours)
    gpus = _gpu_series(cloudwatch, {h.instance_id for h in hosts})
    queries: list[dict[str, Any]] = []
    plan: dict[str, tuple[str, list[str]]] = {}
    for host in hosts:
        ids = []
        if gpus.get(host.instance_id):
            for _, dims in sorted(gpus[host.instance_id].items()):
                ids.append(f"q{len(queries)}")
                queries.append(_query(len(queries), GPU_NAMESPACE, GPU_METRIC, dims))
            plan[host.instance_id] = ("gpu", ids)
        else:
            ids.append(f"q{len(queries)}")
            cpu = [{"Name": "InstanceId", "Value": host.instance_id}]
            queries.append(_query(len(queries), "AWS/EC2", "CPUUtilization", cpu))
            plan[host.instance_id] = ("cpu", ids)
    values = _fetch(cloudwatch, queries, start, end)
    verdicts = {}
    needed = COVERAGE * hours
    for host in hosts:
        basis, ids = plan[host.instance_id]
        series = [values.get(i, []) for i in ids]
        covered = min(len(s) for s in series)
        if basis == "gpu":
            verdicts[host.instance_id] = gpu_verdict(series, hours, "CloudWatch CWAgent")
            continue
        threshold = 50.0 / max(host.vcpus, 1)
        peak = max((max(s) for s in series if s), default=None)
        if covered < needed or peak is None:
            verdicts[host.instance_id] = IdleVerdict(
                UNKNOWN,
                f"no GPU metrics (install finops-agent); CPU measured in {covered} of {hours} h",
            )
        elif peak < threshold:
            verdicts[host.instance_id] = IdleVerdict(
                IDLE,
                f"no GPU metrics; peak CPU {peak:.2f} % under half a vCPU ({threshold:.2f} %) "
                f"in each of {hours} h (AWS/EC2 CPUUtilization)",
            )
        else:
            verdicts[host.instance_id] = IdleVerdict(
                UNKNOWN,
                f"no GPU metrics (install finops-agent); CPU peaked at {peak:.1f} %, so GPU use "
                "cannot be ruled out",
            )
    return verdicts


def gpu_verdict(series: list[list[float]], hours: int, source: str) -> IdleVerdict:
    """Verdict from hourly GPU utilisation peaks, one list per GPU."""
    covered = min((len(s) for s in series), default=0)
    if covered < COVERAGE * hours:
        return IdleVerdict(
            UNKNOWN, f"GPU utilisation measured in {covered} of {hours} h ({source})"
        )
    peak = max(max(s) for s in series)
    if peak < IDLE_UTIL_PERCENT:
        return IdleVerdict(
            IDLE,
            f"peak GPU utilisation {peak:.1f} % over {hours} h on {len(series)} GPU(s) ({source})",
        )
    return IdleVerdict(BUSY, f"GPU utilisation peaked at {peak:.0f} % ({source})")


def prometheus_queries(hours: int) -> dict[str, str]:
    """PromQL: per EC2 instance id, the peak GPU utilisation over the window and the number
    of 5-minute steps with a reading (documented in docs/audit.md)."""
    info = f"max by (instance, instance_id) (last_over_time(finops_agent_info[{hours}h]))"
    return {
        "peak": (
            f"max by (instance_id) (max by (instance) (max_over_time(DCGM_FI_DEV_GPU_UTIL[{hours}h])) "
            f"* on (instance) group_left (instance_id) {info})"
        ),
        "steps": (
            f"max by (instance_id) (count_over_time((max by (instance) (DCGM_FI_DEV_GPU_UTIL))[{hours}h:5m]) "
            f"* on (instance) group_left (instance_id) {info})"
        ),
    }


def prometheus_verdicts(url: str, hours: int, now: float) -> dict[str, IdleVerdict]:
    """Verdicts for every instance id the Prometheus server has GPU readings for."""
    from aifinops.rightsizing.prometheus import PrometheusSource

    source = PrometheusSource(url)
    at = float(int(now // 3600) * 3600)
    q = prometheus_queries(hours)
    peaks = {
        s["metric"].get("instance_id", ""): float(s["value"][1])
        for s in source.query(q["peak"], at)
    }
    steps = {
        s["metric"].get("instance_id", ""): float(s["value"][1])
        for s in source.query(q["steps"], at)
    }
    verdicts = {}
    for instance_id, peak in peaks.items():
        covered_hours = steps.get(instance_id, 0.0) / 12
        where = f"Prometheus {url}"
        if covered_hours < COVERAGE * hours:
            verdicts[instance_id] = IdleVerdict(
                UNKNOWN, f"GPU utilisation measured in {covered_hours:.0f} of {hours} h ({where})"
            )
        elif peak < IDLE_UTIL_PERCENT:
            verdicts[instance_id] = IdleVerdict(
                IDLE, f"peak GPU utilisation {peak:.1f} % over {hours} h ({where})"
            )
        else:
            verdicts[instance_id] = IdleVerdict(
                BUSY, f"GPU utilisation peaked at {peak:.0f} % ({where})"
            )
    return verdicts
