"""The shipped IAM policy documents cover every API call the audit makes, and nothing more.

Every call of a full scan, apply and undo against moto is recorded at botocore's
`provide-client-params` hook and mapped to IAM actions; the scan's calls must be allowed by
`readonly.json`, the apply/undo calls by `apply.json`. Each action a document names must be
a real operation of the service's botocore model (or a documented S3 exception), and used.
"""

from __future__ import annotations

import botocore.session
import pytest
from audit_scenario import Run

from aifinops.audit import iam
from aifinops.cli import main


def needed(calls: list[tuple[str, str, dict]]) -> set[str]:
    actions: set[str] = set()
    for service, operation, params in calls:
        actions |= iam.iam_actions(service, operation, params)
    return actions - iam.ALWAYS_ALLOWED


def test_the_scan_needs_only_the_readonly_policy(run: Run) -> None:
    used = needed(run.scan_calls.calls)
    assert used <= iam.allowed_actions("readonly"), used - iam.allowed_actions("readonly")
    # least privilege: nothing in the document that the scan never calls
    assert iam.allowed_actions("readonly") <= used, iam.allowed_actions("readonly") - used


def test_apply_and_undo_need_only_the_apply_policy(run: Run) -> None:
    used = needed(run.apply_calls.calls)
    assert used <= iam.allowed_actions("apply"), used - iam.allowed_actions("apply")
    writes = iam.allowed_actions("apply") - iam.allowed_actions("readonly")
    assert writes <= used, writes - used
    # CreateTags is only ever the tagging part of CreateSnapshot/CreateVolume
    assert ("ec2", "CreateTags") not in {(s, o) for s, o, _ in run.apply_calls.calls}


def test_the_readonly_policy_has_no_write() -> None:
    verbs = ("Describe", "Get", "List")
    assert all(a.split(":")[1].startswith(verbs) for a in iam.allowed_actions("readonly"))


def test_every_policy_action_is_a_real_operation() -> None:
    session = botocore.session.get_session()
    operations = {
        prefix: set(session.get_service_model(service).operation_names)
        for service, prefix in iam.IAM_PREFIX.items()
    }
    s3_only_iam = {"ListBucket", "GetLifecycleConfiguration", "DeleteObjectVersion"}
    for mode in iam.MODES:
        for action in iam.allowed_actions(mode):
            prefix, name = action.split(":")
            assert name in operations[prefix] or (prefix == "s3" and name in s3_only_iam), action


def test_delete_permissions_reach_only_checkpoint_objects() -> None:
    assert iam.resource_allowed(
        "apply", "s3:DeleteObject", "arn:aws:s3:::train-ckpt-abc/checkpoints/step-1.pt"
    )
    assert not iam.resource_allowed(
        "apply", "s3:DeleteObject", "arn:aws:s3:::train-ckpt-abc/data/keep.bin"
    )
    tags = next(s for s in iam.policy("apply")["Statement"] if "ec2:CreateTags" in s["Action"])
    assert tags["Condition"] == {
        "StringEquals": {"ec2:CreateAction": ["CreateSnapshot", "CreateVolume"]}
    }


@pytest.mark.parametrize(
    "service,operation,params,expected",
    [
        ("s3", "ListObjectsV2", {"Bucket": "b"}, {"s3:ListBucket"}),
        (
            "s3",
            "GetBucketLifecycleConfiguration",
            {"Bucket": "b"},
            {"s3:GetLifecycleConfiguration"},
        ),
        ("s3", "DeleteObjects", {"Delete": {"Objects": [{"Key": "k"}]}}, {"s3:DeleteObject"}),
        (
            "s3",
            "DeleteObjects",
            {"Delete": {"Objects": [{"Key": "k", "VersionId": "v"}]}},
            {"s3:DeleteObjectVersion"},
        ),
        ("cloudwatch", "GetMetricData", {}, {"cloudwatch:GetMetricData"}),
        ("resourcegroupstaggingapi", "GetResources", {}, {"tag:GetResources"}),
        ("ec2", "StopInstances", {}, {"ec2:StopInstances"}),
    ],
)
def test_operation_to_iam_action(
    service: str, operation: str, params: dict, expected: set[str]
) -> None:
    assert iam.iam_actions(service, operation, params) == expected


def test_cli_prints_the_documents(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["audit", "--iam-policy", "apply"]) == 0
    assert json.loads(capsys.readouterr().out) == iam.policy("apply")
