"""finops:gcp:ProjectBudget under the offline engine: label filter, threshold rules, the
Pub/Sub topic and e-mail channels, and bad args."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_engine import STACK_TAGS, assert_gcp_labels, names_of, one, run_components

from aifinops.components.gcp import ProjectBudget, ProjectBudgetArgs
from aifinops.engine import StackRun

BUDGET = "gcp:billing/budget:Budget"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"


def budget_run(**overrides: Any) -> StackRun:
    args: ProjectBudgetArgs = {
        "project": "Vision",
        "monthly_limit_usd": 12500.25,
        "billing_account": "012345-6789AB-CDEF01",
        "notify_emails": ["ml@example.com", "finance@example.com"],
        "thresholds_percent": [100, 50, 80],
        "tags": STACK_TAGS,  # as infra/build_gcp.py passes them: channels get no stack transform
    }
    args.update(overrides)  # type: ignore[typeddict-item]
    return run_components(lambda: ProjectBudget("vision-budget", args))


@pytest.fixture(scope="module")
def run() -> StackRun:
    return budget_run()


def test_budget_counts_the_projects_labelled_spend_per_month(run):
    budget = one(run, "vision-budget-budget").inputs
    assert budget["billingAccount"] == "012345-6789AB-CDEF01"
    assert budget["budgetFilter"]["labels"] == {"project": "vision"}
    assert budget["budgetFilter"]["calendarPeriod"] == "MONTH"
    amount = budget["amount"]["specifiedAmount"]
    assert (amount["currencyCode"], amount["units"], amount["nanos"]) == ("USD", "12500", 250e6)


def test_actual_thresholds_and_a_forecast_rule(run):
    rules = [
        (rule["spendBasis"], rule["thresholdPercent"])
        for rule in one(run, "vision-budget-budget").inputs["thresholdRules"]
    ]
    assert rules == [
        ("CURRENT_SPEND", 0.5),
        ("CURRENT_SPEND", 0.8),
        ("CURRENT_SPEND", 1.0),
        ("FORECASTED_SPEND", 1.0),
    ]


def test_updates_go_to_the_topic_and_one_email_channel_per_address(run):
    rule = one(run, "vision-budget-budget").inputs["allUpdatesRule"]
    assert rule["pubsubTopic"] == one(run, "vision-budget-alerts").id
    channels = run.of_type(CHANNEL)
    assert sorted(rule["monitoringNotificationChannels"]) == sorted(c.id for c in channels)
    assert sorted(c.inputs["labels"]["email_address"] for c in channels) == [
        "finance@example.com",
        "ml@example.com",
    ]
    assert {c.inputs["type"] for c in channels} == {"email"}


def test_topic_and_channels_carry_labels(run):
    assert assert_gcp_labels(run, workload=False) == 1  # the topic
    assert names_of(run, BUDGET) == ["vision-budget-budget"]
    for channel in run.of_type(CHANNEL):
        # a channel's `labels` are its configuration; its cost labels are `user_labels`
        assert set(channel.inputs["labels"]) == {"email_address"}
        assert channel.inputs["userLabels"] == {
            "project": "vision",
            "team": "ml-platform",
            "environment": "dev",
        }


def test_forecast_rule_can_be_turned_off():
    run = budget_run(forecast_threshold_percent=0)
    bases = {r["spendBasis"] for r in one(run, "vision-budget-budget").inputs["thresholdRules"]}
    assert bases == {"CURRENT_SPEND"}


BASE: dict[str, Any] = {
    "project": "vision",
    "monthly_limit_usd": 100.0,
    "billing_account": "012345-6789AB-CDEF01",
    "notify_emails": ["a@example.com"],
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"billing_account": "billingAccounts/0123"}, "is not a Cloud Billing account id"),
        ({"notify_emails": []}, "1 to 5 addresses"),
        ({"notify_emails": [f"u{i}@example.com" for i in range(6)]}, "1 to 5 addresses"),
        ({"notify_emails": ["not-an-address"]}, "'not-an-address' is not an e-mail"),
        (
            {"thresholds_percent": [0]},
            r"thresholds_percent: 0 is not allowed; allowed: percent in \(0, 1000\]",
        ),
        (
            {"thresholds_percent": []},
            r"thresholds_percent: \[\] is not allowed; allowed: 1 or more",
        ),
        ({"monthly_limit_usd": 0}, "monthly_limit_usd: 0 is not allowed; allowed: USD above 0"),
        ({"monthly_limit_usd": "100"}, "monthly_limit_usd: '100' is not allowed"),
        ({"project": ""}, "project: '' is not allowed; a Project tag value, or None"),
    ],
)
def test_bad_args_are_refused_with_the_field_and_value(overrides, message):
    with pytest.raises(ValueError, match=message) as caught:
        ProjectBudget("bad", {**BASE, **overrides})  # type: ignore[typeddict-item]
    assert "finops:gcp:ProjectBudget 'bad'" in str(caught.value)


def test_the_budget_is_created_with_a_quota_project_as_user_credentials_require(run):
    """The Billing Budgets API refuses user credentials without a quota project (403): the
    budget's provider sends `billing_project` with `user_project_override`."""
    (provider,) = run.of_type("pulumi:providers:gcp")
    assert provider.name == "vision-budget-billing-provider"
    assert provider.inputs["billingProject"] == "finops-test"  # the stack's gcp:project
    assert provider.inputs["userProjectOverride"] == "true"  # provider inputs travel as text
    budget = one(run, "vision-budget-budget")
    assert budget.options["provider"].startswith(f"{provider.urn}::")
    topic = one(run, "vision-budget-alerts")
    assert not topic.options.get("provider")  # the rest keeps the component's provider


def test_a_given_billing_project_and_opting_out() -> None:
    (provider,) = budget_run(billing_project="billing-host").of_type("pulumi:providers:gcp")
    assert provider.inputs["billingProject"] == "billing-host"
    plain = budget_run(user_project_override=False)
    assert plain.of_type("pulumi:providers:gcp") == []
    assert not one(plain, "vision-budget-budget").options.get("provider")


def test_without_project_the_budget_covers_the_whole_gcp_project():
    """A billing-account budget scoped to the stack's project (by number, as the Budget API
    wants it), no label filter: unlabelled spend counts too."""
    run = budget_run(project=None)
    budget = one(run, "vision-budget-budget").inputs
    assert budget["budgetFilter"]["projects"] == ["projects/123456789012"]
    assert "labels" not in budget["budgetFilter"]
    assert budget["displayName"] == "finops GCP project monthly"
    assert "gcp:organizations/getProject:getProject" in run.invokes
