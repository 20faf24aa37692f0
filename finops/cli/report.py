"""`finops report`: cost by Project/Team/Environment/ModelVersion from a FOCUS billing export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from finops.reporting import COST_COLUMNS, DEFAULT_KEYS, Report, ReportError, build_report


def _aliases(values: list[str]) -> dict[str, list[str]]:
    aliases: dict[str, list[str]] = {}
    for value in values:
        key, sep, names = value.partition("=")
        if not sep or not key or not names:
            raise ReportError(
                f"--alias {value!r}: expected KEY=name[,name...], e.g. Project=application"
            )
        aliases.setdefault(key, []).extend(n for n in names.split(",") if n)
    return aliases


def to_markdown(report: Report) -> str:
    lines = [
        f"## Cost by tag: `{Path(report.source).name}`",
        "",
        f"{report.row_count} charges, {report.period[0]} to {report.period[1]}, "
        f"{report.cost_column}: **{report.total:,.2f} {report.currency}**",
        "",
    ]
    for breakdown in report.by_key:
        matched = ", ".join(f"`{k}`" for k in breakdown.matched_keys) or "no matching key"
        lines += [
            f"### {breakdown.key} ({breakdown.tagged_share:.0%} of usage tagged; keys: {matched})",
            "",
            "| value | cost |",
            "|---|---:|",
        ]
        lines += [f"| {value} | {cost:,.4f} |" for value, cost in breakdown.rows]
        lines.append("")
    return "\n".join(lines)


def print_table(report: Report, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{report.source}[/bold]: {report.row_count} charges, {report.period[0]} to "
        f"{report.period[1]}, {report.cost_column} total [bold]{report.total:,.2f} {report.currency}[/bold]"
    )
    for breakdown in report.by_key:
        table = Table(
            title=f"{breakdown.key}: {breakdown.tagged_share:.0%} of usage tagged "
            f"(keys: {', '.join(breakdown.matched_keys) or 'none found'})"
        )
        table.add_column("value")
        table.add_column(report.currency, justify="right")
        for value, cost in breakdown.rows[:top]:
            table.add_row(value, f"{cost:,.4f}")
        if len(breakdown.rows) > top:
            rest = sum(c for _, c in breakdown.rows[top:])
            table.add_row(f"... {len(breakdown.rows) - top} more", f"{rest:,.4f}")
        console.print(table)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    keys = [k.strip() for k in args.by.split(",") if k.strip()]
    with Console(stderr=True).status(f"reading {args.billing} with DuckDB"):
        report = build_report(args.billing, keys, _aliases(args.alias), args.cost, args.month)
    fmt = args.format or ("table" if sys.stdout.isatty() else "markdown")
    if fmt == "json":
        print(json.dumps(report.as_dict(), indent=2))
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(report))
    else:
        print_table(report, args.top)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="cost by Project/Team/Environment/ModelVersion from a FOCUS billing export",
        description=__doc__,
    )
    parser.add_argument("billing", type=Path, help="FOCUS 1.0 export (.csv or .parquet)")
    parser.add_argument(
        "--by",
        default=",".join(DEFAULT_KEYS),
        help="tag keys, comma separated (default: %(default)s)",
    )
    parser.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="KEY=name[,name]",
        help="other tag names that mean KEY, e.g. Project=application (repeatable)",
    )
    parser.add_argument(
        "--cost",
        choices=COST_COLUMNS,
        default="EffectiveCost",
        help="FOCUS cost column (default: %(default)s, amortised)",
    )
    parser.add_argument("--month", help="only charges whose period starts in YYYY-MM")
    parser.add_argument(
        "--top", type=int, default=15, help="rows per key in the table (default: %(default)s)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        help="default: table on a terminal, markdown otherwise",
    )
    parser.set_defaults(func=run)
