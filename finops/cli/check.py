"""`finops check`: the cost policies on a Pulumi stack and on Terraform/CloudFormation paths,
as one Markdown summary fit for a pull-request comment. Exit 1 on a mandatory violation (and,
with --fail-on-unknown, on a verdict that could not be reached); exit 2 when nothing could be
checked.

    finops check --stack dev --base-ref origin/main infra/terraform cfn/template.yaml

- The stack runs offline (aifinops.engine) and the CrossGuard pack (`policies/`) judges it
  through the engine's Analyzer protocol: `Analyze` per resource, then `AnalyzeStack`. What one
  resource cannot show (a group whose instance types are in its launch template) comes from
  the same rules over the whole run (`policies.evaluate_stack`), as `finops preview` shows it.
- Paths are read as Terraform would plan them (`aifinops.policies.terraform`: root modules, variables
  and `.tfvars`, modules, `count`/`for_each`, provider `default_tags`) and as CloudFormation
  would create a stack from its defaults (`aifinops.policies.cloudformation`), or from a Terraform plan
  JSON; the same rules judge every resource, then the stack policies (a budget for every
  project, the cost ceiling) run over them all. A value the code alone does not decide is an
  UNKNOWN verdict with its reason, listed; a file or module that could not be read is listed.
- `--checkov-builtin` also runs checkov's own checks (its own virtualenv: FINOPS_CHECKOV or
  `.venv-checkov/bin/checkov`) on the paths; their failures are advisory, checkov's parsing
  errors are listed.
- The cost delta compares the stack's monthly estimate with `--base-stack` (another stack
  file) or `--base-ref` (the same stack at a git ref: its stack file and program, run with
  this checkout's libraries).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from aifinops.config import read_stack_file
from aifinops.errors import FinopsError

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Row:
    level: str
    policy: str
    where: str
    resource: str
    message: str


@dataclass(frozen=True)
class Unknown:
    policy: str
    where: str
    resource: str
    reason: str


@dataclass
class PathReport:
    """What `finops check` found on Terraform/CloudFormation paths."""

    rows: list[Row]
    unknowns: list[Unknown]
    not_read: list[tuple[str, str]]
    """(where, why) for files and modules that could not be read."""
    not_created: list[tuple[str, str, str]]
    """(resource, where, why) for blocks that create nothing."""
    checked: int


@dataclass(frozen=True)
class StackCosts:
    total_usd: float
    by_resource: dict[str, float]
    summary: tuple[str, ...] = ()
    """Markdown lines of `finops preview`'s summary (components costliest first, by tag)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="policies on a stack and Terraform/CloudFormation paths; Markdown for a PR",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", help="Terraform folders, CloudFormation templates "
                        "or Terraform plan JSON files")  # fmt: skip
    parser.add_argument("--stack", default="dev", help="stack name or Pulumi.<stack>.yaml path")
    parser.add_argument("--no-stack", action="store_true", help="check only the given paths")
    parser.add_argument("--project-dir", type=Path, help="folder holding Pulumi.yaml")
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--base-stack", help="stack to compare the monthly cost against")
    base.add_argument("--base-ref", help="git ref whose version of the stack is the base")
    parser.add_argument("--policy-config", type=Path, help="JSON policy settings (pack shape)")
    parser.add_argument(
        "--checkov-builtin",
        action="store_true",
        help="also run checkov's built-in checks (their failures are advisory)",
    )
    parser.add_argument(
        "--environment",
        choices=("dev", "staging", "prod"),
        default=os.environ.get("FINOPS_ENVIRONMENT") or "dev",
        help="environment of path resources without a valid Environment tag "
        "(default: FINOPS_ENVIRONMENT, else dev, the strictest)",
    )
    parser.add_argument("--fail-on-unknown", action="store_true",
                        help="exit 1 when a verdict could not be reached (UNKNOWN)")  # fmt: skip
    parser.add_argument(
        "--usage-file",
        type=Path,
        default=None,
        help="usage figures of the stack (default: finops-usage.yml beside the stack file; "
        "the base is priced with the usage file beside its own stack file)",
    )
    parser.add_argument("-o", "--output", type=Path, help="also write the Markdown here")
    parser.set_defaults(func=run)


def _settings(path: Path | None) -> dict[str, dict[str, Any]]:
    from aifinops.policies import settings as policy_settings

    if path is None:
        return policy_settings.resolve(None)
    try:
        return policy_settings.resolve(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, policy_settings.SettingsError) as exc:
        raise FinopsError(f"{path}: {exc}") from None


def _strip_description(message: str) -> str:
    return message.split("\n", 1)[1] if "\n" in message else message


def stack_rows(
    stack: str,
    project_dir: Path | None,
    settings: dict[str, dict[str, Any]],
    usage_file: Path | None = None,
) -> tuple[str, list[Row], StackCosts]:
    """Run the stack offline, then the pack over it through the Analyzer protocol."""
    from aifinops.cli.preview_layout import summary_markdown
    from aifinops.cost import estimate
    from aifinops.engine.stack import run_stack
    from aifinops.policies import evaluate_stack
    from aifinops.policies.analyzer import running_pack
    from aifinops.policies.stack import TEMPLATE_TOKENS, related_resources
    from aifinops.usage import load_usage

    stack_file, config, stack_run = run_stack(stack, project_dir)
    costs = estimate(stack_run, config, load_usage(stack_file, stack_run, usage_file))
    custom = stack_run.custom_resources()
    templates = [r for r in custom if r.type in TEMPLATE_TOKENS]
    dependencies = {r.urn: [t.urn for t in related_resources(r, templates)] for r in custom}
    names = {r.urn: r.name for r in custom}
    rows: list[Row] = []
    where = f"stack `{stack_run.stack}`"
    with running_pack(read_stack_file(stack_file)) as pack:
        pack.configure(settings)
        diagnostics = []
        for resource in custom:
            diagnostics += pack.analyze(resource.type, resource.name, resource.urn, resource.inputs)
        diagnostics += pack.analyze_stack(custom, dependencies)
    for d in diagnostics:
        rows.append(
            Row(d.level, d.policy, where, names.get(d.urn, ""), _strip_description(d.message))
        )
    # `Analyze` sees one resource: a group whose instance types live only in its launch template
    # is judged by the same rules over the whole run, for the pairs the pack could not judge.
    judged = {(r.policy, r.resource) for r in rows}
    for v in evaluate_stack(stack_run, config, costs, settings):
        if (v.policy, v.resource) not in judged and v.level != "disabled":
            rows.append(Row(v.level, v.policy, where, v.resource, v.message))
    by_resource = {c.name: c.monthly_usd for c in costs.resources if c.monthly_usd}
    summary = tuple(summary_markdown(stack_run, costs))
    return stack_run.stack, rows, StackCosts(costs.total_monthly_usd, by_resource, summary)


def checkov_binary() -> Path:
    return Path(os.environ.get("FINOPS_CHECKOV") or ROOT / ".venv-checkov" / "bin" / "checkov")


def path_report(
    paths: list[str], settings: dict[str, dict[str, Any]], environment: str
) -> PathReport:
    """Every policy over the resources of Terraform/CloudFormation `paths`."""
    from aifinops.policies import iac, pricing
    from aifinops.policies.context import Context
    from aifinops.policies.verdicts import evaluate

    for path in paths:
        if not Path(path).exists():
            raise FinopsError(f"{path}: no such file or folder")
    scan = iac.scan(paths)
    resources = [pricing.priced(r) for r in scan.resources]
    rows, unknowns = [], []
    for v in evaluate(resources, Context(environment=environment), settings):
        if v.level == "disabled":
            continue
        where = f"`{v.location}`" if v.location else "paths"
        if v.unknown:
            unknowns.append(Unknown(v.policy, where, v.resource, v.message))
            continue
        message = f"{v.message}. To fix: {v.advice}" if v.advice else v.message
        rows.append(Row(v.level, v.policy, where, v.resource, message))
    return PathReport(
        rows=rows,
        unknowns=unknowns,
        not_read=[(n.location, n.message) for n in scan.not_read],
        not_created=[(n.address, n.location, n.reason) for n in scan.not_created],
        checked=len(resources),
    )


def checkov_builtin_rows(paths: list[str]) -> tuple[list[Row], list[tuple[str, str]]]:
    """checkov's own checks over `paths`: (advisory rows, parsing errors)."""
    binary = checkov_binary()
    if not binary.exists():
        raise FinopsError(f"checkov not found at {binary}: run ./dev setup or set FINOPS_CHECKOV")
    command = [str(binary), "-o", "json", "--skip-download", "--compact"]
    command += ["--framework", "terraform", "terraform_plan", "cloudformation"]
    for path in paths:
        command += ["-d" if Path(path).is_dir() else "-f", path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode not in (0, 1):
        raise FinopsError(f"checkov failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    reports: Any = json.loads(done.stdout or "[]")
    rows, errors = [], []
    for report in reports if isinstance(reports, list) else [reports]:
        results = report.get("results") or {}
        for result in results.get("failed_checks", []):
            lines = result.get("file_line_range") or [0, 0]
            where = f"`{_relative(result.get('file_abs_path') or result['file_path'])}:{lines[0]}`"
            rows.append(
                Row("advisory", result["check_id"], where, result["resource"], result["check_name"])
            )
        errors += [(_relative(str(e)), "checkov could not parse it") for e in
                   results.get("parsing_errors", [])]  # fmt: skip
    return rows, errors


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _preview_costs(stack: str, project_dir: Path | None) -> StackCosts:
    """A stack's cost through `finops preview --format json` in a fresh process."""
    command = [sys.executable, "-m", "aifinops", "preview", "--stack", stack, "--format", "json"]
    command += ["--no-policies"] + (["--project-dir", str(project_dir)] if project_dir else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise FinopsError(f"base stack {stack!r} failed to preview: {done.stderr.strip()[-500:]}")
    document = json.loads(done.stdout)
    return StackCosts(
        document["totals"]["monthlyUsd"],
        {r["name"]: r["monthlyUsd"] for r in document["resources"] if r["monthlyUsd"]},
    )


def base_costs(args: argparse.Namespace) -> tuple[str, StackCosts] | None:
    if args.base_stack:
        return f"stack `{args.base_stack}`", _preview_costs(args.base_stack, args.project_dir)
    if not args.base_ref:
        return None
    from aifinops.engine.stack import find_project_dir

    project = find_project_dir(args.project_dir)
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, cwd=project
    )
    if top.returncode != 0:
        raise FinopsError(f"--base-ref needs a git checkout: {top.stderr.strip()}")
    toplevel = Path(top.stdout.strip())
    archive = subprocess.run(
        ["git", "archive", "--format=tar", args.base_ref], capture_output=True, cwd=toplevel
    )
    if archive.returncode != 0:
        raise FinopsError(f"--base-ref {args.base_ref}: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        base_project = Path(folder) / project.resolve().relative_to(toplevel.resolve())
        stack = args.stack
        if (
            Path(stack).suffix in (".yaml", ".yml") or "/" in stack
        ):  # a stack file: same path at the ref
            relative = Path(stack).resolve().relative_to(toplevel.resolve())
            stack = str(Path(folder) / relative)
        from aifinops.config import resolve_stack_file

        if not resolve_stack_file(stack, base_project).exists():
            return f"`{args.base_ref}` (no such stack there)", StackCosts(0.0, {})
        return f"`{args.base_ref}`", _preview_costs(stack, base_project)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    stack: str | None,
    rows: list[Row],
    costs: StackCosts | None,
    base: tuple[str, StackCosts] | None,
    paths: PathReport | None = None,
    fail_on_unknown: bool = False,
) -> str:
    mandatory = [r for r in rows if r.level == "mandatory"]
    advisory = [r for r in rows if r.level == "advisory"]
    unknowns = paths.unknowns if paths else []
    title = f"## finops check: stack `{stack}`" if stack else "## finops check"
    failed = mandatory or (fail_on_unknown and unknowns)
    verdict = (
        f"**FAIL**: {len(mandatory)} mandatory violation{'s' if len(mandatory) != 1 else ''}"
        if failed
        else "**PASS**: no mandatory violations"
    )
    summary = f"{verdict}, {len(advisory)} advisory"
    if paths is not None:
        summary += f", {len(unknowns)} UNKNOWN ({paths.checked} path resources checked)"
    lines = [title, "", summary + ".", ""]
    if costs is not None:
        line = f"**Monthly cost: ${costs.total_usd:,.2f}**"
        if base is not None:
            label, before = base
            delta = costs.total_usd - before.total_usd
            share = f" ({delta / before.total_usd:+.1%})" if before.total_usd else ""
            line += f" (base {label}: ${before.total_usd:,.2f}; **{delta:+,.2f} USD/month{share}**)"
        lines += [line, ""]
        if costs.summary:
            lines += [*costs.summary, ""]
        if base is not None:
            changes = []
            for name in sorted(set(costs.by_resource) | set(base[1].by_resource)):
                old, new = base[1].by_resource.get(name, 0.0), costs.by_resource.get(name, 0.0)
                if abs(new - old) >= 0.01:
                    changes.append((abs(new - old), name, old, new))
            if changes:
                lines += ["| resource | base $/month | $/month | delta |", "|---|---:|---:|---:|"]
                for _, name, old, new in sorted(changes, reverse=True)[:15]:
                    lines.append(f"| `{name}` | {old:,.2f} | {new:,.2f} | {new - old:+,.2f} |")
                lines.append("")
    if rows:
        lines += ["### Violations", "", "| level | policy | where | resource | message |"]
        lines.append("|---|---|---|---|---|")
        order = {"mandatory": 0, "advisory": 1}
        for r in sorted(rows, key=lambda r: (order.get(r.level, 2), r.where, r.policy)):
            lines.append(
                f"| {r.level} | `{r.policy}` | {r.where} | `{r.resource or '(stack)'}` | "
                f"{_cell(r.message)} |"
            )
        lines.append("")
    if paths is not None:
        lines += _path_sections(paths)
    return "\n".join(lines).rstrip("\n") + "\n"


def _reason_kind(reason: str) -> str:
    """The reason without the resource-specific expression (for the count by reason)."""
    if "(if created:" in reason:
        return "may not be created: its count, for_each or Condition cannot be read"
    if "not in the finops catalog" in reason:
        return "instance type not in the finops catalog"
    if "not found; they may come from" in reason:
        return "tag keys not found, and part of the tags cannot be read"
    if " cannot be read" in reason:
        return reason.split(" cannot be read", 1)[0] + " cannot be read"
    return reason.split(":", 1)[0]


def _path_sections(paths: PathReport) -> list[str]:
    lines: list[str] = []
    if paths.unknowns:
        lines += ["### UNKNOWN: could not be checked", ""]
        counts: dict[tuple[str, str], int] = {}
        for u in paths.unknowns:
            key = (u.policy, _reason_kind(u.reason))
            counts[key] = counts.get(key, 0) + 1
        for (policy, kind), count in sorted(counts.items(), key=lambda i: (-i[1], i[0])):
            lines.append(f"- {count} x `{policy}`: {kind}")
        lines += ["", "| policy | where | resource | reason |", "|---|---|---|---|"]
        for u in sorted(paths.unknowns, key=lambda u: (u.where, u.policy)):
            lines.append(f"| `{u.policy}` | {u.where} | `{u.resource}` | {_cell(u.reason)} |")
        lines.append("")
    if paths.not_read:
        lines += ["### Not read: these were not checked", "", "| where | why |", "|---|---|"]
        lines += [f"| `{where}` | {_cell(why)} |" for where, why in paths.not_read]
        lines.append("")
    if paths.not_created:
        lines += [
            f"<details><summary>{len(paths.not_created)} resource blocks create nothing "
            "(not judged)</summary>",
            "",
            "| resource | where | why |",
            "|---|---|---|",
        ]
        lines += [f"| `{a}` | `{w}` | {_cell(why)} |" for a, w, why in paths.not_created]
        lines += ["", "</details>", ""]
    return lines


def run(args: argparse.Namespace) -> int:
    settings = _settings(args.policy_config)
    if args.no_stack and not args.paths:
        raise FinopsError(
            "nothing to check: give Terraform/CloudFormation paths, or drop --no-stack"
        )
    rows: list[Row] = []
    stack_name, costs = None, None
    paths: PathReport | None = None
    if args.paths:
        paths = path_report(list(args.paths), settings, args.environment)
        if args.checkov_builtin:
            builtin, errors = checkov_builtin_rows(list(args.paths))
            paths.rows += builtin
            paths.not_read += errors
        if not paths.checked:
            raise FinopsError(_nothing_checked(list(args.paths), paths))
    if not args.no_stack:
        stack_name, stack_found, costs = stack_rows(
            args.stack, args.project_dir, settings, args.usage_file
        )
        rows += stack_found
    if paths is not None:
        rows += paths.rows
    base = base_costs(args) if costs is not None else None
    text = markdown(stack_name, rows, costs, base, paths, args.fail_on_unknown)
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text)
    failed = any(r.level == "mandatory" for r in rows)
    return 1 if failed or (args.fail_on_unknown and paths is not None and paths.unknowns) else 0


def _nothing_checked(given: list[str], paths: PathReport) -> str:
    detail = []
    if paths.not_created:
        detail.append(f"{len(paths.not_created)} resource blocks create nothing")
    if paths.not_read:
        where, why = paths.not_read[0]
        detail.append(f"{len(paths.not_read)} not read (first: {where}: {why})")
    found = "; ".join(detail) or "no .tf files, Terraform plan or CloudFormation template found"
    return (
        f"nothing checked in {', '.join(given)}: {found}; give a folder with Terraform root "
        "modules, a CloudFormation template or a plan JSON"
    )
