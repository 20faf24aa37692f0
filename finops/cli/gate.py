"""`finops gate`: deploy a retrained model only when its gain is worth it (and its cost).

Exit status: 0 deploy, 1 skip the deployment (gain or gain per dollar below the threshold),
2 a bad metrics file, billing export or option. The rule: docs/reporting.md#deploy-gate.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from aifinops.reporting.gate import (
    GateError,
    StageCost,
    choose_metric,
    decide,
    read_metrics,
    stage_costs,
)
from aifinops.reporting.report import parse_aliases


def _run_tags(values: list[str]) -> dict[str, str]:
    run: dict[str, str] = {}
    for value in values:
        key, sep, tag = value.partition("=")
        if not sep or not key.strip() or not tag.strip():
            raise GateError(f"--run {value!r}: expected KEY=VALUE, e.g. ModelVersion=v42")
        run[key.strip()] = tag.strip()
    return run


def run(args: argparse.Namespace) -> int:
    baseline = read_metrics(args.baseline)
    candidate = read_metrics(args.candidate)
    metric = choose_metric(args.metric, baseline, candidate, (args.baseline, args.candidate))
    cost: Decimal | None = None
    stages: list[StageCost] = []
    currency = "USD"
    source = ""
    if args.cost:
        try:
            cost = Decimal(args.cost[0]) if len(args.cost) == 1 else None
        except InvalidOperation:
            cost = None
        if cost is not None:
            if not cost.is_finite() or cost < 0:
                raise GateError(f"--cost {args.cost[0]}: a run cost is 0 or more")
            source = "given"
        else:
            stages, currency = stage_costs(
                [Path(p) for p in args.cost],
                _run_tags(args.run),
                parse_aliases(args.alias),
                args.cost_column,
            )
            cost = sum((s.cost for s in stages), Decimal(0))
            selection = ", ".join(args.run) or "lines with a Stage tag"
            source = f"{', '.join(Path(p).name for p in args.cost)} ({selection})"
    elif args.run:
        raise GateError("--run selects billing lines: give the billing export with --cost EXPORT")
    result = decide(
        metric,
        baseline[metric],
        candidate[metric],
        args.min_gain,
        args.lower_is_better,
        cost,
        args.min_gain_per_dollar,
    )
    result.stages, result.currency, result.cost_source = stages, currency, source
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        direction = "lower is better" if args.lower_is_better else "higher is better"
        lines = [
            f"{metric} ({direction}): baseline {result.baseline:.6g}, candidate "
            f"{result.candidate:.6g}, gain {result.gain:+.6g} (min {args.min_gain:g})"
        ]
        if cost is not None:
            per = result.gain_per_usd
            lines.append(
                f"run cost {float(cost):,.2f} {currency} ({source})"
                + (f", gain per {currency} {per:.6g}" if per is not None else "")
            )
            lines += [f"  {s.stage}: {float(s.cost):,.2f}" for s in stages]
        lines.append(
            "decision: deploy"
            if result.passed
            else "decision: skip (" + "; ".join(result.reasons) + ")"
        )
        print("\n".join(lines))
    if not result.passed:
        print(f"gate: skip the deployment: {'; '.join(result.reasons)}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="deploy gate for training pipelines: exit 1 when a retrained model's gain is too small",
        description=__doc__,
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        required=True,
        metavar="METRICS",
        help="the deployed model's metrics (JSON or MLflow)",
    )
    parser.add_argument(
        "--candidate",
        type=Path,
        required=True,
        metavar="METRICS",
        help="the retrained model's metrics",
    )
    parser.add_argument("--metric", help="metric name (needed when the files share several)")
    parser.add_argument(
        "--min-gain",
        type=float,
        required=True,
        metavar="G",
        help="least gain, in the metric's units",
    )
    parser.add_argument("--lower-is-better", action="store_true", help="for losses and error rates")
    parser.add_argument(
        "--cost",
        nargs="+",
        metavar="USD|EXPORT",
        help="the run's cost: a number, or FOCUS export(s) priced per Stage tag",
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tags selecting the run's billing lines, e.g. ModelVersion=v42 (repeatable)",
    )
    parser.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="KEY=name[,name]",
        help="as in finops report",
    )
    parser.add_argument(
        "--cost-column",
        default="EffectiveCost",
        choices=("EffectiveCost", "BilledCost", "ListCost", "ContractedCost"),
        help="FOCUS cost column (default: %(default)s)",
    )
    parser.add_argument(
        "--min-gain-per-dollar",
        type=float,
        metavar="X",
        help="least gain per unit of the run's cost",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)
