"""GCP and Azure components through the real program: the normaliser reads what they create."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops.engine.stack import run_stack
from aifinops.policies import evaluate_stack
from aifinops.policies.stack import resources_of

STACK = (
    Path(__file__).resolve().parents[2] / "tests/fixtures/policies/multicloud/Pulumi.staging.yaml"
)


@pytest.fixture(scope="module")
def stack() -> tuple:
    _, config, run = run_stack(str(STACK))
    return config, run


def test_gcp_and_azure_resources_are_understood(stack) -> None:
    config, run = stack
    facts = {
        r.name: (
            r.kind,
            r.instance_types,
            r.workload,
            r.nodes_desired,
            r.on_demand_percent_above_base,
        )
        for r in resources_of(run, config)
        if r.kind in ("fleet", "tpu", "endpoint")
    }
    assert facts == {
        "gcp-serve-deployment": ("endpoint", ("v5litepod-4",), "inference", 1, 100.0),
        "gcp-train-spot": ("fleet", ("g2-standard-4",), "training", 2, 0.0),
        "gcp-train-on-demand": ("fleet", ("g2-standard-4",), "training", 0, 100.0),
        "azure-train-vmss": ("fleet", ("Standard_NC24ads_A100_v4",), "training", 2, 0.0),
    }
    budgets = [r for r in resources_of(run, config) if r.kind == "budget"]
    assert [(b.name, b.budget_projects, b.budget_limit_usd) for b in budgets] == [
        ("vision-budget-budget", ("vision",), 5000.0)
    ]


def test_multicloud_stack_verdicts(stack) -> None:
    config, run = stack
    # the budget's e-mail notification channel has `labels` (its configuration), not
    # resource labels: the taggability registry leaves it out, so no required-tags here
    found = [(v.policy, v.resource, v.level, v.message) for v in evaluate_stack(run, config)]
    assert found == [
        (
            "stack-cost-ceiling",
            "",
            "mandatory",
            # the scale set's price includes a public IPv4 address per VM (its egress), and
            # the Cloud NAT of the fleet's network is priced per VM behind it
            "estimated $6,023.22/month exceeds the budget of $5,000.00/month by $1,023.22; by "
            "resource: gcp-serve-deployment $3,504.00, azure-train-vmss $2,152.33, gcp-train-spot $361.19, "
            "network-us-central1-nat $5.69",
        )
    ]
