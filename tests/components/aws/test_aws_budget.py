"""`finops:aws:ProjectBudget` under the offline engine, and its enforcement Lambda on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_helpers import STACK_TAGS, only, policy_statements, run_components, untagged

from aifinops.components.aws import ProjectBudget, ProjectBudgetArgs
from aifinops.components.aws.budget import MAX_NOTIFICATIONS, plan_budget
from aifinops.components.aws.lambdas import budget_enforcer, fallback_controller
from aifinops.engine import StackRun

BUDGET = "aws:budgets/budget:Budget"


def budget_args(**overrides: Any) -> ProjectBudgetArgs:
    args: dict[str, Any] = {
        "project": "vision",
        "monthly_limit_usd": 3000,
        "notify_emails": ["ml-platform@example.com", "lead@example.com"],
        "thresholds_percent": [80, 100],
        "enforce": True,
        "tags": STACK_TAGS,
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_components(lambda: ProjectBudget("vision-budget", budget_args()))


def topic_arn(run: StackRun, role: str) -> str:
    return str(only(run, "aws:sns/topic:Topic", f"vision-budget-{role}").outputs["arn"])


def test_monthly_cost_budget_on_the_project_tag(run: StackRun) -> None:
    budget = only(run, BUDGET).inputs
    assert budget["budgetType"] == "COST"
    assert budget["timeUnit"] == "MONTHLY"
    assert (budget["limitAmount"], budget["limitUnit"]) == ("3000.00", "USD")
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": ["user:Project$vision"]}]


def test_actual_at_each_threshold_and_forecasted_once(run: StackRun) -> None:
    notifications = {
        (n["notificationType"], n["threshold"]): n
        for n in only(run, BUDGET).inputs["notifications"]
    }
    assert set(notifications) == {("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)}
    for (kind, threshold), notification in notifications.items():
        assert notification["comparisonOperator"] == "GREATER_THAN"
        assert notification["thresholdType"] == "PERCENTAGE"
        assert notification["subscriberEmailAddresses"] == [
            "ml-platform@example.com",
            "lead@example.com",
        ]
        expected = "enforcement" if (kind, threshold) == ("ACTUAL", 100) else "alerts"
        assert notification["subscriberSnsTopicArns"] == [topic_arn(run, expected)]


def test_topics_encrypted_and_open_to_budgets_and_anomaly_alerts_only(run: StackRun) -> None:
    key = only(run, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    key_policy = policy_statements(key)
    assert key_policy["AccountAdministers"]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:root"
    }
    assert key_policy["BudgetsAndAnomalyAlertsEncrypt"]["Action"] == [
        "kms:GenerateDataKey*",
        "kms:Decrypt",
    ]
    for topic in run.of_type("aws:sns/topic:Topic"):
        assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    for policy in run.of_type("aws:sns/topicPolicy:TopicPolicy"):
        (statement,) = policy_statements(policy).values()
        assert statement["Principal"] == {
            "Service": ["budgets.amazonaws.com", "costalerts.amazonaws.com"]
        }
        assert statement["Action"] == "SNS:Publish"
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_budget_waits_for_the_topic_policies(run: StackRun) -> None:
    policies = {p.urn for p in run.of_type("aws:sns/topicPolicy:TopicPolicy")}
    assert len(policies) == 2
    assert set(only(run, BUDGET).options["dependsOn"]) >= policies
    subscription = only(run, "aws:costexplorer/anomalySubscription:AnomalySubscription")
    assert any(urn in policies for urn in subscription.options["dependsOn"])


def test_anomaly_monitor_and_subscription(run: StackRun) -> None:
    monitor = only(run, "aws:costexplorer/anomalyMonitor:AnomalyMonitor")
    assert monitor.inputs["monitorType"] == "CUSTOM"
    assert json.loads(monitor.inputs["monitorSpecification"]) == {
        "Tags": {"Key": "Project", "Values": ["vision"], "MatchOptions": ["EQUALS"]}
    }
    subscription = only(run, "aws:costexplorer/anomalySubscription:AnomalySubscription").inputs
    assert subscription["monitorArnLists"] == [monitor.outputs["arn"]]
    assert subscription["subscribers"] == [{"type": "SNS", "address": topic_arn(run, "alerts")}]
    assert subscription["frequency"] == "IMMEDIATE"
    dimension = subscription["thresholdExpression"]["dimension"]
    assert dimension["key"] == "ANOMALY_TOTAL_IMPACT_ABSOLUTE"
    assert dimension["values"] == ["150"]  # 5 % of 3000


def test_cost_allocation_tags_activated_by_a_step_that_cannot_fail_or_deactivate(
    run: StackRun,
) -> None:
    """No CostAllocationTag resource: it fails for keys billing has not seen yet (a first
    deploy) and its deletion deactivates the key account-wide (pulumi destroy). A Lambda
    runs now and daily instead (its behaviour: test_aws_cost_tags.py)."""
    assert run.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag") == []
    function = only(run, "aws:lambda/function:Function", "vision-budget-cost-tags")
    assert function.inputs["handler"] == "cost_allocation_tags.handler"
    schedule = only(run, "aws:cloudwatch/eventRule:EventRule", "vision-budget-cost-tags-daily")
    assert schedule.inputs["scheduleExpression"] == "rate(1 day)"
    # CostCenter is optional and absent from these stack tags: never seen, never asked for
    keys = ["Project", "Team", "Environment", "ModelVersion"]
    assert function.inputs["environment"]["variables"] == {
        "TAG_KEYS": ",".join(keys),
        "SCHEDULE_RULE_NAME": schedule.outputs["name"],
    }
    invocation = only(run, "aws:lambda/invocation:Invocation").inputs
    assert invocation["functionName"] == function.outputs["name"]
    assert json.loads(invocation["input"]) == {"TagKeys": keys}
    # the default lifecycle scope (CREATE_ONLY): destroying the stack invokes nothing
    assert "lifecycleScope" not in invocation
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "vision-budget-cost-tags-policy")
    )
    assert statements["CostAllocationTags"]["Action"] == [
        "ce:ListCostAllocationTags",
        "ce:UpdateCostAllocationTagsStatus",
    ]
    assert statements["StopOwnSchedule"] == {
        "Sid": "StopOwnSchedule",
        "Effect": "Allow",
        "Action": "events:DisableRule",
        "Resource": schedule.outputs["arn"],
    }
    target = only(run, "aws:cloudwatch/eventTarget:EventTarget").inputs
    assert (target["rule"], target["arn"]) == (schedule.outputs["name"], function.outputs["arn"])
    with_cost_center = run_components(
        lambda: ProjectBudget("c", budget_args(tags={**STACK_TAGS, "CostCenter": "cc-1"}))
    )
    invoked = only(with_cost_center, "aws:lambda/invocation:Invocation").inputs["input"]
    assert "CostCenter" in json.loads(invoked)["TagKeys"]
    assert any("user:Project" in m and "never deactivated" in m for _, m in run.messages)
    other = run_components(
        lambda: ProjectBudget("b", budget_args(activate_cost_allocation_tags=False))
    )
    assert other.of_type("aws:lambda/invocation:Invocation") == []
    assert any("left to another stack" in m for _, m in other.messages)


def test_enforcer_lambda_least_privilege(run: StackRun) -> None:
    function = only(run, "aws:lambda/function:Function", "vision-budget-enforcer")
    assert function.inputs["handler"] == "budget_enforcer.handler"
    assert function.inputs["environment"]["variables"] == {
        "PROJECT": "vision",
        "ALERTS_TOPIC_ARN": topic_arn(run, "alerts"),
    }
    subscription = only(run, "aws:sns/topicSubscription:TopicSubscription").inputs
    assert subscription == {
        "topic": topic_arn(run, "enforcement"),
        "protocol": "lambda",
        "endpoint": function.outputs["arn"],
    } | {k: v for k, v in subscription.items() if k not in ("topic", "protocol", "endpoint")}
    permission = only(
        run, "aws:lambda/permission:Permission", "vision-budget-enforcer-invoke"
    ).inputs
    assert permission["principal"] == "sns.amazonaws.com"
    assert permission["sourceArn"] == topic_arn(run, "enforcement")
    statements = policy_statements(
        only(run, "aws:iam/rolePolicy:RolePolicy", "vision-budget-enforcer-policy")
    )
    project_only = {"StringEquals": {"autoscaling:ResourceTag/Project": "vision"}}
    assert statements["StopProjectGroups"] == {
        "Sid": "StopProjectGroups",
        "Effect": "Allow",
        "Action": "autoscaling:UpdateAutoScalingGroup",
        "Resource": "*",
        "Condition": project_only,
    }
    assert statements["RecordOnProjectGroups"]["Condition"] == {
        **project_only,
        "ForAllValues:StringEquals": {"aws:TagKeys": ["finops:budget-enforced"]},
    }
    assert statements["ReportToAlerts"]["Resource"] == topic_arn(run, "alerts")
    assert statements["EncryptedTopic"]["Resource"] == only(run, "aws:kms/key:Key").outputs["arn"]
    assert set(statements) == {
        "ReadGroups",
        "StopProjectGroups",
        "RecordOnProjectGroups",
        "ReportToAlerts",
        "EncryptedTopic",
        "OwnLogGroup",
    }


def test_tags_everywhere(run: StackRun) -> None:
    assert untagged(run, workload=False) == []


def test_the_budget_users_write_most_often_is_accepted() -> None:
    """[50, 80, 100] was refused when every threshold made two notifications."""
    plan = plan_budget(budget_args(thresholds_percent=[50, 80, 100], enforce=True))
    assert plan.notifications() == [
        ("ACTUAL", 50.0),
        ("ACTUAL", 80.0),
        ("ACTUAL", 100.0),
        ("FORECASTED", 100.0),
    ]
    nine = plan_budget(budget_args(thresholds_percent=list(range(10, 91, 10)), enforce=False))
    assert len(nine.notifications()) == 10


def test_the_notification_limit_is_botocores() -> None:
    """The limit is the one in botocore's model of CreateBudget, not a remembered number."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("budgets")
    shape = model.operation_model("CreateBudget").input_shape.members[
        "NotificationsWithSubscribers"
    ]
    assert shape.metadata["max"] == MAX_NOTIFICATIONS == 10


def test_without_enforcement_no_lambda_and_actual_100_goes_to_alerts() -> None:
    run = run_components(lambda: ProjectBudget("b", budget_args(enforce=False)))
    assert [f.name for f in run.of_type("aws:lambda/function:Function")] == ["b-cost-tags"]
    assert len(run.of_type("aws:sns/topic:Topic")) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"thresholds_percent": list(range(10, 101, 10))},
            r"thresholds_percent: .*10 thresholds make 11 notifications .* an AWS budget "
            r"allows 10: give at most 9 thresholds",
        ),
        (
            {"thresholds_percent": list(range(10, 91, 10)), "enforce": True},
            r"ACTUAL 100 for enforce.*give at most 8 thresholds",
        ),
        (
            {"notify_emails": ["not-an-email"]},
            r"notify_emails\[0\]: 'not-an-email'.*e-mail address",
        ),
        ({"notify_emails": []}, r"notify_emails: \[\] is not allowed; allowed: 1 to 10"),
        ({"monthly_limit_usd": 0}, r"monthly_limit_usd: 0 is not allowed"),
        ({"thresholds_percent": [0]}, r"thresholds_percent: 0.0 is not allowed"),
        ({"enforced": True}, r"args: 'enforced' is not allowed \(did you mean enforce"),
    ],
)
def test_bad_arguments_name_the_field_and_the_allowed_values(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_budget(budget_args(**overrides))


# --- the enforcement Lambda on moto -----------------------------------------------------


def group_sizes(client: Any, name: str) -> tuple[int, int, int]:
    group = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]
    return group["MinSize"], group["DesiredCapacity"], group["MaxSize"]


def group_tags(client: Any, name: str) -> dict[str, str]:
    group = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]
    return {t["Key"]: t["Value"] for t in group["Tags"]}


@pytest.fixture
def groups(aws_client: Any, fleet_groups: Any) -> Any:
    asg, ec2 = aws_client("autoscaling"), aws_client("ec2")
    vision = fleet_groups(asg, ec2, fleet="vision-train", desired=3, maximum=5)
    other = fleet_groups(asg, ec2, fleet="other-train", desired=2, maximum=2, project="other")
    asg.update_auto_scaling_group(AutoScalingGroupName=vision[1], DesiredCapacity=1)
    return asg, vision, other


def test_enforcer_scales_the_projects_groups_to_zero_and_records_them(groups: Any) -> None:
    asg, vision, other = groups
    record = budget_enforcer.enforce(asg, "vision", "budget at 100%")
    assert {a["group"] for a in record["groups"]} == set(vision)
    for name, before in zip(vision, [(0, 3, 5), (0, 1, 5)], strict=True):
        assert group_sizes(asg, name) == (0, 0, 5)
        recorded = json.loads(group_tags(asg, name)[budget_enforcer.ENFORCED_TAG])
        assert (recorded["min"], recorded["desired"], recorded["max"]) == before
        assert recorded["reason"] == "budget at 100%"
    assert group_sizes(asg, other[0]) == (0, 2, 2)  # another project's fleet is untouched
    assert budget_enforcer.ENFORCED_TAG not in group_tags(asg, other[0])


def test_enforcer_is_idempotent(groups: Any) -> None:
    asg, vision, _ = groups
    budget_enforcer.enforce(asg, "vision", "first")
    first = group_tags(asg, vision[0])[budget_enforcer.ENFORCED_TAG]
    again = budget_enforcer.enforce(asg, "vision", "second")
    assert [a["changed"] for a in again["groups"]] == [False, False]
    assert group_tags(asg, vision[0])[budget_enforcer.ENFORCED_TAG] == first  # sizes kept


def test_enforced_fleet_is_held_at_zero_by_the_fallback_controller(groups: Any) -> None:
    from datetime import UTC, datetime, timedelta

    asg, vision, _ = groups
    budget_enforcer.enforce(asg, "vision", "budget")
    record = fallback_controller.reconcile(
        asg, vision[0], vision[1], timedelta(minutes=10), now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert record["decision"]["reason"].startswith("budget enforced")
    assert group_sizes(asg, vision[0])[1] == 0 and group_sizes(asg, vision[1])[1] == 0


def test_handler_reports_to_the_alerts_topic(
    groups: Any, aws_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns, sqs = aws_client("sns"), aws_client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("PROJECT", "vision")
    monkeypatch.setenv("ALERTS_TOPIC_ARN", topic)
    event = {"Records": [{"Sns": {"Subject": "AWS Budgets: vision-budget has exceeded"}}]}
    record = budget_enforcer.handler(event, None)
    assert all(a["recorded"]["reason"].startswith("AWS Budgets") for a in record["groups"])
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert body["Subject"] == "finops: budget enforced for vision: 2 group(s) to zero"
    assert json.loads(body["Message"])["project"] == "vision"


# --- account budgets (no project) -------------------------------------------------------------


@pytest.fixture(scope="module")
def account_run() -> StackRun:
    return run_components(
        lambda: ProjectBudget("aws-account-budget", budget_args(project=None, enforce=False))
    )


def test_account_budget_has_no_cost_filter_and_the_same_notifications(
    account_run: StackRun,
) -> None:
    budget = only(account_run, BUDGET).inputs
    assert "costFilters" not in budget  # every cost of the account counts
    notifications = {(n["notificationType"], n["threshold"]) for n in budget["notifications"]}
    # as a project budget: ACTUAL at each threshold, FORECASTED once at 100
    assert notifications == {("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)}
    # one AWS-services anomaly monitor per account: none is created here
    assert not account_run.of_type("aws:costexplorer/anomalyMonitor:AnomalyMonitor")
    assert untagged(account_run, workload=False) == []


def test_account_budget_cannot_enforce() -> None:
    with pytest.raises(ValueError, match="enforce: True is not allowed; enforcement scales"):
        plan_budget(budget_args(project=None, enforce=True))
