"""CloudWatch source: the agent's (and the CloudWatch agent's) `CWAgent` NVIDIA metrics.

Series are found with ListMetrics (dimensions `InstanceId` and `index`, one per GPU), read
with GetMetricData as the Maximum (peaks) and the Average (time-weighted means) of each
5-minute period (at most 500 queries a call) and folded like the agent's files. Host CPU is
EC2's own `AWS/EC2 CPUUtilization` (Maximum per period), host memory the CloudWatch agent's
`mem_used_percent` (`CWAgent`, dimension `InstanceId`) where it is collected.
DescribeInstances gives each instance's type, lifecycle and `finops:fleet` tag.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from finops import catalog
from finops.errors import CatalogError
from finops.rightsizing.spool import FLEET_TAG, SourceError
from finops.rightsizing.usage import (
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


@dataclass(frozen=True)
class CloudWatchSource:
    region: str = "us-east-1"
    namespace: str = NAMESPACE
    endpoint_url: str | None = None

    def clients(self) -> tuple[Any, Any]:
        import boto3

        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return boto3.client("cloudwatch", **kwargs), boto3.client("ec2", **kwargs)


def _gpus(cloudwatch: Any, namespace: str) -> list[tuple[str, str]]:
    found = set()
    for page in cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=namespace, MetricName=METRICS["util"][0]
    ):
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            if set(dims) == {"InstanceId", "index"}:
                found.add((dims["InstanceId"], dims["index"]))
    return sorted(found)


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
    values: dict[str, dict[float, float]], m: int, instance_type: str, region: str
) -> list[HostInterval]:
    cpu = values.get(f"cpu{m}", {})
    memory_percent = values.get(f"hostmem{m}", {})
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


def read_usage(
    source: CloudWatchSource, *, lookback_days: float = 14.0, end: float | None = None
) -> list[GpuUsage]:
    """One `GpuUsage` per GPU series in the namespace with data in the window."""
    from botocore.exceptions import BotoCoreError, ClientError

    stop = float(int((time.time() if end is None else end) // INTERVAL_SECONDS) * INTERVAL_SECONDS)
    begin = stop - lookback_days * 86400
    try:
        cloudwatch, ec2 = source.clients()
        gpus = _gpus(cloudwatch, source.namespace)
        if not gpus:
            return []
        facts = _instances(ec2, sorted({instance for instance, _ in gpus}))
        queries = []
        for n, (instance, index) in enumerate(gpus):
            for figure, (name, stat) in METRICS.items():
                dimensions = [
                    {"Name": "InstanceId", "Value": instance},
                    {"Name": "index", "Value": index},
                ]
                queries.append(_query(f"{figure}{n}", source.namespace, name, dimensions, stat))
        instances = sorted({instance for instance, _ in gpus})
        for m, instance in enumerate(instances):
            for figure, (namespace, name) in HOST_METRICS.items():
                dimensions = [{"Name": "InstanceId", "Value": instance}]
                queries.append(_query(f"{figure}{m}", namespace, name, dimensions, "Maximum"))
        values: dict[str, dict[float, float]] = defaultdict(dict)
        for first in range(0, len(queries), MAX_QUERIES):
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries[first : first + MAX_QUERIES],
                "StartTime": dt.datetime.fromtimestamp(begin, dt.UTC),
                "EndTime": dt.datetime.fromtimestamp(stop, dt.UTC),
                "ScanBy": "TimestampAscending",
            }
            while True:
                answer = cloudwatch.get_metric_data(**kwargs)
                for result in answer["MetricDataResults"]:
                    for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                        values[result["Id"]][stamp.timestamp()] = float(value)
                if not answer.get("NextToken"):
                    break
                kwargs["NextToken"] = answer["NextToken"]
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"cloudwatch {source.region}: {exc}") from None

    peaks_by_gpu: dict[tuple[str, str], list[IntervalPeak]] = {}
    for n, key in enumerate(gpus):
        util = values.get(f"util{n}", {})
        means = values.get(f"umean{n}", {})
        memory = values.get(f"memory{n}", {})
        sm, sm_means = values.get(f"sm{n}", {}), values.get(f"smmean{n}", {})
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
        if peaks:
            peaks_by_gpu[key] = peaks
    host_number = {instance: m for m, instance in enumerate(instances)}
    usages = []
    for n, key in enumerate(gpus):
        if key not in peaks_by_gpu:
            continue
        instance, index = key
        info = facts.get(instance, {})
        instance_type = info.get("type", "unknown")
        totals = values.get(f"total{n}", {})
        usages.append(
            summarise(
                peaks_by_gpu[key],
                host=instance,
                gpu_index=int(index),
                instance_type=instance_type,
                region=source.region,
                fleet=info.get("fleet"),
                memory_total_gib=max(totals.values()) / 1024 if totals else None,
                lifecycle=info.get("lifecycle", "unknown"),
                source=f"cloudwatch {source.region}",
                host_intervals=_host_intervals(
                    values, host_number[instance], instance_type, source.region
                ),
            )
        )
    return usages
