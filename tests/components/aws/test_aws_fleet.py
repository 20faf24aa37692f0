"""`finops:aws:GpuTrainingFleet` under the offline engine: the resource graph, its security and
cost-relevant properties, tags, least-privilege documents, and argument errors."""

from __future__ import annotations

import base64
import json
import tomllib
from typing import Any

import pytest
from aws_helpers import STACK_TAGS, only, policy_statements, run_components, untagged
from iam_policy import Call, World, allowed, requests_for

from aifinops import catalog
from aifinops.agents.config import parse_config
from aifinops.components.aws import GpuTrainingFleet, GpuTrainingFleetArgs
from aifinops.components.aws.fleet import LIFECYCLE_HOOK_NAME, plan_fleet
from aifinops.engine import StackRun

ASG = "aws:autoscaling/group:Group"
HOOK = "aws:autoscaling/lifecycleHook:LifecycleHook"
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def fleet_args(**overrides: Any) -> GpuTrainingFleetArgs:
    args: dict[str, Any] = {
        "accelerator": "A10G",
        "nodes_min": 0,
        "nodes_desired": 2,
        "nodes_max": 4,
        "on_demand_base_nodes": 1,
        "model_version": "resnet50-v3",
        "tags": STACK_TAGS,
        "checkpoint_retention_days": 9,
        "fallback_after_minutes": 7,
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_components(lambda: GpuTrainingFleet("train", fleet_args()))


def test_resource_graph(run: StackRun) -> None:
    component = only(run, "finops:aws:GpuTrainingFleet")
    children = {r.name: r.type for r in run.resources if r.parent == component.urn}
    assert children == {
        "train-instance-role": "aws:iam/role:Role",
        "train-instance-policy": "aws:iam/rolePolicy:RolePolicy",
        "train-instance-profile": "aws:iam/instanceProfile:InstanceProfile",
        "train-security-group": "aws:ec2/securityGroup:SecurityGroup",
        "train-egress": "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "train-checkpoints": "aws:s3/bucket:Bucket",
        "train-checkpoints-public-access": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "train-checkpoints-ownership": "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "train-checkpoints-encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "train-checkpoints-lifecycle": "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "train-checkpoints-versioning": "aws:s3/bucketVersioning:BucketVersioning",
        "train-checkpoints-tls-only": "aws:s3/bucketPolicy:BucketPolicy",
        "train-launch-template": LT,
        "train-agent-bundle": "aws:s3/bucketObjectv2:BucketObjectv2",
        "train-network": "finops:aws:FleetNetwork",
        "train-group": ASG,
        "train-on-demand": ASG,
        "train-fallback-logs": "aws:cloudwatch/logGroup:LogGroup",
        "train-fallback-role": "aws:iam/role:Role",
        "train-fallback-policy": "aws:iam/rolePolicy:RolePolicy",
        "train-fallback": "aws:lambda/function:Function",
        "train-launch-events": "aws:cloudwatch/eventRule:EventRule",
        "train-launch-events-target": "aws:cloudwatch/eventTarget:EventTarget",
        "train-launch-events-invoke": "aws:lambda/permission:Permission",
        "train-schedule": "aws:cloudwatch/eventRule:EventRule",
        "train-schedule-target": "aws:cloudwatch/eventTarget:EventTarget",
        "train-schedule-invoke": "aws:lambda/permission:Permission",
        "train-group-checkpoint-hook": HOOK,
        "train-on-demand-checkpoint-hook": HOOK,
        "train-lifecycle-policy": "aws:iam/rolePolicy:RolePolicy",
    }


def test_termination_hooks_on_both_groups(run: StackRun) -> None:
    hooks = {r.name: r.inputs for r in run.resources if r.type == HOOK}
    for group in ("train-group", "train-on-demand"):
        hook = hooks[f"{group}-checkpoint-hook"]
        assert hook["autoscalingGroupName"] == only(run, ASG, group).outputs["name"]
        assert hook["name"] == LIFECYCLE_HOOK_NAME
        assert hook["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert hook["defaultResult"] == "CONTINUE"  # an agent that never answers: node goes
        assert 30 <= hook["heartbeatTimeout"] <= 7200  # the API's range
    config = agent_toml(run)
    assert config.lifecycle.aws_hook_name == LIFECYCLE_HOOK_NAME
    assert config.lifecycle.max_wait_seconds == 900
    variables = only(run, "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables["SPOT_STABLE_MINUTES"] == "15"


def test_instance_role_completes_lifecycle_actions_of_its_own_groups_only(run: StackRun) -> None:
    arns = {g: only(run, ASG, g).outputs["arn"] for g in ("train-group", "train-on-demand")}
    statements = list(
        policy_statements(
            only(run, "aws:iam/rolePolicy:RolePolicy", "train-lifecycle-policy")
        ).values()
    )
    own = {"finops:fleet": "train"}
    world = World(
        group_arn=lambda name: arns.get(name, f"arn:aws:autoscaling:us-east-1:1:group/{name}"),
        group_tags=lambda name: own if name in arns else {"finops:fleet": "other"},
        topic_key=lambda arn: None,
    )

    def allowed_for(action: str, group: str) -> bool:
        call = Call(
            "autoscaling",
            action,
            {
                "LifecycleHookName": LIFECYCLE_HOOK_NAME,
                "AutoScalingGroupName": group,
                "InstanceId": "i-1",
            },
        )
        return all(allowed(statements, r) for r in requests_for(call, world))

    for action in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat"):
        assert allowed_for(action, "train-group") and allowed_for(action, "train-on-demand")
        assert not allowed_for(action, "someone-elses-group")
    find = Call("autoscaling", "DescribeAutoScalingInstances", {"InstanceIds": ["i-1"]})
    assert all(allowed(statements, r) for r in requests_for(find, world))
    # the tag condition holds on its own: the ARN of a group re-tagged for another fleet fails
    world.group_tags = lambda name: {"finops:fleet": "other"}
    assert not allowed_for("CompleteLifecycleAction", "train-group")


def test_every_taggable_resource_carries_the_stack_tags_and_model_version(run: StackRun) -> None:
    assert untagged(run, workload=True) == []
    group = only(run, ASG, "train-group")
    tags = {t["key"]: t for t in group.inputs["tags"]}
    for key in (*STACK_TAGS, "ModelVersion", "finops:fleet"):
        assert tags[key]["propagateAtLaunch"] is True
    assert tags["ModelVersion"]["value"] == "resnet50-v3"


def test_launch_template_imdsv2_encrypted_gp3_public_ip_of_its_network(run: StackRun) -> None:
    template = only(run, LT).inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpEndpoint"] == "enabled"
    (root,) = template["blockDeviceMappings"]
    assert root["deviceName"] == "/dev/xvda"  # the AMI's root device (fixture)
    assert root["ebs"]["volumeType"] == "gp3"
    assert root["ebs"]["encrypted"] == "true"
    (interface,) = template["networkInterfaces"]
    # the fleet's own network with egress public-ip: the address is the way out
    assert interface["associatePublicIpAddress"] == "true"
    assert template["iamInstanceProfile"]["arn"]


def test_tag_specifications_reach_instances_volumes_and_interfaces(run: StackRun) -> None:
    specs = {s["resourceType"]: s["tags"] for s in only(run, LT).inputs["tagSpecifications"]}
    assert set(specs) == {"instance", "volume", "network-interface"}
    for tags in specs.values():
        assert {k: tags[k] for k in STACK_TAGS} == STACK_TAGS
        assert tags["ModelVersion"] == "resnet50-v3"


def agent_toml(run: StackRun) -> Any:
    script = base64.b64decode(only(run, LT).inputs["userData"]).decode()
    toml = script.split("<<'FINOPS_AGENT_TOML'\n", 1)[1].split("FINOPS_AGENT_TOML\n", 1)[0]
    return parse_config(tomllib.loads(toml), source="user data")


def test_user_data_installs_configures_and_starts_the_agent(run: StackRun) -> None:
    script = base64.b64decode(only(run, LT).inputs["userData"]).decode()
    assert len(script.encode()) < 16 * 1024  # EC2's user-data limit
    assert script.startswith("#!/bin/bash\n") and "set -euo pipefail" in script
    assert "--no-index --find-links" in script  # the stack's bundle (test_agent_delivery.py)
    assert "finops-agent --config /etc/finops-agent.toml --check" in script
    assert "systemctl enable --now finops-agent.service" in script
    assert "ExecStart=/usr/local/bin/finops-agent" in script  # the unit from agents/deploy
    toml = script.split("<<'FINOPS_AGENT_TOML'\n", 1)[1].split("FINOPS_AGENT_TOML\n", 1)[0]
    config = parse_config(tomllib.loads(toml), source="user data")
    assert config.metadata.provider == "aws"
    assert config.cloudwatch.enabled and config.cloudwatch.namespace == "CWAgent"
    assert config.checkpoint.hook.mode == "file"
    assert config.tags["finops:fleet"] == "train"
    assert config.tags["ModelVersion"] == "resnet50-v3"


def test_main_group_mixed_instances_spot(run: StackRun) -> None:
    group = only(run, ASG, "train-group").inputs
    policy = group["mixedInstancesPolicy"]
    overrides = [o["instanceType"] for o in policy["launchTemplate"]["overrides"]]
    assert len(overrides) >= 3
    infos = [catalog.lookup(t, "us-east-1") for t in overrides]
    assert all(i.service == "ec2" and i.accelerator_count == 1 for i in infos)
    assert all(i.node_accelerator_memory_gib >= 24 for i in infos)  # A10G: 24 GiB
    assert (
        overrides[0]
        == catalog.cheapest("A10G", 1, spot=True, cloud="aws", region="us-east-1", service="ec2")[
            0
        ].instance_type
    )
    distribution = policy["instancesDistribution"]
    assert distribution["spotAllocationStrategy"] == "price-capacity-optimized"
    assert distribution["onDemandBaseCapacity"] == 1
    assert distribution["onDemandPercentageAboveBaseCapacity"] == 0
    assert group["capacityRebalance"] is True
    assert (group["minSize"], group["desiredCapacity"], group["maxSize"]) == (0, 2, 4)
    assert group["waitForCapacityTimeout"] == "0"
    tags = {t["key"]: t for t in group["tags"]}
    assert tags["finops:fleet-desired"] == {
        "key": "finops:fleet-desired",
        "value": "2",
        "propagateAtLaunch": False,
    }
    assert tags["finops:fleet-max"]["value"] == "4"


def test_on_demand_group_at_zero_on_the_same_template(run: StackRun) -> None:
    main = only(run, ASG, "train-group").inputs["mixedInstancesPolicy"]
    group = only(run, ASG, "train-on-demand").inputs
    assert (group["minSize"], group["desiredCapacity"], group["maxSize"]) == (0, 0, 4)
    policy = group["mixedInstancesPolicy"]
    assert policy["instancesDistribution"]["onDemandPercentageAboveBaseCapacity"] == 100
    assert policy["instancesDistribution"]["onDemandBaseCapacity"] == 0
    assert (
        policy["launchTemplate"]["launchTemplateSpecification"]
        == main["launchTemplate"]["launchTemplateSpecification"]
    )
    assert policy["launchTemplate"]["overrides"] == main["launchTemplate"]["overrides"]
    assert group["capacityRebalance"] is False


def test_controller_owns_desired_capacity(run: StackRun) -> None:
    for name in ("train-group", "train-on-demand"):
        assert only(run, ASG, name).options.get("ignoreChanges") == ["desiredCapacity"]


def test_checkpoint_bucket_encrypted_private_expiring(run: StackRun) -> None:
    (rule,) = only(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    block = only(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    for key in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[key] is True
    rules = {
        r["id"]: r
        for r in only(
            run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        ).inputs["rules"]
    }
    expire = rules["expire-old-checkpoints"]
    assert expire["status"] == "Enabled"
    assert expire["expiration"]["days"] == 9
    assert expire["filter"]["prefix"] == "checkpoints/"
    assert expire["noncurrentVersionExpiration"]["noncurrentDays"] == 1
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 1
    }
    versioning = only(run, "aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    tls = policy_statements(only(run, "aws:s3/bucketPolicy:BucketPolicy"))["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_instance_role_least_privilege(run: StackRun) -> None:
    bucket_arn = only(run, "aws:s3/bucket:Bucket").outputs["arn"]
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "train-instance-policy")
    )
    key = only(run, "aws:s3/bucketObjectv2:BucketObjectv2").inputs["key"]
    assert statements == {
        "AgentBundle": {
            "Sid": "AgentBundle",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/{key}",
        },
        "AgentMetricsOnly": {
            "Sid": "AgentMetricsOnly",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "CWAgent"}},
        },
        "CheckpointObjects": {
            "Sid": "CheckpointObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": f"{bucket_arn}/checkpoints/*",
        },
        "CheckpointListing": {
            "Sid": "CheckpointListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": ["checkpoints/*"]}},
        },
        "OwnTags": {
            "Sid": "OwnTags",
            "Effect": "Allow",
            "Action": "ec2:DescribeTags",
            "Resource": "*",
        },
    }
    trust = json.loads(
        only(run, "aws:iam/role:Role", "train-instance-role").inputs["assumeRolePolicy"]
    )
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_controller_role_least_privilege(run: StackRun) -> None:
    group_arn = only(run, ASG, "train-group").outputs["arn"]
    on_demand_arn = only(run, ASG, "train-on-demand").outputs["arn"]
    logs_arn = only(run, "aws:cloudwatch/logGroup:LogGroup").outputs["arn"]
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "train-fallback-policy")
    )
    assert statements["ReadGroups"]["Action"] == "autoscaling:DescribeAutoScalingGroups"
    assert statements["SizeFleetGroups"]["Action"] == "autoscaling:UpdateAutoScalingGroup"
    assert statements["SizeFleetGroups"]["Resource"] == [group_arn, on_demand_arn]
    assert statements["ShortfallClockTag"]["Resource"] == group_arn
    assert statements["ShortfallClockTag"]["Condition"] == {
        "ForAllValues:StringEquals": {
            "aws:TagKeys": ["finops:spot-shortfall-since", "finops:spot-in-service-since"]
        }
    }
    assert statements["OwnLogGroup"]["Resource"] == f"{logs_arn}:*"
    assert set(statements) == {"ReadGroups", "SizeFleetGroups", "ShortfallClockTag", "OwnLogGroup"}


def test_controller_lambda_events_and_schedule(run: StackRun) -> None:
    function = only(run, "aws:lambda/function:Function").inputs
    assert function["handler"] == "fallback_controller.handler"
    # no reserved concurrency: new accounts (10 concurrent executions) refuse it, and two
    # overlapping runs write the same absolute sizes
    assert "reservedConcurrentExecutions" not in function
    variables = function["environment"]["variables"]
    assert variables["FALLBACK_AFTER_MINUTES"] == "7"
    assert variables["SPOT_GROUP_NAME"] == only(run, ASG, "train-group").outputs["name"]
    assert variables["ON_DEMAND_GROUP_NAME"] == only(run, ASG, "train-on-demand").outputs["name"]
    pattern = json.loads(
        only(run, "aws:cloudwatch/eventRule:EventRule", "train-launch-events").inputs[
            "eventPattern"
        ]
    )
    assert "EC2 Instance Launch Unsuccessful" in pattern["detail-type"]
    assert pattern["detail"]["AutoScalingGroupName"] == [variables["SPOT_GROUP_NAME"]]
    schedule = only(run, "aws:cloudwatch/eventRule:EventRule", "train-schedule").inputs
    assert schedule["scheduleExpression"] == "rate(1 minute)"
    for permission in run.of_type("aws:lambda/permission:Permission"):
        assert permission.inputs["principal"] == "events.amazonaws.com"


def test_on_demand_capacity_has_no_fallback_machinery() -> None:
    run = run_components(
        lambda: GpuTrainingFleet("od", fleet_args(capacity="on-demand", on_demand_base_nodes=0))
    )
    (group,) = run.of_type(ASG)
    distribution = group.inputs["mixedInstancesPolicy"]["instancesDistribution"]
    assert distribution["onDemandPercentageAboveBaseCapacity"] == 100
    assert group.inputs["capacityRebalance"] is False
    assert group.inputs["minSize"] == 0 and group.inputs["desiredCapacity"] == 2
    assert run.of_type("aws:lambda/function:Function") == []


def test_graviton_types_never_join_an_x86_fleet() -> None:
    plan = plan_fleet(fleet_args(accelerator="T4"))
    assert plan.instance_types[0] == "g4dn.xlarge"
    assert not any(t.startswith("g5g.") for t in plan.instance_types)  # T4G, arm64
    with pytest.raises(ValueError, match=r"instance_types\[1\]: 'g5g.xlarge'.*x86_64"):
        plan_fleet(fleet_args(accelerator=None, instance_types=["g4dn.xlarge", "g5g.xlarge"]))


def test_padding_prefers_similar_throughput_at_similar_price() -> None:
    plan = plan_fleet(fleet_args(accelerator="V100"))
    base = catalog.lookup(plan.instance_types[0], "us-east-1")
    for name in plan.instance_types[1:]:
        info = catalog.lookup(name, "us-east-1")
        assert info.throughput_per_node >= 0.9 * base.throughput_per_node  # no T4 for a V100
        assert info.usd_per_hour(spot=True) <= 2 * base.usd_per_hour(spot=True)


def test_too_few_pools_for_spot_but_fine_on_demand() -> None:
    with pytest.raises(ValueError, match=r"accelerator: 'H200'.*at least 3 pools.*on-demand"):
        plan_fleet(fleet_args(accelerator="H200", accelerators_per_node=8))
    plan = plan_fleet(fleet_args(accelerator="H200", accelerators_per_node=8, capacity="on-demand"))
    assert plan.instance_types[0] == "p5en.48xlarge"  # on-demand needs no spread of pools


def test_given_instance_types_lead_and_are_padded_to_three() -> None:
    plan = plan_fleet(fleet_args(accelerator=None, instance_types=["g6.xlarge"]))
    assert plan.instance_types[0] == "g6.xlarge"
    assert len(plan.instance_types) >= 3
    assert len(set(plan.instance_types)) == len(plan.instance_types)
    plan = plan_fleet(
        fleet_args(accelerator=None, instance_types=["g5.xlarge", "g6.xlarge", "g5.2xlarge"])
    )
    assert plan.instance_types[:3] == ["g5.xlarge", "g6.xlarge", "g5.2xlarge"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"capacity": "spot"},
            r"capacity: 'spot' is not allowed.*spot-only.*allowed: spot-with-fallback, spot-only, on-demand",
        ),
        (
            {"accelerator": "A10"},
            r"accelerator: 'A10': no EC2 type.*\(did you mean A10G.*EC2 accelerators in us-east-1: .*L4",
        ),
        ({"accelerator": "A10X"}, r"accelerator: 'A10X' is not allowed \(did you mean A10"),
        ({"nodes_max": 0}, r"nodes_max: 0 is not allowed; allowed: an integer 1\.\.1000"),
        ({"nodes_desired": 9}, r"nodes_desired: 9 is not allowed; allowed: an integer 0\.\.4"),
        (
            {"accelerator": None, "instance_types": ["ml.g5.xlarge"]},
            r"instance_types\[0\]: 'ml.g5.xlarge'.*EC2",
        ),
        (
            {"accelerator": None, "instance_types": ["g5.xlarg"]},
            r"instance_types\[0\]: 'g5.xlarg'.*did you mean g5.xlarge",
        ),
        ({"instance_types": ["g5.xlarge"]}, r"give exactly one of instance_types or accelerator"),
        ({"node_max": 3}, r"args: 'node_max' is not allowed \(did you mean nodes_max"),
        ({"tags": {"Project": "vision"}}, r"tags: .*missing Team, Environment"),
        ({"subnet_ids": ["subnet-1"]}, r"vpc_id: None is not allowed; give the VPC of subnet_ids"),
        ({"fallback_after_minutes": 0}, r"fallback_after_minutes: 0"),
    ],
)
def test_bad_arguments_name_the_field_and_the_allowed_values(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_fleet(fleet_args(**overrides))


def test_the_constructor_validates_before_creating_anything() -> None:
    created: list[str] = []

    def program() -> None:
        try:
            GpuTrainingFleet("bad", fleet_args(capacity="spotty"))
        except ValueError as exc:
            created.append(str(exc))

    run = run_components(program)
    assert run.resources == []
    assert created and "capacity: 'spotty'" in created[0]


@pytest.mark.parametrize("name", ["x" * 41, "Train_1", "-train", "train-"])
def test_names_aws_cannot_derive_from_are_refused(name: str) -> None:
    errors: list[str] = []

    def program() -> None:
        try:
            GpuTrainingFleet(name, fleet_args())
        except ValueError as exc:
            errors.append(str(exc))

    run = run_components(program)
    assert run.resources == []
    assert errors and errors[0].startswith(f"name: {name!r} is not allowed; allowed: 1-40")
