"""`finops:aws:ProjectBudget`: a monthly AWS Budgets cost budget on the project's
cost-allocation tag, anomaly detection, and optional enforcement (fleets to zero).

Without `project` it is an account budget: no cost filter, so it counts every cost of the
account (for pipelines that run in an account of their own), with the same ACTUAL and
FORECASTED notifications. It creates no anomaly monitor then: AWS allows one AWS-services
monitor per account and creates one itself in most accounts; subscribe that one."""

import json
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from aifinops import tags as tag_schema
from aifinops.components import _args, _hosting
from aifinops.components.aws import _common
from aifinops.components.aws.lambdas import budget_enforcer
from aifinops.config import (
    EMAIL,
    ENFORCE_AT_PERCENT,
    MAX_BUDGET_NOTIFICATIONS,
    Budget,
    StackConfig,
    budget_notifications,
    notification_limit_problem,
)

TYPE_TOKEN = "finops:aws:ProjectBudget"
PROJECT_TAG = "Project"
MAX_NOTIFICATIONS = MAX_BUDGET_NOTIFICATIONS["aws"]  # botocore: NotificationWithSubscribersList
MAX_EMAILS = 10  # AWS Budgets: e-mail subscribers per notification
# Cost-allocation tags finops resources carry; a budget filter on one of them sees nothing
# until it is activated in the account's billing (lambdas/cost_allocation_tags.py).
COST_ALLOCATION_TAG_KEYS = tag_schema.ALL_KEYS
TAG_ACTIVATION_SCHEDULE = "rate(1 day)"


class AwsProjectBudgetArgs(TypedDict):
    """Arguments of `finops:aws:ProjectBudget`."""

    project: NotRequired[str | None]
    """Value of the `Project` cost-allocation tag the budget follows; absent or None: the
    whole account."""
    monthly_limit_usd: float
    """Monthly cost limit, USD."""
    notify_emails: list[str]
    """E-mail addresses for every notification (at most 10)."""
    tags: dict[str, str]
    """The stack's tags, written on every taggable child."""
    thresholds_percent: NotRequired[list[float]]
    """Notification thresholds, percent of the limit, each an ACTUAL notification; one
    FORECASTED notification at 100 % besides (default 80, 100; AWS Budgets allows 10
    notifications per budget, so up to 9 thresholds, 8 with `enforce` and no 100)."""
    enforce: NotRequired[bool]
    """At 100 % of ACTUAL cost, scale every Auto Scaling group tagged `Project=<project>` to
    zero (default false)."""
    anomaly_threshold_usd: NotRequired[float | None]
    """Smallest total impact of a cost anomaly worth an alert, USD (default 5 % of the limit,
    at least 10)."""
    activate_cost_allocation_tags: NotRequired[bool]
    """Activate the finops tag keys as cost-allocation tags (default true): now for keys
    billing has seen, daily for the others until all are active; never deactivated. Stacks
    of one account may all do it; false leaves it to another."""


@dataclass(frozen=True)
class BudgetPlan:
    project: str | None
    limit_usd: float
    emails: list[str]
    thresholds: list[float]
    enforce: bool
    anomaly_threshold_usd: float
    activate_tags: bool

    def notifications(self) -> list[tuple[str, float]]:
        """(type, threshold) pairs: ACTUAL at every threshold, FORECASTED once at 100 %, and
        ACTUAL 100 % for enforcement when it is missing."""
        return budget_notifications(self.thresholds, self.enforce)


def plan_budget(args: AwsProjectBudgetArgs) -> BudgetPlan:
    """Validate `args` (ValueError naming the field, the value and what is allowed)."""
    raw: dict[str, Any] = dict(args)
    _args.known_keys(raw, AwsProjectBudgetArgs.__annotations__)
    project = str(raw["project"]) if raw.get("project") is not None else None
    if project is not None and not project:
        raise _args.invalid("project", project, "a Project tag value, or None for the account")
    _common.check_tags(raw.get("tags"), workload=False)
    limit = _args.number(
        "monthly_limit_usd", raw.get("monthly_limit_usd"), "a number of USD above 0", above=0
    )
    emails = list(raw.get("notify_emails") or [])
    if not emails or len(emails) > MAX_EMAILS:
        raise _args.invalid("notify_emails", emails, f"allowed: 1 to {MAX_EMAILS} addresses")
    for i, email in enumerate(emails):
        if not EMAIL.match(str(email)):
            raise _args.invalid(f"notify_emails[{i}]", email, "allowed: an e-mail address")
    thresholds = sorted(float(t) for t in raw.get("thresholds_percent") or [80.0, 100.0])
    for t in thresholds:
        if not 0 < t <= 1000:
            raise _args.invalid("thresholds_percent", t, "allowed: percent in (0, 1000]")
    anomaly = raw.get("anomaly_threshold_usd")
    if anomaly is None:
        anomaly = max(10.0, round(limit * 0.05, 2))
    anomaly = _args.number("anomaly_threshold_usd", anomaly, "USD above 0", above=0)
    plan = BudgetPlan(
        project=project,
        limit_usd=limit,
        emails=emails,
        thresholds=list(dict.fromkeys(thresholds)),
        enforce=bool(raw.get("enforce", False)),
        anomaly_threshold_usd=anomaly,
        activate_tags=bool(raw.get("activate_cost_allocation_tags", True)),
    )
    if plan.enforce and project is None:
        raise _args.invalid(
            "enforce",
            True,
            "enforcement scales the groups tagged with `project` to zero: give project, or "
            "leave enforce off on an account budget",
        )
    problem = notification_limit_problem("aws", plan.thresholds, plan.enforce)
    if problem:
        raise _args.invalid("thresholds_percent", plan.thresholds, problem)
    return plan


def cost_filter_value(project: str) -> str:
    """The Budgets `TagKeyValue` filter of a project: `user:Project$<project>`."""
    return f"user:{PROJECT_TAG}${project}"


def tag_activation_statements(schedule_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The activation step may read and activate cost-allocation tags (no resource-level
    permissions exist for them) and disable its own schedule."""
    return [
        {
            "Sid": "CostAllocationTags",
            "Effect": "Allow",
            "Action": ["ce:ListCostAllocationTags", "ce:UpdateCostAllocationTagsStatus"],
            "Resource": "*",
        },
        {
            "Sid": "StopOwnSchedule",
            "Effect": "Allow",
            "Action": "events:DisableRule",
            "Resource": schedule_arn,
        },
    ]


def enforcer_policy_statements(
    project: str, alerts_topic_arn: pulumi.Input[str], key_arn: pulumi.Input[str]
) -> list[dict[str, Any]]:
    """The enforcer may resize and tag only groups tagged with its project."""
    own_groups = {"StringEquals": {f"autoscaling:ResourceTag/{PROJECT_TAG}": project}}
    return [
        {
            "Sid": "ReadGroups",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeLifecycleHooks",
            ],
            "Resource": "*",  # Describe* has no resource-level permissions
        },
        {
            "Sid": "StopProjectGroups",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": "*",
            "Condition": own_groups,
        },
        {
            "Sid": "RecordOnProjectGroups",
            "Effect": "Allow",
            "Action": "autoscaling:CreateOrUpdateTags",
            "Resource": "*",
            "Condition": {
                **own_groups,
                "ForAllValues:StringEquals": {"aws:TagKeys": [budget_enforcer.ENFORCED_TAG]},
            },
        },
        {
            "Sid": "ReportToAlerts",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": alerts_topic_arn,
        },
        {
            "Sid": "EncryptedTopic",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": key_arn,
        },
    ]


class AwsProjectBudget(pulumi.ComponentResource):
    """A project's monthly cost budget (ACTUAL notifications at each threshold and one
    FORECASTED, to e-mail and an encrypted SNS topic), a cost anomaly monitor, and optional
    enforcement."""

    budget_name: pulumi.Output[str]
    alerts_topic_arn: pulumi.Output[str]
    """SNS topic of every notification; subscribe chat or paging to it."""
    anomaly_monitor_arn: pulumi.Output[str]
    enforcer_function_name: pulumi.Output[str]
    """The enforcement Lambda ("" without `enforce`)."""
    cost_allocation_note: pulumi.Output[str]
    """What must be true in the account for the tag filter to see costs."""
    cost_allocation_report: pulumi.Output[str]
    """The activation step's report at deploy time (JSON: active, pending, ...; "" when
    activation is left to another stack)."""

    def __init__(
        self,
        name: str,
        args: AwsProjectBudgetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _common.check_name(name)
        plan = plan_budget(args)
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        tags = _common.resource_tags(args["tags"], None)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        key = aws.kms.Key(
            f"{name}-topic-key",
            aws.kms.KeyArgs(
                description=f"finops budget {plan.project or 'account'}: encrypts SNS topics",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=pulumi.Output.all(account, partition).apply(
                    lambda found: _key_policy(found[0], found[1])
                ),
                tags=tags,
            ),
            opts=child,
        )
        alerts, alerts_policy = self._topic(name, "alerts", key, account, tags)
        # AWS Budgets and anomaly subscriptions check at creation that they may publish
        published = pulumi.ResourceOptions(parent=self, depends_on=[alerts_policy])
        enforcement = None
        if plan.enforce:
            enforcement, enforcement_policy = self._topic(name, "enforcement", key, account, tags)
            published = pulumi.ResourceOptions(
                parent=self, depends_on=[alerts_policy, enforcement_policy]
            )

        notifications = []
        for kind, threshold in plan.notifications():
            target = alerts
            if enforcement is not None and kind == "ACTUAL" and threshold == ENFORCE_AT_PERCENT:
                target = enforcement  # one SNS subscriber per notification (AWS Budgets)
            notifications.append(
                aws.budgets.BudgetNotificationArgs(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    subscriber_email_addresses=plan.emails,
                    subscriber_sns_topic_arns=[target.arn],
                )
            )
        budget = aws.budgets.Budget(
            f"{name}-budget",
            aws.budgets.BudgetArgs(
                budget_type="COST",
                time_unit="MONTHLY",
                limit_amount=f"{plan.limit_usd:.2f}",
                limit_unit="USD",
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(
                        name="TagKeyValue", values=[cost_filter_value(plan.project)]
                    )
                ]
                if plan.project is not None
                else None,  # an account budget counts every cost of the account
                notifications=notifications,
                tags=tags,
            ),
            opts=published,
        )
        self.anomaly_monitor_arn = pulumi.Output.from_input("")
        if plan.project is not None:
            self.anomaly_monitor_arn = self._anomaly_alerts(name, plan, tags, alerts, alerts_policy)
        note = (
            f"budget {plan.project}: filters on cost-allocation tag user:{PROJECT_TAG}, which "
            "sees no cost until the tag key is active in the account's billing (once per "
            "account; a key can be activated only after it has appeared on a bill, up to "
            "24 hours after the first tagged resource)"
            if plan.project is not None
            else "account budget: counts every cost of the account (no filter); no anomaly "
            "monitor is created (one AWS-services monitor per account: subscribe the default)"
        )
        if plan.activate_tags:
            # Only keys that appear on resources (CostCenter is optional in the tag schema).
            keys = [
                k
                for k in COST_ALLOCATION_TAG_KEYS
                if k in tags or k in tag_schema.required_keys(workload=True)
            ]
            self.cost_allocation_report = self._activate_tags(name, keys, tags)
            note += (
                f"; this stack activates {', '.join(keys)} as soon as billing has seen them "
                "(checked now and daily; never deactivated, not even by pulumi destroy)"
            )
        else:
            self.cost_allocation_report = pulumi.Output.from_input("")
            note += "; activation is left to another stack (activate_cost_allocation_tags=false)"
        pulumi.log.info(note, resource=self)

        self.enforcer_function_name = pulumi.Output.from_input("")
        if enforcement is not None:
            self.enforcer_function_name = self._enforcer(name, plan, tags, enforcement, alerts, key)
        self.budget_name = budget.name
        self.alerts_topic_arn = alerts.arn
        self.cost_allocation_note = pulumi.Output.from_input(note)
        self.register_outputs(
            {
                "budgetName": self.budget_name,
                "alertsTopicArn": self.alerts_topic_arn,
                "anomalyMonitorArn": self.anomaly_monitor_arn,
                "enforcerFunctionName": self.enforcer_function_name,
                "costAllocationNote": self.cost_allocation_note,
                "costAllocationReport": self.cost_allocation_report,
            }
        )

    def _anomaly_alerts(
        self,
        name: str,
        plan: BudgetPlan,
        tags: dict[str, str],
        alerts: aws.sns.Topic,
        alerts_policy: aws.sns.TopicPolicy,
    ) -> pulumi.Output[str]:
        """A cost anomaly monitor on the project's tag, alerting the topic."""
        child = pulumi.ResourceOptions(parent=self)
        monitor = aws.costexplorer.AnomalyMonitor(
            f"{name}-anomaly-monitor",
            aws.costexplorer.AnomalyMonitorArgs(
                monitor_type="CUSTOM",
                monitor_specification=json.dumps(
                    {
                        "Tags": {
                            "Key": PROJECT_TAG,
                            "Values": [plan.project],
                            "MatchOptions": ["EQUALS"],
                        }
                    }
                ),
                tags=tags,
            ),
            opts=child,
        )
        aws.costexplorer.AnomalySubscription(
            f"{name}-anomaly-subscription",
            aws.costexplorer.AnomalySubscriptionArgs(
                frequency="IMMEDIATE",  # SNS subscribers only; e-mail needs DAILY or WEEKLY
                monitor_arn_lists=[monitor.arn],
                subscribers=[
                    aws.costexplorer.AnomalySubscriptionSubscriberArgs(
                        type="SNS", address=alerts.arn
                    )
                ],
                threshold_expression=aws.costexplorer.AnomalySubscriptionThresholdExpressionArgs(
                    dimension=aws.costexplorer.AnomalySubscriptionThresholdExpressionDimensionArgs(
                        key="ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                        match_options=["GREATER_THAN_OR_EQUAL"],
                        values=[f"{plan.anomaly_threshold_usd:g}"],
                    )
                ),
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[alerts_policy]),
        )
        return monitor.arn

    def _topic(
        self,
        name: str,
        role: str,
        key: aws.kms.Key,
        account: pulumi.Output[str],
        tags: dict[str, str],
    ) -> tuple[aws.sns.Topic, aws.sns.TopicPolicy]:
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-{role}",
            aws.sns.TopicArgs(kms_master_key_id=key.arn, tags=tags),
            opts=child,
        )
        policy = aws.sns.TopicPolicy(
            f"{name}-{role}-policy",
            aws.sns.TopicPolicyArgs(
                arn=topic.arn,
                policy=_common.policy_document(
                    [
                        {
                            "Sid": "BudgetsAndAnomalyAlertsPublish",
                            "Effect": "Allow",
                            "Principal": {
                                "Service": ["budgets.amazonaws.com", "costalerts.amazonaws.com"]
                            },
                            "Action": "SNS:Publish",
                            "Resource": topic.arn,
                            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                        }
                    ]
                ),
            ),
            opts=child,
        )
        return topic, policy

    def _activate_tags(
        self, name: str, keys: list[str], tags: dict[str, str]
    ) -> pulumi.Output[str]:
        """The cost-allocation step (lambdas/cost_allocation_tags.py): a Lambda invoked once by
        this deployment and daily until every key is active. Not a CostAllocationTag
        resource: that fails for keys billing has not seen yet and deactivates the key for
        the whole account when deleted."""
        child = pulumi.ResourceOptions(parent=self)
        schedule = aws.cloudwatch.EventRule(
            f"{name}-cost-tags-daily",
            aws.cloudwatch.EventRuleArgs(
                description=f"finops: activate {', '.join(keys)} once billing has seen them",
                schedule_expression=TAG_ACTIVATION_SCHEDULE,
                tags=tags,
            ),
            opts=child,
        )
        function, _role = _common.lambda_function(
            f"{name}-cost-tags",
            "cost_allocation_tags",
            description="finops: activate cost-allocation tag keys (never deactivates)",
            role_statements=tag_activation_statements(schedule.arn),
            environment={"TAG_KEYS": ",".join(keys), "SCHEDULE_RULE_NAME": schedule.name},
            tags=tags,
            parent=self,
        )
        _common.invoke_on_rule(f"{name}-cost-tags-daily", schedule, function, parent=self)
        invocation = aws.lambda_.Invocation(
            f"{name}-cost-tags-now",
            aws.lambda_.InvocationArgs(
                function_name=function.name,
                input=json.dumps({"TagKeys": keys}),
                # runs again when the keys change; on delete it runs nothing
                triggers={"keys": ",".join(keys)},
            ),
            opts=child,
        )
        return invocation.result

    def _enforcer(
        self,
        name: str,
        plan: BudgetPlan,
        tags: dict[str, str],
        enforcement: aws.sns.Topic,
        alerts: aws.sns.Topic,
        key: aws.kms.Key,
    ) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        project = plan.project
        assert project is not None  # plan_budget refuses enforce without a project
        function, _role = _common.lambda_function(
            f"{name}-enforcer",
            "budget_enforcer",
            description=f"finops budget {project}: scale the project's fleets to zero",
            role_statements=enforcer_policy_statements(project, alerts.arn, key.arn),
            environment={"PROJECT": project, "ALERTS_TOPIC_ARN": alerts.arn},
            tags=tags,
            parent=self,
        )
        permission = aws.lambda_.Permission(
            f"{name}-enforcer-invoke",
            aws.lambda_.PermissionArgs(
                action="lambda:InvokeFunction",
                function=function.name,
                principal="sns.amazonaws.com",
                source_arn=enforcement.arn,
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-enforcer-subscription",
            aws.sns.TopicSubscriptionArgs(
                topic=enforcement.arn, protocol="lambda", endpoint=function.arn
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        return function.name


def _key_policy(account_id: str, partition: str) -> str:
    """The topics' key: the account administers it; Budgets and anomaly alerts encrypt with it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "BudgetsAndAnomalyAlertsEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": ["budgets.amazonaws.com", "costalerts.amazonaws.com"]},
                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


def from_config(
    budget: Budget, config: StackConfig, *, activate_cost_allocation_tags: bool = True
) -> AwsProjectBudgetArgs:
    """Arguments for one `finops:budgets` entry of a stack."""
    return {
        "project": budget.project,
        "monthly_limit_usd": budget.monthly_limit_usd,
        "notify_emails": list(budget.notify),
        "thresholds_percent": list(budget.thresholds_percent),
        "enforce": budget.enforce,
        "tags": config.tags.as_dict(),
        "activate_cost_allocation_tags": activate_cost_allocation_tags,
    }
