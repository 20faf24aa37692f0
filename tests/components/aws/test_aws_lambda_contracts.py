"""Every AWS API call the finops Lambdas make, held to two contracts the mocks cannot see:

- botocore's operation model: the operation exists and its parameters are valid
  (`ParamValidator`, as the real client validates them), for every call the code can make;
- the role the component gives the function: each call's authorisation requests (action,
  resource ARN, condition keys; `iam_policy.requests_for`) are allowed by the statements the
  component writes into that role (`iam_policy.allowed`).

Each Lambda runs end to end against moto through scenarios that reach every call site; a
static scan of its source lists the client methods it can call, and a method no scenario
reached fails the test, so a new call cannot slip past.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import botocore.session
import pytest
from aws_helpers import REGION
from botocore.validate import ParamValidator
from conftest import make_fleet_groups
from iam_policy import Call, Request, Unsupported, World, allowed, requests_for

from aifinops.components.aws.budget import enforcer_policy_statements, tag_activation_statements
from aifinops.components.aws.fleet import LIFECYCLE_HOOK_NAME, controller_policy_statements
from aifinops.components.aws.lambdas import (
    budget_enforcer,
    cost_allocation_tags,
    fallback_controller,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def client_methods(module: ModuleType) -> set[tuple[str, str]]:
    """(service, method) pairs `module` can call: attribute calls named like a method of a
    service it makes a client for, and the operations it paginates."""
    tree = ast.parse(inspect.getsource(module))
    services = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    session = botocore.session.get_session()
    methods = {
        service: set(session.create_client(service, region_name=REGION).meta.method_to_api_mapping)
        for service in services
    }
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            name = str(node.args[0].value)
        for service, known in methods.items():
            if name in known:
                found.add((service, name))
    return found


class Recorder:
    """Every call made through clients of boto3's default session, with its model."""

    def __init__(self) -> None:
        self.calls: list[tuple[Call, Any, dict[str, Any]]] = []
        self.requests: list[tuple[Call, Request]] = []
        self.world: World | None = None
        self.setup = boto3.session.Session(region_name=REGION)
        """Clients for setting the scene and looking at it: not recorded."""

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        call = Call(model.service_model.signing_name, model.name, dict(params))
        self.calls.append((call, model, dict(params)))
        assert self.world is not None
        # condition keys are the account's state at the time of the call
        self.requests += [(call, r) for r in requests_for(call, self.world)]

    def methods(self) -> set[tuple[str, str]]:
        session = botocore.session.get_session()
        found = set()
        for _call, model, _ in self.calls:
            service = model.service_model.service_name
            mapping = session.create_client(service, region_name=REGION).meta.method_to_api_mapping
            found |= {(service, m) for m, op in mapping.items() if op == model.name}
        return found


@pytest.fixture
def recorder(aws_client: Any) -> Iterator[Recorder]:
    """moto, a default session whose clients report every call, and the account's state."""
    boto3.setup_default_session(region_name=REGION)
    recorder = Recorder()
    boto3.DEFAULT_SESSION.events.register("provide-client-params.*.*", recorder)
    asg = recorder.setup.client("autoscaling")
    sns = recorder.setup.client("sns")

    def group(name: str) -> dict[str, Any]:
        return dict(
            asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        )

    recorder.world = World(
        group_arn=lambda name: str(group(name)["AutoScalingGroupARN"]),
        group_tags=lambda name: {t["Key"]: t["Value"] for t in group(name).get("Tags", [])},
        topic_key=lambda arn: sns.get_topic_attributes(TopicArn=arn)["Attributes"].get(
            "KmsMasterKeyId"
        ),
    )
    try:
        yield recorder
    finally:
        boto3.DEFAULT_SESSION = None


def assert_contracts(
    recorder: Recorder,
    module: ModuleType,
    statements: list[dict[str, Any]],
    every_call: bool = True,
) -> None:
    """The calls recorded are valid and allowed; with `every_call`, they reach every call site."""
    validator = ParamValidator()
    for call, model, params in recorder.calls:
        report = validator.validate(params, model.input_shape)
        assert not report.has_errors(), f"{call.action}: {report.generate_report()}"
    missed = client_methods(module) - recorder.methods()
    assert not (every_call and missed), (
        f"{module.__name__}: calls no scenario reached: {sorted(missed)}"
    )
    refused = [
        f"{call.action} -> {request.action} on {request.resource} ({dict(request.context)})"
        for call, request in recorder.requests
        if not allowed(statements, request)
    ]
    assert refused == [], "\n".join(refused)


def scale_on_queue(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, spot: str, on_demand: str, jobs: int
) -> str:
    """A queue holding `jobs` jobs and the controller's environment for `scaleOn` (1 job per
    node); returns the queue's ARN."""
    sqs = recorder.setup.client("sqs")
    url = sqs.create_queue(QueueName="train-jobs")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "job"} for i in range(jobs)]
    )
    for key, value in {
        "SPOT_GROUP_NAME": spot,
        "ON_DEMAND_GROUP_NAME": on_demand,
        "FALLBACK_AFTER_MINUTES": "0",
        "QUEUE_URL": url,
        "JOBS_PER_NODE": "1",
    }.items():
        monkeypatch.setenv(key, value)
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(found["Attributes"]["QueueArn"])


def test_the_fallback_controller_calls_only_what_its_role_allows(
    recorder: Recorder, spot_market: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asg, ec2 = recorder.setup.client("autoscaling"), recorder.setup.client("ec2")
    spot_market.limits["train-group"] = 0  # no spot capacity
    spot, on_demand = make_fleet_groups(asg, ec2, desired=2, maximum=4)
    client = boto3.client("autoscaling")  # recorded
    after = timedelta(minutes=10)
    fallback_controller.reconcile(client, spot, on_demand, after, now=T0)  # clock starts: tag
    fallback_controller.reconcile(client, spot, on_demand, after, now=T0 + 2 * after)  # fall back
    spot_market.limits["train-group"] = None  # spot returns
    asg.set_desired_capacity(AutoScalingGroupName=spot, DesiredCapacity=2)
    fallback_controller.reconcile(client, spot, on_demand, after, now=T0 + 3 * after)  # drain
    queue_arn = scale_on_queue(recorder, monkeypatch, spot, on_demand, jobs=3)
    record = fallback_controller.handler({}, None)  # the Lambda's own clients, recorded
    assert record["observed"]["fleet_desired"] == 3  # 3 jobs, 1 per node
    group_arns = [recorder.world.group_arn(g) for g in (spot, on_demand)]  # type: ignore[union-attr]
    assert {c.operation for c, _, _ in recorder.calls} >= {"CreateOrUpdateTags", "DeleteTags"}
    statements = controller_policy_statements(*group_arns, queue_arn)
    assert_contracts(recorder, fallback_controller, statements)


def test_a_one_group_queue_fleets_controller_calls_only_what_its_role_allows(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    asg, ec2 = recorder.setup.client("autoscaling"), recorder.setup.client("ec2")
    spot, _ = make_fleet_groups(asg, ec2, desired=0, maximum=4)  # spot-only: no fallback group
    queue_arn = scale_on_queue(recorder, monkeypatch, spot, "", jobs=2)
    record = fallback_controller.handler({}, None)
    assert record["changes"] == [f"{spot}: desired 0 -> 2"]
    statements = controller_policy_statements(recorder.world.group_arn(spot), None, queue_arn)  # type: ignore[union-attr]
    assert_contracts(recorder, fallback_controller, statements, every_call=False)


def test_the_budget_enforcer_calls_only_what_its_role_allows(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    asg, ec2, kms, sns = (recorder.setup.client(s) for s in ("autoscaling", "ec2", "kms", "sns"))
    hooked = make_fleet_groups(asg, ec2, fleet="train", desired=2, maximum=4, project="vision")
    make_fleet_groups(asg, ec2, fleet="other", desired=1, maximum=2, project="other")
    asg.put_lifecycle_hook(
        LifecycleHookName=LIFECYCLE_HOOK_NAME,
        AutoScalingGroupName=hooked[0],
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=120,
        DefaultResult="CONTINUE",
    )
    key = kms.create_key()["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name="alerts", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    monkeypatch.setenv("PROJECT", "vision")
    monkeypatch.setenv("ALERTS_TOPIC_ARN", topic)
    event = {"Records": [{"Sns": {"Subject": "AWS Budgets: vision has exceeded 100%"}}]}
    record = budget_enforcer.handler(event, None)
    signals = {g["group"]: g["checkpoint_signal"] for g in record["groups"]}
    assert signals == {
        "train-group": LIFECYCLE_HOOK_NAME,
        "train-on-demand": budget_enforcer.NO_SIGNAL,
    }
    assert_contracts(recorder, budget_enforcer, enforcer_policy_statements("vision", topic, key))


# --- the checks themselves --------------------------------------------------------------


def test_a_call_the_role_does_not_cover_is_refused() -> None:
    statements = controller_policy_statements("arn:aws:autoscaling:g1", "arn:aws:autoscaling:g2")
    world = World(
        group_arn=lambda name: f"arn:aws:autoscaling:{name}",
        group_tags=lambda name: {},
        topic_key=lambda arn: None,
    )
    other_tag = Call(
        "autoscaling",
        "CreateOrUpdateTags",
        {
            "Tags": [
                {"ResourceId": "g1", "ResourceType": "auto-scaling-group", "Key": "x", "Value": "1"}
            ]
        },
    )
    assert not any(allowed(statements, r) for r in requests_for(other_tag, world))
    other_group = Call("autoscaling", "UpdateAutoScalingGroup", {"AutoScalingGroupName": "g3"})
    assert not any(allowed(statements, r) for r in requests_for(other_group, world))
    with pytest.raises(Unsupported):
        requests_for(Call("ec2", "TerminateInstances", {"InstanceIds": ["i-1"]}), world)


def test_an_encrypted_topic_needs_the_key_too() -> None:
    world = World(lambda n: n, lambda n: {}, lambda arn: "arn:aws:kms:k")
    publish = Call("sns", "Publish", {"TopicArn": "arn:aws:sns:t", "Message": "m"})
    statements = [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:t"}]
    assert [allowed(statements, r) for r in requests_for(publish, world)] == [True, False, False]


def test_the_static_scan_finds_every_client_method() -> None:
    assert client_methods(fallback_controller) == {
        ("sqs", "get_queue_attributes"),
        ("autoscaling", "describe_auto_scaling_groups"),
        ("autoscaling", "update_auto_scaling_group"),
        ("autoscaling", "create_or_update_tags"),
        ("autoscaling", "delete_tags"),
    }
    assert ("sns", "publish") in client_methods(budget_enforcer)
    assert ("autoscaling", "describe_auto_scaling_groups") in client_methods(budget_enforcer)


def test_the_cost_allocation_step_calls_only_what_its_role_allows(recorder: Recorder) -> None:
    """Lists, activates, then stops its own daily schedule (moto has no Cost Explorer tag API:
    the ce client answers through botocore's Stubber, after the call is recorded)."""
    from botocore.stub import Stubber

    setup_events = recorder.setup.client("events")
    name = "vision-budget-cost-tags-daily"
    rule = setup_events.put_rule(Name=name, ScheduleExpression="rate(1 day)")["RuleArn"]
    assert recorder.world is not None
    recorder.world.rule_arn = lambda rule_name: str(
        setup_events.describe_rule(Name=rule_name)["Arn"]
    )
    ce = boto3.client("ce", region_name="us-east-1")
    events = boto3.client("events", region_name=REGION)
    with Stubber(ce) as stub:
        stub.add_response(
            "list_cost_allocation_tags",
            {
                "CostAllocationTags": [
                    {"TagKey": "Project", "Type": "UserDefined", "Status": "Inactive"}
                ]
            },
        )
        stub.add_response("update_cost_allocation_tags_status", {"Errors": []})
        report = cost_allocation_tags.run(ce, events, ["Project"], name)
    assert report["activated"] == ["Project"] and report["schedule"] == "disabled"
    assert setup_events.describe_rule(Name=name)["State"] == "DISABLED"
    assert_contracts(recorder, cost_allocation_tags, tag_activation_statements(rule))
