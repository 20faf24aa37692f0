"""examples/Pulumi.serverless.yaml through the real program (infra/) offline: one of each
serverless option and account budget, priced in the preview for the stated traffic against
hand-computed figures, the serving advice, and budget-required satisfied by account budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops import cost
from aifinops.config import StackConfig
from aifinops.engine import StackRun
from aifinops.engine.stack import run_stack
from aifinops.policies.stack import evaluate_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "Pulumi.serverless.yaml"


@pytest.fixture(scope="module")
def stack() -> tuple[StackConfig, StackRun]:
    _, config, run = run_stack(str(EXAMPLE), ROOT)
    return config, run


def test_one_of_each_option_and_account_budget(stack: tuple[StackConfig, StackRun]) -> None:
    _, run = stack
    components = sorted((r.type, r.name) for r in run.resources if not r.custom)
    assert components == [
        ("finops:aws:InferenceEndpoint", "intent"),
        ("finops:aws:ProjectBudget", "aws-account-budget"),
        ("finops:aws:ServerlessInferenceEndpoint", "faq-embed"),
        ("finops:azure:ProjectBudget", "azure-account-budget"),
        ("finops:gcp:ProjectBudget", "gcp-account-budget"),
        ("finops:gcp:ServerlessInferenceEndpoint", "chat-l4"),
    ]
    (aws_budget,) = run.of_type("aws:budgets/budget:Budget")
    assert "costFilters" not in aws_budget.inputs
    (gcp_budget,) = run.of_type("gcp:billing/budget:Budget")
    assert gcp_budget.inputs["budgetFilter"]["projects"] == ["projects/123456789012"]


def test_preview_prices_each_endpoint_for_its_stated_traffic(
    stack: tuple[StackConfig, StackRun],
) -> None:
    config, run = stack
    report = cost.estimate(run, config)
    by_name = {c.name: c for c in report.resources}
    # 100,000 x 0.8 s x 3 GB x $0.00002/GB-s
    assert by_name["faq-embed-config"].monthly_usd == pytest.approx(4.80)
    # 2,000 x (3 s + 900 s idle) = 1,806,000 s x (0.0001867 L4 + 4 x 0.000018 + 16 x 0.000002)
    assert by_name["chat-l4-service"].monthly_usd == pytest.approx(1_806_000 * 0.0002907)
    # provisioned: 1 x ml.inf2.xlarge $0.99/h x 730 h
    assert by_name["intent-config"].monthly_usd == pytest.approx(722.70)
    stated = [a for a in report.assumptions if "as stated" in a]
    assert stated == [
        "faq-embed (serverless): 100,000 requests/month of 800 ms as stated; billed busy time "
        "only (no free tier, payload or cold-start time)",
        "chat-l4 (serverless): 2,000 requests/month of 3000 ms as stated; billed for each "
        "instance's lifetime: every request keeps one up its duration + 15 min idle (GPU: "
        "instance-based billing)",
        "intent (provisioned): 50,000 requests/month of 500 ms as stated; used by the serving "
        "advice only",
    ]


def test_policies_advise_serverless_and_accept_account_budgets(
    stack: tuple[StackConfig, StackRun],
) -> None:
    config, run = stack
    violations = evaluate_run(run, config)
    assert not [v for v in violations if v.policy == "budget-required"]
    advice = {v.resource: v.message for v in violations if v.policy == "inference-on-cheaper-chip"}
    assert advice["intent-config"].startswith(
        "for 50,000 requests/month of 500 ms, serverless (SageMaker serverless 3072 MB) is the "
        "cheapest that fits 3 GiB: $1.50/month against $722.70 for provisioned now"
    )
    # serverless is already the cheapest for faq-embed: nothing to say
    assert "faq-embed-config" not in advice
