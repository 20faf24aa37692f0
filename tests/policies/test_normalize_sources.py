"""The Terraform and CloudFormation normalisers read what checkov hands them (values wrapped in
lists, blocks as lists, intrinsics) into the same facts as the Pulumi normaliser."""

from __future__ import annotations

from aifinops.policies.normalize.cloudformation import normalize_cloudformation
from aifinops.policies.normalize.terraform import normalize_terraform


def wrapped(value):
    """checkov's HCL conf: every attribute in a list, blocks as lists of such dicts."""
    if isinstance(value, dict):
        return {
            k: [wrapped(v)] if not isinstance(v, list) else wrapped(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [wrapped(v) for v in value]
    return value


def test_budgets_of_every_cloud_name_the_projects_they_cover() -> None:
    aws = normalize_terraform(
        "aws_budgets_budget",
        wrapped({"limit_amount": "1000", "cost_filter": [
            {"name": "TagKeyValue", "values": ["user:Project$vision"]}]}),
    )  # fmt: skip
    gcp = normalize_terraform(
        "google_billing_budget",
        wrapped({"budget_filter": [{"labels": {"project": "vision"}}],
                 "amount": [{"specified_amount": [{"units": "2000"}]}]}),
    )  # fmt: skip
    azure = normalize_terraform(
        "azurerm_consumption_budget_subscription",
        wrapped({"amount": 3000, "filter": [{"tag": [{"name": "Project", "values": ["vision"]}]}]}),
    )
    account = normalize_terraform("aws_budgets_budget", wrapped({"limit_amount": "500"}))
    found = [
        (b.kind, b.budget_projects, b.budget_limit_usd) for b in (aws, gcp, azure, account) if b
    ]
    assert found == [
        ("budget", ("vision",), 1000.0),
        ("budget", ("vision",), 2000.0),
        ("budget", ("vision",), 3000.0),
        ("budget", (), 500.0),
    ]


def test_terraform_references_are_unknown_not_missing() -> None:
    template = normalize_terraform(
        "aws_launch_template",
        {"instance_type": ["${var.instance_type}"], "tags": ["${local.tags}"]},
    )
    assert template is not None
    assert template.unknown == frozenset({"instance_types", "tags"})


def test_terraform_types_without_a_pulumi_counterpart_are_skipped() -> None:
    assert normalize_terraform("null_resource", {}) is None
    assert normalize_terraform("aws_not_a_real_thing", {}) is None


def test_cloudformation_shapes() -> None:
    group = normalize_cloudformation(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "MaxSize": "4",
            "DesiredCapacity": {"Ref": "Desired"},
            "MixedInstancesPolicy": {
                "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 25},
                "LaunchTemplate": {"Overrides": [{"InstanceType": "g5.xlarge"}]},
            },
            "Tags": [{"Key": "Project", "Value": "vision", "PropagateAtLaunch": True}],
        },
        "AWS::AutoScaling::AutoScalingGroup.Train",
    )
    assert group is not None
    assert (
        group.kind,
        group.instance_types,
        group.nodes_max,
        group.on_demand_percent_above_base,
    ) == (
        "fleet",
        ("g5.xlarge",),
        4,
        25.0,
    )
    assert dict(group.tags) == {"Project": "vision"}
    assert group.unknown == frozenset({"nodes_desired"})
