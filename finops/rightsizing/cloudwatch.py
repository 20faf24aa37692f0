"""CloudWatch source: the agent's (and the CloudWatch agent's) `CWAgent` NVIDIA metrics.

Series are found with ListMetrics: a GPU's series is any dimension set holding `InstanceId`
and `index` (`_gpu_series`), so each set the agent publishes is read (its own `InstanceId,
index` with its `extra_dimensions`, the CloudWatch agent's `host, index, name, InstanceId`
with any `append_dimensions`), and sets without them (the agent's per-fleet tag set) are not
read as a GPU. They are read with GetMetricData as the Maximum (peaks) and the Average (time-weighted means) of each
5-minute period and folded like the agent's files. At fleet scale instances are read in
groups that fill calls of 500 queries (GetMetricData's limit), each call followed through
its pages and retried with backoff when throttled; a group is folded into `GpuUsage` and
dropped before the next, so memory follows one group. A query per figure for the whole
fleet is not possible here: a SEARCH expression returns at most 500 series, fewer than a
fleet's GPUs, so every GPU series is its own query, 500 to a call. Host CPU is
EC2's own `AWS/EC2 CPUUtilization` (Maximum per period), host memory the CloudWatch agent's
`mem_used_percent` (`CWAgent`, dimension `InstanceId`) where it is collected.
DescribeInstances gives each instance's type, lifecycle and `finops:fleet` tag.
"""

from __future__ import annotations

import datetime as dt
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aifinops import catalog
from aifinops.errors import CatalogError
from aifinops.rightsizing.spool import FLEET_TAG, SourceError
from aifinops.rightsizing.usage import (
    INTERVAL_SECONDS,
    GpuUsage,
    HostInterval,
    IntervalPeak,
    summarise,
)

NAMESPACE = "CWAgent"
METRICS = {
    # query id prefix: (metric name, statistic)
    "util": ("nvidia_smi_utilization_gpu", "Maximum"),
    "umean": ("nvidia_smi_utilization_gpu", "Average"),
    "memory": ("nvidia_smi_memory_used", "Maximum"),  # MiB
    "total": ("nvidia_smi_memory_total", "Maximum"),  # MiB
    "sm": ("finops_gpu_sm_active_ratio", "Maximum"),
    "smmean": ("finops_gpu_sm_active_ratio", "Average"),
}
HOST_METRICS = {
    "cpu": ("AWS/EC2", "CPUUtilization"),  # percent of the vCPUs
    "hostmem": (NAMESPACE, "mem_used_percent"),  # percent of the host memory
}
MAX_QUERIES = 500
"""GetMetricData's limit of queries per call."""
MAX_ATTEMPTS = 10
"""Tries per call when CloudWatch throttles (botocore's standard retry mode: exponential
backoff with jitter, up to 20 s apart)."""


@dataclass(frozen=True)
class CloudWatchSource:
    region: str = "us-east-1"
    namespace: str = NAMESPACE
    endpoint_url: str | None = None
    max_attempts: int = MAX_ATTEMPTS

    def clients(self) -> tuple[Any, Any]:
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": self.region,
            "config": Config(retries={"mode": "standard", "total_max_attempts": self.max_attempts}),
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return boto3.client("cloudwatch", **kwargs), boto3.client("ec2", **kwargs)


Dimensions = tuple[tuple[str, str], ...]
"""A series' dimensions, (name, value) in the order ListMetrics gave them: CloudWatch
matches a set in any order, moto (the tests' CloudWatch) only in the order it was put."""


def _gpu_series(cloudwatch: Any, namespace: str, metric: str) -> dict[tuple[str, str], Dimensions]:
    """(InstanceId, index) -> the dimensions of the series of `metric` to read for that GPU.

    Any set holding both names is one GPU's series; a GPU published under several sets
    (the agent's by default: its own and the CloudWatch agent's, with the same values) is
    read once, from the set with the fewest dimensions (then the first in name order), so
    the choice does not depend on ListMetrics' order.
    """
    found: dict[tuple[str, str], Dimensions] = {}
    for page in cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=namespace, MetricName=metric
    ):
        for listed in page["Metrics"]:
            dims = tuple((d["Name"], d["Value"]) for d in listed["Dimensions"])
            named = dict(dims)
            if "InstanceId" not in named or "index" not in named:
                continue
            key = (named["InstanceId"], named["index"])
            if key not in found or (len(dims), sorted(dims)) < (
                len(found[key]),
                sorted(found[key]),
            ):
                found[key] = dims
    return found


def _gpus(cloudwatch: Any, namespace: str) -> dict[tuple[str, str], dict[str, Dimensions]]:
    """Every GPU with a utilisation series -> the dimensions to read each figure with.

    The figures of `nvidia_smi_*` share one set; the agent's own (`finops_gpu_*`) are not
    published under the CloudWatch agent's set, so they are looked up on their own, and a
    GPU without them (the CloudWatch agent alone) is not asked for them.
    """
    util = _gpu_series(cloudwatch, namespace, METRICS["util"][0])
    own = _gpu_series(cloudwatch, namespace, METRICS["sm"][0])
    gpus: dict[tuple[str, str], dict[str, Dimensions]] = {}
    for key in sorted(util):
        gpus[key] = {
            figure: own[key] if name.startswith("finops_") else util[key]
            for figure, (name, _) in METRICS.items()
            if not name.startswith("finops_") or key in own
        }
    return gpus


def _instances(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 1000):
        pages = ec2.get_paginator("describe_instances").paginate(
            InstanceIds=ids[start : start + 1000]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    facts[instance["InstanceId"]] = {
                        "type": instance["InstanceType"],
                        "fleet": tags.get(FLEET_TAG),
                        "lifecycle": "spot"
                        if instance.get("InstanceLifecycle") == "spot"
                        else "on-demand",
                    }
    return facts


def _query(
    query_id: str, namespace: str, name: str, dimensions: list[dict[str, str]], stat: str
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
            "Period": int(INTERVAL_SECONDS),
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _host_intervals(
    cpu: dict[float, float], memory_percent: dict[float, float], instance_type: str, region: str
) -> list[HostInterval]:
    try:
        host_memory = catalog.lookup(instance_type, region).memory_gib
    except CatalogError:
        host_memory = None
    return [
        HostInterval(
            start=stamp,
            cpu_util_percent=cpu.get(stamp),
            memory_used_gib=memory_percent[stamp] / 100 * host_memory
            if stamp in memory_percent and host_memory is not None
            else None,
        )
        for stamp in sorted(set(cpu) | set(memory_percent))
    ]


class Series:
    """One query's points, appended page by page (compact: two arrays of floats)."""

    __slots__ = ("stamps", "values")

    def __init__(self) -> None:
        self.stamps = array("d")
        self.values = array("d")

    def as_dict(self) -> dict[float, float]:
        return dict(zip(self.stamps, self.values, strict=True))


def fetch(
    cloudwatch: Any, queries: Sequence[dict[str, Any]], begin: float, stop: float
) -> tuple[dict[str, Series], int]:
    """Every query's points from `begin` to `stop`: calls of at most `MAX_QUERIES` queries,
    each followed through its pages (NextToken). Returns the series and the calls made."""
    series: dict[str, Series] = defaultdict(Series)
    calls = 0
    for first in range(0, len(queries), MAX_QUERIES):
        kwargs: dict[str, Any] = {
            "MetricDataQueries": list(queries[first : first + MAX_QUERIES]),
            "StartTime": dt.datetime.fromtimestamp(begin, dt.UTC),
            "EndTime": dt.datetime.fromtimestamp(stop, dt.UTC),
            "ScanBy": "TimestampAscending",
        }
        while True:
            answer = cloudwatch.get_metric_data(**kwargs)
            calls += 1
            for result in answer["MetricDataResults"]:
                points = series[result["Id"]]
                points.stamps.extend(stamp.timestamp() for stamp in result["Timestamps"])
                points.values.extend(float(value) for value in result["Values"])
            if not answer.get("NextToken"):
                break
            kwargs["NextToken"] = answer["NextToken"]
    return series, calls


def batches(gpus: Sequence[tuple[str, str]], limit: int | None = None) -> list[list[str]]:
    """Instances grouped so that each group's queries (every figure of each GPU and of the
    host) fill calls of `limit`: a group is read, folded and dropped before the next, so
    memory follows the group, not the fleet. An instance is never split across groups
    (one with more queries than a call holds is read in several calls)."""
    limit = limit or MAX_QUERIES
    per_instance: dict[str, int] = defaultdict(int)
    for instance, _ in gpus:
        per_instance[instance] += len(METRICS)
    groups: list[list[str]] = []
    size = limit
    for instance in sorted(per_instance):
        need = per_instance[instance] + len(HOST_METRICS)
        if size + need > limit:
            groups.append([])
            size = 0
        groups[-1].append(instance)
        size += need
    return groups


def _batch_queries(
    namespace: str,
    gpus: Sequence[tuple[str, str]],
    dimensions_of: dict[tuple[str, str], dict[str, Dimensions]],
    instances: Sequence[str],
) -> list[dict[str, Any]]:
    queries = []
    for n, key in enumerate(gpus):
        for figure, dims in dimensions_of[key].items():
            name, stat = METRICS[figure]
            dimensions = [{"Name": d, "Value": v} for d, v in dims]
            queries.append(_query(f"{figure}{n}", namespace, name, dimensions, stat))
    for m, instance in enumerate(instances):
        for figure, (host_namespace, name) in HOST_METRICS.items():
            dimensions = [{"Name": "InstanceId", "Value": instance}]
            queries.append(_query(f"{figure}{m}", host_namespace, name, dimensions, "Maximum"))
    return queries


def _usage(
    values: dict[str, Series],
    n: int,
    m: int,
    key: tuple[str, str],
    info: dict[str, Any],
    source: CloudWatchSource,
) -> GpuUsage | None:
    def points(query_id: str) -> dict[float, float]:
        found = values.get(query_id)
        return found.as_dict() if found is not None else {}

    util, means, memory = points(f"util{n}"), points(f"umean{n}"), points(f"memory{n}")
    sm, sm_means = points(f"sm{n}"), points(f"smmean{n}")
    peaks = [
        IntervalPeak(
            start=stamp,
            gpu_util_percent=util[stamp],
            memory_used_gib=memory[stamp] / 1024 if stamp in memory else None,
            sm_active_ratio=sm.get(stamp),
            gpu_util_mean_percent=means.get(stamp),
            sm_active_mean=sm_means.get(stamp),
        )
        for stamp in sorted(util)
    ]
    if not peaks:
        return None
    instance, index = key
    instance_type = info.get("type", "unknown")
    totals = points(f"total{n}")
    return summarise(
        peaks,
        host=instance,
        gpu_index=int(index),
        instance_type=instance_type,
        region=source.region,
        fleet=info.get("fleet"),
        memory_total_gib=max(totals.values()) / 1024 if totals else None,
        lifecycle=info.get("lifecycle", "unknown"),
        source=f"cloudwatch {source.region}",
        host_intervals=_host_intervals(
            points(f"cpu{m}"), points(f"hostmem{m}"), instance_type, source.region
        ),
    )


def _error(source: CloudWatchSource, exc: Exception) -> SourceError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("Throttling", "ThrottlingException", "RequestLimitExceeded"):
            return SourceError(
                f"cloudwatch {source.region}: still throttled after {source.max_attempts} "
                f"attempts per call ({exc.response['Error'].get('Message', code)}): try again "
                "later, or ask AWS for a higher GetMetricData quota"
            )
    return SourceError(f"cloudwatch {source.region}: {exc}")


def read_usage(
    source: CloudWatchSource,
    *,
    lookback_days: float = 14.0,
    end: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[GpuUsage]:
    """One `GpuUsage` per GPU series in the namespace with data in the window.

    Instances are read in groups that fill GetMetricData calls of 500 queries (`batches`);
    each call is followed through its pages, and a throttled call is retried with backoff
    (botocore, `max_attempts`). `progress` is told the share of groups read.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    stop = float(int((time.time() if end is None else end) // INTERVAL_SECONDS) * INTERVAL_SECONDS)
    begin = stop - lookback_days * 86400
    usages = []
    try:
        cloudwatch, ec2 = source.clients()
        dimensions_of = _gpus(cloudwatch, source.namespace)
        gpus = list(dimensions_of)
        if not gpus:
            return []
        facts = _instances(ec2, sorted({instance for instance, _ in gpus}))
        groups = batches(gpus)
        for done, instances in enumerate(groups):
            members = set(instances)
            batch_gpus = [gpu for gpu in gpus if gpu[0] in members]
            queries = _batch_queries(source.namespace, batch_gpus, dimensions_of, instances)
            values, _ = fetch(cloudwatch, queries, begin, stop)
            host_number = {instance: m for m, instance in enumerate(instances)}
            for n, key in enumerate(batch_gpus):
                usage = _usage(values, n, host_number[key[0]], key, facts.get(key[0], {}), source)
                if usage is not None:
                    usages.append(usage)
            if progress is not None:
                progress((done + 1) / len(groups))
    except (BotoCoreError, ClientError) as exc:
        raise _error(source, exc) from None
    return usages
