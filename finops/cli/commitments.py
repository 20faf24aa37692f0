"""`finops commitments`: Savings Plans / RIs, CUDs and reservations for the always-on part only.

Sources (repeatable `--source`): `agent:PATH` (the agent's export file or spool folder),
`prometheus:URL`, `cloudwatch:REGION[@ENDPOINT_URL]`. Each instance type's hourly instance
count over the lookback is priced against every public commitment offer in the catalog; the
commitment that saves the most is shown with its break-even utilisation, the saving against
on-demand and against spot for the same work, and what happens if the floor drops.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from aifinops.commitments import CommitmentAdvice, HourlySeries, Skipped, recommend
from aifinops.errors import FinopsError

DEFAULT_LOOKBACK_DAYS = 30.0
SHORT_HISTORY_DAYS = 14.0


class CommitmentsError(FinopsError):
    """A bad --source or option."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "commitments",
        help="commitment advice (Savings Plans/RIs, CUDs, reservations) from measured floors",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--source",
        action="append",
        dest="sources",
        metavar="SPEC",
        help="agent:PATH | prometheus:URL | cloudwatch:REGION[@ENDPOINT] (repeatable; "
        "default agent:/var/lib/finops-agent)",
    )
    parser.add_argument("--lookback-days", type=float, default=DEFAULT_LOOKBACK_DAYS)
    parser.add_argument("--end", help="end of the window: unix seconds or ISO 8601 (default: now)")
    parser.add_argument(
        "--region", default="", help="region of Prometheus series (the metric has no region label)"
    )
    parser.add_argument("--term", type=int, choices=(1, 3), help="only offers of this term (years)")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    parser.set_defaults(func=run)


def _end(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommitmentsError(f"--end {value!r}: give unix seconds or an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def read_series(
    specs: list[str], lookback_days: float, end: float | None, region: str
) -> list[HourlySeries]:
    """Hourly series from every `--source` spec, in order."""
    from aifinops.commitments import usage

    for spec in specs:  # every spec checked before any is read
        kind, sep, rest = spec.partition(":")
        if not (
            (kind == "agent" and sep and rest)
            or (kind == "prometheus" and rest)
            or kind == "cloudwatch"
        ):
            raise CommitmentsError(
                f"--source {spec!r}: expected agent:PATH, prometheus:URL or cloudwatch:REGION"
            )
    found: list[HourlySeries] = []
    for spec in specs:
        kind, sep, rest = spec.partition(":")
        print(f"commitments: reading {spec}", file=sys.stderr, flush=True)
        if kind == "agent":
            found += usage.from_agent_files(
                [Path(rest)], lookback_days=lookback_days, end=end, default_region=region
            )
        elif kind == "prometheus":
            found += usage.from_prometheus(
                rest, lookback_days=lookback_days, end=end, region=region
            )
        else:
            where, _, endpoint = rest.partition("@")
            found += usage.from_cloudwatch(
                where or "us-east-1",
                lookback_days=lookback_days,
                end=end,
                endpoint_url=endpoint or None,
            )
    return found


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _risk(advice: CommitmentAdvice) -> str:
    if advice.offer is None:
        return "-"
    parts = [f"-{d.drop_share:.0%}: {d.saving_usd_per_month:+,.0f}" for d in advice.risk]
    return f"{'; '.join(parts)} (loses past -{advice.drop_share_before_loss:.0%})"


def _commitment(advice: CommitmentAdvice) -> str:
    if advice.offer is None:
        return f"none: {advice.reason}"
    o = advice.offer
    return f"{advice.committed_instances} x {o.label} ${o.usd_per_hour:.4g}/h ({o.basis})"


def _rows(advices: list[CommitmentAdvice]) -> list[list[str]]:
    return [
        [
            f"{a.cloud} {a.region} {a.instance_type}",
            f"{a.floor_instances:g} / {a.mean_instances:.1f} / {a.peak_instances:g}",
            _commitment(a),
            "-" if a.break_even_utilisation is None else f"{a.break_even_utilisation:.0%}",
            "-" if a.commitment_utilisation is None else f"{a.commitment_utilisation:.0%}",
            _money(a.saving_vs_on_demand_usd_per_month),
            _money(a.saving_vs_spot_usd_per_month),
            _risk(a),
        ]
        for a in advices
    ]


COLUMNS = (
    "type",
    "floor / mean / peak",
    "commitment",
    "break-even",
    "used",
    "saving vs on-demand $/mo",
    "vs spot $/mo",
    "if the floor drops ($/mo)",
)


def to_markdown(advices: list[CommitmentAdvice], skipped: list[Skipped]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(advices)]
    lines += _skipped_lines(skipped)
    return "\n".join(lines)


def _skipped_lines(skipped: list[Skipped]) -> list[str]:
    return [
        f"UNKNOWN {s.cloud} {s.region or '-'} {s.instance_type}: {s.instance_hours:,.0f} "
        f"instance-hours not advised ({s.reason})"
        for s in skipped
    ]


def _table(advices: list[CommitmentAdvice], skipped: list[Skipped], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="right" if "$" in column else "left")
    for row in _rows(advices):
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 220)
    console.print(table)
    for line in _skipped_lines(skipped):
        console.print(line, markup=False)


def as_json(advices: list[CommitmentAdvice], skipped: list[Skipped]) -> dict[str, Any]:
    def one(advice: CommitmentAdvice) -> dict[str, Any]:
        data = dataclasses.asdict(advice)
        if advice.offer is not None:
            data["offer"]["label"] = advice.offer.label
        return data

    return {
        "advice": [one(a) for a in advices],
        "skipped": [dataclasses.asdict(s) for s in skipped],
        "total_saving_vs_on_demand_usd_per_month": sum(
            a.saving_vs_on_demand_usd_per_month for a in advices
        ),
    }


def run(args: argparse.Namespace) -> int:
    if args.lookback_days <= 0:
        raise CommitmentsError(f"--lookback-days {args.lookback_days:g}: must be above 0")
    specs = args.sources or ["agent:/var/lib/finops-agent"]
    series = read_series(specs, args.lookback_days, _end(args.end), args.region)
    advices, skipped = recommend(series, term_years=args.term)
    if args.lookback_days < SHORT_HISTORY_DAYS:
        print(
            f"warning: floors measured over {args.lookback_days:g} days; commitments last "
            "years, so measure at least two weeks (--lookback-days)",
            file=sys.stderr,
        )
    if args.format == "json":
        print(json.dumps(as_json(advices, skipped), indent=1))
    elif args.format == "markdown":
        print(to_markdown(advices, skipped))
    else:
        total = sum(a.saving_vs_on_demand_usd_per_month for a in advices)
        title = (
            f"commitments for {len(advices)} instance type(s) from {', '.join(specs)}: "
            f"saving {total:,.0f} USD/month against on-demand"
        )
        _table(advices, skipped, title)
    return 0
