"""`finops:aws:GpuTrainingFleet` with `scale_on_queue` under the offline engine: the resource
graph of queue-depth scaling, the controller's environment and least-privilege role, and the
argument errors."""

from __future__ import annotations

from typing import Any

import pytest
from aws_helpers import STACK_TAGS, only, policy_statements, run_components

from aifinops.components.aws import GpuTrainingFleet, GpuTrainingFleetArgs
from aifinops.components.aws.fleet import plan_fleet
from aifinops.engine import StackRun

ASG = "aws:autoscaling/group:Group"
RULE = "aws:cloudwatch/eventRule:EventRule"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:train-jobs"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/train-jobs"


def fleet_args(**overrides: Any) -> GpuTrainingFleetArgs:
    args: dict[str, Any] = {
        "accelerator": "A10G",
        "nodes_min": 0,
        "nodes_desired": 0,
        "nodes_max": 6,
        "model_version": "resnet50-v3",
        "tags": STACK_TAGS,
        "scale_on_queue": QUEUE_ARN,
        "jobs_per_node": 2,
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_components(lambda: GpuTrainingFleet("train", fleet_args()))


@pytest.fixture(scope="module")
def spot_only() -> StackRun:
    return run_components(
        lambda: GpuTrainingFleet(
            "solo",
            fleet_args(
                capacity="spot-only", scale_on_queue=QUEUE_URL, nodes_min=1, nodes_desired=1
            ),
        )
    )


def test_the_controller_reads_the_queue(run: StackRun) -> None:
    variables = only(run, "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables["QUEUE_URL"] == QUEUE_URL  # GetQueueAttributes takes the URL
    assert variables["JOBS_PER_NODE"] == "2"
    assert variables["NODES_MIN"] == "0"
    assert variables["ON_DEMAND_GROUP_NAME"] == only(run, ASG, "train-on-demand").outputs["name"]
    for name in ("train-group", "train-on-demand"):
        group = only(run, ASG, name)
        assert group.options.get("ignoreChanges") == ["desiredCapacity"]
        assert group.inputs["minSize"] == 0 and group.inputs["maxSize"] == 6
    # the controller scales in through the groups only: no scaling policy of its own
    assert run.of_type("aws:autoscaling/policy:Policy") == []


def test_the_controller_may_read_that_queue_only(run: StackRun) -> None:
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "train-fallback-policy")
    )
    assert statements["ReadQueueDepth"] == {
        "Sid": "ReadQueueDepth",
        "Effect": "Allow",
        "Action": "sqs:GetQueueAttributes",
        "Resource": QUEUE_ARN,
    }
    assert not any("sqs:ReceiveMessage" in str(s["Action"]) for s in statements.values())


def test_nodes_may_protect_themselves_from_scale_in_in_their_fleet_only(run: StackRun) -> None:
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "train-instance-policy")
    )
    protection = statements["ScaleInProtectionWhileWorking"]
    assert protection["Action"] == "autoscaling:SetInstanceProtection"
    assert protection["Condition"] == {
        "StringEquals": {"autoscaling:ResourceTag/finops:fleet": "train"}
    }


def test_a_spot_only_fleet_gets_the_controller_for_its_one_group(spot_only: StackRun) -> None:
    (group,) = spot_only.of_type(ASG)
    assert group.options.get("ignoreChanges") == ["desiredCapacity"]
    assert group.inputs["minSize"] == 1
    function = only(spot_only, "aws:lambda/function:Function").inputs
    variables = function["environment"]["variables"]
    assert variables["ON_DEMAND_GROUP_NAME"] == ""
    assert variables["QUEUE_URL"] == QUEUE_URL and variables["NODES_MIN"] == "1"
    assert "queue-depth scaling" in function["description"]
    # only the schedule: spot launch failures matter to a fallback group it does not have
    assert [r.name for r in spot_only.of_type(RULE)] == ["solo-schedule"]
    statements = policy_statements(
        only(spot_only, "aws:iam/rolePolicy:RolePolicy", "solo-fallback-policy")
    )
    assert statements["SizeFleetGroups"]["Resource"] == group.outputs["arn"]


def test_without_a_queue_nothing_changes() -> None:
    run = run_components(
        lambda: GpuTrainingFleet(
            "plain", fleet_args(capacity="spot-only", scale_on_queue=None, jobs_per_node=None)
        )
    )
    (group,) = run.of_type(ASG)
    assert group.options.get("ignoreChanges") is None
    assert run.of_type("aws:lambda/function:Function") == []
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "plain-instance-policy")
    )
    assert "ScaleInProtectionWhileWorking" not in statements


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"scale_on_queue": "train-jobs"},
            r"scale_on_queue: 'train-jobs' is not allowed.*SQS queue ARN",
        ),
        (
            {"scale_on_queue": "arn:aws:sqs:eu-west-1:123456789012:jobs"},
            r"scale_on_queue: .* a queue in the fleet's region us-east-1 \(it is in eu-west-1\)",
        ),
        ({"jobs_per_node": None}, r"jobs_per_node: None"),
        ({"jobs_per_node": 0}, r"jobs_per_node: 0"),
        ({"scale_on_queue": None}, r"scale_on_queue: None .*with jobs_per_node"),
    ],
)
def test_bad_queue_arguments_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_fleet(fleet_args(**overrides))
