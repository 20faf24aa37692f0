"""`finops preview`: what a stack would create, what it costs per month, which policies it breaks.

Runs the project's Pulumi program offline (finops.engine), prices every resource
(finops.cost) and evaluates the rule set (policies/) when it is installed. Exit 1 when a
mandatory policy fails, 2 on a bad stack file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finops.config import StackConfig
from finops.cost import CostReport, estimate
from finops.engine import EngineResource, StackRun
from finops.engine.stack import run_stack


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
        from policies import evaluate_stack
    except ImportError:
        return False, "no policies ran: the policies package provides no evaluate_stack yet", []
    verdicts = [
        Verdict(policy=v.policy, resource=v.resource, level=v.level, message=v.message)
        for v in evaluate_stack(run, config, costs)
        if v.level != "disabled"
    ]
    return True, "", verdicts


def build_preview(
    stack: str, project_dir: Path | None = None, with_policies: bool = True
) -> Preview:
    stack_file, config, run = run_stack(stack, project_dir)
    costs = estimate(run, config)
    preview = Preview(stack_file=stack_file, config=config, run=run, costs=costs)
    if with_policies:
        preview.policies_ran, preview.policies_note, preview.violations = evaluate_policies(
            run, config, costs
        )
    else:
        preview.policies_note = "policies skipped (--no-policies)"
    return preview


def ordered_resources(preview: Preview) -> list[EngineResource]:
    """Resources grouped by component (stack-level ones first), the costliest first in each."""
    costs = {c.urn: c for c in preview.costs.resources}
    return sorted(
        preview.run.custom_resources(),
        key=lambda r: (costs[r.urn].component or "", -costs[r.urn].monthly_usd, r.type, r.name),
    )


def to_json(preview: Preview) -> dict[str, Any]:
    costs = {c.urn: c for c in preview.costs.resources}
    resources = []
    for resource in ordered_resources(preview):
        cost = costs[resource.urn]
        resources.append(
            {
                "type": resource.type,
                "name": resource.name,
                "urn": resource.urn,
                "component": cost.component,
                "inputs": resource.inputs,
                "monthlyUsd": round(cost.monthly_usd, 2),
                "hourlyUsd": round(cost.hourly_usd, 4),
                "basis": cost.basis,
            }
        )
    return {
        "stack": preview.run.stack,
        "stackFile": str(preview.stack_file),
        "resources": resources,
        "totals": {
            "monthlyUsd": round(preview.costs.total_monthly_usd, 2),
            "byTag": {
                k: {t: round(v, 2) for t, v in vals.items()}
                for k, vals in preview.costs.by_tag.items()
            },
        },
        "assumptions": preview.costs.assumptions,
        "policiesRan": preview.policies_ran,
        "policiesNote": preview.policies_note,
        "violations": [
            {"policy": v.policy, "resource": v.resource, "level": v.level, "message": v.message}
            for v in preview.violations
        ],
        "messages": [{"level": level, "message": text} for level, text in preview.run.messages],
    }


def _short_type(token: str) -> str:
    return token.rsplit(":", 1)[-1] if token.count(":") >= 2 else token


def to_markdown(preview: Preview) -> str:
    lines = [f"## finops preview: stack `{preview.run.stack}`", ""]
    lines += ["| resource | type | component | $/month | basis |", "|---|---|---|---:|---|"]
    costs = {c.urn: c for c in preview.costs.resources}
    for resource in ordered_resources(preview):
        cost = costs[resource.urn]
        lines.append(
            f"| `{resource.name}` | {_short_type(resource.type)} | {cost.component or ''} | "
            f"{cost.monthly_usd:,.2f} | {cost.basis} |"
        )
    lines += ["", f"**Total: ${preview.costs.total_monthly_usd:,.2f} per month**", ""]
    for key, values in preview.costs.by_tag.items():
        if values:
            parts = ", ".join(f"{tag}: ${usd:,.2f}" for tag, usd in sorted(values.items()))
            lines.append(f"- by {key}: {parts}")
    lines += ["", "### Policies", ""]
    if not preview.policies_ran:
        lines.append(preview.policies_note)
    elif not preview.violations:
        lines.append("All policies pass.")
    else:
        lines += ["| level | policy | resource | message |", "|---|---|---|---|"]
        for v in preview.violations:
            lines.append(
                f"| {v.level} | `{v.policy}` | `{v.resource or '(stack)'}` | {v.message} |"
            )
    notes = [text for level, text in preview.run.messages if level in ("info", "warning")]
    if notes:
        lines += ["", "### Notes from the components", ""] + [f"- {n}" for n in notes]
    lines += ["", "<details><summary>Assumptions</summary>", ""]
    lines += [f"- {a}" for a in preview.costs.assumptions] + ["", "</details>"]
    return "\n".join(lines) + "\n"


def print_table(preview: Preview) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    costs = {c.urn: c for c in preview.costs.resources}
    table = Table(
        title=f"finops preview - stack {preview.run.stack} ({preview.stack_file})", show_lines=False
    )
    table.add_column("resource", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("component")
    table.add_column("$/month", justify="right")
    table.add_column("basis", overflow="fold")
    for resource in ordered_resources(preview):
        cost = costs[resource.urn]
        table.add_row(
            resource.name,
            _short_type(resource.type),
            cost.component or "",
            f"{cost.monthly_usd:,.2f}",
            cost.basis,
        )
    table.add_section()
    table.add_row("total", "", "", f"[bold]{preview.costs.total_monthly_usd:,.2f}[/bold]", "")
    console.print(table)
    for key, values in preview.costs.by_tag.items():
        if values:
            parts = ", ".join(f"{tag} ${usd:,.2f}" for tag, usd in sorted(values.items()))
            console.print(f"[bold]by {key}[/bold]: {parts}")
    console.print("[dim]assumptions:[/dim]")
    for assumption in preview.costs.assumptions:
        console.print(f"[dim]  - {assumption}[/dim]")
    for level, text in preview.run.messages:
        if level in ("info", "warning"):
            console.print(f"[cyan]note[/cyan]: {text}")
    if not preview.policies_ran:
        console.print(f"[yellow]{preview.policies_note}[/yellow]")
        return
    if not preview.violations:
        console.print("[green]policies: all pass[/green]")
        return
    verdicts = Table(title="policy verdicts")
    verdicts.add_column("level")
    verdicts.add_column("policy")
    verdicts.add_column("resource")
    verdicts.add_column("message", overflow="fold")
    for v in preview.violations:
        color = "red" if v.level == "mandatory" else "yellow"
        verdicts.add_row(
            f"[{color}]{v.level}[/{color}]", v.policy, v.resource or "(stack)", v.message
        )
    console.print(verdicts)


def run(args: argparse.Namespace) -> int:
    preview = build_preview(args.stack, args.project_dir, with_policies=not args.no_policies)
    fmt = args.format or ("table" if sys.stdout.isatty() else "markdown")
    if fmt == "json":
        print(json.dumps(to_json(preview), indent=2, default=str))
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(preview))
    else:
        print_table(preview)
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
    parser.set_defaults(func=run)
