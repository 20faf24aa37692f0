"""The report as sections of tables, and those sections as Markdown.

The terminal table, the Markdown (for a pull request or chat) and the HTML report show the
same sections in the same order; each renderer only decides the look. `--top N` limits the
rows of every long table; the rest is one "... N more" line, and the untagged line is
always shown (after the rest, when it is not among the top rows), so it can never vanish
into "more".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from aifinops.reporting.chargeback import cents_text as _cents_text
from aifinops.reporting.queries import UNTAGGED
from aifinops.reporting.report import KeyBreakdown, Line, Report


def cents_text(cents: int) -> str:
    return _cents_text(cents, grouped=True)


@dataclass
class Section:
    key: str  # stable id (HTML anchors, tests)
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    right_aligned: set[int] = field(default_factory=set)  # column indexes


def money(amount: Decimal | float, currency: str = "") -> str:
    """2 decimals with thousands separators; amounts under a cent keep 4 decimals."""
    value = float(amount)
    text = f"{value:,.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:,.4f}"
    return f"{text} {currency}".strip()


def percent(share: Decimal | float | None) -> str:
    return "n/a" if share is None else f"{float(share) * 100:.1f}%"


def other_column(report: Report) -> str:
    """The cost column shown beside the chosen one (amortised vs billed)."""
    return "BilledCost" if report.cost_column != "BilledCost" else "EffectiveCost"


def _other(report: Report, line: Line) -> Decimal:
    return line.billed if other_column(report) == "BilledCost" else line.effective


def limit_lines(lines: Sequence[Line], top: int) -> tuple[list[Line], list[Line], Line | None]:
    """(shown, folded into "... more", untagged shown apart): the untagged line is never
    folded away."""
    untagged = next((line for line in lines if line.value == UNTAGGED), None)
    named = [line for line in lines if line.value != UNTAGGED]
    if untagged is not None and lines.index(untagged) < top:
        shown = list(lines[:top])
        rest = [line for line in lines[top:]]
        return shown, rest, None
    return named[:top], named[top:], untagged


def _cost_rows(report: Report, lines: Sequence[Line], top: int, total: Line) -> list[list[str]]:
    shown, rest, untagged = limit_lines(lines, top)
    positive = total.positive

    def row(label: str, cost: Decimal, other: Decimal, part: Decimal) -> list[str]:
        share = part / positive if positive else None
        return [label, money(cost), money(other), percent(share)]

    rows = [row(line.value, line.cost, _other(report, line), line.positive) for line in shown]
    if rest:
        rows.append(
            row(
                f"... {len(rest)} more",
                sum((line.cost for line in rest), Decimal(0)),
                sum((_other(report, line) for line in rest), Decimal(0)),
                sum((line.positive for line in rest), Decimal(0)),
            )
        )
    if untagged is not None:
        rows.append(row(untagged.value, untagged.cost, _other(report, untagged), untagged.positive))
    return rows


def _key_section(report: Report, breakdown: KeyBreakdown, top: int) -> Section:
    matched = ", ".join(breakdown.matched_keys) or "none found in the export"
    return Section(
        key=f"tag-{breakdown.key}",
        title=f"{breakdown.key}: {percent(breakdown.untagged_share)} of charges untagged",
        headers=[breakdown.key, report.cost_column, other_column(report), "share"],
        rows=_cost_rows(report, breakdown.lines, top, report.total),
        notes=[f"keys read: {matched}"],
        right_aligned={1, 2, 3},
    )


def sections(report: Report, top: int = 15) -> list[Section]:
    """Every section of the report, in order."""
    out: list[Section] = []
    if report.malformed_count:
        out.append(
            Section(
                key="malformed",
                title=f"{report.malformed_count} malformed rows left out of every figure",
                headers=["where", "problem"],
                rows=[[m.where(), m.problem] for m in report.malformed[:top]],
                notes=[f"... {report.malformed_count - top} more (all in --format json)"]
                if report.malformed_count > top
                else [],
            )
        )
    out += [_key_section(report, b, top) for b in report.by_key]
    out.append(
        Section(
            key="services",
            title="By service",
            headers=["service", report.cost_column, other_column(report), "share"],
            rows=_cost_rows(report, report.by_service, top, report.total),
            right_aligned={1, 2, 3},
        )
    )
    if len(report.by_month) > 1 or report.month is None:
        out.append(
            Section(
                key="months",
                title="By month",
                headers=["month", report.cost_column, other_column(report)],
                rows=[[m.value, money(m.cost), money(_other(report, m))] for m in report.by_month],
                right_aligned={1, 2},
            )
        )
    if report.chargeback is not None:
        cb = report.chargeback
        pool = ", ".join(f"{name} {money(cost)}" for name, cost in cb.pool_parts) or "none"
        out.append(
            Section(
                key="chargeback",
                title=f"Chargeback by {cb.rule.key} ({cb.rule.rule.value})",
                headers=[cb.rule.key, "direct", "shared", "total"],
                rows=[
                    [
                        a.owner,
                        cents_text(a.direct_cents),
                        cents_text(a.shared_cents),
                        cents_text(a.total_cents),
                    ]
                    for a in cb.allocations[:top]
                ]
                + (
                    [
                        [
                            f"... {len(cb.allocations) - top} more",
                            cents_text(sum(a.direct_cents for a in cb.allocations[top:])),
                            cents_text(sum(a.shared_cents for a in cb.allocations[top:])),
                            cents_text(sum(a.total_cents for a in cb.allocations[top:])),
                        ]
                    ]
                    if len(cb.allocations) > top
                    else []
                )
                + [
                    [
                        "total (= the bill)",
                        cents_text(sum(a.direct_cents for a in cb.allocations)),
                        cents_text(sum(a.shared_cents for a in cb.allocations)),
                        cents_text(cb.bill_cents),
                    ]
                ],
                notes=[
                    f"Rule: {cb.rule.describe()}.",
                    f"Pool {cents_text(cb.pool_cents)} {report.currency}: {pool}. Totals are "
                    "rounded to the cent by largest remainder and sum to the bill.",
                ],
                right_aligned={1, 2, 3},
            )
        )
    if report.mover_window is not None:
        prev_first, prev_last, cur_first, cur_last = report.mover_window
        out.append(
            Section(
                key="movers",
                title=f"Top movers: {cur_first} to {cur_last} against {prev_first} to {prev_last}",
                headers=["project", "service", "before", "after", "change"],
                rows=[
                    [m.project, m.service, money(m.previous), money(m.current), f"{m.change:+,.2f}"]
                    for m in report.movers[:top]
                ],
                right_aligned={2, 3, 4},
            )
        )
    if report.anomalies is not None:
        settings = report.anomaly_settings
        out.append(
            Section(
                key="anomalies",
                title=f"Anomalies: {len(report.open_anomalies)} open, "
                f"{len(report.anomalies)} in the period",
                headers=[
                    "project",
                    "service",
                    "days",
                    "rule",
                    "cost",
                    "expected",
                    "excess so far",
                    "top resources",
                ],
                rows=[
                    [
                        a.project,
                        a.service,
                        f"{a.first_day} to {a.last_day}" + (" (open)" if a.open else ""),
                        a.method,
                        money(a.last_cost),
                        money(a.last_expected),
                        money(a.excess_so_far),
                        ", ".join(f"{r.resource} {r.increase:+,.2f}" for r in a.resources[:3])
                        or "-",
                    ]
                    for a in report.anomalies[:top]
                ],
                notes=[f"Rule: {settings.describe()}." if settings else ""]
                + (
                    [f"... {len(report.anomalies) - top} more"]
                    if len(report.anomalies) > top
                    else []
                ),
                right_aligned={4, 5, 6},
            )
        )
    if report.idle_gpu is not None:
        idle = report.idle_gpu
        notes = [
            f"{idle.matched_instances} of {idle.instances} instances in the agent windows have "
            "billing lines."
        ]
        if idle.unmatched_instances:
            notes.append(
                "UNKNOWN: no billing line for "
                + ", ".join(idle.unmatched_instances[:10])
                + (" ..." if len(idle.unmatched_instances) > 10 else "")
            )
        if idle.unobserved_cost:
            notes.append(
                f"UNKNOWN: {money(idle.unobserved_cost)} of their cost has no agent window."
            )
        if idle.skipped_lines:
            notes.append(
                f"UNKNOWN: {len(idle.skipped_lines)} unreadable agent window lines skipped "
                f"(first: {idle.skipped_lines[0]})."
            )
        if idle.unbilled_gpu_hours:
            notes.append(
                f"UNKNOWN: {idle.unbilled_gpu_hours:,.1f} GPU-hours of windows have no billing line."
            )
        out.append(
            Section(
                key="idle-gpu",
                title=f"Idle-GPU cost: {money(idle.idle_cost, report.currency)}",
                headers=["project", "fleet", "GPU-hours", "idle GPU-hours", "cost", "idle cost"],
                rows=[
                    [
                        r.project,
                        r.fleet,
                        f"{r.gpu_hours:,.1f}",
                        f"{r.idle_gpu_hours:,.1f}",
                        money(r.cost),
                        money(r.idle_cost),
                    ]
                    for r in idle.rows[:top]
                ],
                notes=notes,
                right_aligned={2, 3, 4, 5},
            )
        )
    return out


def summary_line(report: Report) -> str:
    other = other_column(report)
    return (
        f"{report.row_count:,} charges, {report.first_day} to {report.last_day}, "
        f"{report.cost_column} {money(report.total.cost, report.currency)} "
        f"({other} {money(_other(report, report.total), report.currency)})"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, top: int = 15) -> str:
    """Markdown for a pull request or chat: the same sections as the table output."""
    names = ", ".join(f"`{Path(s).name}`" for s in report.sources)
    lines = [f"## Cost report: {names}", "", summary_line(report), ""]
    lines += [f"> {note}" for note in report.notes]
    if report.notes:
        lines.append("")
    for section in sections(report, top):
        lines += [f"### {section.title}", ""]
        lines.append("| " + " | ".join(_cell(h) for h in section.headers) + " |")
        lines.append(
            "|"
            + "|".join(
                "---:" if i in section.right_aligned else "---" for i in range(len(section.headers))
            )
            + "|"
        )
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in section.rows]
        lines.append("")
        lines += [f"{note}  " for note in section.notes if note]
        if any(section.notes):
            lines.append("")
    return "\n".join(lines)
