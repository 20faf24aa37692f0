"""What the audit reports: one `Finding` per resource that costs money for nothing (or whose
state could not be read), priced per month, with its owner and the remedy on offer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aifinops.config import HOURS_PER_MONTH

# kinds, in the order the docs describe them
IDLE_GPU_INSTANCE = "idle-gpu-instance"
UNATTACHED_VOLUME = "unattached-volume"
VOLUME_OF_STOPPED_INSTANCE = "volume-of-stopped-instance"
IDLE_ENDPOINT = "idle-endpoint"
OLD_SNAPSHOT = "old-snapshot"
EXPIRED_CHECKPOINTS = "expired-checkpoints"
MISSING_TAGS = "missing-tags"
KINDS = (
    IDLE_GPU_INSTANCE,
    UNATTACHED_VOLUME,
    VOLUME_OF_STOPPED_INSTANCE,
    IDLE_ENDPOINT,
    OLD_SNAPSHOT,
    EXPIRED_CHECKPOINTS,
    MISSING_TAGS,
)

# statuses
WASTE = "waste"
"""Costs money for nothing, by the evidence given."""
UNKNOWN = "unknown"
"""The audit could not read what it needs to judge (no metrics, too short a history)."""
UNTAGGED = "untagged"
"""Spend that no owner can be billed for: missing required tags."""

OWNER_TAG_KEYS = ("Owner", "owner", "Team", "team", "CreatedBy", "created-by")
"""Tags read as the owner, first present wins (`Team` is the tag schema's key)."""
UNKNOWN_OWNER = "(unknown)"


def owner_of(tags: Mapping[str, str]) -> str:
    """The owner of a resource from its tags, or "(unknown)"."""
    for key in OWNER_TAG_KEYS:
        value = str(tags.get(key) or "").strip()
        if value:
            return value
    return UNKNOWN_OWNER


def per_month(usd_per_hour: float) -> float:
    return usd_per_hour * HOURS_PER_MONTH


@dataclass(frozen=True)
class ActionPlan:
    """A remedy the audit can carry out with `--apply` (and reverse with `--undo` where
    `reversible`)."""

    action: str
    """An `aifinops.audit.actions.ACTIONS` key, e.g. "stop-instance"."""
    params: Mapping[str, Any]
    """What the action needs (ids, counts, keys); JSON-serialisable."""
    saving_usd_per_month: float | None
    reversible: bool


@dataclass(frozen=True)
class Finding:
    kind: str
    status: str
    cloud: str
    region: str
    resource_id: str
    resource_type: str
    """What it is ("g5.12xlarge", "gp3 500 GiB", "ml.g5.xlarge x 2", "S3 prefix")."""
    monthly_usd: float | None
    """What the resource costs per month now; None when no price is known (`price_basis`)."""
    price_basis: str
    owner: str
    evidence: str
    tags: Mapping[str, str] = field(default_factory=dict)
    arn: str = ""
    plan: ActionPlan | None = None
    no_action_reason: str = ""
    """Why no remedy is offered, when `plan` is None."""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "status": self.status,
            "cloud": self.cloud,
            "region": self.region,
            "resource_id": self.resource_id,
            "resource_type": self.resource_type,
            "arn": self.arn,
            "monthly_usd": self.monthly_usd,
            "price_basis": self.price_basis,
            "owner": self.owner,
            "evidence": self.evidence,
            "tags": dict(self.tags),
            "action": None,
            "no_action_reason": self.no_action_reason or None,
        }
        if self.plan is not None:
            data["action"] = {
                "name": self.plan.action,
                "saving_usd_per_month": self.plan.saving_usd_per_month,
                "reversible": self.plan.reversible,
            }
        return data


def by_cost(findings: Iterable[Finding]) -> list[Finding]:
    """Costliest first; unpriced findings last (by kind, then id, for a stable order)."""
    return sorted(
        findings,
        key=lambda f: (
            f.monthly_usd is None,
            -(f.monthly_usd or 0.0),
            KINDS.index(f.kind),
            f.resource_id,
        ),
    )


@dataclass(frozen=True)
class Summary:
    waste_usd_per_month: float
    waste_findings: int
    unpriced_waste_findings: int
    unknown_findings: int
    untagged_findings: int
    untagged_usd_per_month: float
    unjudged_tag_types: Mapping[str, int]
    """ARN resource types the taggability registry has no entry for: not judged, counted."""


def summarise(findings: Iterable[Finding], unjudged: Mapping[str, int]) -> Summary:
    items = list(findings)
    waste = [f for f in items if f.status == WASTE]
    untagged = [f for f in items if f.status == UNTAGGED]
    return Summary(
        waste_usd_per_month=sum(f.monthly_usd or 0.0 for f in waste),
        waste_findings=len(waste),
        unpriced_waste_findings=sum(1 for f in waste if f.monthly_usd is None),
        unknown_findings=sum(1 for f in items if f.status == UNKNOWN),
        untagged_findings=len(untagged),
        untagged_usd_per_month=sum(f.monthly_usd or 0.0 for f in untagged),
        unjudged_tag_types=dict(unjudged),
    )
