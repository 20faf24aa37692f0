"""`finops audit`: what already costs money for nothing in a live AWS account.

    from aifinops.audit import AuditSettings, run_audit
    from aifinops.audit.clients import AwsClients
    report = run_audit(AwsClients(), ["us-east-1"], AuditSettings(idle_hours=24))

Read-only unless `aifinops.audit.remediate.apply` is called; the IAM policy documents for
both modes ship in `finops/audit/iam/`. GCP and Azure are not audited (docs/audit.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aifinops.audit.aws import CHECKS, AuditSettings, AwsAudit
from aifinops.audit.clients import AwsClients
from aifinops.audit.findings import Finding, Summary, by_cost, summarise

__all__ = ["CHECKS", "AuditReport", "AuditSettings", "Finding", "run_audit"]


@dataclass
class AuditReport:
    regions: list[str]
    settings: AuditSettings
    findings: list[Finding]
    summary: Summary
    errors: list[str] = field(default_factory=list)


def run_audit(
    clients: AwsClients,
    regions: list[str],
    settings: AuditSettings,
    progress: Callable[[str], None] = lambda message: None,
) -> AuditReport:
    """Run the checks in every region; findings costliest first."""
    found: list[Finding] = []
    unjudged: Counter[str] = Counter()
    errors: list[str] = []
    for region in regions:
        result = AwsAudit(clients, region, settings, progress).run()
        found += result.findings
        unjudged.update(result.unjudged)
        errors += result.errors
    return AuditReport(regions, settings, by_cost(found), summarise(found, unjudged), errors)
