"""The CloudWatch source at fleet scale: calls of 500 queries, pages, throttling.

moto answers GetMetricData in one page and never throttles, so both are injected with
botocore's own event hooks on the client the source makes: `after-call` cuts each answer in
two pages (the second behind a NextToken, served by `before-call` without reaching moto, as
CloudWatch returns a query's points over several pages), and `before-send` answers some
requests with CloudWatch's throttling error, which botocore's retry handler must back off
from and retry. The result must be the one read without either.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from aifinops.rightsizing import cloudwatch
from aifinops.rightsizing.cloudwatch import CloudWatchSource, batches, read_usage
from aifinops.rightsizing.spool import SourceError

REGION = "us-east-1"
END = 1_764_000_000.0 - (1_764_000_000 % 3600)
INTERVALS = 24  # two hours of 5-minute periods: moto's GetMetricData is slow


def test_batches_fill_calls_of_500_queries_and_keep_instances_whole() -> None:
    gpus = [(f"i-{host:03d}", str(index)) for host in range(100) for index in range(8)]
    groups = batches(gpus)
    per_instance = len(cloudwatch.METRICS) * 8 + len(cloudwatch.HOST_METRICS)  # 50
    assert [len(g) for g in groups] == [10] * 10  # 800 GPUs: 10 calls, not 800
    assert sorted(i for g in groups for i in g) == sorted({i for i, _ in gpus})
    assert all(len(g) * per_instance <= cloudwatch.MAX_QUERIES for g in groups)


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Three instances (4, 2 and 1 GPUs) publishing two hours of the agent's datums."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        ec2: Any = boto3.client("ec2", region_name=REGION)
        image = "ami-12c6146b"  # any id: moto runs it (its default AMIs are off in tests)
        ids = [
            ec2.run_instances(ImageId=image, InstanceType=t, MinCount=1, MaxCount=1)["Instances"][
                0
            ]["InstanceId"]
            for t in ("p3.8xlarge", "g5.12xlarge", "g5.xlarge")
        ]
        client: Any = boto3.client("cloudwatch", region_name=REGION)
        datums = []
        for (n, instance), k in itertools.product(enumerate(ids), range(INTERVALS)):
            stamp = dt.datetime.fromtimestamp(END - (INTERVALS - k) * 300, dt.UTC)
            for index in range((4, 2, 1)[n]):
                dimensions = [
                    {"Name": "InstanceId", "Value": instance},
                    {"Name": "index", "Value": str(index)},
                ]
                util = (10 * n + 7 * index + 3 * k) % 100
                for name, value in (
                    ("nvidia_smi_utilization_gpu", util),
                    ("nvidia_smi_memory_used", 1000.0 * (index + 1)),
                ):
                    datums.append(
                        {
                            "MetricName": name,
                            "Dimensions": dimensions,
                            "Timestamp": stamp,
                            "StatisticValues": {
                                "SampleCount": 5.0,
                                "Sum": value * 4.0,
                                "Minimum": 0.0,
                                "Maximum": float(value),
                            },
                        }
                    )
        for start in range(0, len(datums), 1000):
            client.put_metric_data(Namespace="CWAgent", MetricData=datums[start : start + 1000])
        yield ids


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _throttled(request: Any) -> AWSResponse:
    """CloudWatch's answer to a request over its rate, in the request's protocol."""
    headers = {"x-amzn-query-error": "Throttling;Sender"}
    if b"cbor" in (request.headers.get("Content-Type") or b""):
        text = [b"__type", b"Throttling", b"message", b"Rate exceeded"]
        body = b"\xa2" + b"".join(bytes([0x60 + len(t)]) + t for t in text)  # a CBOR map
        headers.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"})
    else:
        body = json.dumps({"__type": "Throttling", "message": "Rate exceeded"}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.0"
    return AWSResponse(request.url, 400, headers, _Body(body))


class Injected:
    """Pages and throttling on the CloudWatch client the source makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, throttle_every: int | None) -> None:
        self.sent = 0
        self.throttled = 0
        self.calls: list[int] = []  # queries per GetMetricData call (pages included)
        self.pages: dict[str, dict[str, Any]] = {}
        self.sleeps: list[float] = []
        self.throttle_every = throttle_every
        make = CloudWatchSource.clients

        def clients(source: CloudWatchSource) -> tuple[Any, Any]:
            watch, ec2 = make(source)
            events = watch.meta.events
            events.register_first("before-send.cloudwatch.GetMetricData", self.before_send)
            events.register("before-parameter-build.cloudwatch.GetMetricData", self.parameters)
            events.register("before-call.cloudwatch.GetMetricData", self.before_call)
            events.register("after-call.cloudwatch.GetMetricData", self.after_call)
            return watch, ec2

        monkeypatch.setattr(CloudWatchSource, "clients", clients)
        monkeypatch.setattr(botocore.endpoint.time, "sleep", self.sleeps.append)

    def before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.throttle_every and (self.sent - 1) % self.throttle_every == 0:
            self.throttled += 1
            return _throttled(request)
        return None

    def parameters(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self.calls.append(len(params["MetricDataQueries"]))
        context["next_token"] = params.get("NextToken")

    def before_call(self, context: dict[str, Any], **_: Any) -> Any:
        token = context.get("next_token")
        if token:  # the second page, kept from the first answer
            return (AWSResponse("https://monitoring", 200, {}, None), self.pages.pop(token))
        return None

    def after_call(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("next_token") or not parsed.get("MetricDataResults"):
            return  # a second page: the last
        rest = []
        for result in parsed["MetricDataResults"]:
            half = len(result["Timestamps"]) // 2
            rest.append(
                {
                    **result,
                    "Timestamps": result["Timestamps"][half:],
                    "Values": result["Values"][half:],
                }
            )
            result["Timestamps"], result["Values"] = (
                result["Timestamps"][:half],
                result["Values"][:half],
            )
        token = f"page-{len(self.pages) + len(self.calls)}"
        self.pages[token] = {"MetricDataResults": rest, "Messages": []}
        parsed["NextToken"] = token


def test_pages_calls_and_throttling_give_the_same_usage(
    fleet: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = CloudWatchSource(REGION)
    expected = read_usage(source, lookback_days=INTERVALS / 288, end=END)
    assert len(expected) == 7 and all(u.intervals == INTERVALS for u in expected)
    # calls of 12 queries instead of 500: the 4-GPU instance alone (4 figures a GPU here,
    # no finops_gpu_* series, and 2 of the host) needs two
    monkeypatch.setattr(cloudwatch, "MAX_QUERIES", 12)
    injected = Injected(monkeypatch, throttle_every=2)
    shares: list[float] = []
    got = read_usage(source, lookback_days=INTERVALS / 288, end=END, progress=shares.append)
    assert got == expected
    assert max(injected.calls) <= 12 and len(injected.calls) >= 8  # pages and calls
    assert injected.throttled >= 3 and len(injected.sleeps) == injected.throttled
    assert all(0 < s <= 20 for s in injected.sleeps)  # backed off, jittered, capped
    assert shares == [1 / 3, 2 / 3, 1.0]  # one group per instance


def test_throttling_that_does_not_stop_is_one_line(
    fleet: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    injected = Injected(monkeypatch, throttle_every=1)
    with pytest.raises(
        SourceError,
        match=r"^cloudwatch us-east-1: still throttled after 4 attempts per call \(Rate "
        r"exceeded\): try again later, or ask AWS for a higher GetMetricData quota$",
    ):
        read_usage(CloudWatchSource(REGION, max_attempts=4), lookback_days=0.1, end=END)
    assert injected.sent == 4 and len(injected.sleeps) == 3
