"""The CloudWatch source against moto: the agent's CWAgent datums in, GpuUsage out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aifinops.rightsizing.cloudwatch import CloudWatchSource, read_usage

REGION = "us-east-1"
END = 1_764_000_000.0 - (1_764_000_000 % 3600)
DAYS = 1
STEP = 300
SAMPLES = DAYS * 86400 // STEP


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        ec2: Any = boto3.client("ec2", region_name=REGION)
        image = "ami-12c6146b"  # any id: moto runs it (its default AMIs are off in tests)
        ids = {}
        for name, instance_type in (("a", "p3.8xlarge"), ("b", "g5.xlarge")):
            answer = ec2.run_instances(
                ImageId=image,
                InstanceType=instance_type,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {
                        "ResourceType": "instance",
                        "Tags": [{"Key": "finops:fleet", "Value": f"train-{name}"}],
                    }
                ],
            )
            ids[name] = answer["Instances"][0]["InstanceId"]
        _publish(ids)
        yield ids


def _datum(
    name: str, instance: str, index: int, t: float, low: float, mean: float, high: float
) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [
            {"Name": "InstanceId", "Value": instance},
            {"Name": "index", "Value": str(index)},
        ],
        "Timestamp": dt.datetime.fromtimestamp(t, dt.UTC),
        "StatisticValues": {"SampleCount": 60.0, "Sum": mean * 60, "Minimum": low, "Maximum": high},
    }


def _publish(ids: dict[str, str]) -> None:
    """One datum per GPU per 5 minutes, as the agent's window records become datums."""
    cloudwatch: Any = boto3.client("cloudwatch", region_name=REGION)
    datums = []
    for k in range(SAMPLES):
        t = END - (SAMPLES - k) * STEP
        # host a: GPU 0 bursts to 30% (mean 10%) with 9 GiB; GPUs 1-3 idle
        datums.append(_datum("nvidia_smi_utilization_gpu", ids["a"], 0, t, 0, 10, 30))
        datums.append(_datum("nvidia_smi_memory_used", ids["a"], 0, t, 9000, 9100, 9216))
        datums.append(_datum("nvidia_smi_memory_total", ids["a"], 0, t, 16384, 16384, 16384))
        for index in (1, 2, 3):
            datums.append(_datum("nvidia_smi_utilization_gpu", ids["a"], index, t, 0, 0, 0))
            datums.append(_datum("nvidia_smi_memory_used", ids["a"], index, t, 300, 300, 300))
        # host b: idle the first half, then 95% with memory near full (23 of 24 GiB)
        busy = k >= SAMPLES // 2
        datums.append(
            _datum(
                "nvidia_smi_utilization_gpu",
                ids["b"],
                0,
                t,
                0,
                90 if busy else 0,
                95 if busy else 0,
            )
        )
        datums.append(
            _datum("nvidia_smi_memory_used", ids["b"], 0, t, 100, 100, 23552 if busy else 100)
        )
    for start in range(0, len(datums), 1000):
        cloudwatch.put_metric_data(Namespace="CWAgent", MetricData=datums[start : start + 1000])
    # host a's CPUs: EC2's own metric (published by EC2 itself on AWS; put here for moto)
    host = []
    for k in range(SAMPLES):
        t = END - (SAMPLES - k) * STEP
        cpu = {"MetricName": "CPUUtilization", "Timestamp": dt.datetime.fromtimestamp(t, dt.UTC)}
        cpu["Dimensions"] = [{"Name": "InstanceId", "Value": ids["a"]}]
        cpu["StatisticValues"] = {
            "SampleCount": 5.0,
            "Sum": 100.0,
            "Minimum": 10.0,
            "Maximum": 35.0,
        }
        host.append(cpu)
    for start in range(0, len(host), 1000):
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=host[start : start + 1000])
    # a per-fleet copy (tag dimensions) must not be read as another GPU
    cloudwatch.put_metric_data(
        Namespace="CWAgent",
        MetricData=[
            {
                "MetricName": "nvidia_smi_utilization_gpu",
                "Dimensions": [
                    {"Name": "finops:fleet", "Value": "train-a"},
                    {"Name": "InstanceType", "Value": "p3.8xlarge"},
                ],
                "Timestamp": dt.datetime.fromtimestamp(END - STEP, dt.UTC),
                "Value": 99.0,
            }
        ],
    )


def test_get_metric_data_maxima_become_gpu_usage(aws: dict[str, str]) -> None:
    usages = read_usage(CloudWatchSource(REGION), lookback_days=DAYS, end=END)
    by_key = {(u.host, u.gpu_index): u for u in usages}
    assert sorted(by_key) == sorted([(aws["a"], i) for i in range(4)] + [(aws["b"], 0)])
    a0 = by_key[(aws["a"], 0)]
    assert (a0.instance_type, a0.fleet, a0.lifecycle, a0.region) == (
        "p3.8xlarge",
        "train-a",
        "on-demand",
        REGION,
    )
    assert a0.intervals == SAMPLES
    assert a0.util_p95_percent == 30  # the p95 of 5-minute maxima
    assert a0.util_mean_percent == pytest.approx(10)  # the time-weighted mean (Average)
    assert a0.memory_peak_gib == 9.0
    assert a0.memory_total_gib == 16.0
    assert a0.idle_hours_share == 0
    assert a0.host_cpu_p95_percent == 35.0  # AWS/EC2 CPUUtilization, 5-minute maxima
    assert by_key[(aws["a"], 1)].idle_hours_share == 1.0
    assert by_key[(aws["b"], 0)].host_cpu_p95_percent is None
    b0 = by_key[(aws["b"], 0)]
    assert b0.util_p95_percent == 95
    assert b0.memory_peak_gib == 23.0
    assert b0.idle_hours_share == 0.5
    assert b0.source == f"cloudwatch {REGION}"


def test_empty_namespace_gives_no_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        assert read_usage(CloudWatchSource(REGION), end=END) == []
