"""The CloudWatch source reads every dimension set the agent (or the CloudWatch agent) publishes.

The datums are made by the agent's own publisher (`aifinops.agents.cloudwatch.datums_for`) from window
records, under each `[cloudwatch]` configuration a user can choose, and put into moto; the
source must find one series per GPU in each case and read the same figures as from the
default set. The CloudWatch agent alone publishes `nvidia_smi_*` under `host, index, name,
InstanceId` and nothing of finops' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aifinops.agents.cloudwatch import CWAGENT_DIMENSIONS, datums_for
from aifinops.agents.config import CloudWatchSection
from aifinops.rightsizing.cloudwatch import CloudWatchSource, read_usage
from aifinops.rightsizing.usage import GpuUsage

REGION = "us-east-1"
END = 1_764_000_000.0 - (1_764_000_000 % 3600)
INTERVALS = 12  # one hour of 5-minute windows: moto's GetMetricData is slow
GIB = 1024**3
DEFAULT = CloudWatchSection(enabled=True)


def _stats(low: float, mean: float, high: float) -> dict[str, float]:
    return {"min": low, "mean": mean, "max": high}


def _records(instance: str, hostname: str) -> Iterator[dict[str, Any]]:
    """Two GPUs' window records: GPU 0 busy (utilisation rising), GPU 1 idle."""
    for k in range(INTERVALS):
        for index in (0, 1):
            util = (20 + 5 * k) if index == 0 else 0
            yield {
                "window_start": END - (INTERVALS - k) * 300,
                "sample_count": 60,
                "instance_id": instance,
                "instance_type": "g5.12xlarge",
                "hostname": hostname,
                "gpu_index": index,
                "gpu_name": "NVIDIA A10G",
                "tags": {"team": "vision"},
                "gpu_util_percent": _stats(0, util / 2, util),
                "memory_used_bytes": _stats(GIB, (3 + index) * GIB, (4 + index) * GIB),
                "memory_total_bytes": 24 * GIB,
                "sm_active_ratio": _stats(0, util / 200, util / 100),
                "idle": index == 1,
            }


def _read(section: CloudWatchSection, *, cwagent_alone: bool = False) -> list[GpuUsage]:
    with mock_aws():
        ec2: Any = boto3.client("ec2", region_name=REGION)
        image = "ami-12c6146b"  # any id: moto runs it (its default AMIs are off in tests)
        instances = [
            ec2.run_instances(ImageId=image, InstanceType="g5.12xlarge", MinCount=1, MaxCount=1)[
                "Instances"
            ][0]["InstanceId"]
            for _ in range(2)
        ]
        datums = [
            datum
            for n, instance in enumerate(instances)
            for record in _records(instance, f"ip-10-0-0-{n}")
            for datum in datums_for(record, section)
            if not cwagent_alone
            or sorted(d["Name"] for d in datum["Dimensions"]) == sorted(CWAGENT_DIMENSIONS)
        ]
        cloudwatch: Any = boto3.client("cloudwatch", region_name=REGION)
        for start in range(0, len(datums), 1000):
            cloudwatch.put_metric_data(Namespace="CWAgent", MetricData=datums[start : start + 1000])
        usages = read_usage(CloudWatchSource(REGION), lookback_days=INTERVALS / 288, end=END)
    # instance ids differ per moto account: compare by host order and GPU
    order = {instance: n for n, instance in enumerate(instances)}
    return [
        replace(u, host=f"host{order[u.host]}")
        for u in sorted(usages, key=lambda u: (order[u.host], u.gpu_index))
    ]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")


@pytest.mark.parametrize(
    "section",
    [
        # the finops set gets every extra dimension; the CloudWatch agent's set too
        replace(DEFAULT, extra_dimensions=("name", "host", "InstanceType")),
        # one extra dimension and no CloudWatch agent set: a 3-dimension set alone
        replace(DEFAULT, extra_dimensions=("name",), cwagent_dimensions=False),
        # a per-fleet copy (tag dimensions and InstanceType) beside the per-GPU sets
        replace(DEFAULT, tag_dimensions=("team",)),
    ],
    ids=["extra-dimensions", "one-extra-no-cwagent-set", "fleet-set"],
)
def test_every_per_gpu_set_the_agent_publishes_is_read_once(
    aws: None, section: CloudWatchSection
) -> None:
    expected = _read(replace(DEFAULT, cwagent_dimensions=False))  # InstanceId, index only
    assert [(u.host, u.gpu_index, u.intervals) for u in expected] == [
        (f"host{h}", g, INTERVALS) for h in (0, 1) for g in (0, 1)
    ]
    assert expected[0].util_p95_percent == 75  # nearest-rank p95 of 12 window maxima
    assert expected[0].sm_active_p95 is not None
    assert _read(section) == expected


def test_the_cloudwatch_agent_alone_is_read_without_finops_figures(aws: None) -> None:
    expected = _read(replace(DEFAULT, cwagent_dimensions=False))
    got = _read(DEFAULT, cwagent_alone=True)  # host, index, name, InstanceId; nvidia_smi_* only
    assert [(u.host, u.gpu_index, u.intervals) for u in got] == [
        (u.host, u.gpu_index, u.intervals) for u in expected
    ]
    for g, e in zip(got, expected, strict=True):
        assert (g.util_p95_percent, g.util_mean_percent, g.memory_peak_gib) == (
            e.util_p95_percent,
            e.util_mean_percent,
            e.memory_peak_gib,
        )
        assert g.memory_total_gib == e.memory_total_gib == 24.0
        assert g.sm_active_p95 is None  # not published by the CloudWatch agent
