"""Run every policy over normalised resources; attach each finding's enforcement level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aifinops.policies import settings as policy_settings
from aifinops.policies.advice import advice
from aifinops.policies.context import Context
from aifinops.policies.model import Finding, Resource
from aifinops.policies.registry import POLICIES


@dataclass(frozen=True)
class Violation:
    """One verdict. resource: the resource's name ("" for a stack-level policy).
    level: "mandatory", "advisory" or "disabled" (a finding the rule could not decide, such as
    a value unknown during preview, is always "advisory").
    unknown: the rule could not decide (the message says what could not be read).
    location: `file:line` for Terraform and CloudFormation resources.
    advice: what to change, in the language of the resource's source."""

    policy: str
    resource: str
    urn: str
    level: str
    message: str
    unknown: bool = False
    location: str = ""
    advice: str = ""


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
        if policy.resource_rule is not None and not stack_only:
            for resource in resources:
                for finding in policy.resource_rule(resource, config, context):
                    finding = if_created(finding, resource)
                    found.append(
                        Violation(
                            finding.policy,
                            finding.resource,
                            finding.urn,
                            _level(level, finding),
                            finding.message,
                            finding.unknown,
                            resource.location,
                            "" if finding.unknown else advice(policy, resource),
                        )
                    )
        if policy.stack_rule is not None:
            for finding in policy.stack_rule(resources, config, context):
                found.append(
                    Violation(finding.policy, finding.resource, finding.urn,
                              _level(level, finding), finding.message, finding.unknown)
                )  # fmt: skip
    return found


def if_created(finding: Finding, resource: Resource) -> Finding:
    """A resource that exists only if a `count`/`for_each`/`Condition` that cannot be read
    says so: a finding on it is a finding only if it is created, so it is UNKNOWN."""
    if resource.created is not None or finding.unknown:
        return finding
    reason = resource.unknown_reasons.get("created") or "a condition that cannot be read"
    return replace(
        finding, message=f"{finding.message} (if created: {reason} cannot be read)", unknown=True
    )
