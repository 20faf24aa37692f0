"""One AWS account with every kind of waste the audit looks for, built through boto3 against
moto (in process or moto_server), and the calls the audit makes, recorded.

The audit is judged at `NOW` = build time + 100 days: everything built is "old" (instances,
endpoints, volumes, snapshots, checkpoints), and the metrics are written for the 24 hours
(GPU/CPU) and 7 days (endpoint invocations) before `NOW`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

REGION = "us-east-1"
AMI = "ami-12c6146b"
TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev", "ModelVersion": "v1"}
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass
class Scenario:
    now: float
    ids: dict[str, str] = field(default_factory=dict)
    checkpoint_keys: int = 0


_LOADER: Any = None


def session() -> boto3.Session:
    """A new session (own event hooks) sharing one botocore data loader: loading the EC2
    service model takes a second or more, once per loader."""
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _LOADER)
    return boto3.Session(
        botocore_session=core,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
    )


def _client(sess: boto3.Session, service: str, endpoint_url: str | None) -> Any:
    kwargs: dict[str, Any] = {"region_name": REGION}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        if service == "s3":
            from botocore.config import Config

            kwargs["config"] = Config(s3={"addressing_style": "path"})
    return sess.client(service, **kwargs)


def _run(ec2: Any, instance_type: str, tags: dict[str, str]) -> str:
    answer = ec2.run_instances(
        ImageId=AMI,
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list(tags)}],
    )
    return str(answer["Instances"][0]["InstanceId"])


def _hourly(
    metric: str, namespace_dims: dict[str, str], value: float, now: float, hours: int
) -> list[dict[str, Any]]:
    end = int(now // 3600) * 3600
    return [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in namespace_dims.items()],
            "Timestamp": dt.datetime.fromtimestamp(end - (h + 1) * 3600 + 1800, dt.UTC),
            "StatisticValues": {
                "SampleCount": 60,
                "Sum": value * 60,
                "Minimum": 0.0,
                "Maximum": value,
            },
        }
        for h in range(hours)
    ]


def build(
    endpoint_url: str | None = None,
    checkpoint_objects: int = 30,
    checkpoint_size: int = 1024 * 1024,
) -> Scenario:
    sess = session()
    scenario = Scenario(now=time.time() + 100 * 86400)
    ids = scenario.ids
    ec2 = _client(sess, "ec2", endpoint_url)
    cloudwatch = _client(sess, "cloudwatch", endpoint_url)

    # --- GPU instances: idle by GPU metric, busy, idle by CPU, unmeasured, in an ASG
    ids["idle"] = _run(ec2, "g5.xlarge", TAGS)
    ids["busy"] = _run(ec2, "g5.12xlarge", TAGS)
    ids["cpu_idle"] = _run(ec2, "g4dn.xlarge", {**TAGS, "Owner": "alice"})
    ids["unmeasured"] = _run(ec2, "p3.2xlarge", TAGS)
    ids["in_asg"] = _run(ec2, "g5.2xlarge", {**TAGS, "aws:autoscaling:groupName": "train-group"})
    ids["web"] = _run(ec2, "t3.micro", {"Project": "web", "Environment": "prod"})  # no Team
    data: list[dict[str, Any]] = []
    # dimension sets: the agent's (InstanceId, index), and the CloudWatch agent's
    # (host, index, name, InstanceId) that the agent can publish too; `busy` has only the latter
    finops_set, cwagent_set = True, True
    for name, gpus, busy_gpu, sets in (
        ("idle", 1, None, (finops_set, cwagent_set)),
        ("busy", 4, 2, (not finops_set, cwagent_set)),
        ("in_asg", 1, None, (finops_set, not cwagent_set)),
    ):
        for index in range(gpus):
            value = 90.0 if index == busy_gpu else 1.0
            dims = {"InstanceId": ids[name], "index": str(index)}
            if sets[0]:
                data += _hourly("nvidia_smi_utilization_gpu", dims, value, scenario.now, 24)
            if sets[1]:
                cw = {
                    "host": f"ip-{name}",
                    "index": str(index),
                    "name": "NVIDIA A10G",
                    "InstanceId": ids[name],
                }
                data += _hourly("nvidia_smi_utilization_gpu", cw, value, scenario.now, 24)
    data += _hourly("CPUUtilization", {"InstanceId": ids["cpu_idle"]}, 0.3, scenario.now, 24)
    for first in range(0, len(data), 500):
        namespace = "CWAgent"
        batch = data[first : first + 500]
        cpu = [d for d in batch if d["MetricName"] == "CPUUtilization"]
        gpu = [d for d in batch if d["MetricName"] != "CPUUtilization"]
        if gpu:
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=gpu)
        if cpu:
            cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=cpu)

    # --- a stopped instance with a data volume
    ids["stopped"] = _run(ec2, "t3.large", TAGS)
    data_volume = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=200,
        VolumeType="gp2",
        TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(TAGS)}],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=data_volume, InstanceId=ids["stopped"], Device="/dev/sdf")
    ids["stopped_data_volume"] = data_volume
    ec2.stop_instances(InstanceIds=[ids["stopped"]])

    # --- unattached volumes
    ids["gp3_volume"] = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=500,
        VolumeType="gp3",
        Iops=6000,
        Throughput=250,
        TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list({**TAGS, "Owner": "bob"})}],
    )["VolumeId"]
    ids["io2_volume"] = ec2.create_volume(
        AvailabilityZone=f"{REGION}b",
        Size=100,
        VolumeType="io2",
        Iops=1000,
        TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list({"Project": "old"})}],
    )["VolumeId"]

    # --- snapshots: one old and unused, one behind an AMI
    ids["old_snapshot"] = ec2.create_snapshot(
        VolumeId=ids["io2_volume"],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(TAGS)}],
    )["SnapshotId"]
    image = ec2.create_image(InstanceId=ids["web"], Name="web-image")["ImageId"]
    ids["image"] = image

    # --- SageMaker endpoints: idle (2 instances), busy, idle with a scale-to-zero floor
    sm = _client(sess, "sagemaker", endpoint_url)
    sm.create_model(
        ModelName="model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
    )
    for name, count, scaling in (("idle-ep", 2, None), ("busy-ep", 1, None), ("zero-ep", 3, 0)):
        variant: dict[str, Any] = {
            "VariantName": "main",
            "ModelName": "model",
            "InstanceType": "ml.g4dn.xlarge",
            "InitialInstanceCount": count,
        }
        if scaling is not None:
            variant["ManagedInstanceScaling"] = {
                "Status": "ENABLED",
                "MinInstanceCount": 0,
                "MaxInstanceCount": 4,
            }
        sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[variant])
        sm.create_endpoint(
            EndpointName=name, EndpointConfigName=f"{name}-config", Tags=tag_list(TAGS)
        )
    end = int(scenario.now // 3600) * 3600
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "busy-ep"},
                    {"Name": "VariantName", "Value": "main"},
                ],
                "Timestamp": dt.datetime.fromtimestamp(end - 86400 * 2, dt.UTC),
                "Value": 1200.0,
            }
        ],
    )

    # --- checkpoint buckets: versioned with a 14-day rule, one with a 120-day rule, one untagged
    s3 = _client(sess, "s3", endpoint_url)
    for bucket, days, versioned, tagged in (
        ("train-ckpt-abc", 14, True, True),
        ("serve-ckpt-xyz", 120, True, True),
        ("legacy-ckpt", None, False, False),
    ):
        s3.create_bucket(Bucket=bucket)
        if tagged:
            s3.put_bucket_tagging(
                Bucket=bucket,
                Tagging={"TagSet": tag_list({**TAGS, "finops:fleet": bucket.split("-")[0]})},
            )
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if days:
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "expire-old-checkpoints",
                            "Status": "Enabled",
                            "Filter": {"Prefix": "checkpoints/"},
                            "Expiration": {"Days": days},
                        }
                    ]
                },
            )
        s3.put_object(Bucket=bucket, Key="data/keep.bin", Body=b"x" * 10)
    put_checkpoints(endpoint_url, "train-ckpt-abc", checkpoint_objects, checkpoint_size)
    put_checkpoints(endpoint_url, "serve-ckpt-xyz", 3, checkpoint_size)
    put_checkpoints(endpoint_url, "legacy-ckpt", 4, checkpoint_size)
    scenario.checkpoint_keys = checkpoint_objects
    return scenario


def put_checkpoints(
    endpoint_url: str | None, bucket: str, count: int, size: int = 1024 * 1024
) -> None:
    """`count` objects of `size` bytes under checkpoints/ (through the moto backend when there
    are many: PutObject one by one would take minutes)."""
    body = b"c" * size
    if count > 200:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for n in range(count):
            backend.put_object(bucket, f"checkpoints/step-{n:06d}.pt", body)
        return
    s3 = _client(session(), "s3", endpoint_url)
    for n in range(count):
        s3.put_object(Bucket=bucket, Key=f"checkpoints/step-{n:06d}.pt", Body=body)


@dataclass
class CallLog:
    """Every API call made through a session: (service, operation, params)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, params))


@contextmanager
def recording(sess: boto3.Session) -> Iterator[CallLog]:
    log = CallLog()
    sess.events.register("provide-client-params", _capture(log))
    yield log


def _capture(log: CallLog) -> Any:
    def handler(params: dict[str, Any], model: Any, **_: Any) -> None:
        log.calls.append((model.service_model.service_name, model.name, dict(params)))

    return handler


# ---------------------------------------------------------------- fault injection

PROTOCOLS = {
    "ec2": "ec2",
    "s3": "rest-xml",
    "sagemaker": "json",
    "cloudwatch": "cbor",
    "resource-groups-tagging-api": "cbor",
    "sts": "query",
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    head = bytes([0x60 + len(data)]) if len(data) < 24 else bytes([0x78, len(data)])
    return head + data


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name, b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def error_response(request: Any, service: str, status: int, code: str, message: str) -> Any:
    """An AWS error answer in the wire protocol the request was sent in (as botocore parses
    it): CBOR when it carries `smithy-protocol`, JSON with `X-Amz-Target`, else the service's."""
    from botocore.awsrequest import AWSResponse

    url = request.url
    protocol = PROTOCOLS[service]
    if _header(request, "smithy-protocol"):
        protocol = "cbor"
    elif _header(request, "X-Amz-Target"):
        protocol = "json"
    headers = {"x-amzn-requestid": "finops-test"}
    if protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            "</Errors><RequestID>finops-test</RequestID></Response>"
        ).encode()
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
            "</Message></Error><RequestId>finops-test</RequestId></ErrorResponse>"
        ).encode()
    elif protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    elif protocol == "json":
        import json

        body = json.dumps({"__type": code, "message": message}).encode()
        headers["content-type"] = "application/x-amz-json-1.1"
    else:
        body = (
            bytes([0xA2])
            + _cbor_text("__type")
            + _cbor_text(code)
            + _cbor_text("message")
            + _cbor_text(message)
        )
        headers.update({"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor"})
    return AWSResponse(url, status, headers, _Raw(body))


Decide = Any  # Callable[[str, str, Any], tuple[int, str] | None]


@dataclass
class Injector:
    """Answers chosen requests with an error before they reach moto (botocore `before-send`,
    so botocore's retry logic sees them as it would a real answer).

    In process, moto's own `before-send` handler still runs (botocore calls every handler and
    takes the first answer): inject only into idempotent calls there, or use `Refuser`."""

    decide: Decide
    injected: list[tuple[str, str, str]] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        _, service, operation = event_name.split(".", 2)
        self.sent.append((service, operation))
        answer = self.decide(service, operation, request)
        if answer is None:
            return None
        status, code = answer
        self.injected.append((service, operation, code))
        return error_response(request, service, status, code, f"injected by the test: {code}")


def inject(sess: boto3.Session, decide: Decide) -> Injector:
    injector = Injector(decide)
    # first: moto's in-process mock answers from a `before-send` handler too, and the first
    # handler's answer wins
    sess.events.register_first("before-send", injector)
    return injector


@dataclass
class Refuser:
    """Refuses chosen calls before anything is sent (botocore `before-call`: no retry, no side
    effect in moto): `decide(service, operation, request_dict)` -> (status, code) or None."""

    decide: Decide
    refused: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        service = model.service_model.service_name
        answer = self.decide(service, model.name, params)
        if answer is None:
            return None
        status, code = answer
        self.refused.append((service, model.name, code))
        parsed = {
            "Error": {"Code": code, "Message": f"refused by the test: {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://refused.invalid", status, {}, _Raw(b"")), parsed


def refuse(sess: boto3.Session, decide: Decide) -> Refuser:
    refuser = Refuser(decide)
    sess.events.register_first("before-call", refuser)
    return refuser


@contextmanager
def moto_account(**options: int) -> Iterator[Scenario]:
    """A moto account (in process) holding the scenario, without moto's default AMIs."""
    import pytest
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with mock_aws():
            yield build(**options)


def state(sess: boto3.Session, endpoint_url: str | None = None) -> dict[str, Any]:
    """What the remedies change: instance states, volumes, endpoint counts, checkpoint keys,
    snapshots."""
    ec2 = _client(sess, "ec2", endpoint_url)
    sm = _client(sess, "sagemaker", endpoint_url)
    s3 = _client(sess, "s3", endpoint_url)
    instances = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    volumes = {
        v["VolumeId"]: {
            "type": v["VolumeType"],
            "size": v["Size"],
            "iops": v.get("Iops"),
            "throughput": v.get("Throughput"),
            "zone": v["AvailabilityZone"],
            "tags": {t["Key"]: t["Value"] for t in v.get("Tags", [])},
            "attached": [(a["InstanceId"], a["Device"]) for a in v.get("Attachments", [])],
            "snapshot": v.get("SnapshotId"),
        }
        for v in ec2.describe_volumes()["Volumes"]
    }
    snapshots = {
        s["SnapshotId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }
    endpoints = {
        name: {
            v["VariantName"]: v["CurrentInstanceCount"]
            for v in sm.describe_endpoint(EndpointName=name)["ProductionVariants"]
        }
        for name in ("idle-ep", "busy-ep", "zero-ep")
    }
    keys = {}
    for bucket in ("train-ckpt-abc", "serve-ckpt-xyz", "legacy-ckpt"):
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="checkpoints/"
        ):
            found += [o["Key"] for o in page.get("Contents", [])]
        keys[bucket] = len(found)
    return {
        "instances": instances,
        "volumes": volumes,
        "snapshots": snapshots,
        "endpoints": endpoints,
        "checkpoints": keys,
    }


@dataclass
class Run:
    scenario: Scenario
    before: dict[str, Any]
    after_apply: dict[str, Any]
    after_undo: dict[str, Any]
    questions: list[str]
    apply_outcome: Any
    undo_outcome: Any
    record_after_apply: dict[str, Any]
    record_after_undo: dict[str, Any]
    scan_calls: CallLog
    apply_calls: CallLog


def audit_settings(scenario: Scenario) -> Any:
    from aifinops.audit import AuditSettings

    return AuditSettings(now=scenario.now, checkpoint_buckets=("legacy-ckpt",))
