"""The audit report as a terminal table, JSON or Markdown; the same rows and totals in each."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from aifinops.audit import AuditReport
from aifinops.audit.findings import Finding

COLUMNS = ("USD/month", "finding", "resource", "region", "owner", "evidence", "remedy")


def _money(value: float | None) -> str:
    return "?" if value is None else f"{value:,.2f}"


def _remedy(finding: Finding) -> str:
    if finding.plan is None:
        return finding.no_action_reason or "-"
    undo = "undoable" if finding.plan.reversible else "NOT undoable"
    return f"{finding.plan.action} ({undo})"


def _row(finding: Finding) -> list[str]:
    kind = finding.kind if finding.status != "unknown" else f"{finding.kind} UNKNOWN"
    return [
        _money(finding.monthly_usd),
        kind,
        f"{finding.resource_id} ({finding.resource_type})",
        finding.region,
        finding.owner,
        finding.evidence,
        _remedy(finding),
    ]


def summary_lines(report: AuditReport) -> list[str]:
    s = report.summary
    lines = [
        f"waste: {s.waste_usd_per_month:,.2f} USD/month in {s.waste_findings} finding(s)"
        + (
            f" ({s.unpriced_waste_findings} unpriced, not in the total)"
            if s.unpriced_waste_findings
            else ""
        ),
        f"untagged: {s.untagged_findings} resource(s) missing the tag schema, "
        f"{s.untagged_usd_per_month:,.2f} USD/month of their spend priced",
    ]
    if s.unknown_findings:
        lines.append(
            f"UNKNOWN: {s.unknown_findings} GPU instance(s) could not be judged (see evidence); "
            "their cost is not in the waste total"
        )
    if s.unjudged_tag_types:
        types = ", ".join(f"{k} x{v}" for k, v in sorted(s.unjudged_tag_types.items()))
        lines.append(f"UNKNOWN: tags not judged for types the taggability registry lacks: {types}")
    lines += [f"ERROR: {e}" for e in report.errors]
    return lines


def print_table(report: AuditReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"finops audit: {', '.join(report.regions)}")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column == "USD/month" else "left")
    for finding in report.findings:
        table.add_row(*_row(finding))
    console = Console(width=None if sys.stdout.isatty() else 240)
    console.print(table)
    for line in summary_lines(report):
        console.print(line, markup=False)


def to_markdown(report: AuditReport) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        f"## finops audit: {', '.join(report.regions)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---:|" + "---|" * (len(COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(cell(c) for c in _row(f)) + " |" for f in report.findings]
    lines += ["", *[f"- {line}" for line in summary_lines(report)]]
    return "\n".join(lines)


def to_json(report: AuditReport) -> dict[str, Any]:
    return {
        "regions": report.regions,
        "settings": dataclasses.asdict(report.settings),
        "summary": dataclasses.asdict(report.summary),
        "errors": report.errors,
        "findings": [f.as_json() for f in report.findings],
    }
