"""Run every policy over normalised resources; attach each finding's enforcement level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies import settings as policy_settings
from policies.context import Context
from policies.model import Finding, Resource
from policies.registry import POLICIES


@dataclass(frozen=True)
class Violation:
    """One verdict. resource: the resource's name ("" for a stack-level policy).
    level: "mandatory", "advisory" or "disabled" (a finding the rule could not decide, such as
    a value unknown during preview, is always "advisory")."""

    policy: str
    resource: str
    urn: str
    level: str
    message: str


def _level(configured: str, finding: Finding) -> str:
    if finding.unknown:
        return policy_settings.ADVISORY
    if configured == policy_settings.REMEDIATE:
        return policy_settings.MANDATORY  # still violating after remediation
    return configured


def evaluate(
    resources: Sequence[Resource],
    context: Context,
    settings: Mapping[str, Any] | None = None,
    include_disabled: bool = False,
    stack_only: bool = False,
) -> list[Violation]:
    """Every policy over `resources`, in policy order then resource order; `stack_only`: only
    the stack policies (the resource ones already ran elsewhere, e.g. in checkov)."""
    resolved = policy_settings.resolve(settings)
    found: list[Violation] = []
    for policy in POLICIES:
        config = resolved[policy.name]
        level = config["enforcementLevel"]
        if level == policy_settings.DISABLED and not include_disabled:
            continue
        findings: list[Finding] = []
        if policy.resource_rule is not None and not stack_only:
            for resource in resources:
                findings += policy.resource_rule(resource, config, context)
        if policy.stack_rule is not None:
            findings += policy.stack_rule(resources, config, context)
        found += [
            Violation(f.policy, f.resource, f.urn, _level(level, f), f.message) for f in findings
        ]
    return found
