"""Fixtures for the AWS component tests: moto Auto Scaling groups with a spot capacity limit,
and a helper that runs a component under the offline engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_helpers import REGION
from moto import mock_aws
from moto.autoscaling import models as asg_models


@dataclass
class SpotMarket:
    """How many instances each group may hold; None = unlimited. Stands in for EC2 spot
    capacity, which moto does not model: a launch beyond the limit simply does not happen,
    as when EC2 answers InsufficientInstanceCapacity."""

    limits: dict[str, int | None] = field(default_factory=dict)


@pytest.fixture
def spot_market(monkeypatch: pytest.MonkeyPatch) -> SpotMarket:
    market = SpotMarket()
    original = asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances

    def limited(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        limit = market.limits.get(self.name)
        if limit is not None:
            count_needed = max(0, min(count_needed, limit - len(self.instance_states)))
        if count_needed:
            original(self, count_needed, propagated_tags)

    monkeypatch.setattr(
        asg_models.FakeAutoScalingGroup, "replace_autoscaling_group_instances", limited
    )
    return market


@pytest.fixture
def aws_client() -> Iterator[Callable[[str], Any]]:
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


@pytest.fixture
def fleet_groups() -> Callable[..., tuple[str, str]]:
    """`make_fleet_groups`, for tests (conftest modules are not imported by name)."""
    return make_fleet_groups


def make_fleet_groups(
    client: Any,
    ec2: Any,
    *,
    fleet: str = "train",
    desired: int,
    maximum: int,
    project: str = "vision",
) -> tuple[str, str]:
    """The two groups `GpuTrainingFleet` creates, as it creates them (tags included)."""
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{fleet}-lt",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.xlarge"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    names = (f"{fleet}-group", f"{fleet}-on-demand")
    for name, size, on_demand in ((names[0], desired, False), (names[1], 0, True)):
        tags = [
            {"Key": "Project", "Value": project, "PropagateAtLaunch": True},
            {"Key": "finops:fleet", "Value": fleet, "PropagateAtLaunch": True},
        ]
        if not on_demand:
            tags += [
                {"Key": "finops:fleet-desired", "Value": str(desired), "PropagateAtLaunch": False},
                {"Key": "finops:fleet-max", "Value": str(maximum), "PropagateAtLaunch": False},
            ]
        client.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=maximum,
            DesiredCapacity=size,
            VPCZoneIdentifier=subnet,
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": template},
                    "Overrides": [
                        {"InstanceType": t} for t in ("g5.xlarge", "g6.xlarge", "g6.2xlarge")
                    ],
                },
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": 0,
                    "OnDemandPercentageAboveBaseCapacity": 100 if on_demand else 0,
                    "SpotAllocationStrategy": "price-capacity-optimized",
                },
            },
            Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", **t} for t in tags],
        )
    return names
