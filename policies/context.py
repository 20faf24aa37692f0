"""What a rule may know beyond one resource: the stack's environment, tags and ceiling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from finops.tags import ENVIRONMENTS
from policies.model import Resource


@dataclass(frozen=True)
class Context:
    """environment: used when a resource carries no valid Environment tag (strictest: dev).
    cost_ceiling_usd: the stack's `finops:costCeilingUsd`, USD per month."""

    environment: str = "dev"
    stack_tags: Mapping[str, str] = field(default_factory=dict)
    cost_ceiling_usd: float | None = None


def environment_of(resource: Resource, context: Context) -> str:
    """The resource's Environment tag when valid, else the stack's."""
    tagged = resource.tag("Environment")
    return tagged if tagged in ENVIRONMENTS else context.environment
