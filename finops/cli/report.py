"""`finops report`: showback, chargeback, anomalies and idle-GPU cost from FOCUS exports.

Exit status: 0, or 1 with --fail-on-anomaly when an anomaly is still open on the last day of
the billing data (for a scheduled job), 2 on a bad export or option.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aifinops.reporting import COST_COLUMNS, DEFAULT_KEYS, Report, ReportError, build_report
from aifinops.reporting.anomalies import AnomalySettings
from aifinops.reporting.chargeback import parse_rule
from aifinops.reporting.queries import DIALECTS
from aifinops.reporting.report import parse_aliases

FORMATS = ("table", "json", "markdown", "html")


class _Progress:
    """DuckDB's progress on stderr: a bar on a terminal, else a line every few seconds."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.printed_at = -1.0
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, what: str, percent: float, seconds: float) -> None:
        if self.console.is_terminal:
            if self.bar is None:
                from rich.progress import Progress

                self.bar = Progress(console=self.console, transient=True)
                self.bar.start()
                self.task = self.bar.add_task(what, total=100)
            self.bar.update(self.task, description=what, completed=max(percent, 0))
            return
        if percent >= 100:
            if seconds >= 2:
                self.console.print(
                    f"[report] {what}: done in {seconds:.1f} s", highlight=False, markup=False
                )
            self.printed_at = -1.0
        elif seconds - self.printed_at >= 2 and seconds >= 2:
            self.printed_at = seconds
            shown = f"{percent:.0f}%" if percent >= 0 else "working"
            self.console.print(
                f"[report] {what}: {shown} ({seconds:.0f} s)", highlight=False, markup=False
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def print_table(report: Report, top: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from aifinops.reporting.render import sections, summary_line

    # Text everywhere: tag values and file names are data, never rich markup
    console = Console()
    console.print(Text(f"{', '.join(report.sources)}: {summary_line(report)}", style="bold"))
    for note in report.notes:
        console.print(Text(f"note: {note}"))
    for section in sections(report, top):
        table = Table(title=Text(section.title), title_justify="left")
        for i, header in enumerate(section.headers):
            table.add_column(
                Text(header), justify="right" if i in section.right_aligned else "left"
            )
        for row in section.rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        for note in section.notes:
            if note:
                console.print(Text(note, style="red" if note.startswith("UNKNOWN") else ""))


def _print_sql(args: argparse.Namespace) -> int:
    """The report's queries for another engine, with the tag keys found in the export."""
    from aifinops.reporting import queries
    from aifinops.reporting.focus import Export
    from aifinops.reporting.report import PROJECT_KEY, check_keys, resolve_keys

    keys = [k.strip() for k in args.by.split(",") if k.strip()]
    aliases = parse_aliases(args.alias)
    with Export(args.billing) as export:
        export.build_daily(args.cost)
        present = [
            str(r[0])
            for r in export.query(
                "reading tag keys",
                "SELECT DISTINCT unnest(json_keys(CAST(tags AS JSON))) FROM daily WHERE tags <> '{}'",
            )
        ]
    check_keys(keys, present, aliases)
    spellings = resolve_keys(present, list(dict.fromkeys([*keys, PROJECT_KEY])), aliases)
    statements = [
        (
            "daily: one row per day, provider, service and tag set",
            f"CREATE TABLE daily AS {queries.daily_sql(args.cost)}",
        ),
        (
            "tagged: canonical tag keys as columns k0, k1, ...",
            f"CREATE TABLE tagged AS {queries.tagged_sql(spellings)}",
        ),
        *(
            (f"cost by {key} (k{i})", queries.by_column_sql(f"k{i}"))
            for i, key in enumerate(spellings)
        ),
        ("cost by service", queries.by_column_sql("service")),
        (
            f"anomaly series: {PROJECT_KEY} x service x day",
            queries.series_sql(f"k{list(spellings).index(PROJECT_KEY)}"),
        ),
    ]
    for comment, sql in statements:
        print(f"-- {comment}\n{queries.transpile(sql, args.sql)};\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ReportError(f"--top {args.top}: must be 1 or more")
    if args.sql:
        return _print_sql(args)
    keys = [k.strip() for k in args.by.split(",") if k.strip()]
    if not keys:
        raise ReportError(f"--by {args.by!r}: give at least one tag key, e.g. Project,Team")
    chargeback = (
        parse_rule(args.chargeback, args.chargeback_by, args.shared) if args.chargeback else None
    )
    if args.shared and not args.chargeback:
        raise ReportError("--shared needs --chargeback (proportional, even or fixed:FILE)")
    settings = AnomalySettings(
        min_usd=args.anomaly_min_cost, min_ratio=args.anomaly_min_ratio, k=args.anomaly_k
    )
    progress = _Progress()
    try:
        report = build_report(
            args.billing,
            keys,
            parse_aliases(args.alias),
            args.cost,
            args.month,
            chargeback=chargeback,
            anomalies=settings,
            agent_windows=args.agent_windows,
            progress=progress,
        )
    finally:
        progress.close()
    if report.malformed_count:
        first = report.malformed[0]
        print(
            f"warning: {report.malformed_count} malformed rows left out of every figure "
            f"(first: {first.where()}: {first.problem}); all of them in --format json",
            file=sys.stderr,
        )
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "markdown")
    if fmt == "table" and args.output:
        raise ReportError(
            "--format table is for a terminal; write markdown, json or html to --output"
        )
    if fmt == "json":
        text = json.dumps(report.as_dict(), indent=2) + "\n"
    elif fmt == "markdown":
        from aifinops.reporting.render import to_markdown

        text = to_markdown(report, args.top)
    elif fmt == "html":
        from aifinops.reporting.html import to_html

        text = to_html(report, args.top)
    else:
        print_table(report, args.top)
        text = ""
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    elif text:
        sys.stdout.write(text)
    if args.fail_on_anomaly and report.open_anomalies:
        names = ", ".join(f"{a.project}/{a.service}" for a in report.open_anomalies[:5])
        print(
            f"anomaly: {len(report.open_anomalies)} open on {report.data_last_day} ({names})",
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="showback, chargeback, anomalies and idle-GPU cost from FOCUS billing exports",
        description=__doc__,
    )
    parser.add_argument(
        "billing",
        type=Path,
        nargs="+",
        metavar="EXPORT",
        help="FOCUS 1.0 export(s): .csv, .csv.gz, .parquet",
    )
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
        help="FOCUS cost column (default: %(default)s, amortised; BilledCost is shown beside it)",
    )
    parser.add_argument("--month", help="only charges whose period starts in YYYY-MM")
    parser.add_argument("--top", type=int, default=15, help="rows per table (default: %(default)s)")
    parser.add_argument(
        "--format", choices=FORMATS, help="default: table on a terminal, markdown otherwise"
    )
    parser.add_argument("-o", "--output", type=Path, help="write the report to this file")
    charge = parser.add_argument_group("chargeback")
    charge.add_argument(
        "--chargeback",
        metavar="RULE",
        help="split untagged and shared cost: proportional | even | fixed:FILE (owner: percent)",
    )
    charge.add_argument(
        "--chargeback-by",
        default="Team",
        metavar="KEY",
        help="owner tag key (default: %(default)s)",
    )
    charge.add_argument(
        "--shared",
        action="append",
        default=[],
        metavar="VALUE",
        help="an owner value whose cost is shared, e.g. platform (repeatable)",
    )
    anomaly = parser.add_argument_group("anomalies (rule: docs/reporting.md)")
    anomaly.add_argument(
        "--anomaly-min-cost",
        type=float,
        default=50.0,
        metavar="AMOUNT",
        help="excess per day (default: %(default)s)",
    )
    anomaly.add_argument(
        "--anomaly-min-ratio",
        type=float,
        default=0.25,
        metavar="R",
        help="excess over the baseline (default: %(default)s)",
    )
    anomaly.add_argument(
        "--anomaly-k",
        type=float,
        default=3.0,
        metavar="K",
        help="MADs above the baseline (default: %(default)s)",
    )
    anomaly.add_argument(
        "--fail-on-anomaly",
        action="store_true",
        help="exit 1 when an anomaly is open on the last day of the data",
    )
    parser.add_argument(
        "--agent-windows",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="finops-agent export file or spool folder: adds idle-GPU cost (repeatable)",
    )
    parser.add_argument(
        "--sql",
        choices=DIALECTS,
        help="print the report's queries for this engine (tag keys read from EXPORT) and exit",
    )
    parser.set_defaults(func=run)
