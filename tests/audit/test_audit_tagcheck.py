"""ARNs judged against the tag schema through the taggability registry."""

from __future__ import annotations

import pytest

from aifinops.audit import tagcheck

FULL = {"Project": "p", "Team": "t", "Environment": "dev"}


@pytest.mark.parametrize(
    "arn,token",
    [
        ("arn:aws:ec2:us-east-1:123456789012:instance/i-1", "aws:ec2/instance:Instance"),
        ("arn:aws:ec2:us-east-1:123456789012:volume/vol-1", "aws:ebs/volume:Volume"),
        ("arn:aws:ec2:us-east-1::snapshot/snap-1", "aws:ebs/snapshot:Snapshot"),
        (
            "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1",
            "aws:ec2/securityGroup:SecurityGroup",
        ),
        (
            "arn:aws:ec2:us-east-1:123456789012:spot-instance-request/sir-1",
            "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
        ),
        ("arn:aws:s3:::train-ckpt-abc", "aws:s3/bucket:Bucket"),
        ("arn:aws:sqs:us-east-1:123456789012:jobs", "aws:sqs/queue:Queue"),
        (
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/idle-ep",
            "aws:sagemaker/endpoint:Endpoint",
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:controller",
            "aws:lambda/function:Function",
        ),
        (
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/x",
            "aws:cloudwatch/logGroup:LogGroup",
        ),
    ],
)
def test_arn_to_pulumi_type(arn: str, token: str) -> None:
    parsed = tagcheck.parse_arn(arn)
    assert parsed is not None
    assert tagcheck.type_token(parsed) == token


def test_missing_keys_and_bad_values() -> None:
    verdict = tagcheck.judge(
        "arn:aws:ec2:us-east-1:1:volume/vol-1", {"Project": "p", "Environment": "qa"}
    )
    assert verdict.judged and verdict.taggable
    assert verdict.missing == ("Team",)
    assert verdict.problems == ("Environment='qa' is not one of dev, staging, prod",)
    workload = tagcheck.judge("arn:aws:ec2:us-east-1:1:instance/i-1", FULL, workload=True)
    assert workload.missing == ("ModelVersion",)
    assert tagcheck.judge("arn:aws:ec2:us-east-1:1:instance/i-1", FULL).missing == ()


def test_types_that_cannot_carry_tags_are_not_reported() -> None:
    """An ACM PCA issued certificate is a resource whose Pulumi type has no tags argument
    (aws:acmpca/certificate:Certificate): reporting it would ask for the impossible."""
    verdict = tagcheck.judge(
        "arn:aws:acm-pca:us-east-1:1:certificate-authority/ca-1/certificate/c-1", {}
    )
    assert verdict.judged and not verdict.taggable and verdict.missing == ()


def test_types_the_registry_does_not_know_are_counted_not_passed() -> None:
    verdict = tagcheck.judge("arn:aws:madeup:us-east-1:1:widget/w-1", {})
    assert not verdict.judged
    assert verdict.type_label == "madeup:widget"
    assert not tagcheck.judge("not-an-arn", {}).judged
