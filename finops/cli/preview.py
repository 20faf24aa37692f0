"""`finops preview`: what a stack would create, what it costs per month, which policies it breaks.

Runs the project's Pulumi program offline (aifinops.engine), prices every resource
(aifinops.cost) and evaluates the rule set (policies/) when it is installed. Exit 1 when a
mandatory policy fails, 2 on a bad stack file.

The summary comes first: one row per component, costliest first, the stack total and the
totals by tag. Then each component's resources that cost something, scale, or could not be
priced (UNKNOWN); free and usage-based ones are one line per component unless --all. The
table fits the terminal, 80 columns included (COLUMNS sets the width); --format json has
every resource and the per-component summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aifinops.cli.preview_layout import print_table, summarize, tag_totals, to_markdown
from aifinops.config import StackConfig
from aifinops.cost import CostReport, estimate
from aifinops.engine import StackRun
from aifinops.engine.stack import run_stack
from aifinops.usage import load_usage


@dataclass
class Verdict:
    policy: str
    resource: str
    level: str
    message: str


@dataclass
class Preview:
    stack_file: Path
    config: StackConfig
    run: StackRun
    costs: CostReport
    violations: list[Verdict] = field(default_factory=list)
    policies_ran: bool = False
    policies_note: str = ""

    @property
    def mandatory_failures(self) -> list[Verdict]:
        return [v for v in self.violations if v.level == "mandatory"]


def evaluate_policies(
    run: StackRun, config: StackConfig, costs: CostReport
) -> tuple[bool, str, list[Verdict]]:
    """Run policies.evaluate_stack when the policy room provides it."""
    try:
        from aifinops.policies import evaluate_stack
    except ImportError:
        return False, "no policies ran: the policies package provides no evaluate_stack yet", []
    verdicts = [
        Verdict(policy=v.policy, resource=v.resource, level=v.level, message=v.message)
        for v in evaluate_stack(run, config, costs)
        if v.level != "disabled"
    ]
    return True, "", verdicts


def build_preview(
    stack: str,
    project_dir: Path | None = None,
    with_policies: bool = True,
    usage_file: Path | None = None,
) -> Preview:
    stack_file, config, run = run_stack(stack, project_dir)
    costs = estimate(run, config, load_usage(stack_file, run, usage_file))
    preview = Preview(stack_file=stack_file, config=config, run=run, costs=costs)
    if with_policies:
        preview.policies_ran, preview.policies_note, preview.violations = evaluate_policies(
            run, config, costs
        )
    else:
        preview.policies_note = "policies skipped (--no-policies)"
    return preview


def to_json(preview: Preview) -> dict[str, Any]:
    groups = summarize(preview.run, preview.costs)
    urns = preview.run.by_urn()
    resources = []
    for group in groups:
        for cost in (*group.listed, *group.free):
            resources.append(
                {
                    "type": cost.type,
                    "name": cost.name,
                    "urn": cost.urn,
                    "component": cost.component,
                    # a charge line (volumes, telemetry...) has its resource's URN + "#what"
                    "inputs": urns[cost.urn].inputs if cost.urn in urns else {},
                    "monthlyUsd": round(cost.monthly_usd, 2),
                    "hourlyUsd": round(cost.hourly_usd, 4),
                    "basis": cost.basis,
                    "priced": cost.priced,
                    "charge": cost.charge,
                }
            )
    return {
        "stack": preview.run.stack,
        "stackFile": str(preview.stack_file),
        "components": [
            {
                "name": group.name,
                "kind": group.kind,
                "cloud": group.cloud,
                "resources": group.resource_count,
                "monthlyUsd": round(group.monthly_usd, 2),
            }
            for group in groups
        ],
        "resources": resources,
        "totals": {
            "monthlyUsd": round(preview.costs.total_monthly_usd, 2),
            "byTag": {
                key: {value: round(usd, 2) for value, usd in values}
                for key, values in tag_totals(preview.costs)
            },
        },
        "assumptions": preview.costs.assumptions,
        "usage": {
            "file": preview.costs.usage_file or None,
            "zeroKeys": preview.costs.usage_zero_keys,
        },
        "policiesRan": preview.policies_ran,
        "policiesNote": preview.policies_note,
        "violations": [
            {"policy": v.policy, "resource": v.resource, "level": v.level, "message": v.message}
            for v in preview.violations
        ],
        "messages": [{"level": level, "message": text} for level, text in preview.run.messages],
    }


def run(args: argparse.Namespace) -> int:
    preview = build_preview(
        args.stack, args.project_dir, with_policies=not args.no_policies, usage_file=args.usage_file
    )
    fmt = args.format or ("table" if sys.stdout.isatty() else "markdown")
    if fmt == "json":
        print(json.dumps(to_json(preview), indent=2, default=str))
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(preview, show_all=args.all))
    else:
        from rich.console import Console

        print_table(preview, Console(), show_all=args.all)
    if preview.mandatory_failures:
        print(
            f"{len(preview.mandatory_failures)} mandatory policy violation(s): "
            + "; ".join(
                f"{v.policy} on {v.resource or '(stack)'}" for v in preview.mandatory_failures
            ),
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="offline preview of a stack: resources, monthly cost, policy verdicts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stack",
        default="dev",
        help="stack name (Pulumi.<name>.yaml) or a path to one (default: dev)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        help="default: table on a terminal, markdown otherwise",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder with Pulumi.yaml (default: found from the current folder)",
    )
    parser.add_argument("--no-policies", action="store_true", help="skip the policy evaluation")
    parser.add_argument(
        "--usage-file",
        type=Path,
        default=None,
        help="usage figures for the usage-based charges (default: finops-usage.yml beside the "
        "stack file when it exists; `finops usage init` writes one)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="list every resource, the free and usage-based ones too (default: one line per "
        "component for them)",
    )
    parser.set_defaults(func=run)
