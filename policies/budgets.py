"""Stack rules: every project has a budget, and the stack's cost stays under its ceiling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from aifinops.policies.context import Context
from aifinops.policies.model import BUDGET, Finding, Resource
from aifinops.tags import gcp_label_value

BUDGET_REQUIRED = "budget-required"
COST_CEILING = "stack-cost-ceiling"


@lru_cache(maxsize=4096)
def _fold(project: str) -> str:
    """Compare projects as GCP would store them (`Vision` and `vision` are one project)."""
    return gcp_label_value(project)


# How to add the missing budget, in the language of the resources' source.
_ADD_BUDGET = {
    "pulumi": "add a finops:budgets entry with project: {project}",
    "terraform": "add a budget whose filter covers it (aws_budgets_budget: cost_filter "
    '{{ name = "TagKeyValue", values = ["user:Project${project}"] }}; google_billing_budget: '
    "budget_filter.labels; azurerm_consumption_budget_*: filter.tag Project)",
    "cloudformation": "add an AWS::Budgets::Budget whose CostFilters has TagKeyValue: "
    "[user:Project${project}]",
}


def budget_required(
    resources: Sequence[Resource], config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """Every Project value that owns resources has a budget resource whose filter covers it,
    or an account budget of the resources' cloud (no project filter) covers them."""
    budgets = [r for r in resources if r.kind == BUDGET]
    # an account budget (AWS account, GCP project on the billing account, Azure subscription)
    # covers every resource of its cloud in this stack, whatever its Project tag
    account_clouds = {b.cloud for b in budgets if b.budget_projects == ()}
    owners: dict[str, int] = {}
    spelling: dict[str, str] = {}
    sources: dict[str, str] = {}
    for resource in resources:
        if not resource.taggable or resource.kind == BUDGET or resource.cloud in account_clouds:
            continue
        project = resource.tag("Project")
        if project:
            owners[_fold(project)] = owners.get(_fold(project), 0) + 1
            spelling.setdefault(_fold(project), project)
            sources.setdefault(_fold(project), resource.source)
    if not owners:
        return []
    if any("budget_projects" in b.unknown for b in budgets):
        names = ", ".join(b.name for b in budgets if "budget_projects" in b.unknown)
        return [
            Finding(BUDGET_REQUIRED, "", f"budget filters of {names} unknown until apply", "", True)
        ]
    covered = {_fold(p) for b in budgets for p in (b.budget_projects or ())}
    return [
        Finding(
            BUDGET_REQUIRED,
            "",
            f"project {spelling[key]!r} owns {count} resource{'s' if count != 1 else ''} and no "
            f"budget covers it; {_ADD_BUDGET[sources[key]].format(project=spelling[key])}",
        )
        for key, count in sorted(owners.items())
        if key not in covered
    ]


def stack_cost_ceiling(
    resources: Sequence[Resource], config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """The stack's estimated monthly cost stays under the configured ceiling, else the stack's
    `finops:costCeilingUsd`, else the sum of its budgets' limits."""
    ceiling, source = config.get("maxMonthlyUsd"), "policy ceiling"
    if ceiling is None and context.cost_ceiling_usd is not None:
        ceiling, source = context.cost_ceiling_usd, "stack ceiling (finops:costCeilingUsd)"
    limits = [r.budget_limit_usd for r in resources if r.kind == BUDGET and r.budget_limit_usd]
    if ceiling is None and limits:
        ceiling, source = sum(limits), "budget"
    if ceiling is None:
        return []
    priced = sorted(
        ((r.monthly_usd, r.name) for r in resources if r.monthly_usd),
        key=lambda item: (-item[0], item[1]),
    )
    total = sum(cost for cost, _ in priced)
    if total <= float(ceiling):
        return []
    top = int(config.get("topResources", 10))
    shown = ", ".join(f"{name} ${cost:,.2f}" for cost, name in priced[:top])
    if len(priced) > top:
        shown += f" (+{len(priced) - top} more)"
    return [
        Finding(
            COST_CEILING,
            "",
            f"estimated ${total:,.2f}/month exceeds the {source} of ${float(ceiling):,.2f}/month "
            f"by ${total - float(ceiling):,.2f}; by resource: {shown}",
        )
    ]
