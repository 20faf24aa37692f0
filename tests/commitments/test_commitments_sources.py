"""Hourly instance counts from the agent's files, CloudWatch (moto) and a real Prometheus, and
`finops commitments` end to end on them.

Three g5.xlarge hosts over ten days: one always on, one on 17 hours a day, one (spot) on 5
hours a day. Hourly demand is 1 + [on 17 h] + [on 5 h]; at the RI's 63 % break-even the
cheapest commitment is 2 instances (checked by brute force below, not assumed).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import boto3
import prometheus_backfill
import pytest
from moto import mock_aws
from test_commitments_advise import brute_force

from aifinops import catalog
from aifinops.cli import main
from aifinops.commitments import recommend, usage

DAYS = 10
HOURS = DAYS * 24
END = (int(time.time()) // 3600) * 3600 - 3600
FIRST_HOUR = END // 3600 - HOURS
HOSTS = {
    "i-aaa": (lambda h: True, "on-demand"),
    "i-bbb": (lambda h: h % 24 < 17, "on-demand"),
    "i-ccc": (lambda h: h % 24 < 5, "spot"),
}


def expected_demand() -> list[float]:
    return [
        float(sum(1 for on, _ in HOSTS.values() if on(h)))
        for h in range(FIRST_HOUR, FIRST_HOUR + HOURS)
    ]


def _record(host: str, gpu: int, start: float, lifecycle: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "record_id": f"{host}/GPU-{gpu}/{start:.3f}",
        "window_start": start,
        "window_end": start + 600,
        "cloud": "aws",
        "instance_id": host,
        "instance_type": "g5.xlarge",
        "region": "us-east-1",
        "lifecycle": lifecycle,
        "hostname": host,
        "tags": {},
        "gpu_index": gpu,
        "sample_count": 600,
        "gpu_util_percent": {"min": 50, "mean": 60, "p95": 70, "max": 80},
    }


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("agent")
    lines = []
    for host, (on, lifecycle) in HOSTS.items():
        for hour in range(FIRST_HOUR, FIRST_HOUR + HOURS):
            if not on(hour):
                continue
            for k in range(6):
                for gpu in (0, 1) if host == "i-aaa" else (0,):
                    lines.append(json.dumps(_record(host, gpu, hour * 3600.0 + 600 * k, lifecycle)))
    (folder / "windows.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_agent_files_count_instance_hours_per_hour(agent_dir: Path) -> None:
    series = usage.from_agent_files([agent_dir], lookback_days=DAYS, end=END)
    assert [(s.cloud, s.region, s.instance_type) for s in series] == [
        ("aws", "us-east-1", "g5.xlarge")
    ]
    one = series[0]
    assert list(one.instance_hours) == expected_demand()  # two GPUs of i-aaa count once
    assert one.window_start == FIRST_HOUR * 3600
    spot_hours = sum(1 for h in range(FIRST_HOUR, FIRST_HOUR + HOURS) if h % 24 < 5)
    assert one.spot_share == pytest.approx(spot_hours / sum(expected_demand()))


def test_unreadable_lines_are_skipped_and_said(agent_dir: Path, tmp_path: Path) -> None:
    from aifinops.rightsizing.spool import SkippedLinesWarning

    torn = tmp_path / "windows.jsonl"
    torn.write_bytes((agent_dir / "windows.jsonl").read_bytes() + b"\x00\xff not json\n")
    with pytest.warns(SkippedLinesWarning, match="1 unreadable line"):
        series = usage.from_agent_files([torn], lookback_days=DAYS, end=END)
    assert list(series[0].instance_hours) == expected_demand()


def test_agent_history_drives_the_advice(agent_dir: Path) -> None:
    series = usage.from_agent_files([agent_dir], lookback_days=DAYS, end=END)
    advices, skipped = recommend(series)
    assert skipped == []
    (advice,) = advices
    info = catalog.lookup("g5.xlarge", "us-east-1")
    assert advice.offer is not None
    count, total = brute_force(
        expected_demand(), advice.offer.usd_per_hour, info.on_demand_usd_per_hour
    )
    assert (advice.committed_instances, count) == (2, 2)
    saving = (sum(expected_demand()) * info.on_demand_usd_per_hour - total) * 730 / HOURS
    assert advice.saving_vs_on_demand_usd_per_month == pytest.approx(saving)
    assert advice.floor_instances == 1


def test_cli_json_and_markdown(agent_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["commitments", "--source", f"agent:{agent_dir}", "--lookback-days", str(DAYS)]
    assert main([*args, "--end", str(END), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (advice,) = data["advice"]
    assert advice["committed_instances"] == 2
    assert advice["offer"]["label"] == "aws-standard-ri 1y no-upfront"
    assert data["total_saving_vs_on_demand_usd_per_month"] == pytest.approx(
        advice["saving_vs_on_demand_usd_per_month"]
    )
    iso = dt.datetime.fromtimestamp(END, dt.UTC).isoformat()
    assert main([*args, "--end", iso, "--format", "markdown"]) == 0
    out = capsys.readouterr()
    assert "| aws us-east-1 g5.xlarge | 1 / 1.9 / 3 | 2 x aws-standard-ri 1y" in out.out
    assert "warning: floors measured over 10 days" in out.err


def test_cli_bad_source_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["commitments", "--source", "agnt:/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --source 'agnt:/x': expected agent:PATH") and err.count("\n") == 1
    assert main(["commitments", "--source", f"agent:{tmp_path / 'none'}"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_cloudwatch_hours_with_gpu_samples() -> None:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        reservation = ec2.run_instances(
            ImageId="ami-12c6146b", InstanceType="g5.xlarge", MinCount=3, MaxCount=3
        )
        ids = [i["InstanceId"] for i in reservation["Instances"]]
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        data = []
        for n, (instance, (on, _)) in enumerate(zip(ids, HOSTS.values(), strict=True)):
            # the third host publishes only the CloudWatch agent's dimension set
            dims = [{"Name": "InstanceId", "Value": instance}, {"Name": "index", "Value": "0"}]
            if n == 2:
                dims = [
                    {"Name": "host", "Value": "ip-10-0-0-3"},
                    {"Name": "index", "Value": "0"},
                    {"Name": "name", "Value": "NVIDIA A10G"},
                    {"Name": "InstanceId", "Value": instance},
                ]
            for hour in range(FIRST_HOUR, FIRST_HOUR + HOURS):
                if on(hour):
                    data.append(
                        {
                            "MetricName": "nvidia_smi_utilization_gpu",
                            "Dimensions": dims,
                            "Timestamp": dt.datetime.fromtimestamp(hour * 3600 + 1200, dt.UTC),
                            "StatisticValues": {
                                "SampleCount": 60,
                                "Sum": 3000,
                                "Minimum": 10,
                                "Maximum": 90,
                            },
                        }
                    )
        for first in range(0, len(data), 500):
            cloudwatch.put_metric_data(Namespace="CWAgent", MetricData=data[first : first + 500])
        series = usage.from_cloudwatch("us-east-1", lookback_days=DAYS, end=END)
    (one,) = series
    assert one.instance_type == "g5.xlarge"
    assert list(one.instance_hours) == expected_demand()


def _openmetrics() -> str:
    lines = ["# TYPE finops_agent_info gauge"]
    for host, (on, lifecycle) in HOSTS.items():
        for hour in range(FIRST_HOUR, FIRST_HOUR + HOURS):
            if not on(hour):
                continue
            # samples from the hour's start to 10 minutes before its end: stale (5 min) by
            # the next hour's first step
            for k in range(11):
                lines.append(
                    f'finops_agent_info{{instance="{host}:9400",job="finops-agent",version="1",'
                    f'driver="550",instance_id="{host}",instance_type="g5.xlarge",'
                    f'lifecycle="{lifecycle}",cloud="aws"}} 1 {hour * 3600 + 300 * k}'
                )
    return "\n".join(lines) + "\n# EOF\n"


@pytest.mark.integration
def test_prometheus_counts_hosts_per_hour(tmp_path: Path) -> None:
    if not prometheus_backfill.available():
        pytest.skip("prometheus/promtool not installed (Debian: apt-get install prometheus)")
    with prometheus_backfill.start_prometheus(tmp_path, _openmetrics()) as url:
        series = usage.from_prometheus(url, lookback_days=DAYS, end=END, region="us-east-1")
    (one,) = series
    assert (one.instance_type, one.region) == ("g5.xlarge", "us-east-1")
    assert list(one.instance_hours) == expected_demand()
    spot_hours = sum(1 for h in range(FIRST_HOUR, FIRST_HOUR + HOURS) if h % 24 < 5)
    assert one.spot_share == pytest.approx(spot_hours / sum(expected_demand()))
