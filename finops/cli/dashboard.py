"""`finops dashboard`: the Grafana dashboard for finops-agent and the price rules it needs.

Writes OUT/finops-gpu-cost.json (import it in Grafana; it asks for the Prometheus data
source) and OUT/finops-prices.rules.yml (add it to Prometheus's rule_files: instance prices
from the finops catalog, one region per cloud, so the dashboard can price what the agents
report). docs/reporting.md#grafana-dashboard lists the panels and their queries.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from aifinops.errors import FinopsError
from aifinops.reporting.price_rules import price_rules

DEFAULT_REGIONS = ("us-east-1", "us-central1", "eastus")


def dashboard_json() -> str:
    """The dashboard, as shipped with the agent (agents/deploy/grafana-dashboard.json)."""
    return (resources.files("aifinops.agents") / "deploy" / "grafana-dashboard.json").read_text(
        encoding="utf-8"
    )


def run(args: argparse.Namespace) -> int:
    regions = args.region or list(DEFAULT_REGIONS)
    rules = price_rules(regions)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "finops-gpu-cost.json").write_text(dashboard_json(), encoding="utf-8")
        (args.out / "finops-prices.rules.yml").write_text(rules, encoding="utf-8")
    except OSError as exc:
        raise FinopsError(f"{args.out}: cannot write: {exc.strerror}") from None
    count = rules.count("- record:")
    print(
        f"wrote {args.out / 'finops-gpu-cost.json'} and {args.out / 'finops-prices.rules.yml'} "
        f"({count} prices, {', '.join(regions)})",
        file=sys.stderr,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="write the Grafana dashboard for finops-agent and its Prometheus price rules",
        description=__doc__,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the two files to")
    parser.add_argument(
        "--region",
        action="append",
        help="price region, one per cloud (repeatable; default: us-east-1, us-central1, eastus)",
    )
    parser.set_defaults(func=run)
