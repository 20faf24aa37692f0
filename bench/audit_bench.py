"""How long `finops audit` takes over a large account, against moto in process.

The account: 4 GPU instances (2 idle by their CWAgent GPU series), 5,000 checkpoint objects
past retention in a fleet bucket, and `--queues` SQS queues (default 10,000) tagged without
`Team`/`Environment`, which the Tagging API pages 100 at a time. Prints the wall time of the
scan, the API calls by operation and what was found. moto answers in microseconds to
milliseconds; on AWS each page is a network round trip (tens of ms), so a real account of
this size takes longer, dominated by the ~100 GetResources pages.

    .venv/bin/python bench/audit_bench.py [--queues 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections import Counter
from typing import Any

REGION = "us-east-1"


def build(queues: int, now: float) -> None:
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    ec2: Any = boto3.client("ec2", region_name=REGION)
    cloudwatch: Any = boto3.client("cloudwatch", region_name=REGION)
    tags = [
        {"Key": k, "Value": v}
        for k, v in (
            ("Project", "p"),
            ("Team", "t"),
            ("Environment", "dev"),
            ("ModelVersion", "v1"),
        )
    ]
    end = int(now // 3600) * 3600
    for n, instance_type in enumerate(("g5.xlarge", "g5.xlarge", "g5.12xlarge", "p4d.24xlarge")):
        instance = ec2.run_instances(
            ImageId="ami-12c6146b",
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]["InstanceId"]
        data = [
            {
                "MetricName": "nvidia_smi_utilization_gpu",
                "Dimensions": [
                    {"Name": "InstanceId", "Value": instance},
                    {"Name": "index", "Value": "0"},
                ],
                "Timestamp": dt.datetime.fromtimestamp(end - (h + 1) * 3600 + 1800, dt.UTC),
                "Value": 1.0 if n < 2 else 70.0,
            }
            for h in range(24)
        ]
        cloudwatch.put_metric_data(Namespace="CWAgent", MetricData=data)
    s3: Any = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="train-ckpt-bench")
    s3.put_bucket_tagging(
        Bucket="train-ckpt-bench",
        Tagging={"TagSet": [*tags, {"Key": "finops:fleet", "Value": "train"}]},
    )
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for n in range(5000):
        backend.put_object("train-ckpt-bench", f"checkpoints/step-{n:06d}.pt", b"c" * 1024)
    sqs = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    for n in range(queues):
        sqs.create_queue(f"jobs-{n:05d}", tags={"Project": "batch"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, default=10000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    os.environ.setdefault("FINOPS_CATALOG_OVERLAY", "")
    import boto3
    from moto import mock_aws

    from aifinops.audit import AuditSettings, run_audit
    from aifinops.audit.clients import AwsClients

    with mock_aws():
        now = time.time() + 100 * 86400
        build(args.queues, now)
        session = boto3.Session(region_name=REGION)
        calls: Counter[str] = Counter()

        def count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        session.events.register("provide-client-params", count)
        started = time.perf_counter()
        report = run_audit(AwsClients(session=session), [REGION], AuditSettings(now=now))
        wall = time.perf_counter() - started
    s = report.summary
    resources = args.queues + 5000 + 4
    print(
        f"scan of {resources:,} resources ({args.queues:,} queues, 5,000 checkpoint objects, 4 GPU instances): "
        f"{wall:.2f} s ({resources / wall:,.0f} resources/s), {sum(calls.values())} API calls"
    )
    print("calls: " + ", ".join(f"{op} {n}" for op, n in calls.most_common()))
    print(
        f"waste: ${s.waste_usd_per_month:,.2f}/month in {s.waste_findings} findings; "
        f"untagged: {s.untagged_findings:,} resources; errors: {len(report.errors)}"
    )
    print(
        "reproduce: .venv/bin/python bench/audit_bench.py"
        + (f" --queues {args.queues}" if args.queues != 10000 else "")
    )


if __name__ == "__main__":
    main()
