"""`finops:gcp:ProjectBudget`: a monthly Cloud Billing budget for one project's labelled spend.

What it creates (children named `<name>-<role>`):

- `<name>-budget`: a `gcp.billing.Budget` on the billing account, filtered to resources
  labelled `project=<project>` (the GCP spelling of the `Project` tag every component and the
  stack transform write), a calendar-month amount in USD, one `CURRENT_SPEND` threshold rule
  per `thresholds_percent` and one `FORECASTED_SPEND` rule at `forecast_threshold_percent`
  (100 by default: warn when the month is on course to exceed the budget).
- `<name>-alerts`: a Pub/Sub topic that receives every budget update (schema 1.0), for
  automation (Cloud Billing grants itself publish rights on it).
- `<name>-email-<i>`: one e-mail notification channel per address (at most 5, the budget
  API's limit), in the project's Cloud Monitoring.

- `<name>-billing-provider`: the provider the budget is created with, with `billing_project`
  (default: the project holding the topic) and `user_project_override = true`. The Billing
  Budgets API refuses calls made with user credentials (`gcloud auth application-default
  login`) unless they name a quota project: without this a first `pulumi up` by a person fails
  with 403. The provider takes the stack's `gcp:credentials`, `gcp:accessToken` and
  `gcp:impersonateServiceAccount` when set; `user_project_override=False` builds the budget
  with the component's own provider instead.

The billing account is an argument: the infra program reads it from the stack config key
`finops:gcpBillingAccount` (see infra/build_gcp.py). The budget only sees costs of resources
that carry the label; unlabelled spend of the same project is not counted.

Without `project` the budget counts all spend of the GCP project `project_id` on the billing
account (`budget_filter.projects = ["projects/<number>"]`, no label filter): for pipelines that
run in a project of their own, labelled or not. The same thresholds and notifications apply.

Cost anomaly alerts are not created: pulumi-gcp 10.2.0 has no resource for Cloud Billing's
anomaly detection (set up in the Billing console); the forecast rule is the early warning.
Enforcement (scale the project's fleets to zero at 100 %) is not built on GCP: it would be a
Cloud Function subscribed to the topic. The budget alerts only.
"""

import re
from typing import Required, TypedDict

import pulumi
import pulumi_gcp as gcp

from aifinops import tags as tag_schema
from aifinops.components import _args, _hosting
from aifinops.components.gcp import _common
from aifinops.config import EMAIL

MAX_CHANNELS = 5
_BILLING_ACCOUNT = re.compile(r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")


class GcpProjectBudgetArgs(TypedDict, total=False):
    """Arguments of `finops:gcp:ProjectBudget`."""

    project: str | None
    """Value of the `Project` tag whose spend the budget counts (label `project`); absent or
    None: all spend of the GCP project `project_id`."""
    monthly_limit_usd: Required[float]
    """Budget per calendar month, USD."""
    billing_account: Required[str]
    """Cloud Billing account id, `XXXXXX-XXXXXX-XXXXXX`."""
    notify_emails: Required[list[str]]
    """Addresses e-mailed at each threshold (1 to 5)."""
    thresholds_percent: list[float]
    """Percentages of the limit at which actual spend alerts; default [80, 100]."""
    forecast_threshold_percent: float
    """Percentage of the limit that forecast spend alerts at; default 100, 0 turns it off."""
    project_id: str
    """GCP project holding the topic and channels; default the stack's `gcp:project`."""
    billing_project: str
    """Quota project of the Billing Budgets API calls (the caller needs
    `serviceusage.services.use` on it and the API enabled there); default `project_id`."""
    user_project_override: bool
    """Create the budget with a provider that sends `billing_project` as the quota project,
    as user credentials require; default True."""
    tags: dict[str, str]
    """Extra canonical tags written as labels on the topic and channels."""


_COMPONENT = "finops:gcp:ProjectBudget"


def _amount(usd: float) -> gcp.billing.BudgetAmountSpecifiedAmountArgs:
    units = int(usd)
    return gcp.billing.BudgetAmountSpecifiedAmountArgs(
        currency_code="USD", units=str(units), nanos=round((usd - units) * 1e9)
    )


def billing_provider(
    name: str, billing_project: pulumi.Input[str], parent: pulumi.Resource
) -> gcp.Provider:
    """A provider that bills Budgets API calls to `billing_project` (`user_project_override`),
    with the stack's credential settings: an explicit provider does not read `gcp:` config."""
    stack_config = pulumi.Config("gcp")
    return gcp.Provider(
        name,
        billing_project=billing_project,
        user_project_override=True,
        project=stack_config.get("project"),
        credentials=stack_config.get_secret("credentials"),
        access_token=stack_config.get_secret("accessToken"),
        impersonate_service_account=stack_config.get("impersonateServiceAccount"),
        opts=pulumi.ResourceOptions(parent=parent),
    )


class GcpProjectBudget(pulumi.ComponentResource):
    """A monthly budget for one project's labelled GCP spend, alerting by e-mail and Pub/Sub."""

    budget_name: pulumi.Output[str]
    """Resource name of the budget (`billingAccounts/.../budgets/...`)."""
    topic: pulumi.Output[str]
    """Id of the Pub/Sub topic receiving budget updates."""
    label_filter: pulumi.Output[dict[str, str]]
    """The label the budget filters on (`{"project": "<value>"}`; {} for a whole project)."""

    def __init__(
        self,
        name: str,
        args: GcpProjectBudgetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{_COMPONENT} {name!r}"
        project = args.get("project")
        if project is not None and (not isinstance(project, str) or not project):
            raise _args.invalid(
                "project", project, "a Project tag value, or None for the whole GCP project",
                where=where,
            )  # fmt: skip
        limit = _args.number(
            "monthly_limit_usd",
            _args.require(args, "monthly_limit_usd", where=where),
            "USD above 0",
            above=0,
            where=where,
        )
        billing_account = str(args.get("billing_account") or "")
        if not _BILLING_ACCOUNT.match(billing_account):
            raise ValueError(
                f"{where}: billing_account {billing_account!r} is not a Cloud Billing account "
                "id like 012345-6789AB-CDEF01"
            )
        emails = list(args.get("notify_emails") or [])
        if not 1 <= len(emails) <= MAX_CHANNELS:
            raise ValueError(
                f"{where}: notify_emails needs 1 to {MAX_CHANNELS} addresses (the budget "
                f"API's channel limit); got {len(emails)}"
            )
        for email in emails:
            if not EMAIL.match(email):
                raise ValueError(f"{where}: notify_emails: {email!r} is not an e-mail address")
        given = args.get("thresholds_percent")
        if given is not None and not given:
            raise _args.invalid(
                "thresholds_percent", given, "allowed: 1 or more percentages", where=where
            )
        thresholds = sorted(
            _args.number(
                "thresholds_percent", t, "percent in (0, 1000]", above=0, at_most=1000, where=where
            )
            for t in ([80.0, 100.0] if given is None else given)
        )
        forecast = _args.number(
            "forecast_threshold_percent",
            args.get("forecast_threshold_percent", 100.0),
            "percent in [0, 1000] (0 turns the forecast rule off)",
            at_least=0,
            at_most=1000,
            where=where,
        )

        super().__init__(_hosting.type_token(type(self), _COMPONENT), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project_id = _common.project_of(args.get("project_id"))
        tags = dict(args.get("tags") or {})
        if project is not None:
            tags["Project"] = project
        labels = _common.labels(tags, None)
        label_filter = tag_schema.spell({"Project": project}, "gcp") if project else {}
        scope = project or "GCP project"

        topic = gcp.pubsub.Topic(f"{name}-alerts", project=project_id, labels=labels, opts=child)
        channels = [
            gcp.monitoring.NotificationChannel(
                f"{name}-email-{index}",
                project=project_id,
                type="email",
                display_name=f"{scope} budget: {email}",
                # `labels` of a channel is its configuration; cost labels go in user_labels.
                labels={"email_address": email},
                user_labels=labels,
                opts=child,
            )
            for index, email in enumerate(emails)
        ]
        threshold_rules = [
            gcp.billing.BudgetThresholdRuleArgs(
                threshold_percent=percent / 100.0, spend_basis="CURRENT_SPEND"
            )
            for percent in thresholds
        ]
        if forecast > 0:
            threshold_rules.append(
                gcp.billing.BudgetThresholdRuleArgs(
                    threshold_percent=forecast / 100.0, spend_basis="FORECASTED_SPEND"
                )
            )
        budget_opts = child
        if args.get("user_project_override", True) is not False:
            budget_opts = pulumi.ResourceOptions(
                parent=self,
                provider=billing_provider(
                    f"{name}-billing-provider", args.get("billing_project") or project_id, self
                ),
            )
        projects = None
        if project is None:
            # the Budget API filters projects by number, not id
            number = gcp.organizations.get_project_output(
                project_id=project_id, opts=pulumi.InvokeOptions(parent=self)
            ).number
            projects = [pulumi.Output.concat("projects/", number)]
        budget = gcp.billing.Budget(
            f"{name}-budget",
            billing_account=billing_account,
            display_name=f"finops {scope} monthly"[:60],
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                labels=label_filter or None,
                projects=projects,
                calendar_period="MONTH",
                credit_types_treatment="INCLUDE_ALL_CREDITS",
            ),
            amount=gcp.billing.BudgetAmountArgs(specified_amount=_amount(limit)),
            threshold_rules=threshold_rules,
            all_updates_rule=gcp.billing.BudgetAllUpdatesRuleArgs(
                pubsub_topic=topic.id,
                schema_version="1.0",
                monitoring_notification_channels=[channel.id for channel in channels],
            ),
            opts=budget_opts,
        )

        self.budget_name = budget.name
        self.topic = topic.id
        self.label_filter = pulumi.Output.from_input(label_filter)
        self.register_outputs(
            {
                "budget_name": self.budget_name,
                "topic": self.topic,
                "label_filter": self.label_filter,
            }
        )
