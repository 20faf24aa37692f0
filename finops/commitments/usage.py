"""Hourly instance counts per type and region from the agent's files, Prometheus or CloudWatch.

- Agent files (`agent:PATH`): each host's window records; the seconds its windows cover in a
  clock hour are its instance-hours in that hour (GPUs of one host counted once).
- Prometheus (`prometheus:URL`): `finops_agent_info` hosts counted at each hour by the server
  (one subquery), per instance type and lifecycle. The metric has no region label: the region
  is `--region` (default: the cloud's default region in the catalog).
- CloudWatch (`cloudwatch:REGION[@ENDPOINT]`): hours in which an instance published its GPU 0
  utilisation (`CWAgent`, SampleCount per hour); types and lifecycles from DescribeInstances.
  Instances that no longer exist cannot be typed and are counted under "unknown".

The window of a series starts at the first hour with data (or the lookback start, whichever
is later), so a source with a short history does not read as idle hours.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aifinops.commitments.advise import HourlySeries

HOUR = 3600.0
UNKNOWN_TYPE = "unknown"
NAMESPACE = "CWAgent"
GPU_UTIL_METRIC = "nvidia_smi_utilization_gpu"
"""The GPU utilisation series the agent and the CloudWatch agent publish (agents/cloudwatch.py)."""
MAX_QUERIES = 500
"""GetMetricData's limit of queries per call."""


def _series(
    hourly: dict[tuple[str, str, str], dict[int, float]],
    spot_hours: dict[tuple[str, str, str], float],
    first_hour: int,
    last_hour: int,
    source: str,
) -> list[HourlySeries]:
    found = []
    for key, by_hour in sorted(hourly.items()):
        start = max(first_hour, min(by_hour))
        values = tuple(by_hour.get(h, 0.0) for h in range(start, last_hour + 1))
        total = sum(values)
        if total <= 0:
            continue
        cloud, region, instance_type = key
        found.append(
            HourlySeries(
                cloud=cloud,
                region=region,
                instance_type=instance_type,
                instance_hours=values,
                window_start=start * HOUR,
                spot_share=spot_hours.get(key, 0.0) / total,
                source=source,
            )
        )
    return found


def _bounds(lookback_days: float, end: float | None) -> tuple[int, int]:
    stop = time.time() if end is None else end
    last_hour = int(stop // HOUR) - 1  # the last whole hour before `end`
    first_hour = last_hour - int(lookback_days * 24) + 1
    return first_hour, last_hour


def from_agent_files(
    paths: Iterable[Path],
    *,
    lookback_days: float,
    end: float | None = None,
    default_region: str = "",
) -> list[HourlySeries]:
    """Series from the agent's export files or spool folders (`end` default: newest record)."""
    import warnings

    from aifinops.rightsizing.spool import SkippedLinesWarning, iter_records

    skipped: list[str] = []
    records = [record for _where, record in iter_records(paths, skipped)]
    if skipped:  # counted and said, as rightsizing does: a torn line never stops the advice
        warnings.warn(
            f"{len(skipped)} unreadable line(s) skipped in the agent's files, first: {skipped[0]}",
            SkippedLinesWarning,
            stacklevel=2,
        )
    if not records:
        return []
    newest = max(float(r["window_end"]) for r in records)
    first_hour, last_hour = _bounds(lookback_days, newest if end is None else end)
    # host -> window start -> (seconds, key, spot); GPUs of a host share a window
    windows: dict[str, dict[float, tuple[float, tuple[str, str, str], bool]]] = defaultdict(dict)
    for r in records:
        start, stop = float(r["window_start"]), float(r["window_end"])
        if not first_hour * HOUR <= start < (last_hour + 1) * HOUR:
            continue
        host = str(r.get("instance_id") or r.get("hostname"))
        region = str(r.get("region") or "")
        key = (
            str(r.get("cloud") or "aws"),
            region if region not in ("", "unknown") else default_region,
            str(r.get("instance_type") or UNKNOWN_TYPE),
        )
        windows[host][start] = (stop - start, key, r.get("lifecycle") == "spot")
    # seconds first, hours at the end: sums of 1/6 h windows would not add up to whole hours
    seconds_by_hour: dict[tuple[str, str, str], dict[int, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    spot_seconds: dict[tuple[str, str, str], float] = defaultdict(float)
    for by_start in windows.values():
        for start, (seconds, key, is_spot) in by_start.items():
            hour = int(start // HOUR)
            covered = min(seconds, (hour + 1) * HOUR - start)
            seconds_by_hour[key][hour] += covered
            if is_spot:
                spot_seconds[key] += covered
    hourly = {
        key: {hour: total / HOUR for hour, total in by_hour.items()}
        for key, by_hour in seconds_by_hour.items()
    }
    spot = {key: total / HOUR for key, total in spot_seconds.items()}
    return _series(hourly, spot, first_hour, last_hour, "agent files")


def prometheus_query(lookback_days: float) -> str:
    """The PromQL read: hosts per (cloud, type, lifecycle) at every hour of the window."""
    hosts = "max by (instance, cloud, instance_type, lifecycle) (finops_agent_info)"
    # one hour more than the window: the first step is at its start whatever the range bounds
    return f"(count by (cloud, instance_type, lifecycle) ({hosts}))[{int(lookback_days * 86400) + 3600}s:1h]"


def from_prometheus(
    url: str, *, lookback_days: float, end: float | None = None, region: str = ""
) -> list[HourlySeries]:
    """Series from a Prometheus server that scrapes the agents."""
    from aifinops.rightsizing.prometheus import PrometheusSource

    first_hour, last_hour = _bounds(lookback_days, end)
    at = (last_hour + 1) * HOUR
    source = PrometheusSource(url)
    hourly: dict[tuple[str, str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    spot: dict[tuple[str, str, str], float] = defaultdict(float)
    for series in source.query(prometheus_query(lookback_days), at):
        labels = series["metric"]
        cloud = labels.get("cloud") or "aws"
        key = (cloud, region, labels.get("instance_type") or UNKNOWN_TYPE)
        for stamp, value in series.get("values", []):
            hour = int(float(stamp) // HOUR)
            if first_hour <= hour <= last_hour:
                hourly[key][hour] += float(value)
                if labels.get("lifecycle") == "spot":
                    spot[key] += float(value)
    return _series(hourly, spot, first_hour, last_hour, f"prometheus {url}")


def _instance_facts(ec2: Any, ids: list[str]) -> dict[str, tuple[str, bool]]:
    facts: dict[str, tuple[str, bool]] = {}
    for start in range(0, len(ids), 1000):
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-id", "Values": ids[start : start + 1000]}]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    facts[instance["InstanceId"]] = (
                        instance["InstanceType"],
                        instance.get("InstanceLifecycle") == "spot",
                    )
    return facts


def from_cloudwatch(
    region: str, *, lookback_days: float, end: float | None = None, endpoint_url: str | None = None
) -> list[HourlySeries]:
    """Series from the agent's (or the CloudWatch agent's) `CWAgent` GPU metrics."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from aifinops.rightsizing.spool import SourceError

    first_hour, last_hour = _bounds(lookback_days, end)
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    hourly: dict[tuple[str, str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    spot: dict[tuple[str, str, str], float] = defaultdict(float)
    try:
        cloudwatch, ec2 = boto3.client("cloudwatch", **kwargs), boto3.client("ec2", **kwargs)
        # GPU 0's series per instance, any dimension set with InstanceId (the agent's
        # `InstanceId, index[, extra]` or the CloudWatch agent's `host, index, name, InstanceId`)
        series: dict[str, Any] = {}
        for page in cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=NAMESPACE, MetricName=GPU_UTIL_METRIC
        ):
            for metric in page["Metrics"]:
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                instance = dims.get("InstanceId")
                if instance and dims.get("index") == "0":
                    known = series.get(instance)
                    if known is None or len(metric["Dimensions"]) < len(known):
                        series[instance] = metric["Dimensions"]
        ids = sorted(series)
        if not ids:
            return []
        facts = _instance_facts(ec2, ids)
        queries = [
            {
                "Id": f"q{n}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": GPU_UTIL_METRIC,
                        "Dimensions": series[instance],
                    },
                    "Period": int(HOUR),
                    "Stat": "SampleCount",
                },
                "ReturnData": True,
            }
            for n, instance in enumerate(ids)
        ]
        for first in range(0, len(queries), MAX_QUERIES):
            request: dict[str, Any] = {
                "MetricDataQueries": queries[first : first + MAX_QUERIES],
                "StartTime": dt.datetime.fromtimestamp(first_hour * HOUR, dt.UTC),
                "EndTime": dt.datetime.fromtimestamp((last_hour + 1) * HOUR, dt.UTC),
            }
            while True:
                answer = cloudwatch.get_metric_data(**request)
                for result in answer["MetricDataResults"]:
                    instance = ids[int(result["Id"][1:])]
                    instance_type, is_spot = facts.get(instance, (UNKNOWN_TYPE, False))
                    key = ("aws", region, instance_type)
                    for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                        hour = int(stamp.timestamp() // HOUR)
                        if value > 0 and first_hour <= hour <= last_hour:
                            hourly[key][hour] += 1.0
                            if is_spot:
                                spot[key] += 1.0
                if not answer.get("NextToken"):
                    break
                request["NextToken"] = answer["NextToken"]
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"cloudwatch {region}: {exc}") from None
    return _series(hourly, spot, first_hour, last_hour, f"cloudwatch {region}")
