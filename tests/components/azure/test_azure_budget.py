"""finops:azure:ProjectBudget under the offline engine, and Azure budget entries through the
real program: they become consumption budgets on the Project tag (they were dropped, and then
`budget-required` told the user to add the entry they had written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure_engine import one, run_components

from aifinops.components.azure import ProjectBudget
from aifinops.engine.stack import run_stack
from aifinops.errors import ConfigError
from aifinops.policies import evaluate_stack

BUDGET = "azure-native:consumption:Budget"


def budget_args(**overrides: Any) -> dict[str, Any]:
    return {
        "project": "vision",
        "monthly_limit_usd": 3000,
        "notify_emails": ["ml-platform@example.com"],
        "thresholds_percent": [50, 80, 100],
        "start_date": "2026-01-01",
        **overrides,
    }


@pytest.fixture(scope="module")
def budget() -> dict[str, Any]:
    run = run_components(lambda: ProjectBudget("vision-budget", budget_args()))  # type: ignore[arg-type]
    return {"inputs": one(run, "vision-budget-budget").inputs, "run": run}


def test_monthly_cost_budget_on_the_subscription_filtered_on_the_project_tag(budget) -> None:
    inputs = budget["inputs"]
    assert inputs["scope"] == "/subscriptions/00000000-0000-0000-0000-000000000000"
    assert (inputs["amount"], inputs["category"], inputs["timeGrain"]) == (3000, "Cost", "Monthly")
    assert inputs["filter"] == {"tags": {"name": "Project", "operator": "In", "values": ["vision"]}}
    assert inputs["timePeriod"] == {"startDate": "2026-01-01T00:00:00Z"}
    resource = one(budget["run"], "vision-budget-budget")
    assert resource.options["ignoreChanges"] == ["timePeriod"]  # a new month is no change


def test_actual_at_each_threshold_and_forecasted_once(budget) -> None:
    notifications = budget["inputs"]["notifications"]
    assert {(n["thresholdType"], n["threshold"]) for n in notifications.values()} == {
        ("Actual", 50),
        ("Actual", 80),
        ("Actual", 100),
        ("Forecasted", 100),
    }
    assert set(notifications) == {
        "actual_GreaterThan_50_Percent",
        "actual_GreaterThan_80_Percent",
        "actual_GreaterThan_100_Percent",
        "forecasted_GreaterThan_100_Percent",
    }
    for notification in notifications.values():
        assert notification["enabled"] is True
        assert notification["operator"] == "GreaterThan"
        assert notification["contactEmails"] == ["ml-platform@example.com"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"thresholds_percent": [50, 60, 70, 80, 90]},
            r"thresholds_percent: 5 thresholds make 6 notifications .* an Azure budget allows 5: "
            r"give at most 4 thresholds",
        ),
        ({"notify_emails": ["nobody"]}, "'nobody' is not an e-mail address"),
        ({"monthly_limit_usd": 0}, "monthly_limit_usd must be > 0"),
        ({"start_date": "2026-01-15"}, "must be the first of a month"),
    ],
)
def test_bad_arguments_name_the_field(overrides, message) -> None:
    with pytest.raises(Exception, match=message):
        run_components(lambda: ProjectBudget("b", budget_args(**overrides)))  # type: ignore[arg-type]


STACK = """\
config:
  azure-native:location: eastus
  finops:tags: {{Project: vision, Team: ml-platform, Environment: dev}}
  finops:trainingFleets:
    - name: azure-train
      cloud: azure
      instanceTypes: [Standard_NC4as_T4_v3]
      nodes: {{min: 0, desired: 1, max: 2}}
      modelVersion: v1
  finops:budgets:
    - project: vision
      cloud: azure
      monthlyLimitUsd: 3000
      thresholdsPercent: {thresholds}
      notify: [ml-platform@example.com]
"""


def test_azure_budget_entries_are_built_and_budget_required_recognises_them(tmp_path) -> None:
    path = tmp_path / "Pulumi.azure.yaml"
    path.write_text(STACK.format(thresholds="[50, 80, 100]"))
    _, config, run = run_stack(str(path), Path(__file__).resolve().parents[3])
    (budget,) = run.of_type(BUDGET)
    assert budget.name == "vision-budget-budget"
    findings = [(f.policy, f.message) for f in evaluate_stack(run, config)]
    assert [f for f in findings if f[0] == "budget-required"] == []


def test_too_many_azure_thresholds_is_one_config_error_naming_the_key(tmp_path) -> None:
    path = tmp_path / "Pulumi.azure.yaml"
    path.write_text(STACK.format(thresholds="[20, 40, 60, 80, 100]"))
    with pytest.raises(ConfigError) as error:
        run_stack(str(path), Path(__file__).resolve().parents[3])
    assert str(error.value) == (
        f"{path}: finops:budgets[0].thresholdsPercent: 5 thresholds make 6 notifications "
        "(ACTUAL at each, FORECASTED once); an Azure budget allows 5: give at most 4 thresholds"
    )


def test_without_project_the_budget_covers_the_whole_subscription() -> None:
    args = budget_args()
    del args["project"]
    run = run_components(lambda: ProjectBudget("azure-account-budget", args))  # type: ignore[arg-type]
    inputs = one(run, "azure-account-budget-budget").inputs
    assert inputs["scope"] == "/subscriptions/00000000-0000-0000-0000-000000000000"
    assert "filter" not in inputs  # no Project tag filter: every cost of the subscription
    assert inputs["budgetName"].startswith("finops-subscription-")
    assert {(n["thresholdType"], n["threshold"]) for n in inputs["notifications"].values()} == {
        ("Actual", 50),
        ("Actual", 80),
        ("Actual", 100),
        ("Forecasted", 100),
    }


def test_a_subscription_budget_entry_satisfies_budget_required(tmp_path) -> None:
    path = tmp_path / "Pulumi.azure.yaml"
    path.write_text(
        STACK.format(thresholds="[80, 100]").replace("- project: vision\n      cloud", "- cloud")
    )
    _, config, run = run_stack(str(path), Path(__file__).resolve().parents[3])
    (budget,) = run.of_type(BUDGET)
    assert budget.name == "azure-account-budget-budget"
    assert "filter" not in budget.inputs
    findings = [(f.policy, f.message) for f in evaluate_stack(run, config)]
    assert [f for f in findings if f[0] == "budget-required"] == []
