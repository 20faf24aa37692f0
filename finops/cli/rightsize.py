"""`finops rightsize`: measured usage -> priced recommendations -> (with --apply) the stack file.

Sources (repeatable `--source`): `agent:PATH` (the agent's export file or spool folder),
`prometheus:URL`, `cloudwatch:REGION` (optionally `cloudwatch:REGION@ENDPOINT_URL`).
`--apply` edits `Pulumi.<stack>.yaml` in place, previewing each change through the cost
model and the policy pack; a change that breaks a mandatory policy is refused with the
reason. A Markdown pull-request body is written beside the stack file (or to `--pr-body`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finops import config as stack_config
from finops.errors import FinopsError
from finops.rightsizing import Recommendation, Settings, recommend
from finops.rightsizing.apply import (
    ApplyResult,
    Finding,
    Preview,
    PreviewResult,
    apply,
    first_per_target,
    pull_request_body,
)
from finops.rightsizing.spot import Checkpointing
from finops.rightsizing.usage import DEFAULT_LOOKBACK_DAYS, GpuUsage


class RightsizeError(FinopsError):
    """A bad --source, or --apply without what it needs."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rightsize",
        help="recommend (and apply) instance types, node counts and capacity from measured usage",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--stack", required=True, help="stack name (dev) or path to Pulumi.<stack>.yaml"
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
        "--headroom", type=float, default=0.20, help="memory/throughput headroom, 0-1"
    )
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=30.0,
        help="how often training jobs checkpoint (0: they do not; then no spot advice)",
    )
    parser.add_argument("--apply", action="store_true", help="edit the stack file in place")
    parser.add_argument(
        "--pr-body", type=Path, help="where --apply writes the pull-request Markdown"
    )
    parser.add_argument("--project-dir", type=Path, help="folder holding Pulumi.yaml")
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
        raise RightsizeError(f"--end {value!r}: give unix seconds or an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def read_sources(specs: list[str], lookback_days: float, end: float | None) -> list[GpuUsage]:
    """Usage from every `--source` spec, in order."""
    usages: list[GpuUsage] = []
    for spec in specs:
        kind, sep, rest = spec.partition(":")
        if kind == "agent" and sep:
            from finops.rightsizing import spool

            usages += spool.read_usage([Path(rest)], lookback_days=lookback_days, end=end)
        elif kind == "prometheus" and rest:
            from finops.rightsizing.prometheus import PrometheusSource
            from finops.rightsizing.prometheus import read_usage as read_prometheus

            usages += read_prometheus(PrometheusSource(rest), lookback_days=lookback_days, end=end)
        elif kind == "cloudwatch":
            from finops.rightsizing.cloudwatch import CloudWatchSource
            from finops.rightsizing.cloudwatch import read_usage as read_cloudwatch

            region, _, endpoint = rest.partition("@")
            source = CloudWatchSource(region or "us-east-1", endpoint_url=endpoint or None)
            usages += read_cloudwatch(source, lookback_days=lookback_days, end=end)
        else:
            raise RightsizeError(
                f"--source {spec!r}: expected agent:PATH, prometheus:URL or cloudwatch:REGION"
            )
    return usages


def policy_preview(project_dir: Path) -> Preview:
    """Preview a stack file offline: cost model total and the policy pack's verdicts."""
    try:
        import policies

        evaluate: Callable[..., list[Any]] = policies.evaluate_stack
    except (ImportError, AttributeError) as exc:
        raise RightsizeError(
            f"--apply needs the policy pack's policies.evaluate_stack ({exc}); without it no "
            "change can be checked against the mandatory policies, so none is applied"
        ) from None
    from finops import cost
    from finops.engine.stack import run_stack

    def preview(path: Path) -> PreviewResult:
        _, config, run_ = run_stack(str(path), project_dir)
        report = cost.estimate(run_, config)
        verdicts = evaluate(run_, config, costs=report)
        return PreviewResult(
            report.total_monthly_usd,
            tuple(Finding(v.policy, v.resource, v.level, v.message) for v in verdicts),
        )

    return preview


@contextmanager
def _progress(message: str) -> Iterator[None]:
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        yield


def _as_json(rec: Recommendation) -> dict[str, Any]:
    data = dataclasses.asdict(rec)
    data["kind"] = rec.kind.value
    return data


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _per_unit(rec: Recommendation) -> str:
    if rec.usd_per_work_before is None or rec.usd_per_work_after is None:
        return "-"
    return f"{rec.usd_per_work_before:.4g} -> {rec.usd_per_work_after:.4g} / {rec.work_unit}"


def _table(recs: list[Recommendation], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "target",
        "recommendation",
        "change",
        "USD/month now",
        "after",
        "saving",
        "USD per unit of work",
        "evidence",
    ):
        table.add_column(
            column, justify="right" if column in ("USD/month now", "after", "saving") else "left"
        )
    for rec in recs:
        e = rec.evidence
        table.add_row(
            rec.target,
            rec.kind.value,
            rec.summary,
            _money(rec.current.monthly_usd),
            _money(rec.proposed.monthly_usd),
            _money(rec.monthly_saving_usd),
            _per_unit(rec),
            f"{e.hosts} hosts/{e.gpus} GPUs, {(e.window_end - e.window_start) / 86400:.1f} d, {e.source}",
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _markdown(recs: list[Recommendation]) -> str:
    lines = [
        "| target | recommendation | change | saving USD/month | USD per unit of work |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.target} | {r.kind.value} | {r.summary} | {_money(r.monthly_saving_usd)} | {_per_unit(r)} |"
        for r in recs
    ]
    return "\n".join(lines)


def _report_apply(result: ApplyResult, args: argparse.Namespace, body_path: Path) -> None:
    out = sys.stdout
    verb = "applied" if result.written else "nothing applied"
    print(f"{verb}: {len(result.applied)} change(s) to {result.stack_file}", file=out)
    for rec, reason in result.refused:
        print(f"refused {rec.target} {rec.kind.value}: {reason}", file=out)
    if result.before is not None and result.after is not None:
        print(
            f"preview cost: {_money(result.before.total_monthly_usd)} -> "
            f"{_money(result.after.total_monthly_usd)} USD/month",
            file=out,
        )
        for finding in result.after.findings:
            print(
                f"policy {finding.level} {finding.policy} {finding.resource}: {finding.message}",
                file=out,
            )
    print(f"pull-request body: {body_path}", file=out)


def run(args: argparse.Namespace) -> int:
    from finops.engine.stack import find_project_dir

    project = find_project_dir(args.project_dir)
    stack_file = stack_config.resolve_stack_file(args.stack, project)
    config = stack_config.load(stack_file)
    minutes = args.checkpoint_minutes
    settings = Settings(
        memory_headroom=args.headroom,
        checkpointing=Checkpointing(interval_hours=minutes / 60) if minutes > 0 else None,
    )
    specs = args.sources or ["agent:/var/lib/finops-agent"]
    with _progress(f"reading usage from {', '.join(specs)}"):
        usages = read_sources(specs, args.lookback_days, _end(args.end))
    recs = recommend(config, usages, settings)
    if args.format == "json":
        if not args.apply:
            print(json.dumps([_as_json(r) for r in recs], indent=1, default=str))
    elif args.format == "markdown":
        print(_markdown(recs))
    else:
        title = f"{len(recs)} recommendation(s) for {stack_file.name} from {len(usages)} GPUs"
        _table(recs, title)
    if not args.apply:
        return 0
    preview = policy_preview(project)
    with _progress("previewing each change against the policies"):
        result = apply(stack_file, first_per_target(recs), preview)
    stack = stack_config.stack_name_of(stack_file)
    body_path = args.pr_body or stack_file.with_name(f"rightsize-{stack}.md")
    body_path.write_text(pull_request_body(result, stack))
    if args.format == "json":
        print(json.dumps(_apply_json(recs, result, body_path), indent=1, default=str))
    else:
        _report_apply(result, args, body_path)
    return 0


def _apply_json(recs: list[Recommendation], result: ApplyResult, body_path: Path) -> dict[str, Any]:
    def preview(p: PreviewResult | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "total_monthly_usd": p.total_monthly_usd,
            "findings": [dataclasses.asdict(f) for f in p.findings],
        }

    return {
        "recommendations": [_as_json(r) for r in recs],
        "applied": [r.ref for r in result.applied],
        "refused": [{"ref": r.ref, "reason": reason} for r, reason in result.refused],
        "stack_file": str(result.stack_file),
        "written": result.written,
        "before": preview(result.before),
        "after": preview(result.after),
        "pull_request_body": str(body_path),
    }
