"""`finops:azure:ProjectBudget`: a monthly Azure consumption budget for one project's tagged spend,
or without `project` for the whole subscription.

What it creates (children named `<name>-<role>`):

- `<name>-budget`: an `azure-native:consumption:Budget` on the subscription
  (`/subscriptions/<id>`, the provider's unless `subscription_id` is given), category Cost,
  time grain Monthly, filtered on the `Project` tag (`filter.tags`: name `Project`, operator
  `In`, the project's value: the tag every component and the stack transform write), with an
  `Actual` notification at each of `thresholds_percent` and one `Forecasted` notification
  at 100 % (the month is on course to exceed the budget), each to `notify_emails`.

Without `project` the budget has no filter and counts all spend of the subscription: for
pipelines that run in a subscription of their own, tagged or not.

Azure allows five notifications per budget, so up to four thresholds; more is refused
naming the field (and, from a stack file, the key `finops:budgets[i].thresholdsPercent`).
The amount is in the billing currency of the subscription (USD for most).

The budget's period starts on the first day of the month it is created in (Azure refuses a
start in a past month); later runs leave the start alone (`ignore_changes` on
`timePeriod`), so a budget is never updated just because the month changed.

Not built on Azure: cost anomaly alerts (no resource in azure-native for them) and
enforcement (scaling the project's scale sets to zero would be an action group and a runbook
or function); `infra/build_azure.py` warns when a budget asks for `enforce`.
"""

import datetime as dt
import hashlib
import re
from typing import NotRequired, Required, TypedDict

import pulumi
import pulumi_azure_native as azure_native

from aifinops.components import _hosting
from aifinops.config import EMAIL, budget_notifications, notification_limit_problem

TYPE_TOKEN = "finops:azure:ProjectBudget"
PROJECT_TAG = "Project"
MAX_EMAILS = 50  # Azure consumption budgets: contact e-mails per notification
_SUBSCRIPTION = re.compile(r"^[0-9a-fA-F-]{36}$")


class AzureProjectBudgetArgs(TypedDict, total=False):
    """Arguments of `finops:azure:ProjectBudget`."""

    project: NotRequired[str | None]
    """Value of the `Project` tag whose spend the budget counts; absent or None: all spend of
    the subscription."""
    monthly_limit_usd: Required[float]
    """Budget per calendar month, in the subscription's billing currency (USD for most)."""
    notify_emails: Required[list[str]]
    """Addresses e-mailed at every notification (1 to 50)."""
    thresholds_percent: list[float]
    """Percentages of the limit at which actual spend notifies; default [80, 100]; at most 4
    (one Forecasted notification at 100 % comes besides; Azure allows 5)."""
    subscription_id: str
    """Subscription the budget covers; default the provider's."""
    start_date: str
    """First day of the budget's first month, `YYYY-MM-01`; default the current month."""


def _first_of_this_month() -> str:
    today = dt.datetime.now(dt.UTC).date()
    return today.replace(day=1).isoformat()


def budget_name(project: str | None) -> str:
    """The budget's name: 1-63 of letters, digits, `_` and `-` (Microsoft.Consumption), from the
    project value (`subscription` for a subscription budget) and a digest of it, Pulumi project
    and stack (two stacks budgeting the same project on one subscription do not collide)."""
    scope = project if project is not None else "subscription"
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", f"finops-{scope}").strip("-")[:50].rstrip("-")
    # a subscription budget hashes "" so that no Project tag value `subscription` can clash
    digest = hashlib.sha256(
        f"{project or ''}/{pulumi.get_project()}/{pulumi.get_stack()}".encode()
    ).hexdigest()[:8]
    return f"{slug}-{digest}"


def notification_name(kind: str, percent: float) -> str:
    """The key of one notification in the budget's map (`actual_GreaterThan_80_Percent`)."""
    return f"{kind.lower()}_GreaterThan_{percent:g}_Percent".replace(".", "_")


class AzureProjectBudget(pulumi.ComponentResource):
    """A monthly consumption budget on a subscription for one project's tagged spend, or for
    all of the subscription's spend."""

    budget_name: pulumi.Output[str]
    """Name of the budget (`finops-<project>-<digest>`, `finops-subscription-<digest>` without
    project; within Azure's naming rules)."""
    scope: pulumi.Output[str]
    """The subscription scope, `/subscriptions/<id>`."""

    def __init__(
        self,
        name: str,
        args: AzureProjectBudgetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{TYPE_TOKEN} {name!r}"
        project = args.get("project")
        if project is not None and (not isinstance(project, str) or not project.strip()):
            raise ValueError(
                f"{where}: project {project!r}: a Project tag value, or None for the whole "
                "subscription"
            )
        if args.get("monthly_limit_usd") is None:
            raise ValueError(f"{where}: monthly_limit_usd is required")
        limit = float(args["monthly_limit_usd"])
        if limit <= 0:
            raise ValueError(f"{where}: monthly_limit_usd must be > 0 (got {limit:g})")
        emails = list(args.get("notify_emails") or [])
        if not 1 <= len(emails) <= MAX_EMAILS:
            raise ValueError(
                f"{where}: notify_emails needs 1 to {MAX_EMAILS} addresses; got {len(emails)}"
            )
        for email in emails:
            if not EMAIL.match(email):
                raise ValueError(f"{where}: notify_emails: {email!r} is not an e-mail address")
        given = args.get("thresholds_percent")
        thresholds = sorted(float(t) for t in ([80.0, 100.0] if given is None else given))
        if not thresholds or any(not 0 < t <= 1000 for t in thresholds):
            raise ValueError(
                f"{where}: thresholds_percent {thresholds} must be 1 or more percentages in "
                "(0, 1000]"
            )
        problem = notification_limit_problem("azure", thresholds, enforce=False)
        if problem:
            raise ValueError(f"{where}: thresholds_percent: {problem}")
        subscription = args.get("subscription_id")
        if subscription and not _SUBSCRIPTION.match(subscription):
            raise ValueError(f"{where}: subscription_id {subscription!r} is not a subscription id")
        start = args.get("start_date") or _first_of_this_month()
        if not re.fullmatch(r"\d{4}-\d{2}-01", start):
            raise ValueError(f"{where}: start_date {start!r} must be the first of a month")

        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        scope: pulumi.Input[str]
        if subscription:
            scope = f"/subscriptions/{subscription}"
        else:
            client = azure_native.authorization.get_client_config_output(
                opts=pulumi.InvokeOptions(parent=self)
            )
            scope = client.subscription_id.apply(lambda sub: f"/subscriptions/{sub}")
        notifications = {
            notification_name(kind, percent): azure_native.consumption.NotificationArgs(
                enabled=True,
                operator=azure_native.consumption.OperatorType.GREATER_THAN,
                threshold=percent,
                threshold_type=(
                    azure_native.consumption.ThresholdType.ACTUAL
                    if kind == "ACTUAL"
                    else azure_native.consumption.ThresholdType.FORECASTED
                ),
                contact_emails=emails,
            )
            for kind, percent in budget_notifications(thresholds, enforce=False)
        }
        budget = azure_native.consumption.Budget(
            f"{name}-budget",
            azure_native.consumption.BudgetArgs(
                budget_name=budget_name(project),
                scope=scope,
                amount=limit,
                category=azure_native.consumption.CategoryType.COST,
                time_grain=azure_native.consumption.TimeGrainType.MONTHLY,
                time_period=azure_native.consumption.BudgetTimePeriodArgs(
                    start_date=f"{start}T00:00:00Z"
                ),
                filter=(
                    azure_native.consumption.BudgetFilterArgs(
                        tags=azure_native.consumption.BudgetComparisonExpressionArgs(
                            name=PROJECT_TAG,
                            operator=azure_native.consumption.BudgetOperatorType.IN_,
                            values=[project],
                        )
                    )
                    if project is not None
                    else None  # the whole subscription
                ),
                notifications=notifications,
            ),
            # the start is fixed when the budget is created; a new month is no change
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["timePeriod"]),
        )
        self.budget_name = budget.name
        self.scope = pulumi.Output.from_input(scope)
        self.register_outputs({"budget_name": self.budget_name, "scope": self.scope})
