"""Paging over more than 5,000 resources, with throttling, in process and over HTTP.

The account holds the scenario plus 5,000 SQS queues missing tags (50 GetResources pages of
100) and 2,100 checkpoint objects (3 ListObjectsV2 pages, 3 DeleteObjects batches).
A third of the first attempts of every read call (and, over HTTP, of DeleteObjects) are
answered with a throttling error in the service's own wire format; botocore's standard
retry mode must absorb them all. In process, moto's mock still executes a request the test
throttles, so only idempotent reads are throttled there.

`moto_server` here is moto's `ThreadedMotoServer` on 127.0.0.1 (the same server as the
`moto_server` command, in a thread, so the 10,000 resources can be loaded through moto's
backends instead of 10,000 HTTP calls); `test_audit_moto_server.py` drives the CLI against
the `moto_server` program itself.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import audit_scenario
import pytest
from audit_scenario import REGION, audit_settings, inject, put_checkpoints, session

from aifinops.audit import remediate, run_audit
from aifinops.audit.clients import AwsClients
from aifinops.audit.record import Record

pytestmark = pytest.mark.slow
OBJECTS = 2100
QUEUES = 5000
THROTTLED_READS = {
    "GetResources",
    "ListObjectsV2",
    "DescribeInstances",
    "DescribeVolumes",
    "DescribeSnapshots",
    "GetMetricData",
    "ListMetrics",
    "ListEndpoints",
}
THROTTLE_CODES = {
    "ec2": (503, "RequestLimitExceeded"),
    "s3": (503, "SlowDown"),
    "sagemaker": (400, "ThrottlingException"),
    "cloudwatch": (400, "ThrottlingException"),
    "resource-groups-tagging-api": (400, "ThrottlingException"),
}


def _load_bulk() -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    put_checkpoints(None, "train-ckpt-abc", OBJECTS, size=1024)
    queues = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    for n in range(QUEUES):
        queues.create_queue(f"jobs-{n:05d}", tags={"Project": "batch"})


@pytest.fixture(params=["in-process", "moto-server"])
def big_account(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[audit_scenario.Scenario, str | None]]:
    if request.param == "in-process":
        with audit_scenario.moto_account() as scenario:
            _load_bulk()
            yield scenario, None
        return
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        try:
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
            scenario = audit_scenario.build(endpoint_url=url)
            _load_bulk()
            yield scenario, url
        finally:
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
            server.stop()


def test_paging_and_throttling_over_7000_resources(
    big_account: tuple[audit_scenario.Scenario, str | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario, url = big_account
    delays: list[float] = []
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint.time, "sleep", delays.append)
    seen: Counter[str] = Counter()
    throttled_ops = THROTTLED_READS | ({"DeleteObjects"} if url else set())

    def decide(service: str, operation: str, request: Any) -> tuple[int, str] | None:
        attempt = request.headers.get("amz-sdk-request", b"attempt=1")
        attempt = attempt.decode() if isinstance(attempt, bytes) else attempt
        if operation not in throttled_ops or not attempt.startswith("attempt=1"):
            return None
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if url is None and operation == "GetResources" and b"PaginationToken" in body:
            return None  # moto in process spends its one-use page token even on a throttled call
        seen[operation] += 1
        return THROTTLE_CODES[service] if seen[operation] % 3 == 1 else None

    sess = session()
    injector = inject(sess, decide)
    clients = AwsClients(session=sess, endpoint_url=url)
    report = run_audit(clients, [REGION], audit_settings(scenario))
    assert report.errors == []

    sent = Counter(op for _, op in injector.sent)
    assert sent["GetResources"] >= 51  # 5,000 queues + the scenario's tagged resources, 100 a page
    assert sent["ListObjectsV2"] >= 3
    throttled = Counter(op for _, op, _ in injector.injected)
    assert set(throttled) >= {"GetResources", "ListObjectsV2", "DescribeInstances", "GetMetricData"}
    assert len(delays) == len(injector.injected) and all(d > 0 for d in delays)

    train = next(f for f in report.findings if f.resource_id == "s3://train-ckpt-abc/checkpoints/")
    assert train.plan is not None and len(train.plan.params["keys"]) == OBJECTS
    queues = [
        f for f in report.findings if f.kind == "missing-tags" and f.resource_id.startswith("jobs-")
    ]
    assert len(queues) == QUEUES
    assert all(f.evidence == "missing Team, Environment" for f in queues)
    kinds = Counter(f.kind for f in report.findings if f.status == "waste")
    assert kinds["idle-endpoint"] == 2 and kinds["unattached-volume"] == 2

    # delete the checkpoints (3 batches) and bring them back (3 batches)
    record = Record.create(tmp_path / "r.json", "123456789012", [REGION])
    applied = remediate.apply(
        report.findings, clients, record, lambda q: True, only={"delete-checkpoints"}
    )
    assert (applied.done, applied.failed) == (2, 0)
    s3 = clients.client("s3", REGION)
    assert s3.list_objects_v2(Bucket="train-ckpt-abc", Prefix="checkpoints/")["KeyCount"] == 0
    undone = remediate.undo(Record.load(tmp_path / "r.json"), clients, lambda q: True)
    assert (undone.done, undone.failed) == (1, 0)
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="train-ckpt-abc", Prefix="checkpoints/"
    )
    assert sum(p["KeyCount"] for p in pages) == OBJECTS
    if url:  # over HTTP a throttled delete is never executed, so deletes are throttled too
        deletes = [i for i in injector.injected if i[1] == "DeleteObjects"]
        assert len(deletes) >= 2
